import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TFJS_NUMERICS } from '../src/backend/engine';
import { planGrid, runGrid } from '../src/experiment/grid';
import { specHash } from '../src/experiment/hash';
import {
  createIdentityResolver,
  identityChanges,
  identityHash,
  LEGACY_NUMERICS,
  modelFingerprint,
  rowHash,
  rowIdentity,
} from '../src/experiment/identity';
import { ExperimentSpecSchema, type ExperimentSpec, type ResultRow } from '../src/experiment/spec';
import { appendResult, DEFAULT_RESULTS_FILE, readResults } from '../src/experiment/store';
import { shippedModelDir } from '../src/io/models';
import type { ModelConfig } from '../src/model/config';
import { defaultLearningRate } from '../src/train/recipe';
import { exited, startRun, type Exit } from './helpers/cli-process';
import { fakeRow, fakeRunRow } from './helpers/fake-runner';
import { tempDirs } from './helpers/tmpdirs';

/**
 * A result's identity is what it ran: spec, model fingerprint, resolved recipe, engine numerics.
 * These tests change one of them at a time on the real planning and grid code (the runner is the
 * test double of test/helpers/fake-runner.ts, whose rows carry identities computed by the real
 * resolver in the worker).
 */

const fakeRunner = fileURLToPath(new URL('./helpers/fake-runner.ts', import.meta.url));
const tmp = tempDirs('identity');

/** A copy of the shipped tiny model, so its weights can change without touching the shipped one. */
function modelCopy(): string {
  const dir = join(tmp(), 'model');
  cpSync(shippedModelDir('tiny'), dir, { recursive: true });
  return dir;
}

/** What re-pretraining does to a model directory, as far as its fingerprint goes: other weight bytes. */
function changeWeights(dir: string): void {
  const file = join(dir, 'model.safetensors');
  const fd = openSync(file, 'r+');
  try {
    const at = statSync(file).size - 4;
    const last = Buffer.alloc(4);
    readSync(fd, last, 0, 4, at);
    last.writeFloatLE(last.readFloatLE(0) + 0.5);
    writeSync(fd, last, 0, 4, at);
  } finally {
    closeSync(fd);
  }
}

function specsFor(model: string, n = 2): ExperimentSpec[] {
  return Array.from({ length: n }, (_, seed) => ExperimentSpecSchema.parse({ model, dataset: { name: 'sst2', trainSize: 100 }, seed }));
}

/** Grid options with the engine's numerics fixed on both sides (the parent's plan, the worker's rows). */
/** The rate the learning-rate rule gives the test models (hidden 128): whatever the rule is today. */
const RULE_RATE = defaultLearningRate({ hiddenSize: 128 } as ModelConfig);

function gridOptions(resultsFile: string, numerics: string, workerNumerics = numerics) {
  return {
    workers: 1,
    resultsFile,
    runnerModule: fakeRunner,
    numerics,
    env: { FAKE_RUNNER_SLEEP_MS: '20', FAKE_RUNNER_NUMERICS: workerNumerics },
    progress: false,
  };
}

test('each of spec, model fingerprint, resolved recipe and numerics changes the identity; execution details do not', async () => {
  const dir = modelCopy();
  const [spec] = specsFor(dir, 1);
  const id = await createIdentityResolver({ numerics: 'tfjs-1' })(spec);
  assert.equal(id.modelFingerprint, await modelFingerprint(dir));
  assert.equal(id.recipe.learningRate, RULE_RATE, 'the learning rate the spec leaves open is resolved from the model (hidden 128)');
  assert.equal(id.numerics, 'tfjs-1');
  const hash = identityHash(id);
  assert.match(hash, /^[0-9a-f]{16}$/);
  assert.notEqual(hash, specHash(spec), 'the identity is more than the spec');
  const variants = [
    { ...id, spec: { ...spec, seed: 9 } },
    { ...id, modelFingerprint: '0123456789abcdef' },
    { ...id, recipe: { ...id.recipe, learningRate: 3e-4 } },
    { ...id, numerics: 'native-1' },
  ];
  const hashes = variants.map(identityHash);
  assert.equal(new Set([hash, ...hashes]).size, 5, 'every change gives another identity');
  assert.deepEqual(identityChanges(id, variants[3]), ['numerics tfjs-1 -> native-1']);
  assert.deepEqual(identityChanges(id, variants[2]), [`recipe learningRate ${RULE_RATE} -> 0.0003`]);

  // A row records how the run executed (a memory cap, fields of newer runners) beside its recipe.
  const row = await fakeRunRow(spec, createIdentityResolver({ numerics: 'tfjs-1' }));
  assert.equal(rowHash(row), hash);
  const executed = { ...row, recipe: { ...row.recipe, maxBatchTokens: 4096, someFutureField: true } } as ResultRow;
  assert.equal(rowHash(executed), hash);
  // Spelling out a default in the spec is the same spec.
  const spelled = ExperimentSpecSchema.parse({ ...spec, dataset: { ...spec.dataset, maxLength: 128 } });
  assert.equal(identityHash(await createIdentityResolver({ numerics: 'tfjs-1' })(spelled)), hash);
});

