import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskTokens, packSequences, type MaskingOptions } from '../src/train/masking';
import { createRng } from '../src/random';

const PAD = 0;
const CLS = 2;
const SEP = 3;
const MASK = 4;
const VOCAB = 1000;
const options: MaskingOptions = { maskId: MASK, vocabSize: VOCAB, specialIds: new Set([PAD, 1, CLS, SEP, MASK]) };

/** Packed-looking rows: [CLS] words... [SEP] [PAD]..., words drawn uniformly from the non-special ids. */
function batch(rows: number, seqLen: number, seed: number): Int32Array {
  const rng = createRng(seed);
  const ids = new Int32Array(rows * seqLen);
  for (let r = 0; r < rows; r++) {
    const length = seqLen - rng.int(seqLen / 4);
    for (let c = 0; c < seqLen; c++) {
      ids[r * seqLen + c] = c === 0 ? CLS : c === length - 1 ? SEP : c >= length ? PAD : 5 + rng.int(VOCAB - 5);
    }
  }
  return ids;
}

/** |observed - p| within `sigmas` binomial standard deviations. */
function assertRate(observed: number, n: number, p: number, what: string, sigmas = 5): void {
  const sd = Math.sqrt((p * (1 - p)) / n);
  assert.ok(Math.abs(observed / n - p) < sigmas * sd, `${what}: ${(observed / n).toFixed(4)} vs ${p} (n=${n})`);
}

test('maskTokens selects ~15 % of non-special tokens, of those ~80/10/10, never a special', () => {
  const ids = batch(256, 128, 1);
  const { inputIds, positions, targets } = maskTokens(ids, options, 42);
  const candidates = ids.filter((id) => !options.specialIds.has(id)).length;
  assertRate(positions.length, candidates, 0.15, 'selected');

  let masked = 0;
  let random = 0;
  let kept = 0;
  const selected = new Set<number>();
  positions.forEach((pos, i) => {
    assert.ok(!options.specialIds.has(ids[pos]), `special id ${ids[pos]} selected at ${pos}`);
    assert.equal(targets[i], ids[pos], 'the target is the original token');
    if (i > 0) assert.ok(pos > positions[i - 1], 'positions ascend without repeats');
    selected.add(pos);
    if (inputIds[pos] === MASK) masked++;
    else if (inputIds[pos] === ids[pos]) kept++;
    else {
      random++;
      assert.ok(!options.specialIds.has(inputIds[pos]), 'a random replacement is never a special token');
    }
  });
  const n = positions.length;
  assertRate(masked, n, 0.8, '[MASK]');
  // A random draw equals the original with probability 1/995: negligible next to the tolerance.
  assertRate(random, n, 0.1, 'random');
  assertRate(kept, n, 0.1, 'unchanged');
  for (let i = 0; i < ids.length; i++) {
    if (!selected.has(i)) assert.equal(inputIds[i], ids[i], `unselected position ${i} changed`);
  }
  assert.deepEqual(Array.from(ids), Array.from(batch(256, 128, 1)), 'the input is not mutated');
});

test('maskTokens honours a custom probability', () => {
  const ids = batch(128, 64, 2);
  const candidates = ids.filter((id) => !options.specialIds.has(id)).length;
  assertRate(maskTokens(ids, { ...options, probability: 0.4 }, 3).positions.length, candidates, 0.4, 'selected at 0.4');
});

test('maskTokens is a function of the seed', () => {
  const ids = batch(16, 64, 3);
  const a = maskTokens(ids, options, 7);
  const b = maskTokens(ids, options, 7);
  const c = maskTokens(ids, options, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(Array.from(a.positions), Array.from(c.positions));
});

test('maskTokens always leaves at least one position to predict when there is one', () => {
  const ids = Int32Array.from([CLS, 77, SEP, PAD]);
  let fallbacks = 0;
  for (let seed = 0; seed < 50; seed++) {
    const r = maskTokens(ids, options, seed);
    assert.equal(r.positions.length, 1);
    assert.equal(r.positions[0], 1);
    assert.equal(r.targets[0], 77);
    if (r.inputIds[1] === 77) fallbacks++;
  }
  assert.ok(fallbacks > 0);
  const onlySpecials = maskTokens(Int32Array.from([CLS, SEP, PAD]), options, 1);
  assert.equal(onlySpecials.positions.length, 0);
});

test('packSequences: fixed length, [CLS] first, [SEP] last, the token stream kept in order', () => {
  const rng = createRng(5);
  const docs = Array.from({ length: 20 }, () => Array.from({ length: 1 + rng.int(40) }, () => 10 + rng.int(500)));
  const maxLength = 16;
  const packed = packSequences(docs, maxLength, CLS, SEP);
  const stream = docs.flat();
  assert.equal(packed.length, Math.floor(stream.length / (maxLength - 2)));
  for (const s of packed) {
    assert.equal(s.length, maxLength);
    assert.equal(s[0], CLS);
    assert.equal(s[maxLength - 1], SEP);
    assert.ok(!s.subarray(1, -1).some((id) => id === CLS || id === SEP));
  }
  const bodies = packed.flatMap((s) => Array.from(s.subarray(1, -1)));
  assert.deepEqual(bodies, stream.slice(0, bodies.length));
  assert.ok(stream.length - bodies.length < maxLength - 2, 'only a final partial sequence is dropped');
});

test('packSequences of too little text gives no sequence', () => {
  assert.deepEqual(packSequences([[10, 11], [12]], 8, CLS, SEP), []);
});
