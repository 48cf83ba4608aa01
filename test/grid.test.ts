import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors';
import { expandGrid, expandGridJson, parseShard, runGrid, shardOf, workerEnv, workerThreads, type GridEvent } from '../src/experiment/grid';
import { specHash } from '../src/experiment/hash';
import { presetSpecs } from '../src/experiment/presets';
import { readResults } from '../src/experiment/store';
import { exited, startRun } from './helpers/cli-process';
import { fakeSpecs, identityHashes, rawHashes } from './helpers/grid-runs';
import { tempDirs } from './helpers/tmpdirs';

const fakeRunner = fileURLToPath(new URL('./helpers/fake-runner.ts', import.meta.url));
const tmp = tempDirs('grid');

function writeGrid(content: string): string {
  const file = join(tmp(), 'grid.json');
  writeFileSync(file, content);
  return file;
}

test('a cross-product grid expands dataset x corruption x seed in a stable order', () => {
  const file = writeGrid(
    JSON.stringify({
      model: 'tiny',
      datasets: ['sst2', { name: 'emotion', trainSize: 100 }],
      corruptions: [null, 'bottom:1', { layers: 'top:1', components: ['ffn'], mode: 'zero' }],
      seeds: [0, 1],
      recipe: { epochs: 1, learningRate: 3e-5 },
    }),
  );
  const specs = expandGrid(file);
  assert.equal(specs.length, 2 * 3 * 2);
  const summary = specs.map((s) => `${s.dataset.name}|${s.corruption?.layers ?? 'clean'}|${s.seed}`);
  assert.deepEqual(summary.slice(0, 6), ['sst2|clean|0', 'sst2|clean|1', 'sst2|bottom:1|0', 'sst2|bottom:1|1', 'sst2|top:1|0', 'sst2|top:1|1']);
  assert.ok(specs.every((s) => s.model === 'tiny' && s.recipe.epochs === 1 && s.recipe.learningRate === 3e-5));
  assert.equal(specs[6].dataset.trainSize, 100);
  assert.deepEqual(specs[4].corruption, { layers: 'top:1', components: ['ffn'], mode: 'zero' });
  assert.deepEqual(specs[2].corruption, { layers: 'bottom:1', components: ['all'], mode: 'reinit' });
  assert.deepEqual(expandGrid(file), specs, 'same file, same order');
});

test('a list grid takes explicit specs and drops exact duplicates', () => {
  const a = { dataset: { name: 'sst2' }, seed: 1 };
  const specs = expandGridJson({ experiments: [a, { seed: 1, dataset: { name: 'sst2', maxLength: 128 } }, { dataset: { name: 'imdb' } }] });
  assert.deepEqual(specs.map((s) => s.dataset.name), ['sst2', 'imdb']);
});

test('bad grid files fail with the file name and the JSON path', () => {
  const cases: Array<[string, RegExp]> = [
    ['{ "datasets": ["sst2", ', /grid\.json: not valid JSON/],
    ['[1, 2]', /grid\.json: expected a JSON object/],
    [JSON.stringify({ datasets: ['sst2', 'imdb', { name: 'x', trainSize: 'many' }] }), /grid\.json: datasets\[2\]\.trainSize: .*expected number/],
    [JSON.stringify({ datasets: ['sst2'], seeds: [0, 'one'] }), /grid\.json: seeds\[1\]: .*expected number/],
    [JSON.stringify({ datasets: ['sst2'], sedes: [0] }), /grid\.json: sedes: Unrecognized key/],
    [JSON.stringify({ datasets: ['sst2'], recipe: { epoch: 2 } }), /grid\.json: recipe\.epoch: Unrecognized key/],
    [JSON.stringify({ datasets: ['sst2'], corruptions: [{ layers: 'top:1', mode: 'melt' }] }), /grid\.json: corruptions\[0\]\.mode/],
    [JSON.stringify({ datasets: [] }), /grid\.json: datasets: /],
    [JSON.stringify({ experiments: [{ dataset: { name: 'sst2' } }, { dataset: { name: 'sst2' }, recipe: { epochs: -1 } }] }), /grid\.json: experiments\[1\]\.recipe\.epochs/],
  ];
  for (const [content, pattern] of cases) {
    const file = writeGrid(content);
    assert.throws(
      () => expandGrid(file),
      (e: unknown) => e instanceof UserError && pattern.test(e.message) && e.message.startsWith(file),
      content,
    );
  }
  assert.throws(() => expandGrid(join(tmp(), 'missing.json')), (e: unknown) => e instanceof UserError && /missing\.json: no such file/.test(e.message));
});

