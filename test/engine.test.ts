import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { engineInfo, initEngine, parseBackendName } from '../src/backend/engine';
import { UserError } from '../src/errors';
import { maxBatchTokens, NATIVE_MAX_BATCH_TOKENS, WASM_MAX_BATCH_TOKENS } from '../src/backend/memory';

const repo = fileURLToPath(new URL('..', import.meta.url));
const CANDIDATES = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

/** Runs `healing info --json` in a fresh process (one engine per process) with HEALING_BACKEND set. */
function info(backend: string | undefined) {
  const env: NodeJS.ProcessEnv = { ...process.env, HEALING_CLI_MAIN: '1' };
  delete env.HEALING_BACKEND;
  if (backend !== undefined) env.HEALING_BACKEND = backend;
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'info', '--json'], {
    cwd: repo, env, encoding: 'utf8', timeout: 60_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Whether a package that really registers the native 'tensorflow' backend could load here. */
function nativeAvailable(): boolean {
  const require = createRequire(import.meta.url);
  try {
    require.resolve('@tensorflow/tfjs-node-gpu');
    return true;
  } catch {
    // '@tensorflow/tfjs-node' resolves in this repo, but as an alias of plain tfjs.
    const pkg = require('@tensorflow/tfjs-node/package.json') as { name: string };
    return pkg.name === '@tensorflow/tfjs-node';
  }
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`HEALING_BACKEND=${backend} is honoured, and the reason names every candidate`, () => {
    const run = info(backend);
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.backend, backend);
    assert.equal(report.package, backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-backend-cpu');
    assert.equal(report.gpu, false);
    assert.equal(report.tfjsVersion, tf.version.tfjs);
    assert.match(report.reason, new RegExp(`HEALING_BACKEND=${backend}`));
    for (const c of CANDIDATES) assert.ok(report.reason.includes(`${c}:`), `reason mentions ${c}: ${report.reason}`);
    assert.doesNotMatch(run.stderr, /install our node backend/, 'the tfjs-node hint is silenced');
  });
}

test('without an override the first working candidate wins, and the reason says why the others did not', () => {
  const run = info(undefined);
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  for (const c of CANDIDATES) assert.ok(report.reason.includes(`${c}:`), `reason mentions ${c}: ${report.reason}`);
  if (!nativeAvailable()) {
    // wasm ships with the project, so it comes right after the native candidates.
    assert.equal(report.backend, 'wasm');
    assert.match(report.reason, /tfjs-node-gpu: not installed/);
    assert.match(report.reason, /tfjs-node: imported, but no 'tensorflow' backend registered/);
    // The wasm engine is single-threaded; with the native kernels, threads are theirs.
    assert.equal(report.threads, report.native?.enabled ? report.native.threads : 1);
  } else {
    assert.equal(report.backend, 'tensorflow');
  }
  assert.equal(typeof report.version, 'string');
  assert.equal(report.node, process.version);
});

test('a bad HEALING_BACKEND is one clear error naming the variable and the value', () => {
  const run = info('gpu');
  assert.equal(run.status, 1);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /^healing: HEALING_BACKEND="gpu" is not a backend; use one of: tensorflow, wasm, cpu\n$/);
});

test('HEALING_BACKEND=tensorflow without a native binding fails instead of falling back', { skip: nativeAvailable() }, () => {
  const run = info('tensorflow');
  assert.equal(run.status, 1);
  assert.match(run.stderr, /backend 'tensorflow' \(HEALING_BACKEND=tensorflow\) is not available: tfjs-node-gpu: not installed/);
});

test('parseBackendName accepts the three names and rejects others with a UserError', () => {
  assert.equal(parseBackendName(' WASM ', 'flag --backend'), 'wasm');
  assert.throws(() => parseBackendName('webgl', 'flag --backend'), (e: unknown) => e instanceof UserError && /flag --backend="webgl"/.test(e.message));
});

test('initEngine is idempotent in-process and refuses to switch engines', async () => {
  assert.equal(engineInfo(), undefined);
  const [first, second] = await Promise.all([initEngine({ backend: 'cpu' }), initEngine()]);
  assert.equal(first, second);
  assert.equal(await initEngine({ backend: 'cpu' }), first);
  assert.equal(engineInfo(), first);
  assert.equal(tf.getBackend(), 'cpu');
  await assert.rejects(initEngine({ backend: 'wasm' }), /already 'cpu'/);
});

test('maxBatchTokens: capped on wasm only, overridable, bad values named', () => {
  assert.equal(maxBatchTokens('wasm', {}), WASM_MAX_BATCH_TOKENS);
  assert.equal(maxBatchTokens({ backend: 'wasm', native: { enabled: false } }, {}), WASM_MAX_BATCH_TOKENS);
  assert.equal(maxBatchTokens({ backend: 'wasm', native: { enabled: true } }, {}), NATIVE_MAX_BATCH_TOKENS);
  assert.equal(maxBatchTokens({ backend: 'wasm', native: { enabled: true } }, { HEALING_MAX_BATCH_TOKENS: '512' }), 512);
  assert.equal(maxBatchTokens('tensorflow', {}), undefined);
  assert.equal(maxBatchTokens('cpu', {}), undefined);
  assert.equal(maxBatchTokens('cpu', { HEALING_MAX_BATCH_TOKENS: '1024' }), 1024);
  assert.equal(maxBatchTokens('wasm', { HEALING_MAX_BATCH_TOKENS: 'none' }), undefined);
  for (const bad of ['0', '-5', '1.5', 'lots']) {
    assert.throws(() => maxBatchTokens('wasm', { HEALING_MAX_BATCH_TOKENS: bad }), (e: unknown) => e instanceof UserError && e.message.includes(`"${bad}"`));
  }
});
