import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countWords, trainWordPiece, trainWordPieceFromCounts } from '../src/tokenizer/train-vocab';
import { BertTokenizer, loadTokenizer } from '../src/tokenizer/tokenizer';
import { loadBrown, loadSotu } from '../src/data/corpus';
import { UserError } from '../src/errors';
import { createRng, shuffled } from '../src/random';

const SHARED = process.env.HEALING_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url));
const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const quiet = { onProgress: () => {} };

function datasetTexts(name: string, n: number): string[] {
  return readFileSync(join(SHARED, 'data/datasets', name, 'train.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, n)
    .map((l) => JSON.parse(l).text as string);
}

/**
 * The WordPiece trainer by its definition, as slowly as possible: recount every adjacent pair of
 * every word after each merge, take the most frequent (ties: smaller ids), merge it everywhere.
 */
function naiveTrainer(counts: Map<string, number>, vocabSize: number, minFrequency: number): string[] {
  const vocab = [...SPECIALS];
  const chars = new Set<string>();
  const continuing = new Set<string>();
  for (const word of counts.keys()) [...word].forEach((c, i) => (chars.add(c), i > 0 && continuing.add(c)));
  const byCodePoint = (a: string, b: string) => a.codePointAt(0)! - b.codePointAt(0)!;
  vocab.push(...[...chars].sort(byCodePoint), ...[...continuing].sort().map((c) => '##' + c));
  const words = [...counts].map(([w, n]) => ({ pieces: [...w].map((c, i) => (i > 0 ? '##' + c : c)), n }));
  const idOf = new Map(vocab.map((t, i) => [t, i]));
  while (vocab.length < vocabSize) {
    const pairCounts = new Map<string, number>();
    for (const { pieces, n } of words) {
      for (let i = 0; i + 1 < pieces.length; i++) {
        const key = `${idOf.get(pieces[i])},${idOf.get(pieces[i + 1])}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + n);
      }
    }
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [key, c] of pairCounts) {
      const pair = key.split(',').map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (pair[0] < best[0] || (pair[0] === best[0] && pair[1] < best[1])))) {
        best = pair;
        bestCount = c;
      }
    }
    if (!best || bestCount < minFrequency) break;
    const [a, b] = [vocab[best[0]], vocab[best[1]]];
    const merged = a + b.replace(/^##/, '');
    if (!idOf.has(merged)) idOf.set(merged, vocab.push(merged) - 1);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.pieces.length; i++) {
        if (i + 1 < w.pieces.length && w.pieces[i] === a && w.pieces[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(w.pieces[i]);
      }
      w.pieces = out;
    }
  }
  return vocab;
}

test('the trainer equals the from-scratch definition of WordPiece training', () => {
  const texts = [...datasetTexts('sst2', 150), 'aaaa aaa aa banana bandana', 'Naïve café ΣΑΣ 中文 x-y-z'];
  const counts = countWords(texts);
  for (const [size, minFrequency] of [
    [320, 2],
    [400, 1],
  ]) {
    const ours = trainWordPieceFromCounts(counts, { vocabSize: size, minFrequency, ...quiet });
    assert.deepEqual(ours, naiveTrainer(counts, size, minFrequency), `vocabSize ${size}, minFrequency ${minFrequency}`);
  }
});

test('specials first, no duplicates, size respected, deterministic, order-independent', () => {
  const texts = [...datasetTexts('emotion', 2000), ...datasetTexts('ag_news', 300)];
  const vocab = trainWordPiece(texts, { vocabSize: 1500, ...quiet });
  assert.deepEqual(vocab.slice(0, 5), SPECIALS);
  assert.equal(vocab.length, 1500);
  assert.equal(new Set(vocab).size, vocab.length);
  assert.deepEqual(trainWordPiece(texts, { vocabSize: 1500, ...quiet }), vocab);
  assert.deepEqual(trainWordPiece(shuffled(texts, createRng(5)), { vocabSize: 1500, ...quiet }), vocab);
  // Every non-special token is a character, a ##-continuation, or a merge of them (no spaces).
  for (const token of vocab.slice(5)) assert.match(token, /^(##)?\S+$/u);
});

test('minFrequency stops merging; limitAlphabet keeps the most frequent characters', () => {
  const texts = datasetTexts('emotion', 500);
  const counts = countWords(texts);
  const chars = new Set([...counts.keys()].flatMap((w) => [...w]));
  const onlyAlphabet = trainWordPieceFromCounts(counts, { vocabSize: 5000, minFrequency: 1e9, ...quiet });
  assert.equal(onlyAlphabet.filter((t) => !t.startsWith('##')).length, SPECIALS.length + chars.size);
  const limited = trainWordPieceFromCounts(counts, { vocabSize: 5000, minFrequency: 1e9, limitAlphabet: 3, ...quiet });
  // The three characters kept must be the three most frequent ones (listed in code-point order).
  const charCounts = new Map<string, number>();
  for (const [w, n] of counts) for (const c of w) charCounts.set(c, (charCounts.get(c) ?? 0) + n);
  const top3 = [...charCounts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([c]) => c).sort();
  assert.deepEqual(limited.slice(5, 8), top3);
  assert.throws(() => trainWordPieceFromCounts(counts, { vocabSize: 20, ...quiet }), UserError);
});

test('a vocabulary trained on SOTU + Brown (3.2M words): fast, full coverage, frequent words whole, loadable', async () => {
  const texts = [...(await loadSotu()), ...(await loadBrown())];
  const start = performance.now();
  const counts = countWords(texts);
  const vocab = trainWordPieceFromCounts(counts, { vocabSize: 8192, ...quiet });
  const seconds = (performance.now() - start) / 1000;
  const words = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`# trained 8192 WordPiece tokens on ${words} words (${counts.size} distinct) in ${seconds.toFixed(1)} s`);
  assert.ok(words > 3_000_000);
  assert.ok(seconds < 120, `training took ${seconds} s`);
  assert.equal(vocab.length, 8192);
  assert.deepEqual(vocab.slice(0, 5), SPECIALS);

  const tokenizer = BertTokenizer.fromVocab(vocab);
  // Every training word (within WordPiece's 100-char limit) tokenizes without [UNK].
  for (const word of counts.keys()) {
    if ([...word].length > 100) continue;
    assert.ok(!tokenizer.tokenize(word).includes('[UNK]'), word);
  }
  // The most frequent words are single tokens.
  const frequent = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 300).map(([w]) => w);
  for (const word of frequent) assert.deepEqual(tokenizer.tokenize(word), [word]);
  assert.deepEqual(tokenizer.tokenize('The Constitution of the United States'), ['the', 'constitution', 'of', 'the', 'united', 'states']);

  const dir = await mkdtemp(join(tmpdir(), 'healing-vocab-'));
  try {
    await tokenizer.saveTo(dir);
    const loaded = await loadTokenizer(dir);
    assert.equal(loaded.vocabSize, 8192);
    assert.deepEqual([loaded.padId, loaded.unkId, loaded.clsId, loaded.sepId, loaded.maskId], [0, 1, 2, 3, 4]);
    const sample = texts[17].slice(0, 2000);
    assert.deepEqual(loaded.encode(sample), tokenizer.encode(sample));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
