import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { UserError } from '../src/errors';
import { canonicalJson, specHash } from '../src/experiment/hash';
import { PAPER_DATASETS, paperSeeds, presetSpecs, QUICK } from '../src/experiment/presets';
import { RECIPE_DEFAULTS } from '../src/train/recipe';
import { ExperimentSpecSchema, formatIssues, specLabel } from '../src/experiment/spec';

test('a minimal spec gets the documented defaults', () => {
  const spec = ExperimentSpecSchema.parse({ dataset: { name: 'sst2' } });
  assert.equal(spec.model, 'default');
  assert.equal(spec.dataset.maxLength, 128);
  assert.equal(spec.corruption, null);
  assert.deepEqual(spec.recipe, {
    epochs: 6,
    batchSize: 32,
    gradientAccumulation: 1,
    warmupRatio: 0.1,
    weightDecay: 0.01,
    maxGradNorm: 1.0,
    evalBatchSize: 64,
  });
  assert.equal(spec.recipe.learningRate, undefined, 'absent learning rate is chosen at run time');
  assert.equal(spec.seed, 0);
  assert.equal(spec.fromScratch, false);
  const corrupted = ExperimentSpecSchema.parse({ dataset: { name: 'sst2' }, corruption: { layers: 'bottom:2' } });
  assert.deepEqual(corrupted.corruption, { layers: 'bottom:2', components: ['all'], mode: 'reinit' });
});

test('typos and wrong values are errors that name the field', () => {
  const bad: Array<[unknown, string]> = [
    [{ dataset: { name: 'sst2' }, sed: 1 }, 'sed'],
    [{ dataset: { name: 'sst2' }, recipe: { learningrate: 1e-5 } }, 'recipe.learningrate'],
    [{ dataset: { name: 'sst2', trainsize: 10 } }, 'dataset.trainsize'],
    [{ dataset: { name: 'sst2' }, corruption: { layers: 'top:1', mode: 'shuffle' } }, 'corruption.mode'],
    [{ dataset: { name: 'sst2' }, corruption: { layers: 'top:1', components: ['attn'] } }, 'corruption.components[0]'],
    [{ dataset: { name: 'sst2' }, recipe: { epochs: 0 } }, 'recipe.epochs'],
    [{ dataset: { name: 'sst2', trainSize: 1.5 } }, 'dataset.trainSize'],
    [{ dataset: { name: 'sst2' }, seed: -1 }, 'seed'],
    [{ dataset: {} }, 'dataset'],
    [{ dataset: { train: 'a.jsonl' } }, 'dataset'],
    [{ dataset: { name: 'sst2', train: 'a.jsonl', eval: 'b.jsonl' } }, 'dataset'],
    [{}, 'dataset'],
  ];
  for (const [input, path] of bad) {
    const parsed = ExperimentSpecSchema.safeParse(input);
    assert.equal(parsed.success, false, JSON.stringify(input));
    const message = formatIssues(parsed.error!);
    assert.ok(message.startsWith(`${path}: `), `${JSON.stringify(input)} -> ${message}`);
  }
  // User JSONL files instead of a registry name are fine.
  assert.ok(ExperimentSpecSchema.safeParse({ dataset: { train: 'a.jsonl', eval: 'b.jsonl' } }).success);
});

test('the hash is sha256 of the sorted-key JSON with defaults applied, first 16 hex chars', () => {
  const spec = { dataset: { name: 'sst2', trainSize: 100 }, seed: 2 };
  // Written out by hand, independently of canonicalJson: every default present, keys sorted.
  const canonical =
    '{"corruption":null,"dataset":{"maxLength":128,"name":"sst2","trainSize":100},"fromScratch":false,"model":"default",' +
    '"recipe":{"batchSize":32,"epochs":6,"evalBatchSize":64,"gradientAccumulation":1,"maxGradNorm":1,"warmupRatio":0.1,"weightDecay":0.01},' +
    '"seed":2}';
  const expected = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
  assert.equal(specHash(spec), expected);
});

test('equal specs hash equal whatever the key order and whether defaults are spelled out', () => {
  const a = { dataset: { name: 'sst2' }, corruption: { layers: 'top:3' }, seed: 1 };
  const b = {
    seed: 1,
    fromScratch: false,
    recipe: { weightDecay: 0.01, epochs: 6 },
    corruption: { mode: 'reinit' as const, components: ['all' as const], layers: 'top:3' },
    model: 'default',
    dataset: { maxLength: 128, name: 'sst2' },
  };
  assert.equal(specHash(a), specHash(b));
  assert.match(specHash(a), /^[0-9a-f]{16}$/);
  // ...and differ when anything meaningful differs.
  const variants = [
    { ...a, seed: 2 },
    { ...a, corruption: { layers: 'bottom:3' } },
    { ...a, corruption: null },
    { ...a, dataset: { name: 'sst2', maxLength: 64 } },
    { ...a, recipe: { learningRate: 3e-5 } },
    { ...a, fromScratch: true },
  ];
  const hashes = new Set([specHash(a), ...variants.map((v) => specHash(v))]);
  assert.equal(hashes.size, variants.length + 1);
});

