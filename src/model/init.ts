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

/**
 * How a fresh model's learned position embeddings start. 'normal' is Hugging Face's N(0, 0.02).
 * 'sinusoidal' starts them at Vaswani et al.'s sine/cosine table (still learned, still a BERT checkpoint):
 * with random positions a masked-LM must discover position and the attention that reads it at once, and a
 * small BERT can sit for thousands of steps predicting unigram frequencies; a table whose dot products
 * depend on the offset between positions lets attention to neighbours form from the first steps.
 */
export const POSITION_INITS = ['normal', 'sinusoidal'] as const;
export type PositionInit = (typeof POSITION_INITS)[number];

/**
 * Sine/cosine position table [positions, dim], scaled to the root-mean-square of N(0, INITIALIZER_RANGE)
 * so it carries no more weight against the word embeddings than the random table it replaces.
 */
export function sinusoidalPositions(positions: number, dim: number): Float32Array {
  const out = new Float32Array(positions * dim);
  // sin and cos have rms 1/sqrt(2).
  const scale = INITIALIZER_RANGE * Math.SQRT2;
  for (let pos = 0; pos < positions; pos++) {
    for (let i = 0; i < dim; i += 2) {
      const angle = pos / 10000 ** (i / dim);
      out[pos * dim + i] = Math.sin(angle) * scale;
      if (i + 1 < dim) out[pos * dim + i + 1] = Math.cos(angle) * scale;
    }
  }
  return out;
}

export interface InitOptions {
  positionInit?: PositionInit;
}

/** A freshly initialised model: the "from scratch" control, and the start of pretraining. */
export function initParams(config: ModelConfig, head: HeadKind, numLabels: number, seed: number, options: InitOptions = {}): ParamMap {
  const params: ParamMap = new Map();
  for (const info of parameterLayout(config, head, numLabels)) {
    const sinusoidal = options.positionInit === 'sinusoidal' && info.name.endsWith('embeddings.position_embeddings.weight');
    params.set(info.name, sinusoidal ? tf.tensor(sinusoidalPositions(info.shape[0], info.shape[1]), info.shape) : initTensor(info, seed, config.padTokenId));
  }
  return params;
}
