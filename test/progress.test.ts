import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createProgress, formatEta, formatRate } from '../src/progress';

test('formatEta: time left at the mean rate so far, "-" before anything is done', () => {
  assert.equal(formatEta(0, 10, 120), '-', 'no unit done: no rate to extrapolate');
  assert.equal(formatEta(1, 10, 0), '-');
  assert.equal(formatEta(1, 10, 8 * 60), '1h 12m', '9 runs of 8 minutes left');
  assert.equal(formatEta(3, 7, 150), '3m 20s');
  assert.equal(formatEta(50, 60, 60), '12s');
  assert.equal(formatEta(10, 10, 60), '0s', 'finished');
  assert.equal(formatEta(12, 10, 60), '0s', 'overshoot never shows a negative time');
});

test('formatRate: the unit that shows digits', () => {
  assert.equal(formatRate(3000, 10), '300/s');
  assert.equal(formatRate(5, 10), '0.50/s');
  assert.equal(formatRate(1, 120), '0.50/min');
  assert.equal(formatRate(1, 8 * 60), '0.13/min');
  assert.equal(formatRate(1, 3600), '1.00/h');
  assert.equal(formatRate(0, 10), '-', 'nothing done yet: no rate, as the ETA');
  assert.equal(formatRate(1, 0), '-');
});

test('createProgress draws value, rate and ETA on the stream it is given, never "NFs"', () => {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out += chunk.toString();
      done();
    },
  });
  const bar = createProgress({ label: 'grid', total: 4, unit: 'runs', fields: ['acc'], enabled: true, stream });
  bar.update(0, { acc: '-' });
  bar.increment(1, { acc: '0.81' });
  bar.stop();
  assert.match(out, /^grid \[/m);
  assert.match(out, /1\/4 runs \| [0-9.]+\/(s|min|h) \| ETA (\d+h \d\dm|\d+m \d\ds|\d+s|-) \| acc 0\.81/);
  assert.doesNotMatch(out, /NFs|INF|NULL/);
  assert.match(out, /0\/4 runs \| 0\/s \| ETA - \| acc -/, 'the first line, before any unit is done');
});
