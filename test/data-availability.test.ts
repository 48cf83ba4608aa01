import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as registerEvaluate } from '../src/cli/evaluate';
import { UserError } from '../src/errors';
import { DatasetUnavailableError, ensureDataset, prepareDatasets } from '../src/data/availability';
import { loadDataset } from '../src/data/dataset';
import { dataDir, defaultDataDir } from '../src/data/local';
import { downloadDataset } from '../src/data/parquet';
import { DATASET_NAMES, HUB_DATASET_NAMES, SAMPLES_DIR, datasetEntry } from '../src/data/registry';
import { PRESET_FALLBACKS, presetSpecs } from '../src/experiment/presets';
import { sst2SampleFiles } from '../scripts/make-sst2-sample';
import { captureOutput } from './helpers/capture-output';
import { closedPort, startHubServer, type HubServer } from './helpers/hub-server';
import { makeTinyModel } from './helpers/tiny-model';
import { tempDirs } from './helpers/tmpdirs';

const SHARED = process.env.HEALING_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url));
const SHARED_DATASETS = join(SHARED, 'data', 'datasets');
const tmp = tempDirs('availability');
const ENV_KEYS = ['HOME', 'XDG_CACHE_HOME', 'HEALING_DATA_DIR', 'HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_TOKEN'];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
let server: HubServer;
let offlineEndpoint: string;

before(async () => {
  process.env.HEALING_PROGRESS = '0';
  // SST-2 as the hub serves it, with its 872-row validation file standing in for the 67,349-row train
  // file too: the fetch, the conversion and the checks are the same, in seconds (datasets.test.ts
  // downloads the real train file end to end).
  const hub = tmp();
  const files = join(hub, 'stanfordnlp', 'sst2', 'data');
  mkdirSync(files, { recursive: true });
  const validation = join(SHARED, 'data', 'hub', 'stanfordnlp', 'sst2', 'data', 'validation-00000-of-00001.parquet');
  for (const split of ['train', 'validation']) copyFileSync(validation, join(files, `${split}-00000-of-00001.parquet`));
  server = await startHubServer({ root: hub });
  offlineEndpoint = `http://127.0.0.1:${await closedPort()}`;
});

