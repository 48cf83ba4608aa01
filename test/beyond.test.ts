import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beyondParameters, beyondSpecs, loadBeyond, BEYOND_RESULTS_FILE } from '../src/analysis/beyond-study';
import { componentFigure, fewSampleFigure } from '../src/analysis/figures-beyond';
import { componentStudy, describeTrend, fewSampleReinit, judgeEffect, trendOf } from '../src/analysis/findings/beyond';
import { specHash } from '../src/experiment/hash';
import { presetSpecs } from '../src/experiment/presets';
import type { ExperimentSpec, ExperimentSpecInput, ResultRow } from '../src/experiment/spec';
import { appendResult } from '../src/experiment/store';
import { fakeRow } from './helpers/fake-runner';

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

// Seed noise that is the same for every condition of a seed would cancel in the pairs; this one does not.
const wobble = (seed: number, salt: number) => 0.004 * Math.sin(7.3 * seed + 3.1 * salt);

test('judgeEffect: the pre-stated rule on a paired 95 % t interval', () => {
  // Differences 0.02, 0.03, 0.025: mean 0.025, sd 0.005, half-width t(0.975, 2) * 0.005 / sqrt(3) = 0.01242
  // (scipy.stats.t.ppf(0.975, 2) = 4.302652729749464).
  const helps = judgeEffect([{ accuracy: 0.62, clean: 0.6 }, { accuracy: 0.64, clean: 0.61 }, { accuracy: 0.645, clean: 0.62 }]);
  assert.equal(helps.effect, 'helps');
  close(helps.meanDiff, 0.025, 1e-12, 'mean difference');
  close(helps.ci95[0], 0.025 - 0.0124204, 1e-6, 'lower bound');
  close(helps.clean, 0.61, 1e-12, 'clean mean');
  assert.equal(judgeEffect([{ accuracy: 0.5, clean: 0.6 }, { accuracy: 0.52, clean: 0.61 }, { accuracy: 0.49, clean: 0.6 }]).effect, 'hurts');
  assert.equal(judgeEffect([{ accuracy: 0.62, clean: 0.6 }, { accuracy: 0.58, clean: 0.61 }, { accuracy: 0.6, clean: 0.6 }]).effect, 'no detectable effect');
  const one = judgeEffect([{ accuracy: 0.7, clean: 0.6 }], 2);
  assert.equal(one.effect, 'not enough data');
  assert.equal(one.unpaired, 2);
  close(one.meanDiff, 0.1, 1e-12, 'one pair still has its difference');
});

/** (a) rows: clean plus top:K/all+pooler per mode at each size, accuracy = clean + effect(size, mode, k). */
function fewSampleRows(effect: (size: number, mode: string, k: number) => number, options: { sizes?: number[]; seeds?: number[]; skipClean?: number[] } = {}): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const size of options.sizes ?? [100, 500, 2000]) {
    for (const seed of options.seeds ?? [0, 1, 2]) {
      const clean = 0.6 + 0.1 * Math.log10(size / 100) + wobble(seed, size);
      const dataset = { name: 'sst2', trainSize: size, evalSize: 1000 };
      if (!options.skipClean?.includes(size)) rows.push(fakeRow({ model: 'default', dataset, corruption: null, seed }, clean));
      for (const mode of ['reinit-hf', 'reinit'] as const) {
        for (const k of [1, 2, 3]) {
          const input: ExperimentSpecInput = { model: 'default', dataset, corruption: { layers: `top:${k}`, components: ['all', 'pooler'], mode }, seed };
          rows.push(fakeRow(input, clean + effect(size, mode, k) + wobble(seed, 10 * k + (mode === 'reinit' ? 1 : 2))));
        }
      }
    }
  }
  return rows;
}

