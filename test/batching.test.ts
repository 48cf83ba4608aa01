import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeBatches, splitBatch, type Batch } from '../src/data/batching';
import { createRng } from '../src/random';

const PAD = 0;

/** Random sequences of lengths 2..maxLen with ids >= 1 (so padding is distinguishable), like [CLS] ... [SEP]. */
function examples(n: number, seed: number, maxLen = 64) {
  const rng = createRng(seed);
  const inputIds = Array.from({ length: n }, () => Array.from({ length: 2 + rng.int(maxLen - 1) }, () => 1 + rng.int(30000)));
  const tokenTypeIds = inputIds.map((ids) => ids.map((_, j) => (j >= ids.length / 2 ? 1 : 0)));
  const labels = inputIds.map(() => rng.int(4));
  return { inputIds, tokenTypeIds, labels };
}

function checkBatch(batch: Batch, data: ReturnType<typeof examples>, padId = PAD): void {
  assert.equal(batch.inputIds.length, batch.batchSize * batch.seqLen);
  assert.equal(batch.labels.length, batch.batchSize);
  assert.equal(batch.indices.length, batch.batchSize);
  // Dynamic padding: padded exactly to the longest sequence of this batch.
  assert.equal(batch.seqLen, Math.max(...batch.indices.map((i) => data.inputIds[i].length)));
  batch.indices.forEach((example, row) => {
    const seq = data.inputIds[example];
    const at = (a: Int32Array) => Array.from(a.subarray(row * batch.seqLen, (row + 1) * batch.seqLen));
    const pad = batch.seqLen - seq.length;
    assert.deepEqual(at(batch.inputIds), [...seq, ...Array(pad).fill(padId)]);
    assert.deepEqual(at(batch.attentionMask), [...Array(seq.length).fill(1), ...Array(pad).fill(0)]);
    assert.deepEqual(at(batch.tokenTypeIds), [...data.tokenTypeIds[example], ...Array(pad).fill(0)]);
    assert.equal(batch.labels[row], data.labels[example]);
  });
}

test('every example appears exactly once per epoch, with correct ids, masks, token types and labels', () => {
  const data = examples(1000, 1);
  for (const options of [
    { batchSize: 32, padId: PAD },
    { batchSize: 32, padId: PAD, bucket: true },
    { batchSize: 32, padId: PAD, bucket: true, seed: 5 },
    { batchSize: 7, padId: 99, seed: 5 },
  ]) {
    const batches = makeBatches(data, options);
    const seen = batches.flatMap((b) => b.indices).sort((a, b) => a - b);
    assert.deepEqual(seen, data.labels.map((_, i) => i));
    assert.equal(batches.length, Math.ceil(1000 / options.batchSize));
    assert.ok(batches.every((b, k) => b.batchSize === options.batchSize || k === batches.length - 1 || options.bucket));
    for (const b of batches) checkBatch(b, data, options.padId);
  }
});

test('without a seed the input order is kept (evaluation)', () => {
  const data = examples(100, 2);
  const batches = makeBatches(data, { batchSize: 16, padId: PAD });
  assert.deepEqual(batches.flatMap((b) => b.indices), data.labels.map((_, i) => i));
});

test('length bucketing cuts padding well below random batching', () => {
  const data = examples(3200, 3);
  const padding = (batches: Batch[]) => batches.reduce((n, b) => n + b.attentionMask.length - b.attentionMask.reduce((s, v) => s + v, 0), 0);
  const plain = padding(makeBatches(data, { batchSize: 32, padId: PAD, seed: 1 }));
  const bucketed = padding(makeBatches(data, { batchSize: 32, padId: PAD, seed: 1, bucket: true }));
  // Lengths uniform on 2..64: random batches of 32 pad ~30 tokens per row; sorted chunks of 1,600 about 1.
  assert.ok(bucketed < plain / 10, `bucketed padding ${bucketed} vs plain ${plain}`);
  // Within a bucketed chunk, a batch's lengths are contiguous in sorted order: the spread is small.
  for (const b of makeBatches(data, { batchSize: 32, padId: PAD, seed: 1, bucket: true })) {
    const lengths = b.indices.map((i) => data.inputIds[i].length);
    assert.ok(Math.max(...lengths) - Math.min(...lengths) <= 8);
  }
});