test('canonicalJson sorts keys at every depth and drops undefined members', () => {
  const value = { b: [{ z: 1, y: undefined, x: { d: 1, c: 2 } }], a: 'x' };
  assert.equal(canonicalJson(value), '{"a":"x","b":[{"x":{"c":2,"d":1},"z":1}]}');
});

test('specLabel reads like the paper tables', () => {
  const spec = ExperimentSpecSchema.parse({ dataset: { name: 'sst2' }, corruption: { layers: 'bottom:2' }, seed: 1 });
  assert.equal(specLabel(spec), 'sst2 bottom:2/all/reinit seed 1');
  const clean = ExperimentSpecSchema.parse({ dataset: { train: '/data/reviews.jsonl', eval: '/data/dev.jsonl' } });
  assert.equal(specLabel(clean), 'reviews clean seed 0');
});

test('the paper preset: clean + bottom-K + top-K for K = 1..L, its seeds, per dataset', () => {
  const L = 4;
  const specs = presetSpecs('paper', { numLayers: L });
  assert.equal(specs.length, PAPER_DATASETS.reduce((n, d) => n + (1 + 2 * L) * paperSeeds(d).length, 0));
  assert.equal(new Set(specs.map((s) => specHash(s))).size, specs.length, 'no two specs share a hash');
  const sst2 = specs.filter((s) => s.dataset.name === 'sst2');
  const layers = new Set(sst2.map((s) => s.corruption?.layers ?? 'clean'));
  assert.deepEqual([...layers].sort(), ['bottom:1', 'bottom:2', 'bottom:3', 'bottom:4', 'clean', 'top:1', 'top:2', 'top:3', 'top:4']);
  assert.deepEqual([...new Set(specs.map((s) => s.seed))].sort(), [0, 1, 2, 3, 4]);
  assert.ok(specs.every((s) => s.recipe.epochs === RECIPE_DEFAULTS.epochs && s.model === 'default'));
  const two = presetSpecs('paper', { numLayers: 2, datasets: ['imdb', 'emotion'], model: 'tiny' });
  assert.equal(two.length, 5 * (paperSeeds('imdb').length + paperSeeds('emotion').length));
  assert.deepEqual([...new Set(two.map((s) => s.dataset.name))], ['imdb', 'emotion']);
  assert.ok(two.every((s) => s.model === 'tiny'));
});

test('the quick preset: sst2, clean vs bottom:K vs top:K at half the depth, three seeds, its sizes from QUICK', () => {
  const specs = presetSpecs('quick', { numLayers: 6 });
  assert.equal(specs.length, 9);
  assert.deepEqual(specs.map((s) => s.corruption?.layers ?? null), [null, 'bottom:3', 'top:3', null, 'bottom:3', 'top:3', null, 'bottom:3', 'top:3']);
  assert.deepEqual(specs.map((s) => s.seed), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
  for (const s of specs) {
    assert.equal(s.dataset.name, 'sst2');
    assert.equal(s.dataset.trainSize, QUICK.trainSize);
    assert.equal(s.dataset.evalSize, QUICK.evalSize);
    assert.equal(s.dataset.maxLength, QUICK.maxLength);
    assert.equal(s.recipe.epochs, QUICK.epochs);
  }
  assert.deepEqual(presetSpecs('quick', { numLayers: 4 }).map((s) => s.corruption?.layers ?? null).slice(0, 3), [null, 'bottom:2', 'top:2']);
  assert.deepEqual(presetSpecs('quick', { numLayers: 1 }).map((s) => s.corruption?.layers ?? null).slice(0, 3), [null, 'bottom:1', 'top:1']);
});

test('presets reject an unknown name and a bad depth', () => {
  assert.throws(() => presetSpecs('full', { numLayers: 4 }), (e: unknown) => e instanceof UserError && /unknown preset "full"/.test(e.message));
  assert.throws(() => presetSpecs('paper', { numLayers: 0 }), UserError);
  assert.throws(() => presetSpecs('paper', { numLayers: 2.5 }), UserError);
  assert.throws(() => presetSpecs('quick', { numLayers: 2, datasets: [] }), UserError);
});
