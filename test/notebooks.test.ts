import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const notebookDir = join(root, 'notebooks');
const notebooks = readdirSync(notebookDir).filter((f) => /^\d.*\.ipynb$/.test(f));

interface Cell {
  cell_type: string;
  source: string | string[];
  metadata?: { tags?: string[] };
  outputs?: unknown[];
  execution_count?: number | null;
}
const text = (c: Cell) => (Array.isArray(c.source) ? c.source.join('') : c.source);

test('the numbered notebooks of the study are all there', () => {
  const expected = ['00-quickstart', '01-baselines', '02-damage', '03-more-corruption-hurts-more', '04-bottom-vs-top', '05-limits-of-healing', '06-layer-anatomy', '07-report', '08-ad-hoc', '09-beyond-the-paper'];
  for (const name of expected) assert.ok(notebooks.includes(`${name}.ipynb`), `missing ${name}.ipynb; found ${notebooks.join(', ')}`);
});

test('the quickstart needs at most 3 import lines (the API is one import away)', () => {
  const nb = JSON.parse(readFileSync(join(notebookDir, '00-quickstart.ipynb'), 'utf8')) as { cells: Cell[] };
  const code = nb.cells.filter((c) => c.cell_type === 'code').map(text).join('\n');
  const imports = code.split('\n').filter((line) => /^\s*import\s/.test(line) || /\bimport\(/.test(line));
  assert.ok(imports.length >= 1 && imports.length <= 3, `${imports.length} import lines:\n${imports.join('\n')}`);
});

for (const name of notebooks) {
  test(`${name}: stripped, claim first, parameters cell, healing-bert kernel, imports only from './src'`, () => {
    const nb = JSON.parse(readFileSync(join(notebookDir, name), 'utf8')) as { cells: Cell[]; metadata: { kernelspec?: { name?: string } } };
    assert.equal(nb.metadata.kernelspec?.name, 'healing-bert', 'kernelspec must be the project kernel (scripts/notebooks.sh --register)');
    assert.equal(nb.cells[0]?.cell_type, 'markdown', 'first cell states the claim');
    assert.match(text(nb.cells[0]), /claim/i, 'first cell states the claim it tests');
    const params = nb.cells.filter((c) => c.metadata?.tags?.includes('parameters'));
    assert.equal(params.length, 1, 'exactly one cell tagged "parameters"');
    assert.equal(params[0].cell_type, 'code');
    assert.match(text(params[0]), /HEALING_QUICK/, 'the parameters cell reads quick mode');
    for (const [i, c] of nb.cells.entries()) {
      if (c.cell_type !== 'code') continue;
      // The public API is the one entry point: a deep import ('./src/analysis/...') is a gap in src/index.ts.
      assert.doesNotMatch(text(c), /from\s+['"]\.\/src\/[^'"]*['"]/, `cell ${i} imports a deep path: import from './src' (src/index.ts)`);
      assert.deepEqual(c.outputs, [], `cell ${i} has outputs: strip them before committing`);
      assert.equal(c.execution_count, null, `cell ${i} has an execution count: strip it before committing`);
    }
    // Shown in bold, as every notebook ends: "<b>Verdict: ...", "<b>F2 verdict: ...", "<b>Verdict.</b>" (not any "ok" or "token").
    assert.match(text(nb.cells.at(-1)!), /<b>[^<]*\bverdict\b/i, 'the last cell shows a verdict');
  });
}

// Executing needs Debian's Jupyter (scripts/notebooks.sh --install); CI has it, a bare checkout may not.
const python = '/usr/bin/python3';
const hasJupyter =
  existsSync(python) && spawnSync(python, ['-c', 'import nbconvert, nbclient'], { stdio: 'ignore' }).status === 0;

function notebook(cells: string[]): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'healing-bert', display_name: 'TypeScript (healing-bert)', language: 'typescript' } },
    cells: cells.map((source, i) => ({ id: `c${i}`, cell_type: 'code', metadata: {}, source, outputs: [], execution_count: null })),
  });
}

test(
  'the kernel runs src modules (ESM, import.meta) with top-level await, and a failing cell fails the run',
  { skip: hasJupyter ? false : 'Jupyter not installed (bash scripts/notebooks.sh --install)', timeout: 120_000 },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'healing-nb-'));
    try {
      const good = join(dir, 'good.ipynb');
      const bad = join(dir, 'bad.ipynb');
      writeFileSync(good, notebook([
        "import { VERSION } from './src/version';\nimport { createRng } from './src/random';\nconst x = await Promise.resolve(createRng(1).next());\nif (!(x >= 0 && x < 1) || !VERSION) throw new Error('bad');\nconsole.log('VERSION', VERSION);",
      ]));
      writeFileSync(bad, notebook(["const n: number = 1;\nif (n === 1) throw new Error('planted failure');"]));
      const out = join(dir, 'out');
      const run = (file: string) => spawnSync('bash', [join(root, 'scripts/notebooks.sh'), '--out', out, file], { encoding: 'utf8' });
      const ok = run(good);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /good\.ipynb\s+ok\s+[\d.]+ s/);
      const executed = JSON.parse(readFileSync(join(out, 'good.ipynb'), 'utf8')) as { cells: Cell[] };
      const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
      assert.match(JSON.stringify(executed.cells[0].outputs), new RegExp(`VERSION ${version.replace(/\./g, '\\.')}`));
      const failed = run(bad);
      assert.notEqual(failed.status, 0);
      assert.match(failed.stderr, /FAILED: bad\.ipynb/);
      assert.match(failed.stderr, /planted failure/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
