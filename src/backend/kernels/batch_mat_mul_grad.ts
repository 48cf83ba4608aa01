import * as tf from '@tensorflow/tfjs';

/**
 * The BatchMatMul gradient with broadcast batch dims.
 *
 * tfjs-core's gradient returns dA and dB with the output's batch dims, so any broadcast matMul
 * (a dense layer on [batch, seq, hidden] x [hidden, out], or [1,m,k] x [3,k,n]) fails with
 * "The gradient of input 'a' has shape ...". Here each gradient is summed over the batch dims its
 * input was broadcast along, as TensorFlow does. Backend-independent: gradients are registered per kernel.
 */

function reduceToShape(grad: tf.Tensor, shape: number[]): tf.Tensor {
  if (tf.util.arraysEqual(grad.shape, shape)) return grad;
  const lead = grad.rank - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < grad.rank - 2; d++) {
    if (d < lead || (shape[d - lead] === 1 && grad.shape[d] !== 1)) axes.push(d);
  }
  const summed = axes.length > 0 ? tf.sum(grad, axes) : grad;
  return tf.reshape(summed, shape);
}

export function broadcastingBatchMatMulGrad(stock: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const grads = stock.gradFunc(dy, saved, attrs);
      return {
        a: () => reduceToShape(grads.a(), a.shape),
        b: () => reduceToShape(grads.b(), b.shape),
      };
    },
  };
}
