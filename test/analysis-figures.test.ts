import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accuracyVsK, bottomVsTopFigure, ckaPerLayer, driftBars, layerHeatmap, learningCurves, recoveryBars } from '../src/analysis/figures';
import { figureHtml, tableHtml } from '../src/analysis/display';
import { resultsFrame } from '../src/analysis/frames';
import { syntheticResults } from '../src/analysis/synthetic';

const rows = syntheticResults({ datasets: ['sst2', 'mrpc'], ks: [1, 2, 3], seeds: [0, 1, 2] });
const frame = resultsFrame(rows);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const accOf = (dataset: string, layers: string | null) =>
  rows.filter((r) => r.spec.dataset.name === dataset && (r.spec.corruption?.layers ?? null) === layers).map((r) => r.final.accuracy!);

test('accuracyVsK: one line per dataset and side, starting at the clean run (k=0), means over seeds', () => {
  const fig = accuracyVsK(frame);
  assert.equal(fig.data.length, 4);
  const line = fig.data.find((t) => t.name === 'sst2, bottom layers corrupted')!;
  assert.deepEqual(line.x, [0, 1, 2, 3]);
  const y = line.y as number[];
  assert.ok(Math.abs(y[0] - mean(accOf('sst2', null))) < 1e-12);
  assert.ok(Math.abs(y[2] - mean(accOf('sst2', 'bottom:2'))) < 1e-12);
  // The planted effect: accuracy falls with k, faster at the bottom than at the top.
  const top = fig.data.find((t) => t.name === 'sst2, top layers corrupted')!.y as number[];
  assert.ok(y[3] < y[1] && y[3] < top[3]);
  const err = line.error_y as { array: number[]; arrayminus: number[] };
  assert.ok(err.array.every((e) => e > 0) && err.arrayminus.every((e) => e > 0));
  assert.match(JSON.stringify(fig.layout), /Number of corrupted layers/);
});

test('bottomVsTopFigure, recoveryBars, layerHeatmap, learningCurves, ckaPerLayer, driftBars build consistent specs', () => {
  const bt = bottomVsTopFigure(frame);
  assert.deepEqual(bt.data.map((t) => t.name), ['bottom layers corrupted', 'top layers corrupted']);
  assert.equal((bt.data[0].x as string[]).length, 6);
  assert.equal((bt.data[0].x as string[])[0], 'mrpc, k=1');
  const rec = recoveryBars(frame);
  assert.deepEqual(rec.data.map((t) => t.name), ['mrpc', 'sst2']);
  assert.ok(!(rec.data[0].x as string[]).includes('clean'));
  assert.equal((rec.data[0].x as string[]).length, 6);
  for (const v of rec.data[0].y as number[]) assert.ok(v > 0.7 && v <= 1.02);
  const heat = layerHeatmap(frame);
  // k=1 runs: bottom:1 is layer 0, top:1 is layer 11 in the synthetic 12-layer model.
  assert.deepEqual(heat.data[0].x, [0, 11]);
  assert.deepEqual(heat.data[0].y, ['mrpc', 'sst2']);
  const z = heat.data[0].z as number[][];
  assert.ok(z[1][0] < z[1][1], 'bottom layer hurts more than top in the planted data');
  const lc = learningCurves(rows);
  assert.equal(lc.data.length, 7); // clean + 2 sides x 3 ks
  const clean = lc.data.find((t) => t.name === 'clean')!;
  const firstLosses = rows.filter((r) => r.spec.corruption === null).map((r) => r.lossCurve[0].loss!);
  assert.ok(Math.abs((clean.y as number[])[0] - mean(firstLosses)) < 1e-12);
  const cka = ckaPerLayer([{ name: 'healed', cka: [0.9, 0.8] }]);
  assert.deepEqual(cka.data[0].x, [0, 1]);
  const drift = driftBars([{ layer: 'layer 0', index: 0, relativeChange: 0.1, changeNorm: 1, beforeNorm: 10, tensors: 16 }]);
  assert.deepEqual(drift.data[0].y, [0.1]);
  // Specs are plain JSON.
  for (const f of [bt, rec, heat, lc, cka, drift]) assert.doesNotThrow(() => JSON.parse(JSON.stringify(f)));
});

test('figureHtml embeds the spec safely and the plotly bundle only when asked; tableHtml escapes', () => {
  const fig = accuracyVsK(frame);
  fig.layout.title = { text: '</script><b>x</b>' };
  const html = figureHtml(fig, { id: 'f1' });
  assert.ok(!html.slice(html.indexOf('var fig')).includes('</script><b>'), 'no script break-out');
  assert.ok(html.length < 50_000);
  const withBundle = figureHtml(fig, { id: 'f2', includePlotly: true });
  assert.ok(withBundle.length > 1_000_000);
  assert.match(withBundle, /plotly\.js v\d/);
  const table = tableHtml([{ name: '<b>', value: 0.123456, missing: NaN }]);
  assert.match(table, /&lt;b&gt;/);
  assert.match(table, /0\.1235/);
});