test('(a) few-sample reinit: a planted help at 100 examples and a hurt that fades are found, each size paired with its own clean runs', () => {
  // reinit-hf helps by 4 points at 100 and is neutral above; reinit hurts by 10, then 5, then 0 points.
  const rows = fewSampleRows((size, mode) => (mode === 'reinit-hf' ? (size === 100 ? 0.04 : 0) : size === 100 ? -0.1 : size === 500 ? -0.05 : 0));
  const a = fewSampleReinit(rows);
  assert.equal(a.cells.length, 2 * 3 * 3);
  const cell = (size: number, mode: string, k: number) => a.cells.find((c) => c.trainSize === size && c.mode === mode && c.k === k)!;
  assert.equal(cell(100, 'reinit-hf', 2).effect, 'helps');
  close(cell(100, 'reinit-hf', 2).meanDiff, 0.04, 0.01, 'planted help');
  assert.equal(cell(100, 'reinit', 1).effect, 'hurts');
  assert.equal(cell(500, 'reinit', 3).effect, 'hurts');
  assert.equal(cell(2000, 'reinit', 3).pairs, 3);
  assert.equal(a.verdict, 'supported');
  const reinit = a.trends.find((t) => t.mode === 'reinit')!;
  assert.equal(reinit.stopsHurtingAt, 2000);
  assert.deepEqual(reinit.bySize[0].hurts, [1, 2, 3]);
  assert.match(describeTrend(reinit), /reinit: stops hurting from 2000 examples on; helps at no tested size/);
  const hf = a.trends.find((t) => t.mode === 'reinit-hf')!;
  assert.deepEqual(hf.helpsAt, [100]);
  assert.equal(hf.stopsHurtingAt, 100);
  assert.match(a.summary, /At 100 training examples.*helps for 3 and hurts for 0 of 3/);
  assert.equal(a.table.length, a.cells.length);
  assert.equal(a.table[0]['majority class'], 0.5, 'majority share from the clean run\'s confusion matrix');

  // The claim fails when reinit-hf hurts at the smallest size, and a size without clean runs pairs with nothing.
  const hurt = fewSampleReinit(fewSampleRows((size) => (size === 100 ? -0.08 : 0), { skipClean: [500] }));
  assert.equal(hurt.verdict, 'not supported');
  const at500 = hurt.cells.filter((c) => c.trainSize === 500);
  assert.ok(at500.every((c) => c.effect === 'not enough data' && c.unpaired === 3), 'no clean run at 500: no pairs');
  assert.equal(hurt.trends.find((t) => t.mode === 'reinit')!.stopsHurtingAt, 2000);

  // Nothing but noise: no detectable effect anywhere, inconclusive.
  const none = fewSampleReinit(fewSampleRows(() => 0));
  assert.ok(none.cells.every((c) => c.effect === 'no detectable effect'), JSON.stringify(none.cells.map((c) => c.effect)));
  assert.equal(none.verdict, 'inconclusive');
  assert.equal(fewSampleReinit([]).verdict, 'not enough data');
});

test('trendOf: still hurting at the largest size has no "stops hurting" size', () => {
  const base = { dataset: 'sst2', mode: 'reinit', pairs: 3, accuracy: 0.5, clean: 0.6, meanDiff: -0.1, ci95: [-0.12, -0.08] as [number, number], p: 0.01, unpaired: 0 };
  const t = trendOf('reinit', [
    { ...base, trainSize: 100, k: 1, effect: 'hurts' },
    { ...base, trainSize: 500, k: 1, effect: 'no detectable effect' },
    { ...base, trainSize: 2000, k: 1, effect: 'hurts' },
  ]);
  assert.equal(t.stopsHurtingAt, undefined);
  assert.match(describeTrend(t), /still hurts at 2000 examples \(K = 1\)/);
});

