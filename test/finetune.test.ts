import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { loadCheckpoint, type Checkpoint } from '../src/io/checkpoint';
import type { ModelConfig } from '../src/model/config';
import { encode } from '../src/model/encoder';
import { classifierLogits } from '../src/model/heads';
import { DropoutSeeds } from '../src/model/layers';
import { disposeParams, parameterLayout, type ParamMap } from '../src/model/names';
import { fineTune, type EncodedSplit, type FineTuneResult } from '../src/train/finetune';
import type { ResolvedRecipe } from '../src/train/recipe';
import { crossEntropy, disposeTrainable, makeTrainable, trainStep } from '../src/train/trainer';
import { encodeSplit, runExperiment, runExperimentDetailed } from '../src/experiment/run';
import { loadExperimentData } from '../src/experiment/examples';
import { corrupt, parseCorruptionSpec } from '../src/corruption';
import { initParams } from '../src/model/init';
import { deriveSeed } from '../src/random';
import { stratifiedSample } from '../src/data/sampling';
import type { LabeledData } from '../src/data/dataset';
import { UserError } from '../src/errors';
import { activeNative, withoutFusedOps } from '../src/backend/native/state';
import { ExperimentSpecSchema, ResultRowSchema, specLabel, type ResultRow } from '../src/experiment/spec';
import { makeTinyModel, sentimentExamples, writeJsonl, type Example, type TinyModel } from './helpers/tiny-model';

// Speed matters more than bit-exactness across backends here; every comparison stays on wasm.
await initEngine({ backend: 'wasm' });

const work = await mkdtemp(join(tmpdir(), 'healing-finetune-'));
test.after(() => rm(work, { recursive: true, force: true }));

const tiny: TinyModel = await makeTinyModel(join(work, 'tiny'));

const recipe: ResolvedRecipe = {
  learningRate: 3e-3,
  epochs: 2,
  batchSize: 8,
  gradientAccumulation: 1,
  warmupRatio: 0.1,
  weightDecay: 0.01,
  maxGradNorm: 1,
  evalBatchSize: 64,
};

function encodeExamples(examples: readonly Example[]): EncodedSplit {
  return { inputIds: examples.map((e) => tiny.tokenizer.encode(e.text).inputIds), labels: examples.map((e) => e.label) };
}

const trainSplit = encodeExamples(sentimentExamples(96, 1));
const evalSplit = encodeExamples(sentimentExamples(40, 2));

async function classifier(): Promise<Checkpoint> {
  return loadCheckpoint(tiny.dir, { head: 'classifier', numLabels: 2, seed: 5 });
}

function withoutDropout(config: ModelConfig): ModelConfig {
  return { ...config, hiddenDropout: 0, attentionDropout: 0, classifierDropout: 0 };
}