test('an old row without identity fields is matched as tfjs-1 with its recorded fingerprint and recipe', async () => {
  const dir = modelCopy();
  const [spec] = specsFor(dir, 1);
  const stock = createIdentityResolver({ numerics: TFJS_NUMERICS });
  const now = await stock(spec);
  // What the runner wrote before identities: hash = specHash(spec), no numerics; fingerprint and
  // resolved recipe recorded.
  const old = fakeRow(spec, 0.8, { modelFingerprint: now.modelFingerprint, recipe: now.recipe } as Partial<ResultRow>);
  assert.equal(old.hash, specHash(spec));
  assert.equal(old.numerics, undefined);
  assert.equal(LEGACY_NUMERICS, 'tfjs-1');
  assert.equal(rowIdentity(old).numerics, 'tfjs-1');

  const onStock = await planGrid([spec], [old], stock);
  assert.deepEqual({ done: onStock.done.length, pending: onStock.pending.length }, { done: 1, pending: 0 });
  const onNative = await planGrid([spec], [old], createIdentityResolver({ numerics: 'native-1' }));
  assert.deepEqual({ done: onNative.done.length, pending: onNative.pending.length }, { done: 0, pending: 1 });
  assert.deepEqual(onNative.pending[0].changes, ['numerics tfjs-1 -> native-1']);
  // A row that recorded no fingerprint cannot say it ran these weights.
  const unfingerprinted = fakeRow(spec, 0.8, { recipe: { ...now.recipe } });
  const blind = await planGrid([spec], [unfingerprinted], stock);
  assert.equal(blind.pending.length, 1);
  assert.match(blind.pending[0].changes[0], /^model fingerprint unrecorded -> [0-9a-f]{16}$/);
});

test('the recorded study: its rows read as tfjs-1, the stock engine finds them done, the native engine reruns them', async () => {
  const store = readResults(DEFAULT_RESULTS_FILE);
  const legacy = store.rows.filter((r) => r.numerics === undefined);
  // Append-only: the 78 rows recorded before identities stay as they were written.
  assert.equal(legacy.length, 78);
  assert.equal(store.duplicates, 0);
  for (const row of legacy) assert.equal(row.hash, specHash(row.spec), `${row.label}: written as its spec hash`);
  const current = await modelFingerprint(shippedModelDir('default'));
  const sameWeights = legacy.filter((r) => r.modelFingerprint === current);
  const specs = legacy.map((r) => r.spec);
  const stock = await planGrid(specs, legacy, createIdentityResolver({ numerics: TFJS_NUMERICS }));
  // Every recorded run of the default model as it is now is done on a stock engine (all 78 while the
  // shipped model is the one they ran; after a re-pretraining none is, and all rerun).
  assert.equal(stock.done.length, sameWeights.length);
  assert.equal(stock.pending.length, legacy.length - sameWeights.length);
  const native = await planGrid(specs, legacy, createIdentityResolver({ numerics: 'native-1' }));
  assert.equal(native.done.length, 0);
  assert.equal(native.pending.length, legacy.length);
  for (const p of native.pending.filter((q) => sameWeights.some((r) => specHash(r.spec) === specHash(q.spec)))) {
    assert.deepEqual(p.changes, ['numerics tfjs-1 -> native-1'], p.label);
  }
});

