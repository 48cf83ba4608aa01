import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureResults, modelDepth, notebookParameters, provenanceStamp, stampText, studySpecs } from '../src/analysis/study';
import { specHash } from '../src/experiment/hash';
import { presetSpecs } from '../src/experiment/presets';
import { appendResult } from '../src/experiment/store';
import { fakeRow, fakeRunRow } from './helpers/fake-runner';

const fakeRunner = fileURLToPath(new URL('./helpers/fake-runner.ts', import.meta.url));

function withEnv<T>(env: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

test('notebookParameters: quick unless HEALING_QUICK=0, the notebook overrides win, HEALING_MODEL picks the model', () => {
  const quick = withEnv({ HEALING_QUICK: undefined, HEALING_MODEL: undefined, HEALING_RUN_MISSING: undefined }, () => notebookParameters());
  assert.equal(quick.quick, true);
  assert.equal(quick.model, 'tiny');
  assert.ok(quick.trainSize <= 256 && quick.epochs <= 2 && quick.maxLength <= 64, 'quick mode is small');
  assert.match(quick.resultsFile, /^runs[/\\]notebooks[/\\]/);
  const full = withEnv({ HEALING_QUICK: '0', HEALING_MODEL: undefined, HEALING_RUN_MISSING: undefined }, () => notebookParameters({ datasets: ['sst2'] }));
  assert.equal(full.quick, false);
  assert.equal(full.model, 'default');
  assert.equal(full.resultsFile, 'data/results/results.jsonl');
  assert.equal(full.runMissing, false);
  assert.deepEqual(full.datasets, ['sst2']);
  const env = withEnv({ HEALING_QUICK: '1', HEALING_MODEL: '/some/dir', HEALING_RUN_MISSING: '0' }, () => notebookParameters());
  assert.equal(env.model, '/some/dir');
  assert.equal(env.runMissing, false);
});

test('studySpecs with the full defaults are exactly the paper preset, so recorded hashes are found', () => {
  const full = withEnv({ HEALING_QUICK: '0', HEALING_MODEL: undefined }, () => notebookParameters({ datasets: ['sst2', 'emotion'] }));
  const ours = studySpecs(full, 4).map(specHash).sort();
  const preset = presetSpecs('paper', { numLayers: 4, datasets: ['sst2', 'emotion'] }).map(specHash).sort();
  assert.deepEqual(ours, preset);
  const quick = withEnv({ HEALING_QUICK: '1', HEALING_MODEL: undefined }, () => notebookParameters());
  // clean + bottom/top for K = 1, 2, per seed.
  assert.equal(studySpecs(quick, 4).length, quick.datasets.length * quick.seeds.length * 5);
  assert.equal(studySpecs(quick, 1).length, quick.datasets.length * quick.seeds.length * 3, 'K above the depth is dropped');
});

test('ensureResults reports what is missing, runs it on request, and then finds everything recorded', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'healing-study-'));
  try {
    const resultsFile = join(dir, 'results.jsonl');
    const params = notebookParameters({ quick: true, model: 'tiny', datasets: ['sst2'], seeds: [0, 1], ks: [1], resultsFile });
    const specs = studySpecs(params, 4);
    // Recorded under the identity it runs under now (this model's weights, the resolved recipe, this engine).
    appendResult(resultsFile, await fakeRunRow(specs[0]));
    const lines: string[] = [];
    const dry = await ensureResults(specs, { resultsFile, runMissing: false, log: (l) => lines.push(l) });
    assert.equal(dry.recorded, 1);
    assert.equal(dry.missing.length, specs.length - 1);
    assert.equal(dry.rows.length, 1);
    assert.match(dry.message, /missing/);
    assert.match(dry.message, /runMissing/);
    const run = await ensureResults(specs, { resultsFile, runMissing: true, workers: 2, runnerModule: fakeRunner, progress: false, log: (l) => lines.push(l) });
    assert.equal(run.ran, specs.length - 1);
    assert.equal(run.missing.length, 0);
    assert.deepEqual(run.rows.map((r) => specHash(r.spec)), specs.map(specHash), 'rows come back in spec order');
    assert.ok(lines.some((l) => /^\[\d+\/\d+\] sst2 /.test(l)), 'one line per finished run');
    const again = await ensureResults(specs, { resultsFile, runMissing: true, runnerModule: fakeRunner, log: false });
    assert.equal(again.ran, 0);
    assert.equal(again.recorded, specs.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('provenanceStamp: the results file hash, row count, stale rows and the commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'healing-stamp-'));
  try {
    const resultsFile = join(dir, 'results.jsonl');
    const base = { model: 'default', dataset: { name: 'sst2' } };
    const rows = [0, 1, 2].map((seed) => fakeRow({ ...base, seed }, 0.8, { modelFingerprint: seed === 2 ? 'bbbbbbbbbbbbbbbb' : 'aaaaaaaaaaaaaaaa' } as object));
    writeFileSync(resultsFile, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const stamp = await provenanceStamp({ resultsFile });
    assert.equal(stamp.resultsSha256, createHash('sha256').update(readFileSync(resultsFile)).digest('hex'));
    assert.equal(stamp.resultRows, 3);
    assert.equal(stamp.staleRows, 1);
    assert.deepEqual(stamp.models, { default: ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb'] });
    assert.equal(stamp.packageVersion, JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
    assert.match(stamp.gitCommit, /^([0-9a-f]{40}|unknown)$/);
    const text = stampText(stamp);
    assert.ok(text.includes(stamp.resultsSha256!.slice(0, 16)) && text.includes('1 stale'), text);
    const none = await provenanceStamp({ resultsFile: join(dir, 'absent.jsonl') });
    assert.equal(none.resultsSha256, undefined);
    assert.equal(none.resultRows, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("study(P) in full mode asks for the paper preset's seeds per dataset, as the report reads them", async (t) => {
  t.mock.method(console, 'log', () => {});
  const { study } = await import('../src');
  const dir = mkdtempSync(join(tmpdir(), 'healing-study-seeds-'));
  try {
    const P = withEnv({ HEALING_QUICK: '0', HEALING_MODEL: 'tiny', HEALING_RUN_MISSING: undefined }, () => notebookParameters({ resultsFile: join(dir, 'r.jsonl') }));
    const dry = await study({ ...P, datasets: ['sst2', 'imdb'], corruptions: [null] });
    const seedsOf = (name: string) => dry.missing.filter((s) => s.dataset.name === name).map((s) => s.seed);
    assert.deepEqual(seedsOf('sst2'), [...P.seedsPerDataset!.sst2]);
    assert.deepEqual(seedsOf('imdb'), [...P.seedsPerDataset!.imdb]);
    assert.ok(P.seedsPerDataset!.sst2.length > P.seedsPerDataset!.imdb.length, 'more seeds where runs are cheap');
    // The same specs the paper preset runs: their hashes find the recorded rows.
    const preset = new Set(presetSpecs('paper', { model: 'tiny', numLayers: await modelDepth('tiny') }).map((s) => specHash(s)));
    for (const spec of dry.missing) assert.ok(preset.has(specHash(spec)), `${spec.dataset.name} seed ${spec.seed} is a paper-preset spec`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
