import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, copyFile, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUDGET_CHECKPOINTS,
  BUDGET_DATASETS,
  budgetTargets,
  defaultBudgetFile,
  loadPretrainingCheckpoints,
  pretrainingBudget,
  readPretrainingCheckpoint,
  restoreBudgetCheckpoints,
  tokensFor,
  type PretrainingCheckpoint,
} from '../src/analysis/pretraining-budget';
import { pretrainingBudgetFigure } from '../src/analysis/figures';
import type { BaselineDetail } from '../src/analysis/findings/baselines';
import { syntheticResults } from '../src/analysis/synthetic';
import { modelFingerprint } from '../src/experiment/identity';
import type { ResultRow } from '../src/experiment/spec';
import { resolveModelDir } from '../src/io/models';
import { createRng } from '../src/random';

// A planted budget curve: accuracy = 0.5 + 0.05 * log10(tokens / 1M) + seed noise, from scratch 0.45.
const SLOPE = 0.05;
const checkpoint = (name: string, tokensSeen: number, finished = true): PretrainingCheckpoint => ({
  model: name,
  fingerprint: `fp-${name}`,
  tokensSeen,
  step: finished ? 100 : 40,
  totalSteps: 100,
  finished,
  tokensPerSecond: 1000,
});
const checkpoints = [checkpoint('c1', 1e6), checkpoint('c10', 1e7), checkpoint('c100', 1e8)];

function cleanRows(dataset: string, seeds: number[], accuracyOf: (tokens: number, seed: number) => number): ResultRow[] {
  const base = syntheticResults({ datasets: [dataset], ks: [], sides: [], seeds });
  const rows: ResultRow[] = [];
  for (const c of [undefined, ...checkpoints]) {
    for (const r of base) {
      const tokens = c?.tokensSeen ?? 0;
      rows.push({
        ...r,
        spec: { ...r.spec, model: c?.model ?? 'c100', fromScratch: c === undefined },
        modelFingerprint: c?.fingerprint ?? 'fp-c100',
        final: { ...r.final, accuracy: accuracyOf(tokens, r.spec.seed) },
      } as ResultRow);
    }
  }
  return rows;
}

const noise = (seed: number) => 0.004 * createRng(seed).normal();
const meanNoise = (seeds: number[]) => seeds.reduce((a, s) => a + noise(s), 0) / seeds.length;
const planted = (tokens: number, seed: number) => (tokens === 0 ? 0.45 : 0.5 + SLOPE * Math.log10(tokens / 1e6)) + noise(seed);

