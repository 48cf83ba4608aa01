import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brownDirectory, brownText, brownTokens, heldOutIndices, loadCorpus, loadSotu } from '../src/data/corpus';
import { UserError } from '../src/errors';

const SHARED = process.env.HEALING_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url));
const DATA_DIR = join(SHARED, 'data/datasets');

const readLines = (path: string): string[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l).text as string);

test('SOTU: 233 addresses 1790-2021, about 1.8M words', async () => {
  const corpus = await loadCorpus(['sotu'], { seed: 1, heldOutFraction: 0 });
  const [stats] = corpus.stats;
  assert.equal(stats.source, 'sotu');
  assert.equal(stats.documents, 233);
  assert.ok(stats.words > 1_700_000 && stats.words < 1_900_000, `${stats.words} words`);
  assert.equal(corpus.train.length, 233);
  assert.equal(corpus.heldOut.length, 0);
  assert.ok(corpus.train[0].startsWith('Fellow-Citizens of the Senate and House of Representatives'));
});

test('Brown: 500 samples, 1.16M tokens, POS tags stripped', async () => {
  const dir = brownDirectory();
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f));
  assert.equal(files.length, 500);
  const tokens = files.reduce((n, f) => n + brownTokens(readFileSync(join(dir, f), 'utf8')).length, 0);
  assert.ok(Math.abs(tokens - 1_161_192) / 1_161_192 < 0.01, `${tokens} tokens`);

  const corpus = await loadCorpus(['brown'], { seed: 1, heldOutFraction: 0 });
  assert.equal(corpus.stats[0].documents, 500);
  // The corpus's first sentence (ca01), as the Brown Corpus Manual prints it.
  assert.ok(
    corpus.train[0].startsWith(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced " no evidence " that any irregularities took place.',
    ),
    corpus.train[0].slice(0, 200),
  );
  // No word keeps a tag: frequent tags like /at, /nn, /in, /np$, /nn-tl would show up thousands of times.
  const tagged = /\S\/(at|nn|nns|np|np\$|in|jj|vbd|vbn|cc|cs|rb|dt|pps|ppss|to)(-tl|-hl)?(\s|$)|\.\/\.|,\/,|``/;
  for (const text of corpus.train) assert.doesNotMatch(text, tagged);
  assert.equal(brownText("\n\n\tHe/pps said/vbd ``/`` no/at ''/'' ./.\n\n\n\tShe/pps left/vbd ./.\n"), 'He said " no ".\nShe left.');
});

test('datasets: only the six training splits, never evaluation text', async () => {
  const corpus = await loadCorpus(['datasets'], { seed: 2, dataDir: DATA_DIR, heldOutFraction: 0 });
  const expected = ['sst2', 'imdb', 'ag_news', 'emotion', 'dbpedia_14', 'twitter_financial_news_topic'];
  assert.deepEqual(corpus.stats.map((s) => s.source).sort(), expected.map((n) => `datasets/${n}`).sort());
  for (const s of corpus.stats) {
    const name = s.source.replace('datasets/', '');
    assert.equal(s.documents, readLines(join(DATA_DIR, name, 'train.jsonl')).length, name);
  }
  const all = new Set(corpus.train);
  for (const name of expected) {
    const train = new Set(readLines(join(DATA_DIR, name, 'train.jsonl')));
    for (const split of readdirSync(join(DATA_DIR, name)).filter((f) => f.endsWith('.jsonl') && f !== 'train.jsonl')) {
      for (const text of readLines(join(DATA_DIR, name, split))) {
        if (!train.has(text)) assert.ok(!all.has(text), `${name}/${split} text leaked into the corpus`);
      }
    }
  }
});

test('held-out split: by document, disjoint, seeded, every source represented', async () => {
  const a = await loadCorpus(['sotu', 'brown'], { seed: 42, heldOutFraction: 0.05 });
  const b = await loadCorpus(['sotu', 'brown'], { seed: 42, heldOutFraction: 0.05 });
  const c = await loadCorpus(['sotu', 'brown'], { seed: 43, heldOutFraction: 0.05 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.heldOut, c.heldOut);
  assert.equal(a.train.length + a.heldOut.length, 733);
  assert.equal(a.heldOut.length, Math.round(233 * 0.05) + Math.round(500 * 0.05));
  const train = new Set(a.train);
  for (const doc of a.heldOut) assert.ok(!train.has(doc));
  const sotu = new Set(await loadSotu());
  assert.equal(a.heldOut.filter((d) => sotu.has(d)).length, Math.round(233 * 0.05));

  for (const [n, f] of [
    [100, 0.01],
    [7, 0.5],
    [1, 0.5],
    [1000, 0],
  ] as const) {
    const held = heldOutIndices(n, f, 9);
    assert.equal(held.size, f === 0 || n < 2 ? 0 : Math.max(1, Math.round(n * f)));
    for (const i of held) assert.ok(Number.isInteger(i) && i >= 0 && i < n);
  }
});

test('bad input gives one clear error', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'healing-corpus-'));
  try {
    await assert.rejects(loadCorpus(['datasets'], { seed: 1, dataDir: empty }), (e: unknown) => e instanceof UserError && e.message.includes(empty));
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
  await assert.rejects(loadCorpus([], { seed: 1 }), UserError);
  await assert.rejects(loadCorpus(['sotu'], { seed: 1, heldOutFraction: 1.5 }), UserError);
  await assert.rejects(loadCorpus(['wiki' as never], { seed: 1 }), UserError);
});
