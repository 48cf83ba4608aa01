import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { bertConfig } from '../src/model/config';
import { INITIALIZER_RANGE, initParams, sinusoidalPositions } from '../src/model/init';
import { disposeParams } from '../src/model/names';

await initEngine({ backend: 'cpu' });

const POSITIONS = 'bert.embeddings.position_embeddings.weight';

function dot(table: Float32Array, dim: number, i: number, j: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += table[i * dim + d] * table[j * dim + d];
  return s;
}

test('the sinusoidal position table: offsets, not absolute positions, set the dot products; rms of N(0, 0.02)', () => {
  const dim = 64;
  const table = sinusoidalPositions(128, dim);
  // sin(a)sin(b) + cos(a)cos(b) = cos(a - b): each pair of columns contributes cos(offset * frequency).
  for (const offset of [1, 5, 17]) {
    const expected = Array.from({ length: dim / 2 }, (_, k) => Math.cos(offset / 10000 ** ((2 * k) / dim))).reduce((a, b) => a + b, 0) * 2 * INITIALIZER_RANGE ** 2;
    for (const i of [0, 9, 100]) assert.ok(Math.abs(dot(table, dim, i, i + offset) - expected) < 1e-6, `offset ${offset} at ${i}`);
  }
  assert.ok(dot(table, dim, 10, 11) > dot(table, dim, 10, 40), 'near positions are more alike than far ones');
  const rms = Math.sqrt(table.reduce((a, v) => a + v * v, 0) / table.length);
  assert.ok(Math.abs(rms - INITIALIZER_RANGE) < 0.002, `rms ${rms}`);
});

test('positionInit changes only the position embeddings', () => {
  const config = bertConfig({ vocabSize: 50, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 32, maxPositions: 24 });
  const normal = initParams(config, 'mlm', 2, 5);
  const sinusoidal = initParams(config, 'mlm', 2, 5, { positionInit: 'sinusoidal' });
  assert.deepEqual([...sinusoidal.keys()], [...normal.keys()]);
  for (const [name, t] of normal) {
    const other = sinusoidal.get(name)!;
    assert.deepEqual(other.shape, t.shape, name);
    if (name === POSITIONS) {
      assert.deepEqual(other.dataSync(), sinusoidalPositions(24, 16));
      assert.notDeepEqual(other.dataSync(), t.dataSync());
    } else assert.deepEqual(other.dataSync(), t.dataSync(), name);
  }
  const before = tf.memory().numTensors;
  disposeParams(normal);
  disposeParams(sinusoidal);
  assert.equal(tf.memory().numTensors, before - 2 * normal.size);
});
