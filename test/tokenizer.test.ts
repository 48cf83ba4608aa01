import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { BertTokenizer, buildBertTokenizerJson, loadTokenizer, parseVocabTxt } from '../src/tokenizer/tokenizer';
import { longestFirstLengths } from '../src/tokenizer/truncation';
import { register } from '../src/cli/tokenize';
import { UserError } from '../src/errors';
import { createRng } from '../src/random';

const SHARED = process.env.HEALING_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url));
const VOCAB_PATH = join(SHARED, 'data/vocab/bert-base-uncased-vocab.txt');
const DATASETS = join(SHARED, 'data/datasets');
const bertVocab = parseVocabTxt(readFileSync(VOCAB_PATH, 'utf8'));
const uncased = BertTokenizer.fromVocab(bertVocab);
const cased = BertTokenizer.fromVocab(bertVocab, { lowercase: false });

// ---------------------------------------------------------------------------------------------
// An independent reference: BERT's BasicTokenizer + WordpieceTokenizer as published in
// google-research/bert tokenization.py and transformers' tokenization_bert.py, written from those
// definitions (Unicode categories via \p{..}, no code shared with @huggingface/tokenizers).
// One deliberate choice: lower-casing is char by char, as in the Rust tokenizer behind
// BertTokenizerFast (Python's str.lower applies the final-sigma rule; the two HF tokenizers differ
// there, and tokenizer.json means the Rust one).
// ---------------------------------------------------------------------------------------------
const isControl = (c: string) => c !== '\t' && c !== '\n' && c !== '\r' && /^\p{C}$/u.test(c);
const isWhitespace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || /^\p{Zs}$/u.test(c);
const isPunctuation = (c: string) => {
  const cp = c.codePointAt(0)!;
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126) || /^\p{P}$/u.test(c);
};
const isChineseChar = (cp: number) =>
  (cp >= 0x4e00 && cp <= 0x9fff) ||
  (cp >= 0x3400 && cp <= 0x4dbf) ||
  (cp >= 0x20000 && cp <= 0x2a6df) ||
  (cp >= 0x2a700 && cp <= 0x2b73f) ||
  (cp >= 0x2b740 && cp <= 0x2b81f) ||
  (cp >= 0x2b820 && cp <= 0x2ceaf) ||
  (cp >= 0xf900 && cp <= 0xfaff) ||
  (cp >= 0x2f800 && cp <= 0x2fa1f);
// Python's str.split(): splits on every char for which str.isspace() holds.
const pySplit = (text: string) => text.split(/[\s\u001c-\u001f\u0085]+/u).filter((t) => t !== '');

function referenceBasic(text: string, lower: boolean): string[] {
  let cleaned = '';
  for (const c of text) {
    const cp = c.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd || isControl(c)) continue;
    cleaned += isWhitespace(c) ? ' ' : c;
  }
  let spaced = '';
  for (const c of cleaned) spaced += isChineseChar(c.codePointAt(0)!) ? ` ${c} ` : c;
  const out: string[] = [];
  for (let token of pySplit(spaced)) {
    if (lower) {
      token = [...token].map((c) => c.toLowerCase()).join('');
      token = [...token.normalize('NFD')].filter((c) => !/^\p{Mn}$/u.test(c)).join('');
    }
    let current = '';
    for (const c of token) {
      if (isPunctuation(c)) {
        if (current) out.push(current);
        out.push(c);
        current = '';
      } else current += c;
    }
    if (current) out.push(current);
  }
  return pySplit(out.join(' '));
}

function referenceWordpiece(words: string[], vocab: Set<string>): string[] {
  const out: string[] = [];
  for (const word of words) {
    const chars = [...word];
    if (chars.length > 100) {
      out.push('[UNK]');
      continue;
    }
    const pieces: string[] = [];
    let start = 0;
    let bad = false;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | null = null;
      while (start < end) {
        const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (vocab.has(piece)) {
          found = piece;
          break;
        }
        end--;
      }
      if (found === null) {
        bad = true;
        break;
      }
      pieces.push(found);
      start = end;
    }
    if (bad) out.push('[UNK]');
    else out.push(...pieces);
  }
  return out;
}

