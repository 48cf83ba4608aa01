// The API reference as `npm run docs` builds it (TypeDoc over src/index.ts, config in typedoc.json), into a
// temporary directory so docs/api/ is left alone: the build must succeed with no warning (an export that
// refers to a type the entry point does not export, a broken {@link}, or, if typedoc.json turns on
// validation.notDocumented, an undocumented export), and the main exports must each have their page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');

/** Pages TypeDoc writes for the main exports (functions, the Model class, options, namespaces). */
const PAGES = [
  'index.html',
  'functions/loadModel.html',
  'functions/fineTune.html',
  'functions/evaluate.html',
  'functions/study.html',
  'functions/results.html',
  'classes/Model.html',
  'interfaces/LoadModelOptions.html',
  'modules/figures.html',
  'modules/stats.html',
  'modules/anatomy.html',
  'modules/beyond.html',
  'functions/beyond.fewSampleReinit.html',
  'functions/beyond.componentStudy.html',
  'functions/beyond.loadBeyond.html',
];

test('the API reference builds with TypeDoc, without warnings, with a page for each main export', { skip: !existsSync(typedoc) && 'typedoc is not installed (npm ci installs the devDependencies)', timeout: 300_000 }, () => {
  const config = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8')) as { entryPoints: string[]; validation?: { notDocumented?: boolean } };
  assert.deepEqual(config.entryPoints, ['src/index.ts'], 'the reference documents the one entry point');
  const out = mkdtempSync(join(tmpdir(), 'healing-docs-'));
  try {
    const run = spawnSync(process.execPath, [typedoc, '--out', out], { cwd: root, encoding: 'utf8' });
    const log = `${run.stdout}\n${run.stderr}`;
    assert.equal(run.status, 0, `typedoc failed:\n${log}`);
    const warnings = log.split('\n').filter((line) => /\[(warning|error)\]/.test(line) && !/Found 0 errors and 0 warnings/.test(line));
    assert.deepEqual(warnings, [], config.validation?.notDocumented ? 'no warnings (undocumented exports included)' : 'no warnings');
    for (const page of PAGES) assert.ok(existsSync(join(out, page)), `no page ${page} in the reference`);
    // The TSDoc made it into the pages, not just the names.
    assert.match(readFileSync(join(out, 'functions/loadModel.html'), 'utf8'), /from_pretrained/);
    assert.match(readFileSync(join(out, 'interfaces/LoadModelOptions.html'), 'utf8'), /onProgress/);
    assert.match(readFileSync(join(out, 'modules/beyond.html'), 'utf8'), /Zhang et al/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