function maxParamDiff(a: ParamMap, b: ParamMap): number {
  let worst = 0;
  for (const [name, t] of a) {
    const x = t.dataSync();
    const y = b.get(name)!.dataSync();
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  return worst;
}

test('fine-tuning learns a separable task: loss falls, accuracy far above chance', async () => {
  const { config, params } = await classifier();
  try {
    const result = await fineTune({
      config, params, numLabels: 2, train: trainSplit, eval: evalSplit, recipe: { ...recipe, epochs: 8 }, seed: 0, padId: tiny.tokenizer.padId, progressBar: false,
    });
    assert.equal(result.status, 'ok');
    assert.equal(result.epochs.length, 8);
    assert.equal(result.lossCurve.length, 8 * Math.ceil(96 / recipe.batchSize));
    const first = result.epochs[0];
    const last = result.epochs[7];
    assert.ok(first.trainLoss > 0.6, `a fresh head starts near ln 2 (${first.trainLoss})`);
    assert.ok(last.trainLoss < first.trainLoss / 3, `train loss ${first.trainLoss} -> ${last.trainLoss}`);
    assert.ok(last.eval.accuracy >= 0.85, `accuracy ${last.eval.accuracy}`);
    // The confusion matrix counts every evaluation example once, and accuracy is its diagonal.
    const c = last.eval.confusion;
    assert.equal(c.flat().reduce((s, x) => s + x, 0), 40);
    assert.equal((c[0][0] + c[1][1]) / 40, last.eval.accuracy);
    assert.ok(result.trainTokens > 0 && result.trainTokensPerSecond > 0);
  } finally {
    disposeParams(params);
  }
});

test('the same seed reproduces a run, another seed does not; no tensors leak', async () => {
  const { config, params } = await classifier();
  const run = (seed: number) =>
    fineTune({ config, params, numLabels: 2, train: trainSplit, eval: evalSplit, recipe, seed, padId: tiny.tokenizer.padId, progressBar: false });
  try {
    const before = tf.memory().numTensors;
    const a = await run(3);
    assert.equal(tf.memory().numTensors, before, 'fineTune leaves no tensors behind');
    const b = await run(3);
    const c = await run(4);
    assert.deepEqual(b.lossCurve, a.lossCurve);
    assert.deepEqual(b.epochs, a.epochs);
    assert.notDeepEqual(c.lossCurve, a.lossCurve);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    disposeParams(params);
  }
});

test('gradient accumulation: 2 micro-batches of 4 update as one batch of 8', async () => {
  const { config, params } = await classifier();
  const noDropout = withoutDropout(config);
  const eight: EncodedSplit = { inputIds: trainSplit.inputIds.slice(0, 8), labels: trainSplit.labels.slice(0, 8) };
  const run = (gradientAccumulation: number) =>
    fineTune({
      config: noDropout, params, numLabels: 2, train: eight, eval: evalSplit, seed: 1, padId: tiny.tokenizer.padId, progressBar: false, keepParams: true,
      recipe: { ...recipe, gradientAccumulation, epochs: 2, warmupRatio: 0 },
    });
  const whole = await run(1);
  const split = await run(2);
  try {
    assert.equal(whole.lossCurve.length, 2, 'one step per epoch');
    whole.lossCurve.forEach((p, i) => assert.ok(Math.abs(p.loss - split.lossCurve[i].loss) < 1e-5, `loss at step ${p.step}`));
    const moved = maxParamDiff(whole.params!, params);
    const d = maxParamDiff(whole.params!, split.params!);
    assert.ok(moved > 1e-3, `the steps moved the weights (${moved})`);
    assert.ok(d < 1e-5, `parameters differ by ${d}`);
  } finally {
    disposeParams(params);
    disposeParams(whole.params!);
    disposeParams(split.params!);
  }
});

test('a token cap cuts long batches into micro-batches of the same step; short batches are untouched', async () => {
  const { config, params } = await classifier();
  const noDropout = withoutDropout(config);
  const longest = Math.max(...trainSplit.inputIds.map((ids) => ids.length));
  const run = (maxBatchTokens: number | undefined, cfg = noDropout) =>
    fineTune({
      config: cfg, params, numLabels: 2, train: trainSplit, eval: evalSplit, seed: 2, padId: tiny.tokenizer.padId, progressBar: false, keepParams: true,
      recipe: { ...recipe, epochs: 1 }, maxBatchTokens,
    });
  const before = tf.memory().numTensors;
  const uncapped = await run(undefined);
  // Every batch of 8 fits under 8 x longest tokens: the cap must change nothing, bit for bit (dropout on).
  const roomy = await run(8 * longest, config);
  const roomyUncapped = await run(undefined, config);
  // A cap of 3 rows' worth cuts every batch in 3 slices; without dropout that is gradient accumulation.
  const tight = await run(3 * longest);
  try {
    assert.deepEqual(roomy.lossCurve, roomyUncapped.lossCurve);
    assert.deepEqual(roomy.epochs, roomyUncapped.epochs);
    assert.equal(tight.lossCurve.length, uncapped.lossCurve.length, 'same optimizer steps');
    uncapped.lossCurve.forEach((p, i) => assert.ok(Math.abs(p.loss - tight.lossCurve[i].loss) < 1e-4, `loss at step ${p.step}: ${p.loss} vs ${tight.lossCurve[i].loss}`));
    const d = maxParamDiff(uncapped.params!, tight.params!);
    assert.ok(d < 1e-4, `parameters differ by ${d}`);
    // Evaluation is cut by the same cap; eval rows are independent, so the predictions agree.
    assert.deepEqual(tight.epochs[0].eval.confusion, uncapped.epochs[0].eval.confusion);
  } finally {
    for (const r of [uncapped, roomy, roomyUncapped, tight]) disposeParams(r.params!);
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    disposeParams(params);
  }
});

test('trainStep: the accumulated gradient equals the whole-batch gradient (norm and loss)', async () => {
  const { config, params } = await classifier();
  const noDropout = withoutDropout(config);
  // Examples of different lengths, padded per micro-batch as fine-tuning does.
  const ids = trainSplit.inputIds.slice(0, 6);
  const labels = trainSplit.labels.slice(0, 6);
  const lossOver = (rows: number[][], rowLabels: number[], variables: ParamMap) => {
    const width = Math.max(...rows.map((r) => r.length));
    const padded = rows.map((r) => [...r, ...new Array(width - r.length).fill(tiny.tokenizer.padId)]);
    const mask = rows.map((r) => [...r.map(() => 1), ...new Array(width - r.length).fill(0)]);
    const { lastHiddenState } = encode(noDropout, variables, {
      inputIds: tf.tensor2d(padded, undefined, 'int32'),
      attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    });
    const { logits } = classifierLogits(noDropout, variables, lastHiddenState, new DropoutSeeds(undefined), false);
    return crossEntropy(logits, tf.tensor1d(rowLabels, 'int32'));
  };
  // Unequal micro-batches (4 + 2) test the weighting, not just a halving.
  const step = (groups: number[][]) => {
    const trainable = makeTrainable(params, { weightDecay: 0, learningRate: 1e-3 });
    try {
      const total = groups.flat().length;
      return trainStep(
        trainable,
        groups.length,
        groups.map((g) => g.length / total),
        (i) => lossOver(groups[i].map((k) => ids[k]), groups[i].map((k) => labels[k]), trainable.variables),
        { learningRate: 1e-3, maxGradNorm: 1e9 },
      );
    } finally {
      disposeTrainable(trainable);
    }
  };
  try {
    const whole = step([[0, 1, 2, 3, 4, 5]]);
    const split = step([[0, 1, 2, 3], [4, 5]]);
    assert.ok(whole.gradNorm > 0);
    assert.ok(Math.abs(whole.loss - split.loss) < 1e-5, `loss ${whole.loss} vs ${split.loss}`);
    assert.ok(Math.abs(whole.gradNorm - split.gradNorm) < 1e-5 * whole.gradNorm, `gradient norm ${whole.gradNorm} vs ${split.gradNorm}`);
  } finally {
    disposeParams(params);
  }
});

test('a huge learning rate ends as diverged instead of throwing', async () => {
  const { config, params } = await classifier();
  try {
    const before = tf.memory().numTensors;
    const result = await fineTune({
      config, params, numLabels: 2, train: { inputIds: trainSplit.inputIds.slice(0, 32), labels: trainSplit.labels.slice(0, 32) },
      eval: evalSplit, recipe: { ...recipe, learningRate: 1e6, epochs: 3, warmupRatio: 0 }, seed: 0, padId: tiny.tokenizer.padId, progressBar: false,
    });
    assert.equal(result.status, 'diverged');
    assert.ok(result.divergedAt, 'the step of divergence is recorded');
    assert.ok(result.lossCurve.every((p) => Number.isFinite(p.loss)), 'the curve holds the finite losses reached');
    assert.ok(result.lossCurve.length < result.divergedAt.step);
    assert.equal(result.epochs.length, result.divergedAt.epoch, 'training stops in the epoch it diverged');
    assert.equal(tf.memory().numTensors, before);
  } finally {
    disposeParams(params);
  }
});

test('NaN weights diverge at the first step', async () => {
  const { config, params } = await classifier();
  const poisoned: ParamMap = new Map(params);
  const w = params.get('classifier.weight')!;
  poisoned.set('classifier.weight', tf.fill(w.shape, NaN));
  try {
    const result = await fineTune({
      config, params: poisoned, numLabels: 2, train: trainSplit, eval: evalSplit, recipe, seed: 0, padId: tiny.tokenizer.padId, progressBar: false,
    });
    assert.equal(result.status, 'diverged');
    assert.deepEqual(result.divergedAt, { epoch: 1, step: 1 });
    assert.deepEqual(result.lossCurve, []);
  } finally {
    poisoned.get('classifier.weight')!.dispose();
    disposeParams(params);
  }
});

test('runExperiment: a corrupted run on the tiny model gives a valid result row with its corruption report', async () => {
  const train = await writeJsonl(join(work, 'data', 'train.jsonl'), sentimentExamples(48, 7));
  const evalFile = await writeJsonl(join(work, 'data', 'eval.jsonl'), sentimentExamples(16, 8));
  const spec = ExperimentSpecSchema.parse({
    model: tiny.dir,
    dataset: { train, eval: evalFile, maxLength: 16 },
    corruption: { layers: 'bottom:1' },
    recipe: { learningRate: 3e-3, epochs: 1, batchSize: 8 },
    seed: 2,
  });
  const before = tf.memory().numTensors;
  const row = await runExperiment(spec, { progressBar: false });
  assert.equal(tf.memory().numTensors, before, 'runExperiment disposes the model');
  const parsed = ResultRowSchema.safeParse(row);
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  assert.equal(row.status, 'ok');
  assert.deepEqual(row.spec, spec);
  assert.equal(row.trainExamples, 48);
  assert.equal(row.evalExamples, 16);
  assert.equal(row.epochs.length, 1);
  assert.equal(row.lossCurve.length, 48 / 8);
  assert.equal(typeof row.final.accuracy, 'number');
  assert.equal(row.recipe.learningRate, 3e-3);
  assert.equal(row.provenance.backend, 'wasm');
  // bottom:1 with all components = every parameter of encoder layer 0.
  const layer0 = parameterLayout(tiny.config, 'classifier', 2).filter((p) => p.layer === 0);
  assert.deepEqual(row.corruption, { layers: [0], tensors: layer0.length });

  const clean = await runExperiment({ ...spec, corruption: null, recipe: { ...spec.recipe, epochs: 1 } }, { progressBar: false });
  assert.ok(ResultRowSchema.safeParse(clean).success);
  assert.equal(clean.corruption, undefined);
  assert.notEqual(clean.hash, row.hash, 'the corruption is part of the identity');
});

test('runExperiment: a train size beyond the data is refused before any run; an eval size beyond it uses all, recorded', async () => {
  const train = await writeJsonl(join(work, 'data', 'small-train.jsonl'), sentimentExamples(24, 9));
  const evalFile = await writeJsonl(join(work, 'data', 'small-eval.jsonl'), sentimentExamples(12, 10));
  const base = { model: tiny.dir, corruption: null, recipe: { learningRate: 3e-3, epochs: 1, batchSize: 8 }, seed: 0 };
  const tooBig = ExperimentSpecSchema.parse({ ...base, dataset: { train, eval: evalFile, maxLength: 16, trainSize: 25 } });
  await assert.rejects(runExperiment(tooBig, { progressBar: false }), (error: unknown) => {
    assert.ok(error instanceof UserError, String(error));
    assert.match(error.message, /train size 25: .*small-train\.jsonl has only 24 training examples/);
    return true;
  });
  const bigEval = ExperimentSpecSchema.parse({ ...base, dataset: { train, eval: evalFile, maxLength: 16, evalSize: 100 } });
  const row = await runExperiment(bigEval, { progressBar: false });
  assert.equal(row.evalExamples, 12, 'the count used is recorded');
});

test('on the native engine, fine-tuning reaches the accuracy of the TF.js graph within seed noise', { skip: !activeNative() && 'native kernels are off' }, async () => {
  const { config, params } = await classifier();
  // Few enough steps that the task is not solved perfectly, so the comparison is not between two ceilings.
  const hardTrain = encodeExamples(sentimentExamples(96, 5));
  const hardEval = encodeExamples(sentimentExamples(200, 6));
  const run = (seed: number) =>
    fineTune({ config, params, numLabels: 2, train: hardTrain, eval: hardEval, recipe: { ...recipe, epochs: 3 }, seed, padId: tiny.tokenizer.padId, progressBar: false });
  try {
    const seeds = [0, 1, 2];
    const fused: number[] = [];
    const graph: number[] = [];
    for (const seed of seeds) {
      fused.push((await run(seed)).epochs.at(-1)!.eval.accuracy);
      graph.push((await withoutFusedOps(() => run(seed))).epochs.at(-1)!.eval.accuracy);
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = (xs: number[]) => Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1));
    const noise = Math.max(sd(fused), sd(graph), 0.025);
    assert.ok(
      Math.abs(mean(fused) - mean(graph)) <= 2 * noise,
      `native ${fused.join(', ')} vs TF.js graph ${graph.join(', ')}: means differ by more than twice the seed noise (${noise.toFixed(3)})`,
    );
    assert.ok(mean(fused) > 0.6, `the native engine learns the task (${fused.join(', ')})`);
  } finally {
    disposeParams(params);
  }
});

