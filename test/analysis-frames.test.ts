import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateOverSeeds, pairedComparison, parseLayerSpec, records, resultsFrame, RESULT_COLUMNS, type FlatRow } from '../src/analysis/frames';
import { syntheticResults } from '../src/analysis/synthetic';
import { ResultRowSchema, type ResultRow } from '../src/experiment/spec';

const rows = syntheticResults({ datasets: ['sst2', 'mrpc'], ks: [1, 2], seeds: [0, 1, 2], cleanAccuracy: { sst2: 0.9, mrpc: 0.8 } });

test('synthetic rows are valid result-store rows', () => {
  for (const r of rows) assert.ok(ResultRowSchema.safeParse(JSON.parse(JSON.stringify(r))).success);
  // 2 datasets x 3 seeds x (clean + 2 sides x 2 ks)
  assert.equal(rows.length, 2 * 3 * 5);
  assert.equal(new Set(rows.map((r) => r.hash)).size, rows.length);
});

test('parseLayerSpec reads the corruption syntax', () => {
  assert.deepEqual(parseLayerSpec('bottom:3'), { side: 'bottom', k: 3 });
  assert.deepEqual(parseLayerSpec('top:1'), { side: 'top', k: 1 });
  assert.deepEqual(parseLayerSpec('0, 3,5'), { side: 'list', k: 3, list: [0, 3, 5] });
  assert.equal(parseLayerSpec('0.5').side, 'fraction');
});

test('resultsFrame: one row per run, the documented columns, values taken from the rows', () => {
  const frame = resultsFrame(rows);
  assert.deepEqual(frame.shape, [rows.length, RESULT_COLUMNS.length]);
  assert.deepEqual(frame.columns, [...RESULT_COLUMNS]);
  const flat = records<FlatRow>(frame);
  const byHash = new Map(rows.map((r) => [r.hash, r]));
  for (const f of flat) {
    const r = byHash.get(f.hash)!;
    assert.equal(f.accuracy, r.final.accuracy, 'accuracy survives the frame exactly (no float32 rounding)');
    assert.equal(f.seed, r.spec.seed);
    assert.equal(f.dataset, r.spec.dataset.name);
    if (r.spec.corruption === null) {
      assert.deepEqual([f.side, f.k, f.corruption, f.recovery, f.gap], ['clean', 0, 'clean', 1, 0]);
    } else {
      const [side, k] = r.spec.corruption.layers.split(':');
      assert.equal(f.side, side);
      assert.equal(f.k, Number(k));
      assert.equal(f.layers.split(',').length, Number(k));
      // Recovery against the clean run of the same dataset and seed, computed here from the raw rows.
      const clean = rows.find((c) => c.spec.corruption === null && c.spec.dataset.name === r.spec.dataset.name && c.spec.seed === r.spec.seed)!;
      assert.ok(Math.abs(f.recovery - r.final.accuracy! / clean.final.accuracy!) < 1e-12);
      assert.ok(Math.abs(f.gap - (clean.final.accuracy! - r.final.accuracy!)) < 1e-12);
    }
  }
});

test('an empty store gives an empty frame that keeps its columns', () => {
  const frame = resultsFrame([]);
  assert.equal(frame.shape[0], 0);
  assert.deepEqual(frame.columns, [...RESULT_COLUMNS]);
  assert.deepEqual(records(frame), []);
});

test('aggregateOverSeeds: mean, std and t interval per group; diverged runs (NaN) are left out', () => {
  const diverged: ResultRow = structuredClone(rows.find((r) => r.spec.corruption?.layers === 'bottom:2' && r.spec.dataset.name === 'sst2' && r.spec.seed === 2)!);
  diverged.status = 'diverged';
  diverged.final = { accuracy: null, macroF1: null };
  const input = rows.map((r) => (r.hash === diverged.hash ? diverged : r));
  const agg = records<Record<string, number | string>>(aggregateOverSeeds(resultsFrame(input), ['dataset', 'side', 'k'], 'accuracy'));
  assert.equal(agg.length, 2 * 5);
  for (const g of agg) {
    const values = input
      .filter((r) => r.spec.dataset.name === g.dataset && (r.spec.corruption?.layers ?? 'clean') === (g.side === 'clean' ? 'clean' : `${g.side}:${g.k}`))
      .map((r) => r.final.accuracy)
      .filter((v): v is number => v !== null);
    assert.equal(g.n, values.length);
    const m = values.reduce((a, b) => a + b) / values.length;
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1));
    assert.ok(Math.abs((g.mean as number) - m) < 1e-12);
    assert.ok(Math.abs((g.std as number) - sd) < 1e-12);
    // Published t table: t_{0.975} = 4.303 (df 2), 12.706 (df 1).
    const tq = values.length === 3 ? 4.303 : 12.706;
    assert.ok(Math.abs((g.hi as number) - (m + (tq * sd) / Math.sqrt(values.length))) < 1e-3 * Math.max(sd, 1e-9) + 1e-12);
  }
  assert.throws(() => aggregateOverSeeds(resultsFrame(rows), ['nope'], 'accuracy'), /no column "nope"/);
});

test('pairedComparison finds the planted bottom-vs-top effect, paired by dataset, k and seed', () => {
  const frame = resultsFrame(syntheticResults({ bottomPenalty: 0.05, topPenalty: 0.01, noise: 0.003, seeds: [0, 1, 2, 3] }));
  const r = pairedComparison(frame, { column: 'side', a: 'bottom', b: 'top', match: ['dataset', 'k', 'seed'], metric: 'accuracy' });
  // Defaults: 2 datasets x 3 ks x 4 seeds pairs; planted mean difference -(0.05-0.01) * mean(k=1,2,3) = -0.08.
  assert.equal(r.n, 24);
  assert.equal(r.unmatched, 0);
  assert.ok(Math.abs(r.meanDiff + 0.08) < 0.005, `${r.meanDiff}`);
  assert.ok(r.p < 1e-6);
  assert.ok(r.ci95[0] < r.meanDiff && r.meanDiff < r.ci95[1]);
  assert.throws(() => pairedComparison(frame, { column: 'side', a: 'bottom', b: 'top', match: ['dataset', 'seed'], metric: 'accuracy' }), /two rows/);
});