const vocabSet = new Set(bertVocab);
const reference = (text: string, lower: boolean) => referenceWordpiece(referenceBasic(text, lower), vocabSet);

/** A seeded sample of training texts from each of the six datasets. */
function sampleSentences(perDataset: number, seed: number): string[] {
  const rng = createRng(seed);
  const out: string[] = [];
  for (const name of ['sst2', 'imdb', 'ag_news', 'emotion', 'dbpedia_14', 'twitter_financial_news_topic']) {
    const lines = readFileSync(join(DATASETS, name, 'train.jsonl'), 'utf8').split('\n').filter(Boolean);
    for (let i = 0; i < perDataset; i++) out.push(JSON.parse(lines[rng.int(lines.length)]).text);
  }
  return out;
}

const TRICKY = [
  'Héllo wörld, naïve café — “quoted” ‘text’…',
  'ΣΊΣΥΦΟΣ and ΟΔΥΣΣΕΥΣ in Greek; İstanbul',
  'ah\u535A\u63A8zz 𠀀𠀁 mixed 中文字符 and 日本語のテキスト',
  'control\u0000chars\u0007and\u200bzero\u200dwidth\ufeff and \u00a0nbsp\u2003emsp\u2028line',
  'emoji 😀👍🏽 and symbols © ® ™ § ¶ € £ ¥ ± × ÷',
  'e\u0301 decomposed vs é composed; ﬁ ligature; ａｂｃ fullwidth',
  'URL https://t.co/QPN8Gwl7Uh, email a.b@c.com, $1,000.50 (50%) #tag @user',
  "don't won't y'all rock'n'roll -- dashes --- and ... dots ???!!!",
  'x'.repeat(101) + ' short ' + 'unaffable'.repeat(11),
  '   \t\n  ',
  '',
  'unassigned \u0378 and private use \ue000 and replacement \ufffd char',
];

test('special token ids are those of bert-base-uncased', () => {
  assert.equal(uncased.vocabSize, 30522);
  assert.deepEqual([uncased.padId, uncased.unkId, uncased.clsId, uncased.sepId, uncased.maskId], [0, 100, 101, 102, 103]);
  assert.equal(uncased.tokenToId('[MASK]'), 103);
  assert.equal(uncased.idToToken(7592), 'hello');
});

test('"hello world" encodes to [101, 7592, 2088, 102]', () => {
  const e = uncased.encode('hello world');
  assert.deepEqual(e.inputIds, [101, 7592, 2088, 102]);
  assert.deepEqual(e.tokens, ['[CLS]', 'hello', 'world', '[SEP]']);
  assert.deepEqual(e.attentionMask, [1, 1, 1, 1]);
  assert.deepEqual(e.tokenTypeIds, [0, 0, 0, 0]);
});

test('HF test vocabulary: "UNwant\\u00E9d,running" -> un ##want ##ed , runn ##ing = [9, 6, 7, 12, 10, 11]', () => {
  // The fixture of transformers' tests/models/bert/test_tokenization_bert.py.
  const vocab = ['[UNK]', '[CLS]', '[SEP]', '[PAD]', '[MASK]', 'want', '##want', '##ed', 'wa', 'un', 'runn', '##ing', ',', 'low', 'lowest'];
  const tok = BertTokenizer.fromVocab(vocab);
  assert.deepEqual(tok.tokenize('UNwant\u00E9d,running'), ['un', '##want', '##ed', ',', 'runn', '##ing']);
  assert.deepEqual(tok.encode('UNwant\u00E9d,running').inputIds.slice(1, -1), [9, 6, 7, 12, 10, 11]);
  assert.deepEqual(tok.tokenize('unwantedX running'), ['[UNK]', 'runn', '##ing']);
  assert.deepEqual(tok.tokenize(''), []);
});