/** (b) rows: clean, one component of bottom:2 / top:2, and the whole layers, with a planted drop each. */
function componentRows(drop: (dataset: string, component: string, side: string) => number): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const dataset of ['sst2', 'ag_news']) {
    for (const seed of [0, 1, 2]) {
      const clean = (dataset === 'sst2' ? 0.75 : 0.8) + wobble(seed, dataset.length);
      const spec = { name: dataset, trainSize: 2000, evalSize: 1000 };
      rows.push(fakeRow({ model: 'default', dataset: spec, corruption: null, seed }, clean));
      for (const side of ['bottom', 'top']) {
        for (const [i, component] of ['layernorm', 'attention', 'ffn', 'all'].entries()) {
          rows.push(fakeRow({ model: 'default', dataset: spec, corruption: { layers: `${side}:2`, components: [component as 'all'] }, seed }, clean - drop(dataset, component, side) + wobble(seed, i + (side === 'top' ? 5 : 0))));
        }
      }
    }
  }
  // A different corruption in the same store is left out with a note.
  rows.push(fakeRow({ model: 'default', dataset: { name: 'sst2', trainSize: 2000, evalSize: 1000 }, corruption: { layers: 'bottom:2', components: ['layernorm', 'ffn'] }, seed: 0 }, 0.5));
  return rows;
}

test('(b) components: planted drops per component and side are found, with bottom vs top per component', () => {
  const drops: Record<string, [number, number]> = { layernorm: [0.08, 0.04], attention: [0, 0], ffn: [0.05, 0.05], all: [0.2, 0.06] };
  const b = componentStudy(componentRows((_d, component, side) => drops[component][side === 'bottom' ? 0 : 1]));
  assert.equal(b.cells.length, 2 * 4 * 2);
  const cell = (dataset: string, component: string, side: string) => b.cells.find((c) => c.dataset === dataset && c.component === component && c.side === side)!;
  assert.equal(cell('sst2', 'layernorm', 'bottom').effect, 'hurts');
  close(cell('ag_news', 'layernorm', 'bottom').drop, 0.08, 0.01, 'planted LayerNorm drop');
  assert.equal(cell('sst2', 'attention', 'top').effect, 'no detectable effect');
  assert.equal(cell('ag_news', 'ffn', 'top').effect, 'hurts');
  assert.equal(cell('sst2', 'all', 'bottom').k, 2);
  assert.equal(b.verdict, 'supported', 'LayerNorm alone hurts on both sides of both datasets');
  assert.match(b.summary, /Resetting LayerNorm alone hurts in 4 and helps in 0 of 4/);
  const gap = (dataset: string, component: string) => b.sides.find((s) => s.dataset === dataset && s.component === component)!;
  assert.equal(gap('sst2', 'layernorm').conclusion, 'bottom worse');
  close(gap('sst2', 'layernorm').meanDiff, 0.04, 0.01, 'top - bottom');
  assert.equal(gap('ag_news', 'attention').conclusion, 'no detectable difference');
  assert.ok(b.notes.some((n) => n.kind === 'other corruption'), 'the two-component row is named');
  assert.equal(b.table.length, b.cells.length);
  assert.equal(b.table.find((r) => r.component === 'all (whole layers)')?.corruption, 'bottom:2');

  const helps = componentStudy(componentRows((_d, component) => (component === 'layernorm' ? -0.05 : 0.05)));
  assert.equal(helps.verdict, 'not supported', 'LayerNorm resets that help everywhere refute the claim');
  assert.equal(componentStudy([]).verdict, 'not enough data');
});

test('figures: (a) one line per mode and K in points; (b) one bar series per side, drop positive when it hurts', () => {
  const a = fewSampleReinit(fewSampleRows((size, mode) => (mode === 'reinit' && size === 100 ? -0.1 : 0)));
  const fa = fewSampleFigure(a.cells);
  assert.equal(fa.data.length, 6);
  const line = fa.data.find((t) => t.name === 'reinit, top:1 + pooler')!;
  assert.deepEqual(line.x, [100, 500, 2000]);
  close((line.y as number[])[0], -10, 1.5, 'points');
  assert.equal((fa.layout.xaxis as { type: string }).type, 'log');
  const b = componentStudy(componentRows((_d, component) => (component === 'ffn' ? 0.05 : 0)));
  const fb = componentFigure(b.cells);
  assert.deepEqual(fb.data.map((t) => t.name), ['bottom:2 corrupted', 'top:2 corrupted']);
  const x = fb.data[0].x as string[];
  const y = fb.data[0].y as number[];
  close(y[x.indexOf('sst2 · ffn')], 5, 1.5, 'drop in points');
  const bars = fb.data[0].error_y as { array: number[]; arrayminus: number[] };
  assert.ok(bars.array[0] > 0 && bars.arrayminus[0] > 0);
});