// The wiring of runExperiment, checked against the building blocks it is made of (each tested on its own):
// the checkpoint with a head seeded by deriveSeed(seed, 'head'), corrupt() with deriveSeed(seed, 'corruption'),
// initParams with deriveSeed(seed, 'scratch'), stratifiedSample with deriveSeed(seed, 'train-sample') / 0, fineTune.
const wiringTrain = await writeJsonl(join(work, 'data', 'wiring-train.jsonl'), sentimentExamples(48, 11));
const wiringEval = await writeJsonl(join(work, 'data', 'wiring-eval.jsonl'), sentimentExamples(16, 12));
const wiringSpec = ExperimentSpecSchema.parse({
  model: tiny.dir,
  dataset: { train: wiringTrain, eval: wiringEval, maxLength: 16 },
  corruption: { layers: 'bottom:1' },
  recipe: { learningRate: 3e-3, epochs: 2, batchSize: 8 },
  seed: 6,
});

function assertSameParams(actual: ParamMap, expected: ParamMap, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: the same tensors`);
  assert.equal(maxParamDiff(actual, expected), 0, `${what}: bit for bit`);
}

/** The names of the tensors whose values differ between two maps of the same layout. */
function differingTensors(a: ParamMap, b: ParamMap): string[] {
  return [...a.keys()].filter((name) => maxParamDiff(new Map([[name, a.get(name)!]]), b) > 0).sort();
}

/** fineTune by hand on the examples given, with the row's recipe and memory cap: what the row should record. */
async function fineTuneLikeRow(row: ResultRow, params: ParamMap, train: LabeledData, evalData: LabeledData): Promise<FineTuneResult> {
  const { maxBatchTokens, ...recipe } = row.recipe;
  const maxLength = row.spec.dataset.maxLength;
  return fineTune({
    config: tiny.config, params, numLabels: 2, train: encodeSplit(tiny.tokenizer, train, maxLength), eval: encodeSplit(tiny.tokenizer, evalData, maxLength),
    recipe, seed: row.spec.seed, padId: tiny.tokenizer.padId, progressBar: false, maxBatchTokens: typeof maxBatchTokens === 'number' ? maxBatchTokens : undefined,
  });
}

test('runExperiment fine-tunes exactly corrupt(clean checkpoint); the clean run of the same seed diverges from it', async () => {
  const data = await loadExperimentData(wiringSpec);
  const corrupted = await runExperimentDetailed(wiringSpec, { progressBar: false });
  const clean = await runExperimentDetailed({ ...wiringSpec, corruption: null }, { progressBar: false });
  const checkpoint = await loadCheckpoint(tiny.dir, { head: 'classifier', numLabels: 2, labels: data.labelNames, seed: deriveSeed(wiringSpec.seed, 'head') });
  const expected = corrupt(checkpoint.params, checkpoint.config, parseCorruptionSpec(wiringSpec.corruption!, tiny.config.numLayers), deriveSeed(wiringSpec.seed, 'corruption'));
  try {
    assertSameParams(corrupted.model.params, expected.params, 'the corrupted run prepares corrupt(checkpoint)');
    assertSameParams(clean.model.params, checkpoint.params, 'the clean run prepares the checkpoint');
    // bottom:1 re-draws encoder layer 0 (its weight matrices at least); nothing else moves, the head included.
    const layer0 = parameterLayout(tiny.config, 'classifier', 2).filter((p) => p.layer === 0).map((p) => p.name).sort();
    const moved = differingTensors(corrupted.model.params, clean.model.params);
    assert.ok(moved.every((n) => layer0.includes(n)), `only layer 0 moved: ${moved.join(', ')}`);
    for (const n of layer0.filter((name) => name.endsWith('dense.weight') || name.endsWith('query.weight'))) assert.ok(moved.includes(n), `${n} re-drawn`);
    // What the row records is fine-tuning of those weights, step for step.
    const byHand = await fineTuneLikeRow(corrupted.row, expected.params, data.train, data.eval);
    assert.deepEqual(corrupted.row.lossCurve, byHand.lossCurve);
    assert.deepEqual(corrupted.row.epochs, byHand.epochs);
    // The grid's entry point records the same run.
    const gridRow = await runExperiment(wiringSpec, { progressBar: false });
    assert.deepEqual(gridRow.lossCurve, corrupted.row.lossCurve);
    assert.deepEqual(gridRow.final, corrupted.row.final);
    // Same seed, same examples, same head: only the corruption differs, and the runs part from the first step.
    assert.notEqual(clean.row.lossCurve[0].loss, corrupted.row.lossCurve[0].loss);
    assert.notDeepEqual(clean.row.epochs.map((e) => e.trainLoss), corrupted.row.epochs.map((e) => e.trainLoss));
  } finally {
    for (const p of [corrupted.model.params, clean.model.params, checkpoint.params, expected.params]) disposeParams(p);
  }
});

test('runExperiment --from-scratch fine-tunes initParams of the seed, not the checkpoint', async () => {
  const spec = { ...wiringSpec, corruption: null, fromScratch: true };
  const data = await loadExperimentData(spec);
  const scratch = await runExperimentDetailed(spec, { progressBar: false });
  const expected = initParams(tiny.config, 'classifier', 2, deriveSeed(spec.seed, 'scratch'));
  const checkpoint = await loadCheckpoint(tiny.dir, { head: 'classifier', numLabels: 2, seed: deriveSeed(spec.seed, 'head') });
  try {
    assertSameParams(scratch.model.params, expected, 'fresh weights');
    assert.ok(differingTensors(scratch.model.params, checkpoint.params).includes('bert.embeddings.word_embeddings.weight'), 'not the pretrained embeddings');
    assert.equal(scratch.row.label, specLabel(spec));
    assert.match(scratch.row.label, /scratch/);
    const byHand = await fineTuneLikeRow(scratch.row, expected, data.train, data.eval);
    assert.deepEqual(scratch.row.lossCurve, byHand.lossCurve);
    assert.deepEqual(scratch.row.epochs, byHand.epochs);
  } finally {
    for (const p of [scratch.model.params, expected, checkpoint.params]) disposeParams(p);
  }
});

test('runExperiment with trainSize / evalSize trains on the stratified sample of the seed and scores on that of seed 0', async () => {
  const spec = ExperimentSpecSchema.parse({ ...wiringSpec, corruption: null, dataset: { ...wiringSpec.dataset, trainSize: 20, evalSize: 10 }, recipe: { ...wiringSpec.recipe, epochs: 1 } });
  const data = await loadExperimentData(spec);
  const run = await runExperimentDetailed(spec, { progressBar: false });
  try {
    assert.equal(run.row.trainExamples, 20);
    assert.equal(run.row.evalExamples, 10);
    assert.equal(run.row.lossCurve.length, Math.ceil(20 / 8), 'steps over 20 examples, not 48');
    // Confusion rows are true labels: 10 examples scored, 5 of each class (stratified).
    const confusion = run.row.epochs[0].eval.confusion;
    assert.deepEqual(confusion.map((r) => r.reduce((s, x) => s + x, 0)), [5, 5]);
    const train = stratifiedSample(data.train, 20, deriveSeed(spec.seed, 'train-sample'));
    const evalData = stratifiedSample(data.eval, 10, 0);
    assert.deepEqual([0, 1].map((c) => train.labels.filter((l) => l === c).length), [10, 10]);
    const byHand = await fineTuneLikeRow(run.row, run.model.params, train, evalData);
    assert.deepEqual(run.row.lossCurve, byHand.lossCurve, 'trained on the sample, in its order');
    assert.deepEqual(run.row.epochs, byHand.epochs, 'scored on the sample');
  } finally {
    disposeParams(run.model.params);
  }
});
