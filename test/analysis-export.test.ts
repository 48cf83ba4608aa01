import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBrowser, withFigureExporter } from '../src/analysis/export';
import { accuracyVsK, ckaPerLayer } from '../src/analysis/figures';
import { resultsFrame } from '../src/analysis/frames';
import { syntheticResults } from '../src/analysis/synthetic';

const browser = findBrowser();

test('exporting figures writes real PNG and SVG files through one browser', { skip: browser ? false : 'no Chromium installed (apt-get install chromium)' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'healing-export-'));
  try {
    const figures = [accuracyVsK(resultsFrame(syntheticResults())), ckaPerLayer([{ name: 'healed', cka: [0.95, 0.9, 0.7] }])];
    const times: number[] = [];
    const done = await withFigureExporter(async (exp) => {
      for (const [i, fig] of figures.entries()) {
        const t0 = performance.now();
        await exp.export(fig, join(dir, `f${i}.png`), { width: 640, height: 400 });
        times.push(performance.now() - t0);
      }
      await exp.export(figures[0], join(dir, 'f0.svg'));
      return true;
    });
    assert.equal(done, true);
    for (const i of [0, 1]) {
      const png = readFileSync(join(dir, `f${i}.png`));
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG magic bytes');
      assert.ok(png.length > 10_000, `PNG is ${png.length} bytes`);
      // IHDR: width and height at bytes 16-23.
      assert.equal(png.readUInt32BE(16), 640);
      assert.equal(png.readUInt32BE(20), 400);
    }
    const svg = readFileSync(join(dir, 'f0.svg'), 'utf8');
    assert.match(svg, /^<svg[\s\S]*<\/svg>$/);
    assert.match(svg, /Number of corrupted layers/);
    process.stderr.write(`figure export: ${times.map((t) => t.toFixed(0)).join(', ')} ms per PNG\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without a browser the export is skipped with a notice, not an error', async () => {
  const writes: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => (writes.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const done = await withFigureExporter(async () => true, { executablePath: '/nonexistent/chromium' });
    assert.equal(done, false);
  } finally {
    process.stderr.write = original;
  }
  assert.match(writes.join(''), /figure export skipped: no Chromium/);
});
