import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { anatomyFindings, anatomySpec, healedVsClean, mostHarmfulLayers, rowsForSpecs, singleLayerEffects, singleLayerSweepSpecs } from '../src/analysis/anatomy';
import { resultsFrame } from '../src/analysis/frames';
import { specHash } from '../src/experiment/hash';
import { presetSpecs, QUICK } from '../src/experiment/presets';
import { fakeRow } from './helpers/fake-runner';
import { makeTinyModel } from './helpers/tiny-model';

const SHARED = process.env.HEALING_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url));
const DATA_DIR = join(SHARED, 'data', 'datasets');

test('singleLayerSweepSpecs: clean plus one run per layer "i", per dataset and seed; the clean run is the quick preset\'s', () => {
  const settings = { model: 'tiny', trainSize: QUICK.trainSize, evalSize: QUICK.evalSize, maxLength: QUICK.maxLength, epochs: QUICK.epochs };
  const specs = singleLayerSweepSpecs({ ...settings, datasets: ['sst2', 'emotion'], numLayers: 4, seeds: [0, 1] });
  assert.equal(specs.length, 2 * (1 + 4) * 2);
  assert.deepEqual(
    specs.filter((s) => s.dataset.name === 'sst2' && s.seed === 0).map((s) => s.corruption?.layers ?? null),
    [null, '0', '1', '2', '3'],
  );
  assert.ok(specs.every((s) => s.corruption === null || (s.corruption.mode === 'reinit' && s.corruption.components.join() === 'all')));
  assert.equal(new Set(specs.map(specHash)).size, specs.length, 'every run is distinct');
  // Same settings as the quick preset: its clean sst2 run is our clean sst2 seed-0 run (recorded once, shared).
  const quickClean = presetSpecs('quick', { model: 'tiny', numLayers: 4 })[0];
  assert.equal(specHash(specs[0]), specHash(quickClean));
  // ...and a paper-preset clean run with the paper's sizes and default recipe hashes the same too.
  const paperClean = presetSpecs('paper', { model: 'default', numLayers: 6, datasets: ['sst2'] })[0];
  assert.equal(specHash(anatomySpec({ model: 'default', trainSize: 2000, evalSize: 1000 }, 'sst2', null, 0)), specHash(paperClean));

  const subset = singleLayerSweepSpecs({ ...settings, datasets: ['sst2'], numLayers: 4, layers: [3], seeds: [0] });
  assert.deepEqual(subset.map((s) => s.corruption?.layers ?? null), [null, '3']);
  assert.throws(() => singleLayerSweepSpecs({ ...settings, datasets: ['sst2'], numLayers: 4, layers: [4], seeds: [0] }), /layer 4 is not in 0\.\.3/);
});

test('singleLayerEffects: mean gap to the clean partner per dataset and layer; the most harmful layer per dataset', () => {
  const settings = { model: 'tiny', trainSize: 100, evalSize: 50, epochs: 1 };
  const specs = singleLayerSweepSpecs({ ...settings, datasets: ['sst2', 'emotion'], numLayers: 3, seeds: [0, 1, 2] });
  // Planted: clean 0.9 (+ 0.01 * seed); corrupting layer l costs 0.05 * (l + 1) on sst2 and 0.2 for layer 1 only on emotion.
  const planted = (dataset: string, layer: number) => (dataset === 'sst2' ? 0.05 * (layer + 1) : layer === 1 ? 0.2 : 0.02);
  const rows = specs.map((s) => {
    const clean = 0.9 + 0.01 * s.seed;
    const layer = s.corruption ? Number(s.corruption.layers) : -1;
    return fakeRow(s, layer < 0 ? clean : clean - planted(s.dataset.name!, layer), { corruption: layer < 0 ? undefined : { layers: [layer], tensors: 16 } });
  });
  // A run from another configuration in the same store is left out.
  const stray = fakeRow(anatomySpec({ ...settings, epochs: 3 }, 'sst2', '0', 0), 0.1, { corruption: { layers: [0], tensors: 16 } });
  const selected = rowsForSpecs([...rows, stray], specs);
  assert.equal(selected.length, rows.length);
  const effects = singleLayerEffects(resultsFrame(selected));
  assert.equal(effects.length, 2 * 3);
  for (const e of effects) {
    assert.equal(e.n, 3);
    assert.ok(Math.abs(e.cleanAccuracy - 0.91) < 1e-9, 'mean clean accuracy over seeds 0-2');
    assert.ok(Math.abs(e.gap - planted(e.dataset, e.layer)) < 1e-9, `${e.dataset} layer ${e.layer}: ${e.gap}`);
    assert.ok(Math.abs(e.accuracy - (0.91 - planted(e.dataset, e.layer))) < 1e-9);
  }
  assert.deepEqual(mostHarmfulLayers(effects).map((m) => [m.dataset, m.layer]), [['emotion', 1], ['sst2', 2]]);
  assert.deepEqual(mostHarmfulLayers([]), []);
});

