import { createRng } from '../random';

/**
 * BERT's masked-LM corruption of a packed batch: 15 % of the non-special positions are selected;
 * of those 80 % become [MASK], 10 % a random token, 10 % stay as they are. Pure and seeded, so a
 * resumed pretraining run masks step N exactly as the uninterrupted run would have.
 */
export interface MaskedBatch {
  /** Model input after masking, row-major [batch, seq]. */
  inputIds: Int32Array;
  /** Flat positions (row * seq + col) whose original token the model must predict. */
  positions: Int32Array;
  /** The original tokens at those positions. */
  targets: Int32Array;
}

export interface MaskingOptions {
  maskId: number;
  vocabSize: number;
  /** Ids never selected (e.g. [CLS], [SEP], [PAD]), nor drawn as a random replacement. */
  specialIds: ReadonlySet<number>;
  /** Share of non-special positions selected (default 0.15, BERT's). */
  probability?: number;
}

export function maskTokens(ids: Int32Array, options: MaskingOptions, seed: number): MaskedBatch {
  const rng = createRng(seed);
  const p = options.probability ?? 0.15;
  const input = Int32Array.from(ids);
  const positions: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (options.specialIds.has(ids[i])) continue;
    if (rng.next() >= p) continue;
    positions.push(i);
    targets.push(ids[i]);
    const r = rng.next();
    if (r < 0.8) input[i] = options.maskId;
    else if (r < 0.9) {
      let replacement = rng.int(options.vocabSize);
      while (options.specialIds.has(replacement) || replacement === options.maskId) replacement = rng.int(options.vocabSize);
      input[i] = replacement;
    }
  }
  // A batch with nothing selected would give a 0/0 loss; predict one position unchanged instead.
  if (positions.length === 0) {
    const candidate = ids.findIndex((id) => !options.specialIds.has(id));
    if (candidate >= 0) {
      positions.push(candidate);
      targets.push(ids[candidate]);
    }
  }
  return { inputIds: input, positions: Int32Array.from(positions), targets: Int32Array.from(targets) };
}

/**
 * Packs documents into fixed-length sequences: [CLS] tokens... [SEP], filling each sequence from a
 * continuous token stream (RoBERTa's FULL-SENTENCES packing), so no compute goes to padding.
 */
export function packSequences(documents: number[][], maxLength: number, clsId: number, sepId: number): Int32Array[] {
  const body = maxLength - 2;
  const out: Int32Array[] = [];
  let current: number[] = [];
  for (const doc of documents) {
    for (const id of doc) {
      current.push(id);
      if (current.length === body) {
        out.push(Int32Array.from([clsId, ...current, sepId]));
        current = [];
      }
    }
  }
  return out;
}
