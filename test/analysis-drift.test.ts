import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { weightDrift } from '../src/analysis/drift';
import { bertConfig } from '../src/model/config';
import { parameterLayout, disposeParams, type ParamMap } from '../src/model/names';

await tf.setBackend('cpu');

const config = bertConfig({ vocabSize: 50, hiddenSize: 8, numLayers: 3, numHeads: 2, intermediateSize: 16, maxPositions: 16 });

function params(seed: number): ParamMap {
  const out: ParamMap = new Map();
  parameterLayout(config, 'classifier', 2).forEach((p, i) => out.set(p.name, tf.randomNormal(p.shape, 0, 1, 'float32', seed * 1000 + i)));
  return out;
}

test('weightDrift: unchanged layers drift 0, a perturbed layer drifts by the planted relative norm', () => {
  const before = params(1);
  const after: ParamMap = new Map([...before].map(([k, v]) => [k, v.clone()]));
  // Perturb every tensor of layer 1 by exactly 10 % of its own norm, so the layer's relative change is 0.1.
  let expected2 = 0;
  let norm2 = 0;
  for (const [name, t] of before) {
    if (!name.startsWith('bert.encoder.layer.1.')) continue;
    const dir = tf.randomNormal(t.shape, 0, 1, 'float32', 99);
    const scaled = tf.tidy(() => tf.mul(dir, tf.div(tf.mul(tf.norm(t), 0.1), tf.norm(dir))));
    after.get(name)!.dispose();
    after.set(name, tf.add(t, scaled));
    const n = tf.norm(t).dataSync()[0];
    norm2 += n * n;
    expected2 += (0.1 * n) ** 2;
    tf.dispose([dir, scaled]);
  }
  const memBefore = tf.memory().numTensors;
  const drift = weightDrift(before, after, config);
  assert.equal(tf.memory().numTensors, memBefore, 'no tensor leaks');
  assert.deepEqual(drift.map((d) => d.layer), ['embeddings', 'layer 0', 'layer 1', 'layer 2', 'pooler', 'head']);
  for (const d of drift) {
    if (d.layer === 'layer 1') {
      assert.ok(Math.abs(d.relativeChange - Math.sqrt(expected2 / norm2)) < 1e-4, `${d.relativeChange}`);
      assert.ok(Math.abs(d.relativeChange - 0.1) < 1e-4);
      assert.equal(d.index, 1);
      assert.equal(d.tensors, 16);
    } else {
      assert.equal(d.relativeChange, 0, d.layer);
    }
  }
  disposeParams(before);
  disposeParams(after);
});

test('weightDrift names the tensor on a shape mismatch', () => {
  const a: ParamMap = new Map([['bert.encoder.layer.0.attention.self.query.weight', tf.zeros([8, 8])]]);
  const b: ParamMap = new Map([['bert.encoder.layer.0.attention.self.query.weight', tf.zeros([8, 4])]]);
  assert.throws(() => weightDrift(a, b, config), /layer\.0\.attention\.self\.query\.weight has shape \[8,8\] before and \[8,4\] after/);
  disposeParams(a);
  disposeParams(b);
});
