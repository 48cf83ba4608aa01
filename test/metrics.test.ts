import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classificationMetrics } from '../src/train/metrics';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('a small three-class case, computed by hand', () => {
  //            true: 0  0  1  1  2  2
  const labels = [0, 0, 1, 1, 2, 2];
  const predictions = [0, 1, 1, 1, 0, 2];
  const m = classificationMetrics(predictions, labels, 3);
  assert.deepEqual(m.confusion, [
    [1, 1, 0],
    [0, 2, 0],
    [1, 0, 1],
  ]);
  assert.deepEqual(m.support, [2, 2, 2]);
  close(m.accuracy, 4 / 6, 'accuracy');
  // class 0: P = 1/2, R = 1/2; class 1: P = 2/3, R = 1; class 2: P = 1, R = 1/2.
  const f1 = (p: number, r: number) => (2 * p * r) / (p + r);
  const expected = [f1(1 / 2, 1 / 2), f1(2 / 3, 1), f1(1, 1 / 2)];
  expected.forEach((e, c) => close(m.perClassF1[c], e, `F1 of class ${c}`));
  close(m.macroF1, (0.5 + 0.8 + 2 / 3) / 3, 'macro-F1');
});

test('sklearn conventions: absent classes count as F1 0 in the macro average', () => {
  // Class 2 never occurs (neither true nor predicted); class 1 is predicted but never true.
  const m = classificationMetrics([0, 1, 0, 0], [0, 0, 0, 0], 3);
  assert.deepEqual(m.support, [4, 0, 0]);
  assert.deepEqual(m.confusion, [
    [3, 1, 0],
    [0, 0, 0],
    [0, 0, 0],
  ]);
  close(m.accuracy, 0.75, 'accuracy');
  close(m.perClassF1[0], (2 * 1 * 0.75) / 1.75, 'F1 of class 0');
  assert.equal(m.perClassF1[1], 0);
  assert.equal(m.perClassF1[2], 0);
  close(m.macroF1, m.perClassF1[0] / 3, 'macro-F1 averages over all 3 classes');
});

test('perfect and all-wrong binary predictions', () => {
  const perfect = classificationMetrics([1, 0, 1], [1, 0, 1], 2);
  assert.equal(perfect.accuracy, 1);
  assert.equal(perfect.macroF1, 1);
  assert.deepEqual(perfect.perClassF1, [1, 1]);
  const wrong = classificationMetrics([0, 1, 0], [1, 0, 1], 2);
  assert.equal(wrong.accuracy, 0);
  assert.equal(wrong.macroF1, 0);
  assert.deepEqual(wrong.confusion, [
    [0, 1],
    [2, 0],
  ]);
});

test('bad input is rejected with the offending value', () => {
  assert.throws(() => classificationMetrics([0], [0, 1], 2), /1 predictions for 2 labels/);
  assert.throws(() => classificationMetrics([], [], 2), /no examples/);
  assert.throws(() => classificationMetrics([0, 2], [0, 1], 2), /prediction 2 at index 1 is not in 0\.\.1/);
  assert.throws(() => classificationMetrics([0, 1], [0, -1], 2), /label -1 at index 1/);
  assert.throws(() => classificationMetrics([0], [0], 0), /numLabels 0/);
});
