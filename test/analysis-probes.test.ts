import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { layerProbes, majorityBaseline, trainProbe } from '../src/analysis/probes';
import { createRng } from '../src/random';

await tf.setBackend('cpu');

/** n examples in `dims` dimensions: class c centred at `separation` along axis c, unit Gaussian noise. */
function clusters(n: number, dims: number, classes: number, separation: number, seed: number): { x: tf.Tensor2D; y: number[] } {
  const rng = createRng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const y = Array.from({ length: n }, (_, i) => i % classes);
  const values = y.flatMap((c) => Array.from({ length: dims }, (_, d) => (d === c ? separation : 0) + gauss()));
  return { x: tf.tensor2d(values, [n, dims]), y };
}

test('trainProbe: well-separated classes are probed at ~100 %, on held-out examples too', () => {
  const train = clusters(200, 16, 3, 8, 1);
  const evalSet = clusters(150, 16, 3, 8, 2);
  const before = tf.memory().numTensors;
  const result = trainProbe(train.x, train.y, evalSet.x, evalSet.y, { steps: 200 });
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  assert.ok(result.trainAccuracy >= 0.99, `train ${result.trainAccuracy}`);
  assert.ok(result.evalAccuracy >= 0.98, `eval ${result.evalAccuracy}`);
  tf.dispose([train.x, evalSet.x]);
});

test('trainProbe: random labels give chance on held-out examples, though the probe can fit the training set', () => {
  const rng = createRng(7);
  const train = clusters(120, 64, 2, 0, 3);
  const evalSet = clusters(400, 64, 2, 0, 4);
  const yTrain = train.y.map(() => rng.int(2));
  const yEval = evalSet.y.map(() => rng.int(2));
  const result = trainProbe(train.x, yTrain, evalSet.x, yEval, { steps: 300, l2: 0 });
  // 64 features for 120 points: the probe memorises part of the noise it was trained on...
  assert.ok(result.trainAccuracy > 0.65, `train ${result.trainAccuracy}`);
  // ...which carries nothing over to new examples.
  // Binomial(400, 0.5): 0.5 +- 3 standard deviations (0.075).
  assert.ok(Math.abs(result.evalAccuracy - 0.5) < 0.075, `eval ${result.evalAccuracy}`);
  tf.dispose([train.x, evalSet.x]);
});

test('trainProbe: invariant to the scale of the features (standardised), and deterministic', () => {
  const train = clusters(90, 8, 3, 2, 5);
  const evalSet = clusters(90, 8, 3, 2, 6);
  const big = tf.mul(train.x, 1000) as tf.Tensor2D;
  const bigEval = tf.mul(evalSet.x, 1000) as tf.Tensor2D;
  const a = trainProbe(train.x, train.y, evalSet.x, evalSet.y, { steps: 100 });
  const b = trainProbe(big, train.y, bigEval, evalSet.y, { steps: 100 });
  const c = trainProbe(train.x, train.y, evalSet.x, evalSet.y, { steps: 100 });
  assert.deepEqual(a, c);
  assert.ok(Math.abs(a.evalAccuracy - b.evalAccuracy) <= 1 / 90 + 1e-9, `${a.evalAccuracy} vs ${b.evalAccuracy}`);
  // Overlapping clusters (separation 2 in 8 dims): well above chance, below perfect.
  assert.ok(a.evalAccuracy > 0.6 && a.evalAccuracy < 1, `eval ${a.evalAccuracy}`);
  tf.dispose([train.x, evalSet.x, big, bigEval]);
});

test('layerProbes: one row per depth, informative depths beat the uninformative one', () => {
  const informative = clusters(100, 8, 2, 6, 8);
  const informativeEval = clusters(100, 8, 2, 6, 9);
  const noise = clusters(100, 8, 2, 0, 10);
  const noiseEval = clusters(100, 8, 2, 0, 11);
  const rows = layerProbes([noise.x, informative.x], informative.y, [noiseEval.x, informativeEval.x], informativeEval.y, { steps: 150 });
  assert.deepEqual(rows.map((r) => [r.layerName, r.layer]), [['embeddings', -1], ['layer 0', 0]]);
  assert.ok(rows[1].evalAccuracy > 0.95, `informative ${rows[1].evalAccuracy}`);
  assert.ok(rows[0].evalAccuracy < 0.7, `noise ${rows[0].evalAccuracy}`);
  tf.dispose([informative.x, informativeEval.x, noise.x, noiseEval.x]);
});

test('trainProbe: mismatched labels and features are errors naming the split', () => {
  const x = tf.zeros([4, 2]) as tf.Tensor2D;
  assert.throws(() => trainProbe(x, [0, 1, 0], x, [0, 1, 0, 1]), /train has 4 examples and 3 labels/);
  assert.throws(() => trainProbe(x, [0, 1, 0, 1], x, [0, 1, -1, 1]), /eval label 2 is -1/);
  x.dispose();
});

test('majorityBaseline: the share of evaluation labels equal to the most frequent training label', () => {
  assert.equal(majorityBaseline([1, 1, 0, 2, 1], [1, 0, 0, 1]), 0.5);
  assert.equal(majorityBaseline([0, 1], [1, 1, 1]), 0, 'ties go to the smaller label');
});