after(async () => {
  await server.close();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** A fresh user: a HOME of its own, no HEALING_DATA_DIR, no hub settings but the endpoint. */
function freshUser(endpoint: string): { home: string } {
  const home = tmp();
  for (const k of ENV_KEYS) delete process.env[k];
  process.env.HOME = home;
  process.env.HF_ENDPOINT = endpoint;
  return { home };
}

beforeEach(() => {
  server.requests.length = 0;
});

/**
 * `healing evaluate` in this process (a child process costs minutes of start-up on a loaded machine):
 * its stderr lines and its JSON line, as the command writes them.
 */
async function evaluateCommand(args: string[]): Promise<{ stderr: string; json: Record<string, unknown> }> {
  const program = new Command().exitOverride();
  registerEvaluate(program);
  const { stdout, stderr } = await captureOutput('{"model"', () => program.parseAsync(['evaluate', ...args], { from: 'user' }));
  return { stderr, json: JSON.parse(stdout.trim()) };
}

test('the default data directory is a user cache: XDG_CACHE_HOME, else ~/.cache', () => {
  const { home } = freshUser(offlineEndpoint);
  assert.equal(defaultDataDir(), join(home, '.cache', 'healing-bert', 'datasets'));
  assert.equal(dataDir(), defaultDataDir());
  process.env.XDG_CACHE_HOME = join(home, 'xdg');
  assert.equal(dataDir(), join(home, 'xdg', 'healing-bert', 'datasets'));
  process.env.HEALING_DATA_DIR = join(home, 'mine');
  assert.equal(dataDir(), join(home, 'mine'));
  assert.equal(dataDir(join(home, 'flag')), join(home, 'flag'));
});

test('a command that needs a dataset fetches it from the hub on first use, and not on second use', async () => {
  const { home } = freshUser(server.endpoint);
  const model = await makeTinyModel(join(home, 'model'), { head: 'classifier' });
  const folder = join(home, '.cache', 'healing-bert', 'datasets', 'sst2');
  const args = ['--model', model.dir, '--dataset', 'sst2', '--max-length', '32'];

  const first = await evaluateCommand(args);
  assert.match(first.stderr, /sst2: not in .*sst2 \(the default data directory; HEALING_DATA_DIR is not set\); fetching it from http:\/\/127\.0\.0\.1:\d+\/datasets\/stanfordnlp\/sst2/);
  assert.match(first.stderr, /sst2\/train: 872 rows -> /);
  assert.match(first.stderr, /sst2\/validation: 872 rows -> /);
  const gets = server.requests.filter((r) => r.method === 'GET' && r.path.includes('/datasets/stanfordnlp/sst2/'));
  assert.deepEqual(gets.map((r) => r.path.split('/').at(-1)).sort(), ['train-00000-of-00001.parquet', 'validation-00000-of-00001.parquet']);
  assert.equal(first.json.examples, 872);
  assert.ok(existsSync(join(folder, 'info.json')));
  assert.ok(existsSync(join(home, '.cache', 'huggingface', 'hub', 'datasets--stanfordnlp--sst2')), 'the hub files go to the hub cache, as huggingface_hub puts them');
  assert.deepEqual(readdirSync(join(folder, '..')), ['sst2'], 'no lock left behind');

  server.requests.length = 0;
  const second = await evaluateCommand(args);
  assert.doesNotMatch(second.stderr, /fetching/);
  assert.equal(second.json.examples, 872);
  assert.deepEqual(server.requests, [], 'the second use asks the hub nothing');
});

test('offline, a missing dataset fails naming it, the folder looked in and the two fixes', async () => {
  const { home } = freshUser(offlineEndpoint);
  const folder = join(home, '.cache', 'healing-bert', 'datasets', 'emotion');
  await assert.rejects(loadDataset({ name: 'emotion' }), (error: unknown) => {
    assert.ok(error instanceof DatasetUnavailableError);
    const message = error.message;
    assert.ok(message.startsWith(`dataset emotion is not in ${folder} (the default data directory; HEALING_DATA_DIR is not set)`), message);
    assert.match(message, /cannot be fetched: http:\/\/127\.0\.0\.1:\d+ cannot be reached \(ECONNREFUSED\)/);
    assert.match(message, /set HEALING_DATA_DIR to a folder that has emotion\//);
    assert.match(message, /run `healing download-dataset emotion` with internet/);
    return true;
  });
  assert.ok(!existsSync(join(folder, '..', '.emotion.fetching')), 'no lock left behind');

  // With --data-dir the fixes name the flag, and the download command carries it.
  const mine = join(home, 'data');
  await assert.rejects(loadDataset({ name: 'imdb', dataDir: mine }), (error: unknown) => {
    assert.ok(error instanceof DatasetUnavailableError);
    assert.equal(error.folder, join(mine, 'imdb'));
    assert.match(error.message, /\(--data-dir\)/);
    assert.match(error.message, /point --data-dir \(or HEALING_DATA_DIR\) at a folder that has imdb\//);
    assert.ok(error.message.includes(`healing download-dataset imdb --data-dir ${mine}`));
    return true;
  });
  // HF_HUB_OFFLINE: no request at all, the same kind of error.
  process.env.HF_HUB_OFFLINE = '1';
  process.env.HF_ENDPOINT = server.endpoint;
  await assert.rejects(loadDataset({ name: 'sst2' }), (error: unknown) => error instanceof DatasetUnavailableError && /HF_HUB_OFFLINE/.test(error.message));
  assert.deepEqual(server.requests, []);
});

test('sst2-sample: embedded, 2,000 train / 872 validation with both labels, no data directory and no network', async () => {
  const { home } = freshUser(offlineEndpoint);
  process.env.HEALING_DATA_DIR = join(home, 'nothing-here');
  const data = await loadDataset({ name: 'sst2-sample' });
  assert.equal(data.train.labels.length, 2000);
  assert.equal(data.eval.labels.length, 872);
  for (const split of [data.train, data.eval]) assert.deepEqual([...new Set(split.labels)].sort(), [0, 1]);
  assert.deepEqual(data.labelNames, datasetEntry('sst2').labelNames);
  assert.equal(data.train.source, join(SAMPLES_DIR, 'sst2-sample', 'train.jsonl'));
  assert.ok(!existsSync(join(home, 'nothing-here')), 'the data directory is not touched');
  assert.ok(DATASET_NAMES.includes('sst2-sample'));
  assert.ok(!HUB_DATASET_NAMES.includes('sst2-sample'));
  await assert.rejects(downloadDataset('sst2-sample', { dataDir: join(home, 'd') }), /sst2-sample is embedded in the repository .* never downloaded/);
  // Its validation split is SST-2's, line for line.
  const shared = join(SHARED_DATASETS, 'sst2', 'validation.jsonl');
  if (existsSync(shared)) {
    assert.equal(readFileSync(join(SAMPLES_DIR, 'sst2-sample', 'validation.jsonl'), 'utf8'), readFileSync(shared, 'utf8'));
  }
});

test('sst2-sample is exactly what its README selection command makes from ../shared', { skip: !existsSync(join(SHARED_DATASETS, 'sst2')) && 'no ../shared' }, async () => {
  const files = await sst2SampleFiles(join(SHARED_DATASETS, 'sst2'));
  for (const [name, text] of Object.entries(files)) {
    assert.equal(readFileSync(join(SAMPLES_DIR, 'sst2-sample', name), 'utf8'), text, name);
  }
  const sharedLines = new Set(readFileSync(join(SHARED_DATASETS, 'sst2', 'train.jsonl'), 'utf8').split('\n'));
  for (const line of files['train.jsonl'].trim().split('\n')) assert.ok(sharedLines.has(line), 'every training line is an SST-2 line');
});

test('the quick preset falls back to sst2-sample where sst2 is neither here nor fetchable, and says so', async () => {
  freshUser(offlineEndpoint);
  const planned = presetSpecs('quick', { numLayers: 6 });
  const lines: string[] = [];
  const specs = await prepareDatasets(planned, { fallbacks: PRESET_FALLBACKS.quick, log: (l) => lines.push(l) });
  assert.equal(specs.length, planned.length);
  assert.deepEqual([...new Set(specs.map((s) => s.dataset.name))], ['sst2-sample']);
  specs.forEach((s, i) => assert.deepEqual({ ...s, dataset: { ...s.dataset, name: 'sst2' } }, planned[i], 'only the name changes'));
  const notice = lines.find((l) => l.startsWith('sst2 not available here'));
  assert.ok(notice, lines.join('\n'));
  assert.match(notice, /^sst2 not available here \(no copy in .*sst2, and http:\/\/127\.0\.0\.1:\d+ cannot be reached \(ECONNREFUSED\)\); using the embedded sample sst2-sample: 2,000 train \/ 872 validation$/);

  // A dataset the user names, or a preset without a stand-in, fails instead.
  await assert.rejects(prepareDatasets(planned, { log: () => {} }), DatasetUnavailableError);
  await assert.rejects(prepareDatasets(presetSpecs('paper', { numLayers: 1, datasets: ['sst2'] }), { fallbacks: PRESET_FALLBACKS.paper, log: () => {} }), DatasetUnavailableError);

  // Where sst2 is here, the preset runs on it.
  const here = await prepareDatasets(planned, { dataDir: SHARED_DATASETS, fallbacks: PRESET_FALLBACKS.quick, log: (l) => lines.push(`here: ${l}`) });
  assert.deepEqual(here, planned);
});

test('paper preset on sst2: one warning for 1,000 evaluation examples asked of 872; a training size above the data fails', async () => {
  freshUser(offlineEndpoint);
  const specs = presetSpecs('paper', { numLayers: 2, datasets: ['sst2', 'sst2-sample'] });
  const lines: string[] = [];
  const prepared = await prepareDatasets(specs, { dataDir: SHARED_DATASETS, log: (l) => lines.push(l) });
  assert.deepEqual(prepared, specs);
  assert.deepEqual(lines, [
    'warning: sst2: 872 evaluation examples available, 1,000 asked; using 872',
    'warning: sst2-sample: 872 evaluation examples available, 1,000 asked; using 872',
  ]);
  const big = presetSpecs('quick', { numLayers: 1, datasets: ['sst2-sample'] }).map((s) => ({ ...s, dataset: { ...s.dataset, trainSize: 5000 } }));
  await assert.rejects(prepareDatasets(big, { log: () => {} }), (e: unknown) => e instanceof UserError && /train size 5,000: sst2-sample has only 2,000 train examples/.test(e.message));
});

test('concurrent first uses fetch once; a lock left by a killed process is taken over', { timeout: 120_000 }, async () => {
  const { home } = freshUser(server.endpoint);
  const dir = join(home, 'data');
  const logs: string[] = [];
  const folders = await Promise.all([1, 2, 3].map(() => ensureDataset('sst2', { dataDir: dir, log: (l) => logs.push(l) })));
  assert.deepEqual(folders, [join(dir, 'sst2'), join(dir, 'sst2'), join(dir, 'sst2')]);
  const gets = server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('train-00000-of-00001.parquet'));
  assert.equal(gets.length, 1, 'one download for three callers');
  assert.equal(logs.filter((l) => l.includes('fetching it from')).length, 1);

  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const other = join(home, 'other');
  mkdirSync(join(other, '.emotion.fetching'), { recursive: true });
  writeFileSync(join(other, '.emotion.fetching', 'owner.json'), JSON.stringify({ pid: dead, host: hostname(), startedAt: new Date().toISOString(), token: 'killed', leaseMs: 3_600_000 }));
  // A fresh heartbeat and an hour's lease: only the dead pid (the rule run claims use) frees this lock.
  // The hub here has no emotion: taking the lock over is what lets the fetch run, and fail, at all.
  await assert.rejects(ensureDataset('emotion', { dataDir: other, log: () => {} }), (e: unknown) => e instanceof DatasetUnavailableError && /RepoNotFound|not found/.test(e.message));
  assert.ok(!existsSync(join(other, '.emotion.fetching')));
});
