import * as tf from '@tensorflow/tfjs';
import { makeBatches } from '../data/batching';
import type { ModelConfig } from '../model/config';
import { encode } from '../model/encoder';
import type { ParamMap } from '../model/names';
import type { BertTokenizer } from '../tokenizer/tokenizer';

/**
 * One vector per example for every depth of the encoder (the embedding output, then each layer's
 * output), the input of the layer analyses: CKA between two models and linear probes. Eval mode, no
 * dropout, so the same weights always give the same vectors.
 */

/** 'cls': the [CLS] position; 'mean': the average over real (non-padding) tokens. */
export type Pooling = 'cls' | 'mean';

export interface HiddenStatesOptions {
  /** Tokens per text including [CLS]/[SEP] (default 128). */
  maxLength?: number;
  /** Texts per forward pass (default 32). */
  batchSize?: number;
  /** Default 'mean': a small model's [CLS] is untrained as a summary until fine-tuning. */
  pooling?: Pooling;
}

/** What each tensor of hiddenStatesFor holds: "embeddings", then "layer 0" (bottom) ... "layer L-1". */
export function hiddenStateNames(numLayers: number): string[] {
  return ['embeddings', ...Array.from({ length: numLayers }, (_, i) => `layer ${i}`)];
}

/**
 * Pooled hidden states: numLayers + 1 tensors [texts, hidden], in text order (embeddings first).
 * The caller owns and disposes them (tf.dispose(states)).
 */
export function hiddenStatesFor(
  config: ModelConfig,
  params: ParamMap,
  tokenizer: BertTokenizer,
  texts: readonly string[],
  options: HiddenStatesOptions = {},
): tf.Tensor2D[] {
  if (texts.length === 0) throw new RangeError('hiddenStatesFor: no texts');
  const maxLength = Math.min(options.maxLength ?? 128, config.maxPositions);
  const pooling = options.pooling ?? 'mean';
  const inputIds = texts.map((text) => tokenizer.encode(text, undefined, { maxLength, truncation: true }).inputIds);
  // Bucketing by length keeps padding (wasted compute) small; rows go back to text order below.
  const batches = makeBatches({ inputIds, labels: texts.map(() => 0) }, { batchSize: options.batchSize ?? 32, padId: tokenizer.padId, bucket: true });
  const depth = config.numLayers + 1;
  const hidden = config.hiddenSize;
  const out = Array.from({ length: depth }, () => new Float32Array(texts.length * hidden));
  for (const batch of batches) {
    const pooled = tf.tidy(() => {
      const shape: [number, number] = [batch.batchSize, batch.seqLen];
      const ids = tf.tensor2d(batch.inputIds, shape, 'int32');
      const mask = tf.tensor2d(batch.attentionMask, shape, 'int32');
      const { hiddenStates } = encode(config, params, { inputIds: ids, attentionMask: mask, tokenTypeIds: tf.zerosLike(ids) as tf.Tensor2D });
      const weights = mask.toFloat().expandDims(2);
      const counts = weights.sum(1);
      return hiddenStates.map((h) =>
        pooling === 'cls' ? h.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]) : h.mul(weights).sum(1).div(counts),
      );
    });
    pooled.forEach((p, layer) => {
      const values = p.dataSync();
      batch.indices.forEach((example, row) => out[layer].set(values.subarray(row * hidden, (row + 1) * hidden), example * hidden));
    });
    tf.dispose(pooled);
  }
  return out.map((values) => tf.tensor2d(values, [texts.length, hidden]));
}

/** The same as hiddenStatesFor, as plain arrays [depth][text][hidden] (nothing to dispose). */
export function hiddenStateArrays(
  config: ModelConfig,
  params: ParamMap,
  tokenizer: BertTokenizer,
  texts: readonly string[],
  options: HiddenStatesOptions = {},
): number[][][] {
  const states = hiddenStatesFor(config, params, tokenizer, texts, options);
  try {
    return states.map((s) => s.arraySync());
  } finally {
    tf.dispose(states);
  }
}