test('words split into ## pieces; accents stripped and lower-cased when uncased', () => {
  // bert-base-uncased has no "un" + "##aff" path: its greedy longest match is una ##ffa ##ble.
  assert.deepEqual(uncased.tokenize('unaffable'), ['una', '##ffa', '##ble']);
  assert.deepEqual(uncased.tokenize('Héllo'), ['hello']);
  assert.deepEqual(uncased.tokenize('H\u00E9llo'), uncased.tokenize('hello'));
  assert.deepEqual(uncased.tokenize(' \tHeLLo!how  \n Are yoU?  '), ['hello', '!', 'how', 'are', 'you', '?']);
});

test('punctuation split, Chinese characters split, control characters removed', () => {
  assert.deepEqual(uncased.tokenize('hello,world!'), ['hello', ',', 'world', '!']);
  assert.deepEqual(uncased.tokenize('ah\u535A\u63A8zz').slice(0, 2), ['ah', '\u535A']);
  assert.equal(uncased.tokenize('ah\u535A\u63A8zz').includes('\u535A'), true);
  assert.deepEqual(uncased.tokenize('hel\u0000lo wor\u0007ld'), uncased.tokenize('hello world'));
  // Outside the BMP too (CJK extension B), as the Rust tokenizer does.
  assert.deepEqual(uncased.tokenize('a\u{20000}b'), ['a', '[UNK]', 'b']);
  // Rust lower-cases char by char: a word-final capital sigma becomes σ, not ς.
  assert.deepEqual(uncased.tokenize('Σ ΑΣ'), ['σ', 'α', '##σ']);
});

test('uncased tokenization equals the reference BasicTokenizer+WordPiece on 3,000 dataset texts', () => {
  const texts = [...sampleSentences(500, 7), ...TRICKY];
  let mismatches = 0;
  const examples: string[] = [];
  for (const text of texts) {
    const ours = uncased.tokenize(text);
    const ref = reference(text, true);
    if (JSON.stringify(ours) !== JSON.stringify(ref)) {
      mismatches++;
      if (examples.length < 3) examples.push(`${JSON.stringify(text.slice(0, 200))}\n ours ${ours.join(' ')}\n ref  ${ref.join(' ')}`);
    }
  }
  assert.equal(mismatches, 0, examples.join('\n'));
});

test('cased tokenization (do_lower_case false) equals the reference on 1,200 dataset texts', () => {
  const texts = [...sampleSentences(200, 11), ...TRICKY];
  for (const text of texts) assert.deepEqual(cased.tokenize(text), reference(text, false), text.slice(0, 200));
  // Published BasicTokenizer(do_lower_case=False) example, through a vocabulary holding its words.
  const tok = BertTokenizer.fromVocab(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'HeLLo', '!', 'how', 'Are', 'yoU', '?', 'Héllo'], {
    lowercase: false,
  });
  assert.deepEqual(tok.tokenize(' \tHeLLo!how  \n Are yoU?  '), ['HeLLo', '!', 'how', 'Are', 'yoU', '?']);
  assert.deepEqual(tok.tokenize('Héllo'), ['Héllo']);
});

test('special tokens written in the text stay whole, as in Hugging Face', () => {
  assert.deepEqual(uncased.encode('the [MASK] sat').inputIds, [101, uncased.tokenToId('the'), 103, uncased.tokenToId('sat'), 102]);
});

test('pair encoding: [CLS] A [SEP] B [SEP] with token types 0 then 1', () => {
  const a = uncased.tokenize('The cat sat.');
  const b = uncased.tokenize('On the mat!');
  const e = uncased.encode('The cat sat.', 'On the mat!');
  assert.deepEqual(e.tokens, ['[CLS]', ...a, '[SEP]', ...b, '[SEP]']);
  assert.deepEqual(e.tokenTypeIds, [...Array(a.length + 2).fill(0), ...Array(b.length + 1).fill(1)]);
  assert.deepEqual(e.inputIds, e.tokens.map((t) => uncased.tokenToId(t)));
  assert.deepEqual(e.attentionMask, Array(e.tokens.length).fill(1));
});

