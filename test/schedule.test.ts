import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearSchedule, warmupStepsFrom } from '../src/train/schedule';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-15;

test('linear warmup then linear decay, as get_linear_schedule_with_warmup', () => {
  const lr = linearSchedule({ peakLr: 2e-5, totalSteps: 100, warmupSteps: 10 });
  assert.equal(lr(0), 0, 'the first update has lr 0 during warmup');
  assert.ok(close(lr(1), 2e-6));
  assert.ok(close(lr(5), 1e-5));
  assert.ok(close(lr(9), 1.8e-5));
  assert.equal(lr(10), 2e-5, 'peak at the end of warmup');
  assert.ok(close(lr(55), 1e-5), 'half way down the decay');
  assert.ok(close(lr(99), 2e-5 / 90));
  assert.equal(lr(100), 0);
  assert.equal(lr(150), 0, 'never below 0');
  // Monotone up to the peak, then down.
  for (let s = 1; s <= 100; s++) {
    if (s <= 10) assert.ok(lr(s) > lr(s - 1));
    else assert.ok(lr(s) < lr(s - 1));
  }
});

test('no warmup starts at the peak; all-warmup never decays before the end', () => {
  const flat = linearSchedule({ peakLr: 1, totalSteps: 4, warmupSteps: 0 });
  assert.deepEqual([0, 1, 2, 3, 4].map(flat), [1, 0.75, 0.5, 0.25, 0]);
  const up = linearSchedule({ peakLr: 1, totalSteps: 4, warmupSteps: 4 });
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(up), [0, 0.25, 0.5, 0.75, 0, 0]);
  const empty = linearSchedule({ peakLr: 1, totalSteps: 0, warmupSteps: 0 });
  assert.equal(empty(0), 0);
});

test('warmup steps from a ratio round up, as HF TrainingArguments', () => {
  assert.equal(warmupStepsFrom(1000, 0.06), 60);
  assert.equal(warmupStepsFrom(101, 0.1), 11);
  assert.equal(warmupStepsFrom(100, 0), 0);
  assert.equal(warmupStepsFrom(100, 1), 100);
  assert.throws(() => warmupStepsFrom(100, 1.5), /warmup ratio 1.5/);
});

test('bad schedule options are rejected', () => {
  assert.throws(() => linearSchedule({ peakLr: -1, totalSteps: 10, warmupSteps: 0 }), /peakLr -1/);
  assert.throws(() => linearSchedule({ peakLr: 1, totalSteps: 2.5, warmupSteps: 0 }), /totalSteps 2.5/);
  assert.throws(() => linearSchedule({ peakLr: 1, totalSteps: 10, warmupSteps: -1 }), /warmupSteps -1/);
});