test('shards partition the specs exactly and deterministically', () => {
  const specs = presetSpecs('paper', { numLayers: 3 });
  for (const n of [1, 2, 3, 7]) {
    const shards = Array.from({ length: n }, (_, i) => shardOf(specs, i + 1, n));
    const hashes = shards.flat().map((s) => specHash(s));
    assert.equal(hashes.length, specs.length, `n=${n}: every spec in exactly one shard`);
    assert.equal(new Set(hashes).size, specs.length);
    assert.deepEqual(shardOf(specs, 1, n), shards[0]);
    // Shard membership depends on the spec alone, not on its neighbours in the list.
    assert.deepEqual(shardOf([...specs].reverse(), 1, n).map(specHash).sort(), shards[0].map(specHash).sort());
  }
  assert.deepEqual(parseShard('2/4'), { index: 2, count: 4 });
  for (const bad of ['0/3', '4/3', '1/0', 'a/b', '2']) assert.throws(() => parseShard(bad), UserError, bad);
  assert.throws(() => shardOf(specs, 0, 2), UserError);
});

test('runGrid runs pending specs on workers, then skips them all on rerun', async () => {
  const results = join(tmp(), 'out', 'results.jsonl');
  const specs = fakeSpecs(4);
  const events: GridEvent[] = [];
  const env = { FAKE_RUNNER_SLEEP_MS: '200' };
  const options = { workers: 2, resultsFile: results, runnerModule: fakeRunner, env, progress: false };
  const first = await runGrid(specs, { ...options, onEvent: (e) => events.push(e) });
  assert.deepEqual({ ran: first.ran, skipped: first.skipped, failed: first.failed }, { ran: 4, skipped: 0, failed: 0 });
  assert.deepEqual(rawHashes(results).sort(), (await identityHashes(specs)).sort(), 'each row is stored under its identity');
  assert.deepEqual(readResults(results).rows.map((r) => specHash(r.spec)).sort(), specs.map(specHash).sort());
  const workers = new Set(events.flatMap((e) => (e.type === 'start' ? [e.worker] : [])));
  assert.equal(workers.size, 2, 'both workers took runs');
  assert.ok(events.some((e) => e.type === 'progress'), 'progress from the runner reaches the parent');
  const pids = new Set(readResults(results).rows.map((r) => r.workerPid));
  assert.ok(!pids.has(process.pid), 'runs happen in child processes');

  const before = readFileSync(results, 'utf8');
  const second = await runGrid([...specs, ...fakeSpecs(1, 'imdb')], options);
  assert.deepEqual({ total: second.total, skipped: second.skipped, ran: second.ran }, { total: 5, skipped: 4, ran: 1 });
  assert.ok(readFileSync(results, 'utf8').startsWith(before), 'append-only');
  assert.equal(rawHashes(results).length, 5);
});

test('worker threads: max(1, floor(cores / workers)), unless HEALING_THREADS is already set', () => {
  assert.deepEqual([[2, 1], [2, 2], [2, 3], [8, 3], [1, 4], [16, 16]].map(([c, w]) => workerThreads(c, w)), [2, 1, 1, 2, 1, 1]);
  const base = { PATH: '/bin', HEALING_BACKEND: 'wasm' };
  const env = workerEnv({ base, extra: { FAKE: '1' }, workers: 2, cores: 4 });
  assert.deepEqual(env, { PATH: '/bin', HEALING_BACKEND: 'wasm', FAKE: '1', HEALING_PROGRESS: '0', HEALING_THREADS: '2' });
  assert.deepEqual(base, { PATH: '/bin', HEALING_BACKEND: 'wasm' }, 'pure: the base environment is untouched');
  assert.equal(workerEnv({ base, workers: 3, cores: 2 }).HEALING_THREADS, '1', 'never 0');
  assert.equal(workerEnv({ base: { HEALING_THREADS: '3' }, workers: 2, cores: 4 }).HEALING_THREADS, '3', 'set in the environment: kept');
  assert.equal(workerEnv({ base: { HEALING_THREADS: '3' }, extra: { HEALING_THREADS: '1' }, workers: 2, cores: 4 }).HEALING_THREADS, '1');
  assert.equal(workerEnv({ base: { HEALING_THREADS: ' ' }, workers: 1, cores: 4 }).HEALING_THREADS, '4', 'blank counts as unset');
});

test('each grid worker is started with its share of the cores as HEALING_THREADS', async () => {
  const results = join(tmp(), 'results.jsonl');
  const cores = availableParallelism();
  const set = process.env.HEALING_THREADS?.trim();
  const options = { resultsFile: results, runnerModule: fakeRunner, progress: false };
  await runGrid(fakeSpecs(2), { ...options, workers: 2, env: { FAKE_RUNNER_SLEEP_MS: '50' } });
  const threads = readResults(results).rows.map((r) => r.workerThreads);
  assert.deepEqual(threads, [0, 1].map(() => (set ? set : String(Math.max(1, Math.floor(cores / 2))))));
  await runGrid(fakeSpecs(1, 'imdb'), { ...options, workers: 2, env: { FAKE_RUNNER_SLEEP_MS: '50', HEALING_THREADS: '1' } });
  assert.equal(readResults(results).rows[2].workerThreads, '1', 'a HEALING_THREADS the caller set wins');
});

