import * as tf from '@tensorflow/tfjs';
import type { ParamMap } from './names';

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