test('runGrid: a changed model fingerprint reruns; an unchanged one is skipped', async () => {
  const dir = modelCopy();
  const results = join(tmp(), 'results.jsonl');
  const specs = specsFor(dir);
  const options = gridOptions(results, 'tfjs-1');
  const first = await runGrid(specs, options);
  assert.deepEqual({ ran: first.ran, skipped: first.skipped, failed: first.failed }, { ran: 2, skipped: 0, failed: 0 });
  const unchanged = await runGrid(specs, options);
  assert.deepEqual({ ran: unchanged.ran, skipped: unchanged.skipped }, { ran: 0, skipped: 2 });

  const before = await modelFingerprint(dir);
  changeWeights(dir);
  const after = await modelFingerprint(dir);
  assert.notEqual(after, before);
  const retrained = await runGrid(specs, options);
  assert.deepEqual({ ran: retrained.ran, skipped: retrained.skipped, failed: retrained.failed }, { ran: 2, skipped: 0, failed: 0 });
  const rows = readResults(results);
  assert.equal(rows.rows.length, 4, 'the runs of the old weights stay, beside the new ones');
  assert.equal(rows.duplicates, 0);
  assert.deepEqual(rows.rows.map((r) => r.modelFingerprint), [before, before, after, after]);
  for (const row of rows.rows) assert.equal(row.hash, rowHash(row));
  const again = await runGrid(specs, options);
  assert.deepEqual({ ran: again.ran, skipped: again.skipped }, { ran: 0, skipped: 2 });
});

test('runGrid: a changed resolved recipe reruns; the same recipe is skipped', async () => {
  const dir = modelCopy();
  const results = join(tmp(), 'results.jsonl');
  const [changed, same] = specsFor(dir);
  const resolve = createIdentityResolver({ numerics: 'tfjs-1' });
  // A row of `changed` recorded when the rule resolved its open learning rate to 3e-4.
  const current = await fakeRunRow(changed, resolve);
  const olderRule = { ...current, recipe: { ...current.recipe, learningRate: 3e-4 } };
  appendResult(results, { ...olderRule, hash: rowHash(olderRule) });
  appendResult(results, await fakeRunRow(same, resolve));

  const plan = await planGrid([changed, same], readResults(results).rows, resolve);
  assert.deepEqual(plan.done.map((p) => p.spec.seed), [same.seed]);
  assert.deepEqual(plan.pending.map((p) => p.spec.seed), [changed.seed]);
  assert.deepEqual(plan.pending[0].changes, [`recipe learningRate 0.0003 -> ${RULE_RATE}`]);

  const summary = await runGrid([changed, same], gridOptions(results, 'tfjs-1'));
  assert.deepEqual({ ran: summary.ran, skipped: summary.skipped, failed: summary.failed }, { ran: 1, skipped: 1, failed: 0 });
  const rows = readResults(results).rows;
  assert.deepEqual(rows.map((r) => r.recipe.learningRate), [3e-4, RULE_RATE, RULE_RATE]);
});

test('runGrid: another engine numerics reruns; each engine then finds its own runs done', async () => {
  const dir = modelCopy();
  const results = join(tmp(), 'results.jsonl');
  const specs = specsFor(dir);
  const stock = await runGrid(specs, gridOptions(results, 'tfjs-1'));
  assert.equal(stock.ran, 2);
  const native = await runGrid(specs, gridOptions(results, 'native-1'));
  assert.deepEqual({ ran: native.ran, skipped: native.skipped, failed: native.failed }, { ran: 2, skipped: 0, failed: 0 });
  assert.deepEqual(readResults(results).rows.map((r) => r.numerics), ['tfjs-1', 'tfjs-1', 'native-1', 'native-1']);
  for (const numerics of ['tfjs-1', 'native-1']) {
    const again = await runGrid(specs, gridOptions(results, numerics));
    assert.deepEqual({ ran: again.ran, skipped: again.skipped }, { ran: 0, skipped: 2 }, numerics);
  }
});

