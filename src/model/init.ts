import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';
import { parameterLayout, type HeadKind, type ParamInfo, type ParamMap } from './names';
import { createRng, deriveSeed } from '../random';

/** Hugging Face's initializer_range for BERT-family models. */
export const INITIALIZER_RANGE = 0.02;

/**
 * Hugging Face's _init_weights for one tensor: Linear and Embedding weights ~ N(0, 0.02), biases 0,
 * LayerNorm weight 1 and bias 0. Each tensor draws from its own seed stream (seed, name), so a
 * tensor's values don't depend on which other tensors are initialised.
 */
export function initValues(info: ParamInfo, seed: number, padTokenId?: number): Float32Array {
  const size = info.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  if (info.role === 'layernorm_weight') data.fill(1);
  else if (info.role === 'linear_weight' || info.role === 'embedding') {
    const rng = createRng(deriveSeed(seed, info.name));
    for (let i = 0; i < size; i++) data[i] = rng.normal() * INITIALIZER_RANGE;
    // nn.Embedding(padding_idx=...) keeps the padding row at zero.
    if (padTokenId !== undefined && info.name.endsWith('word_embeddings.weight')) {
      const dim = info.shape[1];
      data.fill(0, padTokenId * dim, (padTokenId + 1) * dim);
    }
  }
  return data;
}

export function initTensor(info: ParamInfo, seed: number, padTokenId?: number): tf.Tensor {
  return tf.tensor(initValues(info, seed, padTokenId), info.shape);
}

/** A freshly initialised model: the "from scratch" control, and the start of pretraining. */
export function initParams(config: ModelConfig, head: HeadKind, numLabels: number, seed: number): ParamMap {
  const params: ParamMap = new Map();
  for (const info of parameterLayout(config, head, numLabels)) params.set(info.name, initTensor(info, seed, config.padTokenId));
  return params;
}