const hashes = (specs: readonly ExperimentSpec[]) => specs.map(specHash).sort();

test('beyondSpecs with the full parameters are the presets\' own specs, and the references are the paper preset\'s', () => {
  const saved = process.env.HEALING_QUICK;
  process.env.HEALING_QUICK = '0';
  try {
    const P = beyondParameters();
    assert.equal(P.resultsFile, BEYOND_RESULTS_FILE);
    assert.equal(P.runMissing, false);
    const specs = beyondSpecs(P);
    assert.deepEqual(hashes(specs.fewSample), hashes(presetSpecs('few-sample-reinit', { numLayers: 6 })));
    assert.deepEqual(hashes(specs.components), hashes(presetSpecs('components', { numLayers: 6 })));
    // The paper preset may run more seeds on a dataset than these presets' three; the references are its specs of those three.
    const paper = presetSpecs('paper', { numLayers: 6, datasets: ['sst2', 'ag_news'] }).filter(
      (s) => P.seeds.includes(s.seed) && (s.corruption === null || ['bottom:2', 'top:2'].includes(s.corruption.layers)),
    );
    assert.equal(paper.length, 2 * 3 * 3);
    assert.deepEqual(hashes(specs.reference), hashes(paper));
    process.env.HEALING_QUICK = '1';
    const quick = beyondParameters();
    assert.equal(quick.model, 'tiny');
    assert.match(quick.resultsFile, /^runs[/\\]notebooks[/\\]beyond-tiny\.jsonl$/);
    const q = beyondSpecs(quick);
    assert.equal(q.fewSample.length + q.components.length + q.reference.length, 2 * 3 * 2 + 2 * 2 * 3 * 2 + 2 * 2);
    assert.ok([...q.fewSample, ...q.components].every((s) => s.recipe.epochs === 1 && (s.dataset.trainSize ?? 0) <= 64));
  } finally {
    if (saved === undefined) delete process.env.HEALING_QUICK;
    else process.env.HEALING_QUICK = saved;
  }
});

test('loadBeyond: says "not recorded yet: run ..." for missing rows, and takes clean runs from the reference store', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'healing-beyond-'));
  try {
    const resultsFile = join(dir, 'beyond.jsonl');
    const reference = join(dir, 'results.jsonl');
    const P = beyondParameters({ quick: false, model: 'default', resultsFile, referenceFiles: [reference], runMissing: false });
    const empty = await loadBeyond(P, { log: false });
    assert.equal(empty.fewSampleRows.length, 0);
    assert.equal(empty.componentRows.length, 0);
    const text = empty.messages.join('\n');
    assert.match(text, new RegExp(`\\(a\\) few-sample re-initialisation: 63 of 63 run\\(s\\) not recorded yet: run npx healing run --preset few-sample-reinit --results ${resultsFile.replace(/[.\\/]/g, '\\$&')}`));
    assert.match(text, /\(b\) components: 36 of 36 run\(s\) not recorded yet: run npx healing run --preset components --results/);
    assert.match(text, /\(b\) clean and whole-layer references: 15 of 18 run\(s\) not recorded yet: run npx healing run --preset paper --datasets sst2,ag_news/);

    const specs = beyondSpecs(P);
    for (const s of specs.components.slice(0, 6)) appendResult(resultsFile, fakeRow(s, 0.7));
    const agClean = specs.reference.filter((s) => s.dataset.name === 'ag_news' && s.corruption === null);
    for (const s of agClean) appendResult(reference, fakeRow(s, 0.8));
    const some = await loadBeyond(P, { log: false });
    assert.equal(some.componentRows.length, 6 + agClean.length);
    assert.equal(some.missing.components.length, 30);
    assert.equal(some.missing.reference.length, 18 - agClean.length);
    assert.ok(some.componentRows.some((r) => r.spec.dataset.name === 'ag_news' && r.spec.corruption === null), 'clean AG News read from the reference store');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