test('a worker that ran other numerics than planned: stored under what it ran, reported failed, not counted done', async () => {
  const dir = modelCopy();
  const results = join(tmp(), 'results.jsonl');
  const specs = specsFor(dir);
  const summary = await runGrid(specs, gridOptions(results, 'tfjs-1', 'native-1'));
  assert.deepEqual({ ran: summary.ran, failed: summary.failed }, { ran: 0, failed: 2 });
  for (const f of summary.failures) assert.match(f.error, /another identity than planned \(numerics tfjs-1 -> native-1\)/);
  const rows = readResults(results).rows;
  assert.equal(rows.length, 2, 'nothing computed is lost');
  for (const row of rows) {
    assert.equal(row.numerics, 'native-1');
    assert.equal(row.hash, rowHash(row));
  }
  const onNative = await runGrid(specs, gridOptions(results, 'native-1'));
  assert.deepEqual({ ran: onNative.ran, skipped: onNative.skipped }, { ran: 0, skipped: 2 });
});

test('a spec whose model is missing fails without a worker; the rest of the grid runs', async () => {
  const results = join(tmp(), 'results.jsonl');
  const missing = ExperimentSpecSchema.parse({ model: join(tmp(), 'no-such-model'), dataset: { name: 'sst2' } });
  const specs = [missing, ...specsFor(modelCopy())];
  const summary = await runGrid(specs, gridOptions(results, 'tfjs-1'));
  assert.deepEqual({ total: summary.total, ran: summary.ran, failed: summary.failed }, { total: 3, ran: 2, failed: 1 });
  assert.match(summary.failures[0].error, /no such directory/);
  assert.equal(summary.failures[0].hash, specHash(missing));
});

/** `healing run ...` through the real CLI code. */
function cli(args: string[], env: Record<string, string>): Promise<Exit> {
  return exited(startRun(args, env));
}

test('healing run --dry-run decides on the engine this process starts: an old row is done on the stock engine', { timeout: 60_000 }, async () => {
  const dir = modelCopy();
  const results = join(tmp(), 'results.jsonl');
  const grid = join(tmp(), 'grid.json');
  writeFileSync(grid, JSON.stringify({ model: dir, datasets: [{ name: 'sst2', trainSize: 100 }], seeds: [0, 1] }));
  const [oldSpec, nativeSpec] = specsFor(dir);
  const stock = createIdentityResolver({ numerics: TFJS_NUMERICS });
  const now = await stock(oldSpec);
  appendResult(results, fakeRow(oldSpec, 0.8, { modelFingerprint: now.modelFingerprint, recipe: now.recipe } as Partial<ResultRow>));
  appendResult(results, await fakeRunRow(nativeSpec, createIdentityResolver({ numerics: 'native-1' })));
  // HEALING_NATIVE=0: a stock engine (tfjs-1) whether or not the native addon is built here.
  const out = await cli(['--grid', grid, '--results', results, '--dry-run'], { HEALING_NATIVE: '0', HEALING_BACKEND: 'wasm' });
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n');
  assert.match(lines[0], new RegExp(`^${identityHash(now)}  done     sst2 clean seed 0$`));
  assert.match(lines[1], /^[0-9a-f]{16}  pending  sst2 clean seed 1  \(changed since recorded: numerics native-1 -> tfjs-1\)$/);
  assert.deepEqual(JSON.parse(lines[2]), { total: 2, done: 1, pending: 1 });
});

test('a checkpoint stored as pytorch_model.bin is fingerprinted by its weights; a safetensors one as before', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'config.json'), '{"model_type": "bert"}');
  writeFileSync(join(dir, 'pytorch_model.bin'), 'weights, first version');
  const first = await modelFingerprint(dir);
  writeFileSync(join(dir, 'pytorch_model.bin'), 'weights, second version');
  assert.notEqual(await modelFingerprint(dir), first, 'other weights, other fingerprint');
  // The study's rows record the shipped default's fingerprint (config.json then model.safetensors): reading
  // .bin files must not have moved it.
  const shipped = shippedModelDir('default');
  const hash = createHash('sha256');
  for (const file of ['config.json', 'model.safetensors']) hash.update(readFileSync(join(shipped, file)));
  assert.equal(await modelFingerprint(shipped), hash.digest('hex').slice(0, 16));
});
