import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../src/errors';
import { HELDOUT_SPLIT } from '../src/data/sampling';
import type { TrainEvalData } from '../src/data/dataset';
import { sampleExperiment } from '../src/experiment/examples';
import { COMPONENT_STUDY, FEW_SAMPLE_REINIT, PAPER_DATASETS, PAPER_SEEDS, paperSeeds, presetSpecs, RECIPE_SEARCH } from '../src/experiment/presets';
import { ExperimentSpecSchema } from '../src/experiment/spec';
import { specHash } from '../src/experiment/hash';

const distinct = (xs: string[]) => new Set(xs).size === xs.length;

test('recipe-search: learning rate x epochs on the clean model, scored on examples held out of training', () => {
  const specs = presetSpecs('recipe-search', { numLayers: 6 });
  const per = RECIPE_SEARCH.learningRates.length * RECIPE_SEARCH.epochs.length * RECIPE_SEARCH.seeds.length;
  assert.equal(specs.length, RECIPE_SEARCH.datasets.length * per);
  assert.ok(specs.every((s) => s.corruption === null && s.dataset.evalSplit === HELDOUT_SPLIT && s.dataset.evalSize === RECIPE_SEARCH.heldOut));
  assert.deepEqual([...new Set(specs.map((s) => s.recipe.learningRate))].sort(), [...RECIPE_SEARCH.learningRates].sort());
  assert.ok(distinct(specs.map(specHash)), 'every spec is its own run');
});

test('few-sample-reinit: top-K with the pooler, both initialisations, three training sizes', () => {
  const specs = presetSpecs('few-sample-reinit', { numLayers: 6 });
  const corruptions = 1 + FEW_SAMPLE_REINIT.topLayers.length * FEW_SAMPLE_REINIT.modes.length;
  assert.equal(specs.length, FEW_SAMPLE_REINIT.trainSizes.length * corruptions * 3);
  const corrupted = specs.filter((s) => s.corruption !== null);
  assert.ok(corrupted.every((s) => s.corruption!.layers.startsWith('top:') && s.corruption!.components.includes('pooler')));
  assert.deepEqual([...new Set(corrupted.map((s) => s.corruption!.mode))].sort(), ['reinit', 'reinit-hf']);
  assert.ok(distinct(specs.map(specHash)));
});

test('components: one component at a time; the whole-layer runs are the paper preset\'s own specs', () => {
  const specs = presetSpecs('components', { numLayers: 6 });
  assert.equal(specs.length, COMPONENT_STUDY.datasets.length * COMPONENT_STUDY.layers.length * COMPONENT_STUDY.components.length * 3);
  assert.ok(specs.every((s) => s.corruption!.components.length === 1));
  const paper = new Map(presetSpecs('paper', { numLayers: 6 }).map((s) => [specHash(s), s]));
  for (const s of specs) {
    const whole = ExperimentSpecSchema.parse({ ...s, corruption: { ...s.corruption!, components: ['all'] } });
    assert.ok(paper.has(specHash(whole)), `${s.dataset.name} ${s.corruption!.layers}: the paper preset has the whole-layer run`);
  }
});

function data(n: number): TrainEvalData {
  const labelNames = ['a', 'b'];
  const split = (prefix: string, size: number) => ({
    texts: Array.from({ length: size }, (_, i) => `${prefix} ${i}`),
    labels: Array.from({ length: size }, (_, i) => i % 2),
    labelNames,
    source: prefix,
  });
  return { name: 'toy', train: split('train', n), eval: split('eval', 50), labelNames };
}

test('the train-heldout split: a fixed part of the training split, disjoint from every training sample', () => {
  const d = data(400);
  const spec = (seed: number) =>
    ExperimentSpecSchema.parse({ dataset: { name: 'sst2', trainSize: 100, evalSplit: HELDOUT_SPLIT, evalSize: 60 }, seed });
  const a = sampleExperiment(spec(0), d);
  const b = sampleExperiment(spec(1), d);
  assert.equal(a.eval.texts.length, 60);
  assert.ok(a.eval.texts.every((t) => t.startsWith('train ')), 'held out of the training split, never the evaluation split');
  assert.deepEqual(b.eval.texts, a.eval.texts, 'the same held-out examples whatever the seed');
  assert.deepEqual(a.eval.labels.filter((l) => l === 0).length, 30, 'stratified');
  for (const run of [a, b]) {
    assert.equal(run.train.texts.length, 100);
    const held = new Set(run.eval.texts);
    assert.ok(run.train.texts.every((t) => !held.has(t)), 'no training example is scored');
  }
  assert.notDeepEqual(b.train.texts, a.train.texts, 'seeds still draw different training samples');
  assert.throws(
    () => sampleExperiment(ExperimentSpecSchema.parse({ dataset: { name: 'sst2', trainSize: 100, evalSplit: HELDOUT_SPLIT } }), d),
    (e: unknown) => e instanceof UserError && /needs an evalSize/.test(e.message),
  );
  assert.throws(
    () => sampleExperiment(ExperimentSpecSchema.parse({ dataset: { name: 'sst2', trainSize: 380, evalSplit: HELDOUT_SPLIT, evalSize: 60 } }), d),
    (e: unknown) => e instanceof UserError && /train size 380/.test(e.message),
  );
});

test('paper: every dataset with the seeds fixed for it, each seed covering every corruption before the next seed', () => {
  const specs = presetSpecs('paper', { numLayers: 6 });
  const corruptions = 1 + 2 * 6;
  const expected = PAPER_DATASETS.reduce((n, d) => n + corruptions * paperSeeds(d).length, 0);
  assert.equal(specs.length, expected);
  for (const dataset of PAPER_DATASETS) {
    const own = specs.filter((s) => s.dataset.name === dataset);
    assert.ok(paperSeeds(dataset).length >= 3, `${dataset}: at least 3 seeds`);
    assert.deepEqual([...new Set(own.map((s) => s.seed))], [...paperSeeds(dataset)]);
    // Seed-major: the first `corruptions` specs are all of seed 0, one per corruption.
    const first = own.slice(0, corruptions);
    assert.ok(first.every((s) => s.seed === paperSeeds(dataset)[0]));
    assert.equal(new Set(first.map((s) => s.corruption?.layers ?? 'clean')).size, corruptions);
  }
  assert.deepEqual(paperSeeds('not-a-paper-dataset'), PAPER_SEEDS);
});