test('failures: a crash is retried once on a new worker, then reported failed; a UserError is not retried; the grid goes on', async () => {
  const dir = tmp();
  const results = join(dir, 'results.jsonl');
  const specs = fakeSpecs(6);
  const faults = [
    { seed: 1, kind: 'crash-once', markerDir: join(dir, 'markers') },
    { seed: 3, kind: 'crash' },
    { seed: 4, kind: 'user-error' },
  ];
  const events: GridEvent[] = [];
  const summary = await runGrid(specs, {
    workers: 2,
    resultsFile: results,
    runnerModule: fakeRunner,
    env: { FAKE_RUNNER_SLEEP_MS: '100', FAKE_RUNNER_FAIL: JSON.stringify(faults) },
    onEvent: (e) => events.push(e),
    progress: false,
  });
  assert.deepEqual({ ran: summary.ran, failed: summary.failed }, { ran: 4, failed: 2 });
  const ids = await identityHashes(specs);
  assert.deepEqual(summary.failures.map((f) => f.hash).sort(), [ids[3], ids[4]].sort());
  const attempts = (seed: number): number => events.filter((e) => e.type === 'start' && e.hash === ids[seed]).length;
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(attempts), [1, 2, 1, 2, 1, 1]);
  const crash = events.find((e) => e.type === 'failure' && e.hash === ids[1]);
  assert.ok(crash?.type === 'failure' && /exited with code 3/.test(crash.error) && crash.retrying);
  const userError = summary.failures.find((f) => f.hash === ids[4]);
  assert.match(userError!.error, /not found/);
  const stored = rawHashes(results);
  assert.deepEqual(stored.sort(), [0, 1, 2, 5].map((i) => ids[i]).sort(), 'failed runs are not stored');

  // Once the faults are gone, a rerun picks up exactly the failed runs.
  const healed = await runGrid(specs, { workers: 1, resultsFile: results, runnerModule: fakeRunner, env: { FAKE_RUNNER_SLEEP_MS: '100' }, progress: false });
  assert.deepEqual({ skipped: healed.skipped, ran: healed.ran, failed: healed.failed }, { skipped: 4, ran: 2, failed: 0 });
  assert.equal(new Set(rawHashes(results)).size, 6);
  assert.equal(rawHashes(results).length, 6);
});

test('a runner module that cannot load stops the grid with one clear error', async () => {
  const results = join(tmp(), 'results.jsonl');
  await assert.rejects(
    runGrid(fakeSpecs(3), { workers: 2, resultsFile: results, runnerModule: join(tmp(), 'no-such-runner.ts'), progress: false }),
    (e: unknown) => e instanceof UserError && /cannot start grid workers/.test(e.message) && /no-such-runner/.test(e.message),
  );
  assert.ok(!existsSync(results));
});

test('kill -9 in the middle of a grid, then a rerun: nothing lost, nothing duplicated', async () => {
  const dir = tmp();
  const results = join(dir, 'results.jsonl');
  const grid = join(dir, 'grid.json');
  writeFileSync(grid, JSON.stringify({ model: 'tiny', datasets: ['sst2', 'emotion'], corruptions: [null, 'bottom:1'], seeds: [0, 1] }));
  const specs = expandGrid(grid);
  assert.equal(specs.length, 8);
  const args = ['--grid', grid, '--workers', '2', '--results', results, '--runner', fakeRunner];
  const env = { FAKE_RUNNER_SLEEP_MS: '600', HEALING_PROGRESS: '0' };

  const child = startRun(args, env);
  const done = exited(child);
  const deadline = Date.now() + 600_000; // start-up alone can take minutes on a loaded machine
  while (!(existsSync(results) && rawHashes(results).length >= 3)) {
    if (Date.now() > deadline) assert.fail('the grid did not store 3 results in 600 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(-child.pid!, 'SIGKILL');
  const killed = await done;
  assert.equal(killed.signal, 'SIGKILL');
  const atKill = readFileSync(results, 'utf8');
  const storedAtKill = rawHashes(results);
  assert.ok(storedAtKill.length >= 3 && storedAtKill.length < 8, `killed mid-grid (${storedAtKill.length} stored)`);

  const rerun = await exited(startRun(args, env));
  assert.equal(rerun.code, 0, rerun.stderr);
  const summary = JSON.parse(rerun.stdout.trim().split('\n').at(-1)!);
  assert.equal(summary.total, 8);
  assert.equal(summary.skipped, storedAtKill.length);
  assert.equal(summary.ran, 8 - storedAtKill.length);

  const final = readFileSync(results, 'utf8');
  assert.ok(final.startsWith(atKill), 'lines stored before the kill are intact');
  const hashes = rawHashes(results);
  assert.deepEqual([...hashes].sort(), (await identityHashes(specs)).sort(), 'every spec exactly once');
  const store = readResults(results);
  assert.deepEqual({ rows: store.rows.length, torn: store.torn, invalid: store.invalid.length, duplicates: store.duplicates }, { rows: 8, torn: 0, invalid: 0, duplicates: 0 });
  // The killed process's claims (a dead pid on this host) were taken over at once, then released.
  assert.match(rerun.stderr, /took over a stale claim \(pid \d+ on .* is not running\)/);
  assert.deepEqual(readdirSync(`${results}.claims`), []);
});