/** longest_first by the definition: drop one token at a time from the longer segment. */
function naiveLongestFirst(a: number, b: number, budget: number): [number, number] {
  // On a tie the Rust crate cuts the segment that was shorter at the start (the first if equal).
  const firstWasShorter = a <= b;
  while (a + b > budget) {
    if (a > b || (a === b && firstWasShorter)) a--;
    else b--;
  }
  return [a, b];
}

test('longest_first truncation matches its one-token-at-a-time definition', () => {
  for (let a = 0; a <= 14; a++) {
    for (let b = 0; b <= 14; b++) {
      for (let budget = 0; budget <= 20; budget++) {
        assert.deepEqual(longestFirstLengths(a, b, budget), naiveLongestFirst(a, b, budget), `a=${a} b=${b} budget=${budget}`);
      }
    }
  }
  const long = 'one two three four five six seven eight nine ten';
  const e = uncased.encode(long, 'alpha beta', { maxLength: 9 });
  assert.equal(e.tokens.length, 9);
  assert.deepEqual(e.tokens.slice(-3), ['alpha', 'beta', '[SEP]']);
  assert.deepEqual(e.tokens.slice(0, 5), ['[CLS]', 'one', 'two', 'three', 'four']);
  const single = uncased.encode(long, null, { maxLength: 5 });
  assert.deepEqual(single.tokens, ['[CLS]', 'one', 'two', 'three', '[SEP]']);
  assert.equal(uncased.encode(long, null, { truncation: false, maxLength: 5 }).tokens.length, 12);
  assert.throws(() => uncased.encode('a', 'b', { maxLength: 2 }), UserError);
});

test('encodeBatch pads right with [PAD] to the longest row or to max_length', () => {
  const texts = ['hello', 'hello world again', 'a b c d e f g h i j k l'];
  const pairs = ['x', 'y z', 'w'];
  const longest = uncased.encodeBatch(texts, pairs, { maxLength: 10, padding: 'longest' });
  const singles = texts.map((t, i) => uncased.encode(t, pairs[i], { maxLength: 10 }));
  const width = Math.max(...singles.map((s) => s.inputIds.length));
  assert.equal(width, 10);
  singles.forEach((s, i) => {
    const n = s.inputIds.length;
    assert.equal(longest.inputIds[i].length, width);
    assert.deepEqual(longest.inputIds[i], [...s.inputIds, ...Array(width - n).fill(0)]);
    assert.deepEqual(longest.attentionMask[i], [...Array(n).fill(1), ...Array(width - n).fill(0)]);
    assert.deepEqual(longest.tokenTypeIds[i], [...s.tokenTypeIds, ...Array(width - n).fill(0)]);
  });
  const fixed = uncased.encodeBatch(['hello'], null, { maxLength: 16, padding: 'max_length' });
  assert.deepEqual(fixed.inputIds, [[101, 7592, 102, ...Array(13).fill(0)]]);
  assert.deepEqual(fixed.attentionMask, [[1, 1, 1, ...Array(13).fill(0)]]);
  assert.throws(() => uncased.encodeBatch(['a', 'b'], ['c'], {}), UserError);
});

test('decode joins ## pieces and can skip special tokens', () => {
  const e = uncased.encode('Hello, unaffable world!');
  assert.equal(uncased.decode(e.inputIds, { skipSpecial: true }), 'hello, unaffable world!');
  assert.equal(uncased.decode(e.inputIds), '[CLS] hello, unaffable world! [SEP]');
  assert.equal(uncased.decode([]), '');
});