test('healedVsClean: per-layer CKA, drift and probes of the clean and corrupted runs, with no tensor left behind', { timeout: 120_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'healing-anatomy-'));
  try {
    const tiny = await makeTinyModel(join(work, 'tiny'), { numLayers: 2, hiddenSize: 32 });
    const before = tf.memory().numTensors;
    const result = await healedVsClean({
      model: tiny.dir,
      dataset: 'sst2',
      corruption: 'bottom:1',
      trainSize: 48,
      evalSize: 40,
      maxLength: 16,
      epochs: 1,
      batchSize: 8,
      learningRate: 1e-3,
      dataDir: DATA_DIR,
      probeSteps: 60,
    });
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    assert.deepEqual(result.corruptedLayers, [0]);
    assert.equal(result.texts, 40);
    assert.equal(result.clean.spec.corruption, null);
    assert.equal(result.corrupted.spec.corruption?.layers, 'bottom:1');
    assert.equal(result.clean.spec.seed, result.corrupted.spec.seed);
    assert.deepEqual(result.layers.map((l) => [l.layerName, l.corrupted]), [['embeddings', false], ['layer 0', true], ['layer 1', false]]);
    const [embeddings, layer0] = result.layers;
    assert.ok(Math.abs(embeddings.ckaBefore - 1) < 1e-4, 'corruption leaves the embeddings alone');
    assert.ok(layer0.ckaBefore < 0.99, `re-initialised layer 0: ${layer0.ckaBefore}`);
    for (const l of result.layers) assert.ok(l.ckaAfter > 0 && l.ckaAfter <= 1 + 1e-5);
    assert.ok(Number.isNaN(embeddings.driftClean));
    assert.ok(layer0.driftClean > 0 && layer0.driftCorrupted > 0, 'fine-tuning moved both runs');
    const driftLayers = result.drift.filter((d) => d.run === 'corrupted').map((d) => d.layer);
    assert.deepEqual(driftLayers, ['embeddings', 'layer 0', 'layer 1', 'pooler', 'head']);
    assert.equal(result.probes.length, 4 * 3);
    for (const p of result.probes) assert.ok(p.evalAccuracy >= 0 && p.evalAccuracy <= 1);
    // The pretrained and the corrupted model share their embeddings, so a deterministic probe on them agrees.
    const probe = (stage: string, layer: number) => result.probes.find((p) => p.stage === stage && p.layer === layer)!;
    assert.deepEqual(probe('corrupted', -1), { ...probe('pretrained', -1), stage: 'corrupted' });
    assert.ok(result.majorityBaseline > 0.3 && result.majorityBaseline < 0.7, 'sst2 is roughly balanced');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('anatomyFindings: the most harmful layer, how close healing came, and drift; honest without data', () => {
  const effects = [
    { dataset: 'sst2', layer: 0, n: 2, accuracy: 0.7, gap: 0.1, cleanAccuracy: 0.8 },
    { dataset: 'sst2', layer: 1, n: 2, accuracy: 0.78, gap: 0.02, cleanAccuracy: 0.8 },
  ];
  const row = (layer: number, corrupted: boolean, ckaBefore: number, ckaAfter: number, driftClean: number, driftCorrupted: number) => ({
    layerName: layer < 0 ? 'embeddings' : `layer ${layer}`, layer, corrupted, ckaBefore, ckaAfter, driftClean, driftCorrupted,
  });
  const layers = [row(-1, false, 1, 0.99, NaN, NaN), row(0, true, 0.2, 0.6, 0.01, 0.04), row(1, false, 0.5, 0.95, 0.01, 0.01)];
  const clean = { final: { accuracy: 0.8, macroF1: 0.8 }, spec: anatomySpec({ model: 'tiny' }, 'sst2', null, 0) };
  const healed = { layers, majorityBaseline: 0.5, clean };
  const f = anatomyFindings(effects, healed);
  assert.deepEqual(f.harmful.map((h) => [h.dataset, h.layer]), [['sst2', 0]]);
  assert.equal(f.staysFar, 'yes');
  assert.ok(Math.abs(f.ckaAfterCorrupted - 0.6) < 1e-12);
  assert.ok(Math.abs(f.ckaAfterUntouched - 0.95) < 1e-12, 'the embedding output is not an encoder layer');
  assert.ok(Math.abs(f.deficitClosed - 0.5) < 1e-12, '(0.6 - 0.2) / (1 - 0.2)');
  assert.ok(Math.abs(f.driftRatio - 4) < 1e-12);
  assert.match(f.text[0], /layer 0 costs most, 10\.0 points/);
  assert.equal(anatomyFindings(effects, healed, { farBelow: 0.5 }).staysFar, 'no');
  const none = anatomyFindings([], undefined);
  assert.equal(none.staysFar, 'not enough data');
  assert.match(none.text.join(' '), /not enough data.*not enough data/);
  // A clean model at the majority baseline learned nothing: neither part reads its numbers.
  const untrained = anatomyFindings(effects, { ...healed, majorityBaseline: 0.79 });
  assert.equal(untrained.staysFar, 'not enough data');
  assert.equal(untrained.harmful[0].layer, undefined);
  assert.match(untrained.text[0], /sst2: not enough data: the clean model reaches 80\.0 %/);
});
