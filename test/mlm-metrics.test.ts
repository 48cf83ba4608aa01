import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { initParams } from '../src/model/init';
import { disposeParams } from '../src/model/names';
import { createRng } from '../src/random';
import { heldOutMetrics } from '../src/train/pretrain';
import { crossEntropy } from '../src/train/trainer';
import { tinyConfig } from './helpers/tiny-model';
import { runTorch, torchMissing } from './helpers/torch';

/**
 * The losses and accuracies the study reports, against values that do not come from the code under
 * test: crossEntropy by hand and against torch.nn.functional.cross_entropy, the held-out MLM loss and
 * accuracy of pretraining (heldOutMetrics) by hand on a model whose logits are known.
 */

await initEngine({ backend: 'wasm' });

function crossEntropyOf(logits: number[][], labels: number[]): number {
  return tf.tidy(() => crossEntropy(tf.tensor2d(logits), tf.tensor1d(labels, 'int32')).dataSync()[0]);
}

test('crossEntropy on a tiny input equals the hand computation', () => {
  // Row 0: logsumexp(1, 2, 3) - 3 = ln(1 + e^-1 + e^-2) = 0.40760596; row 1: uniform over 3 = ln 3 = 1.09861229.
  const expected = (Math.log(1 + Math.exp(-1) + Math.exp(-2)) + Math.log(3)) / 2;
  assert.ok(Math.abs(expected - 0.7531091) < 1e-7);
  const got = crossEntropyOf([[1, 2, 3], [0, 0, 0]], [2, 0]);
  assert.ok(Math.abs(got - expected) < 1e-6, `${got} vs ${expected}`);
});

test('crossEntropy agrees with torch.nn.functional.cross_entropy (mean reduction), large logits included', { skip: torchMissing() }, () => {
  const rng = createRng(3);
  const logits = Array.from({ length: 9 }, () => Array.from({ length: 7 }, () => Math.fround(rng.normal() * 4)));
  logits.push([80, -80, 0, 1, 2, 3, 4], [-50, -50, -50, -50, -50, -50, -49]);
  const labels = logits.map((_, i) => (i * 5) % 7);
  const expected = runTorch<number>(
    `
import json, sys, torch
d = json.loads(sys.stdin.read())
x = torch.tensor(d['logits'], dtype=torch.float64)
print(json.dumps(torch.nn.functional.cross_entropy(x, torch.tensor(d['labels'])).item()))
`,
    { input: { logits, labels } },
  );
  const got = crossEntropyOf(logits, labels);
  assert.ok(Math.abs(got - expected) < 1e-5 * Math.max(1, expected), `${got} vs torch ${expected}`);
});

test('heldOutMetrics: loss and accuracy over every masked position, batches weighted by their positions', () => {
  const config = tinyConfig();
  const params = initParams(config, 'mlm', 2, 4);
  // A head whose logits are its bias alone, whatever the input: the transform's dense layer outputs 0,
  // GELU(0) = 0, LayerNorm of a constant vector is its bias, set to 0 too.
  const zero = (name: string) => {
    const old = params.get(name)!;
    params.set(name, tf.zerosLike(old));
    old.dispose();
  };
  for (const name of ['cls.predictions.transform.dense.weight', 'cls.predictions.transform.dense.bias', 'cls.predictions.transform.LayerNorm.bias']) zero(name);
  const bias = Array.from({ length: config.vocabSize }, (_, id) => Math.fround(Math.sin(id * 1.3) * 2));
  bias[9] = 3; // the argmax: the one token predicted right
  params.get('cls.predictions.bias')!.dispose();
  params.set('cls.predictions.bias', tf.tensor1d(bias));
  try {
    // [CLS] = 2, [SEP] = 3; masking probability 1 selects every other position, so the targets are known.
    const bodies = [[9, 9, 9, 10], [11, 12, 13, 14], [9, 15, 9, 16]];
    const heldOut = bodies.map((b) => Int32Array.from([2, ...b, 3]));
    const masking = { maskId: 4, specialIds: new Set([0, 1, 2, 3, 4]), probability: 1 };
    const lse = Math.log(bias.reduce((s, b) => s + Math.exp(b), 0));
    const targets = bodies.flat();
    const expectedLoss = targets.reduce((s, t) => s + (lse - bias[t]), 0) / targets.length;
    const expectedAccuracy = targets.filter((t) => t === 9).length / targets.length; // 5 of 12
    // Batches of 2 rows and 1 row: 8 and 4 positions, so an unweighted mean of batch means would differ.
    const m = heldOutMetrics(config, params, heldOut, masking, 7, 2);
    assert.ok(Math.abs(m.loss - expectedLoss) < 1e-5, `loss ${m.loss} vs ${expectedLoss}`);
    assert.equal(m.accuracy, expectedAccuracy);
    const whole = heldOutMetrics(config, params, heldOut, masking, 7, 16);
    assert.ok(Math.abs(whole.loss - expectedLoss) < 1e-5, `one batch: ${whole.loss}`);
  } finally {
    disposeParams(params);
  }
});
