import * as tf from '@tensorflow/tfjs';
import type { ParamMap } from './names';
import { attentionBlockFused, denseGeluFused, feedForwardBlockFused, layerNormFused } from '../backend/fused';
import { fusedNative } from '../backend/native/state';

/**
 * The building blocks shared by BERT and DistilBERT, as plain functions over named parameters
 * (nanoGPT-style: the whole data flow is visible, no layer objects hold state).
 */

export function param(params: ParamMap, name: string): tf.Tensor {
  const t = params.get(name);
  if (!t) throw new Error(`parameter ${name} is missing from the model`);
  return t;
}

/** x [..., in] times a PyTorch-layout weight [out, in], plus bias: torch.nn.Linear. */
export function linear(params: ParamMap, name: string, x: tf.Tensor): tf.Tensor {
  const w = param(params, `${name}.weight`);
  const b = param(params, `${name}.bias`);
  const inDim = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const y = tf.matMul(x.reshape([-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D, false, true).add(b);
  return y.reshape([...lead, w.shape[0]]);
}

export function layerNorm(params: ParamMap, name: string, x: tf.Tensor, eps: number): tf.Tensor {
  const native = fusedNative();
  if (native) return layerNormFused(native, x, param(params, `${name}.weight`), param(params, `${name}.bias`), eps);
  const axis = x.shape.length - 1;
  const mean = x.mean(axis, true);
  const centred = x.sub(mean);
  const variance = centred.square().mean(axis, true);
  return centred
    .mul(variance.add(eps).rsqrt())
    .mul(param(params, `${name}.weight`))
    .add(param(params, `${name}.bias`));
}

const SQRT1_2 = Math.SQRT1_2;

/** The exact (erf) GELU that BERT uses, not the tanh approximation. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return x.mul(0.5).mul(tf.erf(x.mul(SQRT1_2)).add(1));
}

/** GELU(linear(x)): BertIntermediate and the MLM head's transform. */
export function denseGelu(params: ParamMap, name: string, x: tf.Tensor): tf.Tensor {
  const native = fusedNative();
  if (native) return denseGeluFused(native, x, param(params, `${name}.weight`), param(params, `${name}.bias`));
  return gelu(linear(params, name, x));
}

/**
 * Dropout with an explicit seed. Each call site takes the next seed from a counter so a forward pass
 * is reproducible given its starting seed, and no two sites share a mask.
 */
export class DropoutSeeds {
  private counter = 0;
  constructor(private readonly base: number | undefined) {}
  apply(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
    if (!training || rate <= 0) return x;
    const seed = this.base === undefined ? undefined : (this.base + 7919 * ++this.counter) % 2147483647;
    return tf.dropout(x, rate, undefined, seed);
  }
  /**
   * The rate and seed a fused op's dropout uses (rate 0 outside training): the same counter, so a forward
   * pass is reproducible from its starting seed on the native engine too.
   */
  next(rate: number, training: boolean): { rate: number; seed: number } {
    if (!training || rate <= 0) return { rate: 0, seed: 0 };
    const seed = this.base === undefined ? Math.floor(Math.random() * 2147483647) : (this.base + 7919 * ++this.counter) % 2147483647;
    return { rate, seed };
  }
}

/**
 * Additive attention mask in [batch, 1, 1, seq] form: 0 where attended, a large negative number at
 * padding, so softmax gives padding (almost exactly) zero weight. Hugging Face uses finfo.min; any
 * value whose exp underflows gives identical probabilities, and a finite one keeps gradients finite.
 */
export function additiveMask(attentionMask: tf.Tensor2D): tf.Tensor4D {
  const [b, t] = attentionMask.shape;
  return tf.scalar(1).sub(attentionMask.toFloat()).mul(-1e9).reshape([b, 1, 1, t]) as tf.Tensor4D;
}

export interface AttentionNames {
  query: string;
  key: string;
  value: string;
  output: string;
}

/** Multi-head self-attention, returning the projected context (before residual and LayerNorm). */
export function selfAttention(
  params: ParamMap,
  names: AttentionNames,
  x: tf.Tensor3D,
  mask: tf.Tensor4D,
  numHeads: number,
  attentionDropout: number,
  dropout: DropoutSeeds,
  training: boolean,
): tf.Tensor3D {
  const [b, t, h] = x.shape;
  const d = h / numHeads;
  // [b, t, h] -> [b*heads, t, d]: heads become batch entries so attention is two batched matMuls.
  const split = (y: tf.Tensor): tf.Tensor3D =>
    y.reshape([b, t, numHeads, d]).transpose([0, 2, 1, 3]).reshape([b * numHeads, t, d]) as tf.Tensor3D;
  const q = split(linear(params, names.query, x).mul(1 / Math.sqrt(d)));
  const k = split(linear(params, names.key, x));
  const v = split(linear(params, names.value, x));
  const scores = tf.matMul(q, k, false, true).reshape([b, numHeads, t, t]).add(mask);
  let probs = tf.softmax(scores, -1);
  probs = dropout.apply(probs, attentionDropout, training);
  const context = tf
    .matMul(probs.reshape([b * numHeads, t, t]) as tf.Tensor3D, v)
    .reshape([b, numHeads, t, d])
    .transpose([0, 2, 1, 3])
    .reshape([b, t, h]);
  return linear(params, names.output, context) as tf.Tensor3D;
}

/** Names of one encoder layer's parameters (prefixes, without .weight/.bias). */
export interface LayerNames {
  attention: AttentionNames;
  attentionNorm: string;
  ffnIn: string;
  ffnOut: string;
  outputNorm: string;
}

export interface BlockConfig {
  numHeads: number;
  layerNormEps: number;
  hiddenDropout: number;
  attentionDropout: number;
}

const linearOf = (params: ParamMap, name: string) => ({ weight: param(params, `${name}.weight`), bias: param(params, `${name}.bias`) });

/** BertAttention: LayerNorm(x + dropout(self-attention(x))). */
export function attentionBlock(
  params: ParamMap,
  n: LayerNames,
  x: tf.Tensor3D,
  mask: tf.Tensor4D,
  config: BlockConfig,
  dropout: DropoutSeeds,
  training: boolean,
): tf.Tensor3D {
  const native = fusedNative();
  if (native) {
    const attention = dropout.next(config.attentionDropout, training);
    const hidden = dropout.next(config.hiddenDropout, training);
    return attentionBlockFused(
      native, x, mask,
      linearOf(params, n.attention.query), linearOf(params, n.attention.key), linearOf(params, n.attention.value),
      linearOf(params, n.attention.output), linearOf(params, n.attentionNorm),
      {
        numHeads: config.numHeads, eps: config.layerNormEps,
        attentionDropout: attention.rate, attentionSeed: attention.seed,
        hiddenDropout: hidden.rate, hiddenSeed: hidden.seed,
      },
    );
  }
  let attended = selfAttention(params, n.attention, x, mask, config.numHeads, config.attentionDropout, dropout, training);
  attended = dropout.apply(attended, config.hiddenDropout, training) as tf.Tensor3D;
  return layerNorm(params, n.attentionNorm, attended.add(x), config.layerNormEps) as tf.Tensor3D;
}

/** BertIntermediate + BertOutput: LayerNorm(h + dropout(dense(GELU(dense(h))))). */
export function feedForwardBlock(
  params: ParamMap,
  n: LayerNames,
  h: tf.Tensor3D,
  config: BlockConfig,
  dropout: DropoutSeeds,
  training: boolean,
): tf.Tensor3D {
  const native = fusedNative();
  if (native) {
    const hidden = dropout.next(config.hiddenDropout, training);
    return feedForwardBlockFused(native, h, linearOf(params, n.ffnIn), linearOf(params, n.ffnOut), linearOf(params, n.outputNorm), {
      eps: config.layerNormEps, hiddenDropout: hidden.rate, hiddenSeed: hidden.seed,
    });
  }
  let ffn = linear(params, n.ffnOut, denseGelu(params, n.ffnIn, h));
  ffn = dropout.apply(ffn, config.hiddenDropout, training);
  return layerNorm(params, n.outputNorm, ffn.add(h), config.layerNormEps) as tf.Tensor3D;
}
