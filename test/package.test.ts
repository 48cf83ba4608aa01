// The package as another project gets it: `npm pack` (which runs the build), the tarball installed into a
// fresh project, and plain Node (no tsx) importing 'healing-bert' there. The consumer's package.json carries
// the two overrides the README asks for: danfojs-node depends on @tensorflow/tfjs-node 3.x (native, downloads
// libtensorflow) and on an xlsx tarball outside the npm registry, and a dependency's own `overrides` never
// apply to the project installing it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npmMissing = spawnSync(npm, ['--version'], { encoding: 'utf8' }).status !== 0;
// .ci/run's second pass (the wasm engine) sets this: the tarball does not depend on the engine.
const skipped = process.env.HEALING_SKIP_PACK_TEST === '1';

/** What a consumer adds to its package.json (README "Use it from your own notebook or script"). */
const CONSUMER_OVERRIDES = {
  xlsx: '0.18.5',
  '@tensorflow/tfjs-node': 'npm:@tensorflow/tfjs@4.22.0',
};

test('the packed tarball installs into a fresh project and imports with plain node', { skip: (npmMissing && 'npm is not on PATH: cannot pack') || (skipped && 'HEALING_SKIP_PACK_TEST=1 (tested once per CI run)'), timeout: 300_000 }, () => {
  const ours = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { overrides: Record<string, string>; name: string };
  // The consumer's overrides are the repository's own: if those change, the README and this test follow.
  assert.deepEqual(ours.overrides, CONSUMER_OVERRIDES);
  const work = mkdtempSync(join(tmpdir(), 'healing-pack-'));
  try {
    // Environment of a plain shell: an `npm test` parent would pass its own npm_config_* (prefix, dry-run, ...).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    const packed = JSON.parse(
      execFileSync(npm, ['pack', '--json', '--pack-destination', work], { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = packed[0].files.map((f) => f.path);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'data/models/healing-bert-tiny/model.safetensors', 'bin/healing.js']) assert.ok(files.includes(f), `tarball lacks ${f}`);
    assert.ok(!files.some((f) => f.startsWith('data/pretraining/') || f.startsWith('test/') || f.startsWith('data/results/')), 'tarball holds only what a consumer needs');

    const project = join(work, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', overrides: CONSUMER_OVERRIDES }, null, 2));
    // --prefer-offline: every tarball the repository's own install fetched comes from npm's cache.
    execFileSync(npm, ['install', join(work, packed[0].filename), '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: project,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.ok(existsSync(join(project, 'node_modules', ours.name, 'dist', 'index.d.ts')));

    const store = join(work, 'results.jsonl');
    writeFileSync(store, `${readFileSync(join(root, 'data/results/results.jsonl'), 'utf8').trim().split('\n').slice(0, 3).join('\n')}\n`);
    const script = `
      import { loadModel, results, VERSION } from 'healing-bert';
      const bert = await loadModel('tiny');
      const [mask] = bert.fillMask('the movie was [MASK] .', 3);
      const { model, report } = bert.corrupt('bottom:1');
      model.dispose();
      bert.dispose();
      const { frame } = results(process.env.STORE);
      console.log(JSON.stringify({ version: VERSION, tokens: mask.predictions.map((p) => p.token), layers: report.layers, rows: frame.shape[0] }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: project,
      env: { ...env, STORE: store, HEALING_PROGRESS: '0' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { version: string; tokens: string[]; layers: number[]; rows: number };
    assert.equal(result.version, JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    assert.equal(result.tokens.length, 3);
    assert.ok(result.tokens.every((t) => typeof t === 'string' && t.length > 0));
    assert.deepEqual(result.layers, [0]);
    assert.equal(result.rows, 3);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
