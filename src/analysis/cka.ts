import * as tf from '@tensorflow/tfjs';

/**
 * Linear centred kernel alignment (Kornblith et al., 2019): how similar two layers' representations
 * of the same examples are, invariant to rotations and isotropic scaling of either, so a healed layer
 * can be compared with the clean model's layer even though fine-tuning moved its basis.
 * x: [examples, features_x], y: [examples, features_y] (the same examples, in the same order).
 */
export function linearCKA(x: tf.Tensor2D, y: tf.Tensor2D): number {
  if (x.shape[0] !== y.shape[0]) {
    throw new RangeError(`linearCKA: x has ${x.shape[0]} examples and y has ${y.shape[0]}; they must be the same examples`);
  }
  if (x.shape[0] < 2) throw new RangeError('linearCKA: needs at least 2 examples');
  const value = tf.tidy(() => {
    // float32 sums over thousands of examples lose digits; centring first keeps the products small.
    const xc = tf.sub(x, tf.mean(x, 0, true));
    const yc = tf.sub(y, tf.mean(y, 0, true));
    const cross = tf.sum(tf.square(tf.matMul(yc, xc, true, false)));
    const xx = tf.norm(tf.matMul(xc, xc, true, false));
    const yy = tf.norm(tf.matMul(yc, yc, true, false));
    return tf.div(cross, tf.mul(xx, yy));
  });
  const out = value.dataSync()[0];
  value.dispose();
  return out;
}

/** CKA of each layer pair: result[i] = CKA(a[i], b[i]) (e.g. corrupted-then-healed vs clean, per layer). */
export function ckaPerLayer(a: readonly tf.Tensor2D[], b: readonly tf.Tensor2D[]): number[] {
  if (a.length !== b.length) throw new RangeError(`ckaPerLayer: ${a.length} layers against ${b.length}`);
  return a.map((x, i) => linearCKA(x, b[i]));
}
