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

// Hand-planted accuracies (seed 0, seed 1) per dataset and corruption: every figure value below is worked
// out from this table by hand, not by the code under test.
const PLANTED: Record<string, Record<string, [number, number]>> = {
  sst2: { clean: [0.8, 0.9], 'bottom:1': [0.6, 0.72], 'bottom:2': [0.4, 0.45], 'top:1': [0.76, 0.81], 'top:2': [0.72, 0.9] },
  mrpc: { clean: [0.5, 0.6], 'bottom:1': [0.4, 0.3], 'bottom:2': [0.25, 0.15], 'top:1': [0.45, 0.6], 'top:2': [0.5, 0.54] },
};
const plantedRows = syntheticResults({ datasets: ['sst2', 'mrpc'], ks: [1, 2], seeds: [0, 1] }).map((r) => {
  const accuracy = PLANTED[r.spec.dataset.name!][r.spec.corruption?.layers ?? 'clean'][r.spec.seed];
  return { ...r, final: { ...r.final, accuracy } };
});
const plantedFrame = resultsFrame(plantedRows);
/** Half-width of a two-run 95 % t interval: t(0.975, 1 df) x sd / sqrt(2) = 12.7062 x |a - b| / 2. */
const halfWidth = (a: number, b: number) => (12.706204736174707 * Math.abs(a - b)) / 2;

function assertValues(actual: unknown, expected: number[], what: string): void {
  const values = actual as number[];
  assert.equal(values.length, expected.length, what);
  values.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-9, `${what}[${i}]: ${v}, expected ${expected[i]}`));
}

test('bottomVsTopFigure: each bar is the mean accuracy over seeds of its side, dataset and k', () => {
  const [bottom, top] = bottomVsTopFigure(plantedFrame).data;
  assert.deepEqual(bottom.x, ['mrpc, k=1', 'mrpc, k=2', 'sst2, k=1', 'sst2, k=2']);
  assert.deepEqual(top.x, bottom.x);
  // (0.4 + 0.3) / 2, (0.25 + 0.15) / 2, (0.6 + 0.72) / 2, (0.4 + 0.45) / 2
  assertValues(bottom.y, [0.35, 0.2, 0.66, 0.425], 'bottom');
  // (0.45 + 0.6) / 2, (0.5 + 0.54) / 2, (0.76 + 0.81) / 2, (0.72 + 0.9) / 2
  assertValues(top.y, [0.525, 0.52, 0.785, 0.81], 'top');
  assertValues((bottom.error_y as { array: number[] }).array, [halfWidth(0.4, 0.3), halfWidth(0.25, 0.15), halfWidth(0.6, 0.72), halfWidth(0.4, 0.45)], 'bottom error');
});

test('recoveryBars: each bar is the mean over seeds of corrupted / clean accuracy of the same seed', () => {
  const fig = recoveryBars(plantedFrame);
  assert.deepEqual(fig.data.map((t) => t.name), ['mrpc', 'sst2']);
  const [mrpc, sst2] = fig.data;
  assert.deepEqual(mrpc.x, ['bottom:1/all/reinit', 'bottom:2/all/reinit', 'top:1/all/reinit', 'top:2/all/reinit']);
  // mrpc: (0.4/0.5 + 0.3/0.6) / 2 = (0.8 + 0.5) / 2, (0.5 + 0.25) / 2, (0.9 + 1) / 2, (1 + 0.9) / 2
  assertValues(mrpc.y, [0.65, 0.375, 0.95, 0.95], 'mrpc');
  // sst2: (0.6/0.8 + 0.72/0.9) / 2 = (0.75 + 0.8) / 2, (0.5 + 0.5) / 2, (0.95 + 0.9) / 2, (0.9 + 1) / 2
  assertValues(sst2.y, [0.775, 0.5, 0.925, 0.95], 'sst2');
  assertValues((mrpc.error_y as { array: number[] }).array, [halfWidth(0.8, 0.5), halfWidth(0.5, 0.25), halfWidth(0.9, 1), halfWidth(1, 0.9)], 'mrpc error');
});
