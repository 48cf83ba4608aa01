import { UserError } from '../errors';
import { createProgress } from '../progress';
import { BERT_SPECIAL_TOKENS } from './bert-json';
import { createBertWordSplitter } from './normalize';

/**
 * WordPiece vocabulary training the way Hugging Face's WordPieceTrainer does it (@huggingface/
 * tokenizers is an inference-only port, so this part is ours): count the BERT words of the corpus,
 * start from single characters ("##"-prefixed when not word-initial), then repeatedly merge the
 * most frequent adjacent pair (ties: the pair of smaller ids, as in HF's BPE trainer) until the
 * vocabulary is full or the best pair is rarer than minFrequency.
 */
export interface TrainWordPieceOptions {
  /** Final vocabulary size including the special tokens. */
  vocabSize?: number;
  /** A pair seen fewer times than this is never merged. */
  minFrequency?: number;
  lowercase?: boolean;
  /** Keep at most this many distinct characters (the most frequent); HF's BERT trainer uses 1000. */
  limitAlphabet?: number;
  onProgress?: (progress: { phase: 'count' | 'merge'; done: number; total: number }) => void;
}

const PREFIX = '##';
// Pair keys pack two symbol ids into one double: exact while ids stay below 2^26.
const SHIFT = 2 ** 26;

/** How often each BERT word (normalised, pre-tokenised) occurs in the texts. */
export function countWords(texts: Iterable<string>, lowercase = true): Map<string, number> {
  const split = createBertWordSplitter({ lowercase });
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const word of split(text)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

export function trainWordPiece(texts: Iterable<string>, options: TrainWordPieceOptions = {}): string[] {
  const counts = countWords(texts, options.lowercase ?? true);
  options.onProgress?.({ phase: 'count', done: counts.size, total: counts.size });
  return trainWordPieceFromCounts(counts, options);
}

export function trainWordPieceFromCounts(wordCounts: ReadonlyMap<string, number>, options: TrainWordPieceOptions = {}): string[] {
  const vocabSize = options.vocabSize ?? 8192;
  const minFrequency = options.minFrequency ?? 2;
  const limitAlphabet = options.limitAlphabet ?? 1000;
  if (!Number.isInteger(vocabSize) || vocabSize < BERT_SPECIAL_TOKENS.length) {
    throw new UserError(`vocabulary size must be an integer of at least ${BERT_SPECIAL_TOKENS.length}, got ${vocabSize}`);
  }

  // Sorting the words fixes the order of everything below, so training is deterministic.
  const entries = [...wordCounts].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const alphabet = chooseAlphabet(entries, limitAlphabet);

  const vocab: string[] = [];
  const idOf = new Map<string, number>();
  const add = (token: string): number => {
    let id = idOf.get(token);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(token);
      idOf.set(token, id);
    }
    return id;
  };
  for (const special of BERT_SPECIAL_TOKENS) add(special);
  for (const char of alphabet) add(char);
  const continuing = new Set<string>();
  for (const [word] of entries) {
    let first = true;
    for (const char of word) {
      if (!alphabet.has(char)) continue;
      if (!first) continuing.add(char);
      first = false;
    }
  }
  for (const char of [...continuing].sort()) add(PREFIX + char);
  if (vocab.length > vocabSize) {
    throw new UserError(
      `vocabulary size ${vocabSize} is smaller than the special tokens and alphabet (${vocab.length}); raise it or lower limitAlphabet`,
    );
  }

  const words: number[][] = [];
  const freq: number[] = [];
  for (const [word, count] of entries) {
    const symbols: number[] = [];
    for (const char of word) {
      if (!alphabet.has(char)) continue;
      symbols.push(idOf.get(symbols.length === 0 ? char : PREFIX + char)!);
    }
    if (symbols.length > 0) {
      words.push(symbols);
      freq.push(count);
    }
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addPairs = (w: number, sign: 1 | -1, touched?: Set<number>): void => {
    const symbols = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = symbols[i] * SHIFT + symbols[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq[w]);
      if (sign > 0) {
        let list = pairWords.get(key);
        if (!list) pairWords.set(key, (list = []));
        if (list[list.length - 1] !== w) list.push(w);
        touched?.add(key);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const total = vocabSize - vocab.length;
  const progress = options.onProgress ? null : createProgress({ label: 'wordpiece merges', total, unit: 'merges' });
  let merges = 0;
  while (vocab.length < vocabSize && heap.size > 0) {
    const [staleCount, key] = heap.pop();
    const count = pairCount.get(key) ?? 0;
    if (count !== staleCount) {
      // Lazy deletion: the heap kept an old count; requeue the current one.
      if (count > 0) heap.push(count, key);
      continue;
    }
    if (count < minFrequency || count <= 0) break;
    const left = Math.floor(key / SHIFT);
    const right = key - left * SHIFT;
    const rightText = vocab[right];
    const merged = add(vocab[left] + (rightText.startsWith(PREFIX) ? rightText.slice(PREFIX.length) : rightText));
    const touched = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const symbols = words[w];
      let found = false;
      for (let i = 0; i + 1 < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          found = true;
          break;
        }
      }
      // The index keeps words whose pair has since been merged away; skip them.
      if (!found) continue;
      addPairs(w, -1);
      const next: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
          next.push(merged);
          i++;
        } else {
          next.push(symbols[i]);
        }
      }
      words[w] = next;
      addPairs(w, 1, touched);
    }
    pairWords.delete(key);
    pairCount.delete(key);
    for (const k of touched) {
      const c = pairCount.get(k) ?? 0;
      if (c > 0) heap.push(c, k);
    }
    merges++;
    if (options.onProgress) options.onProgress({ phase: 'merge', done: merges, total });
    else if (merges % 64 === 0) progress?.update(merges);
  }
  progress?.update(merges);
  progress?.stop();
  return vocab;
}

/** The characters to keep: all of them, or the limitAlphabet most frequent (ties by code point). */
function chooseAlphabet(entries: ReadonlyArray<[string, number]>, limit: number): Set<string> {
  const charCounts = new Map<string, number>();
  for (const [word, count] of entries) {
    for (const char of word) charCounts.set(char, (charCounts.get(char) ?? 0) + count);
  }
  const byCodePoint = (a: string, b: string): number => a.codePointAt(0)! - b.codePointAt(0)!;
  let chars = [...charCounts.keys()];
  if (chars.length > limit) {
    chars = chars.sort((a, b) => charCounts.get(b)! - charCounts.get(a)! || byCodePoint(a, b)).slice(0, limit);
  }
  return new Set(chars.sort(byCodePoint));
}

/** Max-heap of (count, pair key); equal counts pop the smaller key (the pair of smaller ids) first. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.before(l, best)) best = l;
        if (r < this.counts.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}
