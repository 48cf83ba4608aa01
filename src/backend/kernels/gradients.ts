import * as tf from '@tensorflow/tfjs';

/**
 * Gradient fixes. Gradients are registered per kernel name, so these hold on every backend.
 *
 * - BatchMatMul, Maximum, Minimum, SquaredDifference: core returns each input's gradient with the
 *   broadcast output's shape, so a broadcast op (a dense layer [batch, seq, hidden] x [hidden, out],
 *   maximum(x, bias)) fails with "The gradient of input 'b' has shape ...". We sum over the broadcast
 *   axes, as TensorFlow does.
 * - StridedSlice: core has no gradient at all. The gradient scatters dy back to the positions the slice
 *   read; those positions come from running the same slice on the flat index of every element.
 * - Greater, Less, LessEqual, Equal, NotEqual: no gradient in core, so differentiating through
 *   where(greater(x, 0), ...) throws. They are piecewise constant: zero, like core's GreaterEqual.
 */

/** Sums `grad` over the axes along which an input of `shape` was broadcast, and gives it that shape. */
export function sumToShape(grad: tf.Tensor, shape: number[]): tf.Tensor {
  if (tf.util.arraysEqual(grad.shape, shape)) return grad;
  const lead = grad.rank - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < grad.rank; d++) {
    if (d < lead || (shape[d - lead] === 1 && grad.shape[d] !== 1)) axes.push(d);
  }
  return tf.reshape(axes.length > 0 ? tf.sum(grad, axes) : grad, shape);
}

function reducing(stock: tf.GradConfig): tf.GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const grads = stock.gradFunc(dy, saved, attrs);
      return {
        a: () => sumToShape(grads.a(), a.shape),
        b: () => sumToShape(grads.b(), b.shape),
      };
    },
  };
}

const stridedSliceGrad: tf.GradConfig = {
  kernelName: tf.StridedSlice,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const a = attrs as unknown as tf.StridedSliceAttrs;
    const dyTensor = Array.isArray(dy) ? dy[0] : dy;
    return {
      x: () => {
        const flatIndex = tf.reshape(tf.range(0, x.size, 1, 'int32'), x.shape);
        const read = tf.stridedSlice(
          flatIndex, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask,
        );
        const scattered = tf.unsortedSegmentSum(tf.reshape(dyTensor, [-1]), tf.reshape(read, [-1]) as tf.Tensor1D, x.size);
        return tf.reshape(scattered, x.shape);
      },
    };
  },
};

const zeroGrad = (kernelName: string): tf.GradConfig => ({
  kernelName,
  inputsToSave: ['a', 'b'],
  gradFunc: (_dy, saved) => {
    const [a, b] = saved;
    return { a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) };
  },
});

export const BROADCAST_GRADIENT_FIXES: readonly string[] = [tf.BatchMatMul, tf.Maximum, tf.Minimum, tf.SquaredDifference];
export const MISSING_GRADIENT_FIXES: readonly string[] = [tf.StridedSlice, tf.Greater, tf.Less, tf.LessEqual, tf.Equal, tf.NotEqual];

/** The gradient configs to register: wrapped core gradients, and the ones core lacks. */
export function gradientFixes(): tf.GradConfig[] {
  const configs: tf.GradConfig[] = [];
  for (const name of BROADCAST_GRADIENT_FIXES) {
    const stock = tf.getGradient(name);
    if (stock) configs.push(reducing(stock));
  }
  if (!tf.getGradient(tf.StridedSlice)) configs.push(stridedSliceGrad);
  for (const name of MISSING_GRADIENT_FIXES.slice(1)) {
    if (!tf.getGradient(name)) configs.push(zeroGrad(name));
  }
  return configs;
}