test('pretrainingBudget recovers a planted slope per 10x tokens and the tokens a target needs', () => {
  const rows = cleanRows('sst2', [0, 1, 2], planted);
  const targets = [
    { dataset: 'sst2', name: 'goal 70 %', accuracy: 0.7 },
    { dataset: 'sst2', name: 'easy', accuracy: 0.55 },
    { dataset: 'sst2', name: 'far', accuracy: 0.9 },
  ];
  const budget = pretrainingBudget(rows, checkpoints, { targets });
  assert.equal(budget.points.length, 4, 'from scratch and three checkpoints');
  assert.deepEqual(budget.points.map((p) => p.tokensSeen), [0, 1e6, 1e7, 1e8]);
  assert.ok(Math.abs(budget.points[0].accuracy - 0.45) < 0.01);
  const [fit] = budget.fits;
  assert.equal(fit.checkpoints, 3);
  assert.ok(Math.abs(fit.slope - SLOPE) < 1e-9, `slope ${fit.slope}`);
  const goal = fit.reach.find((r) => r.name === 'goal 70 %')!;
  assert.equal(goal.reached, false);
  // 0.7 = 0.5 + m + 0.05 * log10(t / 1M), m the seeds' mean noise (the same at every checkpoint).
  const expected = 1e6 * 10 ** ((0.7 - 0.5 - meanNoise([0, 1, 2])) / SLOPE);
  assert.ok(Math.abs(goal.tokens / expected - 1) < 1e-6, `tokens ${goal.tokens} vs ${expected}`);
  assert.ok(Math.abs(goal.hours! - goal.tokens / 1000 / 3600) < 1e-6, 'hours at the largest checkpoint\'s rate');
  assert.equal(fit.reach.find((r) => r.name === 'easy')!.reached, true);
  assert.equal(budget.table[0]['points per 10x tokens'], '+5.0');
  // 0.9 needs ~1e14 tokens: past 1,000x the largest checkpoint, so "more than" that, and no hours.
  const far = fit.reach.find((r) => r.name === 'far')!;
  assert.equal(far.beyondRange, true);
  assert.equal(far.hours, undefined);
  assert.match(String(budget.table[0]['tokens for far']), /^more than 100B \(past 1000x/);
  assert.match(String(budget.table[0]['tokens for goal 70 %']), /^10B \(~[\d,]+ h here\)$/);
  assert.match(budget.summary, /goal 70 % \(70\.0 %\) at/);
  assert.ok(budget.notes.some((n) => /extrapolation/.test(n)), 'fewer than four checkpoints is said');
  assert.ok(Math.abs(fit.lastSlope! - SLOPE) < 1e-9, 'a straight line has the same slope at its end');
  assert.ok(!budget.notes.some((n) => /bends/.test(n)), 'a straight line does not bend');
});

test('a curve that flattens says its token counts are a lower bound; every row has every target column', () => {
  // +10 points over the first decade, +2 over the second: the line (+6) overstates the end.
  const bending = (t: number, seed: number) => (t === 0 ? 0.4 : t === 1e6 ? 0.5 : t === 1e7 ? 0.6 : 0.62) + noise(seed);
  const rows = [...cleanRows('sst2', [0, 1, 2], bending), ...cleanRows('emotion', [0, 1, 2], bending)];
  const targets = [
    { dataset: 'sst2', name: 'goal 80.0 %', accuracy: 0.8 },
    { dataset: 'emotion', name: 'bag of words', accuracy: 0.7 },
  ];
  const budget = pretrainingBudget(rows, checkpoints, { targets });
  const sst2 = budget.fits.find((f) => f.dataset === 'sst2')!;
  assert.ok(Math.abs(sst2.slope - 0.06) < 1e-9, `slope ${sst2.slope}`);
  assert.ok(Math.abs(sst2.lastSlope! - 0.02) < 1e-9, `last slope ${sst2.lastSlope}`);
  assert.ok(budget.notes.some((n) => /^sst2: the curve bends: \+2\.0 points .* against \+6\.0/.test(n)), budget.notes.join('\n'));
  for (const row of budget.table) {
    assert.ok('tokens for goal 80.0 %' in row && 'tokens for bag of words' in row, JSON.stringify(row));
    assert.equal(row['last two checkpoints'], '+2.0');
  }
  assert.equal(budget.table.find((r) => r.dataset === 'emotion')!['tokens for goal 80.0 %'], '-');
  // A goal's name carries its level; the summary does not say it twice. A target without it gets it.
  assert.match(budget.summary, /goal 80\.0 % at /);
  assert.match(budget.summary, /bag of words \(70\.0 %\) at /);
});

test('a flat line never reaches a target above it; a falling one is not read as rising', () => {
  const rows = cleanRows('emotion', [0, 1, 2], (t, seed) => 0.6 - (t === 0 ? 0 : 0.01 * Math.log10(t / 1e6)) + noise(seed));
  const budget = pretrainingBudget(rows, checkpoints, { targets: [{ dataset: 'emotion', name: 'goal', accuracy: 0.8 }] });
  const [reach] = budget.fits[0].reach;
  assert.equal(reach.tokens, Infinity);
  assert.equal(reach.hours, undefined);
  assert.match(String(budget.table[0]['tokens for goal']), /never/);
  assert.equal(tokensFor({ slope: 0, intercept: 0.5 }, 0.6), Infinity);
});

test('pretrainingBudget pairs seeds, keeps one recipe and says what it left out', () => {
  const rows = cleanRows('sst2', [0, 1, 2], planted);
  // An extra seed only the largest checkpoint has, and a run with another learning rate.
  const extra = rows.find((r) => r.modelFingerprint === 'fp-c100' && !r.spec.fromScratch && r.spec.seed === 0)!;
  rows.push({ ...extra, spec: { ...extra.spec, seed: 7 }, final: { ...extra.final, accuracy: 0.99 } } as ResultRow);
  rows.push({ ...extra, recipe: { ...extra.recipe, learningRate: 1e-5 }, final: { ...extra.final, accuracy: 0.1 } } as ResultRow);
  // Rows of a model whose weights are not among the checkpoints (another fingerprint) are not points.
  rows.push({ ...extra, modelFingerprint: 'fp-unknown', final: { ...extra.final, accuracy: 0.2 } } as ResultRow);
  const budget = pretrainingBudget(rows, [...checkpoints.slice(0, 2), checkpoint('c100', 1e8, false)]);
  const top = budget.points.find((p) => p.tokensSeen === 1e8)!;
  assert.deepEqual(top.seeds, [0, 1, 2]);
  assert.equal(top.finished, false);
  assert.ok(Math.abs(top.accuracy - (0.6 + meanNoise([0, 1, 2]))) < 1e-9, 'neither the extra seed nor the other recipe nor other weights are in the mean');
  assert.ok(budget.notes.some((n) => /another fine-tuning recipe/.test(n)));
  assert.ok(budget.notes.some((n) => /seeds 0, 1, 2/.test(n)));
  assert.ok(budget.notes.some((n) => /mid-run snapshot/.test(n) && /step 40 of 100/.test(n) && /steeper and its token counts smaller/.test(n)));
  // The same snapshot at the small end of the axis would flatten the line when finished.
  const early = pretrainingBudget(cleanRows('sst2', [0, 1, 2], planted), [checkpoint('c1', 1e6, false), ...checkpoints.slice(1)]);
  assert.ok(early.notes.some((n) => /^c1 \(step 40 of 100\).*flatter and its token counts larger/.test(n)), early.notes.join('\n'));
});

test('budgetTargets: bag of words (2 points below where it is above 90 %), from scratch + 10, stated goals', () => {
  const ref = (accuracy: number) => ({ seeds: [0, 1, 2], accuracy, cleanMinus: 0, lo: 0, hi: 0 });
  const details = [
    { dataset: 'sst2', bagOfWords: ref(0.74), fromScratch: ref(0.71) },
    { dataset: 'dbpedia_14', bagOfWords: ref(0.95) },
  ] as unknown as BaselineDetail[];
  const targets = budgetTargets(details, { sst2: 0.8 });
  const of = (d: string, name: string) => targets.find((t) => t.dataset === d && t.name.startsWith(name))?.accuracy;
  assert.equal(of('sst2', 'bag of words'), 0.74);
  assert.ok(Math.abs(of('sst2', 'from scratch')! - 0.81) < 1e-12);
  assert.equal(of('sst2', 'goal'), 0.8);
  assert.ok(Math.abs(of('dbpedia_14', 'bag of words - 2 points')! - 0.93) < 1e-12);
  assert.equal(of('dbpedia_14', 'from scratch'), undefined);
});

test('pretrainingBudgetFigure: a log token axis, from scratch at its left edge, targets where the line meets them', () => {
  const rows = [...cleanRows('sst2', [0, 1, 2], planted), ...cleanRows('emotion', [0, 1, 2], (t, s) => 0.6 + noise(s))];
  const budget = pretrainingBudget(rows, checkpoints, {
    targets: [
      { dataset: 'sst2', name: 'goal', accuracy: 0.7 },
      { dataset: 'emotion', name: 'goal', accuracy: 0.9 },
    ],
  });
  const fig = pretrainingBudgetFigure(budget);
  const axis = fig.layout.xaxis as { type: string; tickvals: number[]; ticktext: string[] };
  assert.equal(axis.type, 'log');
  assert.equal(axis.ticktext[0], 'from scratch');
  const sst2 = fig.data.find((t) => t.name === 'sst2') as unknown as { x: number[]; y: number[] };
  assert.equal(sst2.x[0], axis.tickvals[0]);
  assert.ok(sst2.x[0] < 1e6);
  const sst2Target = fig.data.find((t) => t.name === 'sst2: targets') as unknown as { x: number[]; y: number[] };
  assert.equal(sst2Target.x[0], budget.fits.find((f) => f.dataset === 'sst2')!.reach[0].tokens);
  // A flat line meets no target: it is drawn at the edge of what the axis shows, not at infinity.
  const emotionTarget = fig.data.find((t) => t.name === 'emotion: targets') as unknown as { x: number[] };
  assert.ok(Number.isFinite(emotionTarget.x[0]) && emotionTarget.x[0] <= 1e11);
  assert.ok(JSON.stringify(fig).length > 0, 'serialises as plain JSON');
});

test('readPretrainingCheckpoint reads a shipped model\'s tokens and fingerprint; rows with other weights are noted', async () => {
  const tiny = await readPretrainingCheckpoint('tiny');
  const dir = await resolveModelDir('tiny');
  const record = JSON.parse(await readFile(join(dir, 'pretraining.json'), 'utf8'));
  assert.equal(tiny.tokensSeen, record.state.tokensSeen);
  assert.equal(tiny.fingerprint, await modelFingerprint(dir));
  assert.equal(tiny.finished, true);
  assert.equal(tiny.heldOutAccuracy, record.curve.at(-1).heldOutAccuracy);
  const [row] = syntheticResults({ datasets: ['sst2'], ks: [], sides: [], seeds: [0] });
  const rows = [
    { ...row, spec: { ...row.spec, model: 'tiny' }, modelFingerprint: tiny.fingerprint },
    { ...row, spec: { ...row.spec, model: 'tiny' }, modelFingerprint: 'an-older-tiny' },
  ] as ResultRow[];
  const { checkpoints: found, notes } = await loadPretrainingCheckpoints(rows);
  assert.equal(found.length, 1);
  assert.match(notes.join(' '), /1 run\(s\) of "tiny" were made with other weights/);
});

test('readPretrainingCheckpoint: a model without a pretraining record is an error naming the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'budget-'));
  try {
    const tinyDir = await resolveModelDir('tiny');
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']) await copyFile(join(tinyDir, f), join(dir, f));
    await assert.rejects(readPretrainingCheckpoint(dir), (e: Error) => e.message.includes(join(dir, 'pretraining.json')) && /not found/.test(e.message));
    await writeFile(join(dir, 'pretraining.json'), JSON.stringify({ state: { step: 1, totalSteps: 2 } }));
    await assert.rejects(readPretrainingCheckpoint(dir), (e: Error) => /state\.tokensSeen/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the budget grid runs the checkpoints the analysis names, clean, on the study\'s sizes', async () => {
  const grid = JSON.parse(await readFile('data/grids/pretraining-budget.json', 'utf8')) as {
    experiments: Array<{ model: string; corruption: unknown; seed: number; dataset: { name: string; trainSize: number } }>;
  };
  assert.deepEqual([...new Set(grid.experiments.map((e) => e.model))].sort(), [...BUDGET_CHECKPOINTS].sort());
  // Every dataset the notebook reads, at every checkpoint, on the seeds the clean runs pair with.
  const cells = new Set(grid.experiments.map((e) => `${e.model}|${e.dataset.name}|${e.seed}`));
  for (const model of BUDGET_CHECKPOINTS) for (const dataset of BUDGET_DATASETS) for (const seed of [0, 1, 2]) assert.ok(cells.has(`${model}|${dataset}|${seed}`), `${model} ${dataset} seed ${seed}`);
  assert.equal(cells.size, grid.experiments.length, 'no experiment twice');
  assert.ok(grid.experiments.every((e) => e.corruption === null && e.dataset.trainSize === 2000));
  assert.equal(defaultBudgetFile('data/results/results.jsonl'), join('data/results', 'pretraining-budget.jsonl'));
});

test('restoreBudgetCheckpoints puts the mid-run snapshot back from git history, with its record, and never overwrites', async (t) => {
  try {
    execFileSync('git', ['cat-file', '-e', 'c633088:data/pretraining/healing-bert-small-v3/snapshot/checkpoint/model.safetensors'], { stdio: 'ignore' });
  } catch {
    t.skip('this clone lacks the commit (a shallow clone)');
    return;
  }
  const repo = process.cwd();
  const dir = await mkdtemp(join(tmpdir(), 'budget-restore-'));
  try {
    process.chdir(dir);
    const [message] = restoreBudgetCheckpoints();
    assert.match(message, /-> .*small-v3-step-2800/);
    const snapshot = await readPretrainingCheckpoint('.cache/checkpoints/small-v3-step-2800');
    assert.equal(snapshot.step, 2800);
    assert.equal(snapshot.totalSteps, 6104);
    assert.equal(snapshot.finished, false);
    assert.equal(snapshot.tokensSeen, 2800 * 64 * 128);
    assert.ok(snapshot.heldOutAccuracy! > 0.3 && snapshot.heldOutAccuracy! < 0.33, 'the curve up to step 2,800 (31.4 %)');
    await writeFile(join(dir, '.cache/checkpoints/small-v3-step-2800/mine.txt'), 'kept');
    assert.deepEqual(restoreBudgetCheckpoints(), [], 'a present snapshot is left alone');
    assert.equal(await readFile(join(dir, '.cache/checkpoints/small-v3-step-2800/mine.txt'), 'utf8'), 'kept');
  } finally {
    process.chdir(repo);
    await rm(dir, { recursive: true, force: true });
  }
});
