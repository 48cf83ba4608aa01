import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, findBrowser } from '../src/analysis/export';
import { buildReport, modelCardFacts, renderHtml, writeReport } from '../src/analysis/report';
import { syntheticResults } from '../src/analysis/synthetic';
import type { ResultRow } from '../src/experiment/spec';
import { reportTarget } from '../src/cli/report';
import { reproducePaths } from '../src/cli/reproduce';

const browser = findBrowser();
const rows = syntheticResults({ datasets: ['sst2', 'emotion', 'ag_news'], ks: [1, 2, 3], seeds: [0, 1, 2] });

function withResults<T>(fn: (dir: string, file: string) => Promise<T>, results: readonly ResultRow[] = rows): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'healing-report-'));
  const file = join(dir, 'results.jsonl');
  writeFileSync(file, results.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return fn(dir, file).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** The verdicts an HTML report shows, in page order. */
const shownVerdicts = (html: string) => [...html.matchAll(/<b>Verdict: ([^<]*)\.<\/b>/g)].map((m) => m[1]);

const FIGURE_IDS = ['baselines', 'f1-recovery', 'f1-gap-by-epoch', 'f2-accuracy-vs-k', 'f3-bottom-vs-top'];

test('HTML report: every section, every figure, the planted verdicts, plotly inlined once, no network URL', () =>
  withResults(async (_dir, file) => {
    const content = await buildReport({ resultsFile: file });
    const html = renderHtml(content);
    for (const id of ['setup', 'f1', 'f2', 'f3', 'provenance']) assert.match(html, new RegExp(`<section id="${id}">`), `section ${id}`);
    for (const id of FIGURE_IDS) assert.ok(html.includes(`<div id="${id}"`), `figure div ${id}`);
    assert.equal(html.match(/Plotly\.newPlot\(el/g)?.length, FIGURE_IDS.length);
    // The bundle's own banner: inlined exactly once.
    assert.equal(html.match(/\* plotly\.js v\d/g)?.length, 1, 'plotly.js inlined once');
    assert.doesNotMatch(html, /<script[^>]*\ssrc\s*=\s*["']?(https?:)?\/\//i, 'no script loaded from the network');
    assert.doesNotMatch(html, /<link[^>]*href\s*=\s*["']?(https?:)?\/\//i, 'no stylesheet from the network');
    // The planted effect (accuracy -4 points per corrupted bottom layer, -1 per top layer, noise 0.5) is
    // what each finding claims: all three supported, in this order.
    assert.deepEqual(content.sections.map((s) => [s.finding.id, s.finding.verdict]), [['F1', 'supported'], ['F2', 'supported'], ['F3', 'supported']]);
    assert.deepEqual(shownVerdicts(html), ['supported', 'supported', 'supported']);
    assert.ok(html.includes(content.stamp.resultsSha256!), 'the results hash is stamped');
    assert.ok(html.includes('Our choices vs the paper'));
  }));

test('planted rows where the top layers hurt more: F1 and F2 supported, F3 (bottom hurts more) not supported', () => {
  const topWorse = syntheticResults({ datasets: ['sst2', 'emotion', 'ag_news'], ks: [1, 2, 3], seeds: [0, 1, 2], bottomPenalty: 0.01, topPenalty: 0.04 });
  return withResults(async (_dir, file) => {
    assert.deepEqual(shownVerdicts(renderHtml(await buildReport({ resultsFile: file }))), ['supported', 'supported', 'not supported']);
  }, topWorse);
});

test('an empty results file gives a report that says "not enough data" and how to get results', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'healing-report-'));
  try {
    const content = await buildReport({ resultsFile: join(dir, 'none.jsonl') });
    assert.deepEqual(content.sections.map((s) => s.finding.verdict), ['not enough data', 'not enough data', 'not enough data']);
    assert.ok(content.notes.some((n) => /holds no results yet/.test(n)));
    assert.match(renderHtml(content), /<section id="f3">/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model card facts are read from the card\'s table', () => {
  const card = '# m\n\n| | |\n|---|---|\n| architecture | BERT, 2 layers, hidden 64 |\n| held-out MLM | loss 7.233, accuracy 5.4 % |\n\n| step | tokens |\n|---|---|\n| 10 | 5120 |\n';
  const facts = modelCardFacts(card);
  assert.equal(facts.architecture, 'BERT, 2 layers, hidden 64');
  assert.equal(facts['held-out MLM'], 'loss 7.233, accuracy 5.4 %');
  assert.equal(facts.step, undefined);
});

test('report --format / --out: the flag wins, else the extension, else HTML', () => {
  assert.deepEqual(reportTarget({}), { out: 'report.html', format: 'html' });
  assert.deepEqual(reportTarget({ format: 'md' }), { out: 'report.md', format: 'md' });
  assert.deepEqual(reportTarget({ out: 'x/r.md' }), { out: 'x/r.md', format: 'md' });
  assert.throws(() => reportTarget({ format: 'pdf' }), /--format pdf/);
});

test(
  'Markdown report references PNG figures that exist, and the HTML renders every figure in Chromium',
  { skip: browser ? false : 'no Chromium (apt-get install chromium or set HEALING_CHROMIUM)', timeout: 120_000 },
  () =>
    withResults(async (dir, file) => {
      const content = await buildReport({ resultsFile: file });
      const md = await writeReport(content, { out: join(dir, 'out', 'report.md') });
      assert.ok(md.figures && md.figures.length === FIGURE_IDS.length);
      const text = readFileSync(md.out, 'utf8');
      const images = [...text.matchAll(/!\[[^\]]*\]\(([^)]+\.png)\)/g)].map((m) => m[1]);
      assert.equal(images.length, FIGURE_IDS.length);
      for (const image of images) {
        const path = join(dirname(md.out), image);
        assert.ok(existsSync(path), `${image} exists`);
        assert.deepEqual([...readFileSync(path).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${image} is a PNG`);
      }

      const html = await writeReport(content, { out: join(dir, 'out', 'report.html') });
      const b = await chromium.launch({ executablePath: browser, headless: true, args: CHROMIUM_FLAGS });
      try {
        const page = await b.newPage();
        const network: string[] = [];
        page.on('request', (r) => {
          if (!/^(file|data|blob|about):/.test(r.url())) network.push(r.url());
        });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`file://${html.out}`);
        await page.waitForFunction((n) => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n, FIGURE_IDS.length, { timeout: 60_000 });
        const drawn = await page.evaluate(() => Array.from(document.querySelectorAll('.js-plotly-plot'), (el) => el.id));
        assert.deepEqual(drawn.sort(), [...FIGURE_IDS].sort());
        assert.deepEqual(errors, []);
        assert.deepEqual(network, [], 'the page loads nothing from the network');
      } finally {
        await b.close();
      }
    }),
);

test('reproduce: the paper preset records into the project store, other presets beside their report', () => {
  assert.deepEqual(reproducePaths({ preset: 'quick' }), { results: join('runs', 'quick', 'results.jsonl'), out: join('runs', 'quick') });
  assert.deepEqual(reproducePaths({ preset: 'paper' }), { results: 'data/results/results.jsonl', out: join('runs', 'paper') });
  assert.deepEqual(reproducePaths({ preset: 'quick', out: '/tmp/x', results: 'r.jsonl' }), { results: 'r.jsonl', out: '/tmp/x' });
});

test('the report puts the bag of words and the from-scratch runs beside the clean model, and counts what it analyses', () => {
  const template = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'data', 'results', 'bag-of-words.jsonl'), 'utf8').split('\n')[0]);
  const clean = rows.filter((r) => r.spec.corruption === null && r.spec.dataset.name === 'sst2');
  const scratch = clean.map((r) => ({ ...r, hash: `${r.hash.slice(0, 15)}f`, spec: { ...r.spec, fromScratch: true }, final: { ...r.final, accuracy: 0.6 } }));
  const bow = clean.map((r, i) => ({
    ...template,
    key: `${i}`.padStart(16, '0'),
    dataset: 'sst2',
    trainSize: r.spec.dataset.trainSize,
    evalSize: r.spec.dataset.evalSize,
    seed: r.spec.seed,
    truncation: { kind: 'tokens', maxLength: r.spec.dataset.maxLength, maxTokens: r.spec.dataset.maxLength - 2, model: r.spec.model, tokenizer: 'a'.repeat(16) },
    accuracy: 0.7,
  }));
  return withResults(async (dir, file) => {
    writeFileSync(join(dir, 'bag-of-words.jsonl'), bow.map((b) => JSON.stringify(b)).join('\n') + '\n');
    const content = await buildReport({ resultsFile: file });
    const sst2 = content.setup.baselines.table.find((t) => t.dataset === 'sst2') as Record<string, unknown>;
    assert.ok(Math.abs(Number(sst2['bag of words']) - 0.7) < 1e-12, `bag of words ${sst2['bag of words']}`);
    assert.ok(Math.abs(Number(sst2['from scratch']) - 0.6) < 1e-12, `from scratch ${sst2['from scratch']}`);
    const emotion = content.setup.baselines.table.find((t) => t.dataset === 'emotion') as Record<string, unknown>;
    assert.equal(emotion['bag of words'], 'not run');
    const html = renderHtml(content);
    assert.ok(html.includes('clean - bag of words (points)'));
    // The from-scratch runs are in the store but not in F1-F3: the header says how many were analysed.
    assert.equal(content.rowCount, rows.length + scratch.length);
    assert.equal(content.analysedCount, rows.length);
    assert.ok(html.includes(`${rows.length} of ${rows.length + scratch.length} runs analysed`));
    // A named bag-of-words file that does not exist is a note, not a silent empty column.
    const missing = await buildReport({ resultsFile: file, bagOfWordsFile: join(dir, 'nope.jsonl') });
    assert.ok(missing.notes.some((n) => n.includes('nope.jsonl does not exist')), missing.notes.join('; '));
  }, [...rows, ...scratch]);
});