test('loadTokenizer: vocab.txt + do_lower_case, tokenizer.json first, saveTo round trip, clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'healing-tok-'));
  try {
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof UserError && e.message.includes(dir));
    await writeFile(join(dir, 'vocab.txt'), readFileSync(VOCAB_PATH));
    const plain = await loadTokenizer(dir);
    assert.equal(plain.settings.lowercase, true);
    assert.deepEqual(plain.encode('Héllo world').inputIds, [101, 7592, 2088, 102]);
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false, model_max_length: 128 }));
    const casedLoaded = await loadTokenizer(dir);
    assert.equal(casedLoaded.settings.modelMaxLength, 128);
    assert.deepEqual(casedLoaded.tokenize('Hello hello'), ['[UNK]', 'hello']);
    // tokenizer.json wins over vocab.txt: a tiny vocabulary makes the difference visible.
    const tiny = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'hello'];
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(buildBertTokenizerJson(tiny)));
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({}));
    const fromJson = await loadTokenizer(dir);
    assert.equal(fromJson.vocabSize, 6);
    assert.deepEqual(fromJson.encode('hello world').inputIds, [2, 5, 1, 3]);

    const out = join(dir, 'saved');
    await uncased.saveTo(out);
    assert.equal(await readFile(join(out, 'vocab.txt'), 'utf8'), readFileSync(VOCAB_PATH, 'utf8'));
    const config = JSON.parse(await readFile(join(out, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.do_lower_case, true);
    assert.equal(config.model_max_length, 512);
    const specials = JSON.parse(await readFile(join(out, 'special_tokens_map.json'), 'utf8'));
    assert.equal(specials.mask_token, '[MASK]');
    const reloaded = await loadTokenizer(out);
    for (const text of TRICKY) assert.deepEqual(reloaded.encode(text, 'and a pair'), uncased.encode(text, 'and a pair'));

    // Older hub files use BertProcessing instead of TemplateProcessing; transformers lets
    // tokenizer_config.json's do_lower_case override the saved normaliser.
    const older = buildBertTokenizerJson(bertVocab);
    older.post_processor = { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] };
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(older));
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({}));
    assert.deepEqual((await loadTokenizer(dir)).encode('Héllo there', 'General Kenobi'), uncased.encode('Héllo there', 'General Kenobi'));
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
    assert.deepEqual((await loadTokenizer(dir)).tokenize('Héllo there'), cased.tokenize('Héllo there'));
    assert.notDeepEqual(cased.tokenize('Héllo there'), uncased.tokenize('Héllo there'));

    await writeFile(join(dir, 'tokenizer.json'), '{not json');
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof UserError && e.message.includes('tokenizer.json'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('healing tokenize prints one JSON object per text', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'healing-tok-cli-'));
  const lines: string[] = [];
  const write = process.stdout.write;
  try {
    await writeFile(join(dir, 'vocab.txt'), readFileSync(VOCAB_PATH));
    const program = new Command('healing').exitOverride();
    register(program);
    process.stdout.write = ((chunk: string) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    await program.parseAsync(['tokenize', '--model', dir, '--pair', 'second', '--max-length', '6', 'hello world', 'one two three four'], {
      from: 'user',
    });
  } finally {
    process.stdout.write = write;
    await rm(dir, { recursive: true, force: true });
  }
  const rows = lines.join('').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], {
    tokens: ['[CLS]', 'hello', 'world', '[SEP]', 'second', '[SEP]'],
    input_ids: [101, 7592, 2088, 102, uncased.tokenToId('second'), 102],
    attention_mask: [1, 1, 1, 1, 1, 1],
    token_type_ids: [0, 0, 0, 0, 1, 1],
  });
  assert.equal(rows[1].tokens.length, 6);
});

test('tokenization speed (logged) stays practical for fine-tuning', () => {
  const texts = sampleSentences(400, 3);
  const start = performance.now();
  const batch = uncased.encodeBatch(texts, null, { maxLength: 128, padding: 'longest' });
  const seconds = (performance.now() - start) / 1000;
  const tokens = batch.attentionMask.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0);
  const words = texts.reduce((n, t) => n + t.split(/\s+/).length, 0);
  let full = 0;
  const startFull = performance.now();
  for (const t of texts) full += uncased.tokenize(t).length;
  const fullSeconds = (performance.now() - startFull) / 1000;
  console.log(
    `# encodeBatch: ${texts.length} texts, ${tokens} tokens in ${seconds.toFixed(2)} s; ` +
      `tokenize: ${Math.round(full / fullSeconds)} tokens/s (${Math.round(words / fullSeconds)} words/s)`,
  );
  assert.ok(full / fullSeconds > 50_000, 'tokenizing should run well above 50k tokens/s');
});