test('shuffling is seeded: same seed same batches, another seed different, batch order mixed', () => {
  const data = examples(640, 4);
  const a = makeBatches(data, { batchSize: 32, padId: PAD, seed: 11, bucket: true });
  const b = makeBatches(data, { batchSize: 32, padId: PAD, seed: 11, bucket: true });
  const c = makeBatches(data, { batchSize: 32, padId: PAD, seed: 12, bucket: true });
  assert.deepEqual(a.map((x) => x.indices), b.map((x) => x.indices));
  assert.notDeepEqual(a.map((x) => x.indices), c.map((x) => x.indices));
  // Bucketed batches are not served shortest-first.
  const lens = a.map((x) => x.seqLen);
  assert.notDeepEqual(lens, [...lens].sort((p, q) => p - q));
});

test('token type ids default to zeros; bad input is rejected', () => {
  const batches = makeBatches({ inputIds: [[101, 5, 102], [101, 102]], labels: [1, 0] }, { batchSize: 2, padId: PAD });
  assert.deepEqual(Array.from(batches[0].tokenTypeIds), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(batches[0].inputIds), [101, 5, 102, 101, 102, 0]);
  assert.throws(() => makeBatches({ inputIds: [[1]], labels: [0, 1] }, { batchSize: 2, padId: 0 }), /1 sequences but 2 labels/);
  assert.throws(() => makeBatches({ inputIds: [[]], labels: [0] }, { batchSize: 2, padId: 0 }), /no tokens/);
  assert.throws(() => makeBatches({ inputIds: [[1, 2, 3]], labels: [0] }, { batchSize: 2, padId: 0, maxLength: 2 }), /maximum length 2/);
  assert.throws(() => makeBatches({ inputIds: [[1]], labels: [0] }, { batchSize: 0, padId: 0 }), /positive integer/);
});

test('splitBatch: cuts a batch into even row slices under the token cap, rows and labels intact', () => {
  const data = examples(37, 5);
  const [batch] = makeBatches(data, { batchSize: 37, padId: PAD });
  assert.deepEqual(splitBatch(batch, undefined), [batch]);
  assert.deepEqual(splitBatch(batch, batch.batchSize * batch.seqLen), [batch], 'a batch at the cap is not cut');
  const cap = Math.floor((batch.batchSize * batch.seqLen) / 3);
  const slices = splitBatch(batch, cap);
  assert.ok(slices.length >= 3 && slices.length <= 4, `${slices.length} slices`);
  for (const s of slices) {
    assert.ok(s.batchSize * s.seqLen <= cap, `${s.batchSize} x ${s.seqLen} over ${cap}`);
    assert.equal(s.inputIds.length, s.batchSize * s.seqLen);
    assert.equal(s.seqLen, batch.seqLen);
  }
  const sizes = slices.map((s) => s.batchSize);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `even slices: ${sizes}`);
  // Concatenated, the slices are the batch, row for row.
  const cat = (key: 'inputIds' | 'attentionMask' | 'tokenTypeIds' | 'labels') => slices.flatMap((s) => Array.from(s[key]));
  assert.deepEqual(cat('inputIds'), Array.from(batch.inputIds));
  assert.deepEqual(cat('attentionMask'), Array.from(batch.attentionMask));
  assert.deepEqual(cat('tokenTypeIds'), Array.from(batch.tokenTypeIds));
  assert.deepEqual(cat('labels'), Array.from(batch.labels));
  assert.deepEqual(slices.flatMap((s) => s.indices), batch.indices);
  // A row longer than the cap cannot be cut: one row per slice.
  assert.deepEqual(splitBatch(batch, 1).map((s) => s.batchSize), new Array(37).fill(1));
});
