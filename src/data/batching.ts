import { createRng, deriveSeed, shuffled } from '../random';

/**
 * Batches with dynamic padding: each batch is padded only to its own longest sequence. With `bucket`,
 * examples are sorted by length inside chunks of `bucketChunk` batches first, so a batch holds
 * sequences of similar length and little compute goes to padding; the chunks keep the epoch's shuffle
 * (a global sort would give every epoch the same batches). With a `seed`, the example order and then
 * the batch order are shuffled, so training does not see short batches first.
 */

export const DEFAULT_MAX_LENGTH = 128;

export interface EncodedExamples {
  /** Token ids per example, unpadded and already truncated (with [CLS]/[SEP]). */
  inputIds: number[][];
  /** Segment ids per example; zeros when absent (single-sentence tasks). */
  tokenTypeIds?: number[][];
  labels: number[];
}

export interface BatchOptions {
  batchSize: number;
  padId: number;
  /** Shuffle examples and batches with this seed; absent keeps the input order (evaluation). */
  seed?: number;
  bucket?: boolean;
  /** Batches per length-sorting chunk (default 50). */
  bucketChunk?: number;
  /** Reject sequences longer than this (the tokenizer truncates; this catches a mismatch early). */
  maxLength?: number;
}

export interface Batch {
  /** Row-major [batchSize, seqLen]. */
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds: Int32Array;
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
  /** The original example index of each row. */
  indices: number[];
}

export function makeBatches(encoded: EncodedExamples, options: BatchOptions): Batch[] {
  const { inputIds, tokenTypeIds, labels } = encoded;
  const { batchSize, padId } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  if (labels.length !== inputIds.length) throw new Error(`${inputIds.length} sequences but ${labels.length} labels`);
  if (tokenTypeIds && tokenTypeIds.length !== inputIds.length) throw new Error(`${inputIds.length} sequences but ${tokenTypeIds.length} token type rows`);
  inputIds.forEach((ids, i) => {
    if (ids.length === 0) throw new Error(`example ${i} has no tokens`);
    if (options.maxLength !== undefined && ids.length > options.maxLength) {
      throw new Error(`example ${i} has ${ids.length} tokens, more than the maximum length ${options.maxLength}`);
    }
    if (tokenTypeIds && tokenTypeIds[i].length !== ids.length) throw new Error(`example ${i}: token type ids and input ids differ in length`);
  });

  let order = inputIds.map((_, i) => i);
  if (options.seed !== undefined) order = shuffled(order, createRng(deriveSeed(options.seed, 'examples')));
  if (options.bucket) {
    const chunk = batchSize * (options.bucketChunk ?? 50);
    const sorted: number[] = [];
    for (let start = 0; start < order.length; start += chunk) {
      // Array.prototype.sort is stable, so equal lengths keep the (shuffled) order.
      sorted.push(...order.slice(start, start + chunk).sort((a, b) => inputIds[a].length - inputIds[b].length));
    }
    order = sorted;
  }

  let groups: number[][] = [];
  for (let start = 0; start < order.length; start += batchSize) groups.push(order.slice(start, start + batchSize));
  if (options.seed !== undefined && options.bucket) groups = shuffled(groups, createRng(deriveSeed(options.seed, 'batches')));
  return groups.map((indices) => padBatch(indices, inputIds, tokenTypeIds, labels, padId));
}

function padBatch(
  indices: number[],
  inputIds: number[][],
  tokenTypeIds: number[][] | undefined,
  labels: number[],
  padId: number,
): Batch {
  const batchSize = indices.length;
  let seqLen = 0;
  for (const i of indices) seqLen = Math.max(seqLen, inputIds[i].length);
  const ids = new Int32Array(batchSize * seqLen).fill(padId);
  const mask = new Int32Array(batchSize * seqLen);
  const types = new Int32Array(batchSize * seqLen);
  const out = new Int32Array(batchSize);
  indices.forEach((example, row) => {
    const seq = inputIds[example];
    const offset = row * seqLen;
    ids.set(seq, offset);
    mask.fill(1, offset, offset + seq.length);
    if (tokenTypeIds) types.set(tokenTypeIds[example], offset);
    out[row] = labels[example];
  });
  return { inputIds: ids, attentionMask: mask, tokenTypeIds: types, labels: out, batchSize, seqLen, indices };
}

/**
 * A padded batch cut into row slices of at most `maxTokens` padded tokens each (rows x seqLen), as
 * evenly as possible. Memory for a training step grows with rows x seqLen (x seqLen again in
 * attention), so a cap on it keeps long-sequence batches inside a bounded heap while short batches
 * pass through untouched. A single row longer than the cap stays one slice: it cannot be cut.
 */
export function splitBatch(batch: Batch, maxTokens: number | undefined): Batch[] {
  if (maxTokens === undefined || batch.batchSize * batch.seqLen <= maxTokens) return [batch];
  if (!(maxTokens > 0)) throw new Error(`maximum tokens per micro-batch must be positive, got ${maxTokens}`);
  const rowsPerSlice = Math.max(1, Math.floor(maxTokens / batch.seqLen));
  const slices = Math.ceil(batch.batchSize / rowsPerSlice);
  const base = Math.floor(batch.batchSize / slices);
  const extra = batch.batchSize % slices;
  const out: Batch[] = [];
  let row = 0;
  for (let s = 0; s < slices; s++) {
    const rows = base + (s < extra ? 1 : 0);
    const from = row * batch.seqLen;
    const to = (row + rows) * batch.seqLen;
    out.push({
      inputIds: batch.inputIds.slice(from, to),
      attentionMask: batch.attentionMask.slice(from, to),
      tokenTypeIds: batch.tokenTypeIds.slice(from, to),
      labels: batch.labels.slice(row, row + rows),
      batchSize: rows,
      seqLen: batch.seqLen,
      indices: batch.indices.slice(row, row + rows),
    });
    row += rows;
  }
  return out;
}
