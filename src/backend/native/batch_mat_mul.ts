import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { NativeAddon } from './addon';
import { broadcastPairs, matMulDims } from '../kernels/broadcast';
import { heapBuffer, offsetOf } from './heap';

/**
 * BatchMatMul for the wasm backend on BLAS sgemm, in place on the wasm heap: transpose flags go to BLAS
 * as they are (no explicit transposes), a right operand shared by the batch folds the batch into one
 * call, and broadcast batch dims become per-slice calls. Non-float32 inputs go to `fallback`.
 */

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };

export function nativeBatchMatMulConfig(addon: NativeAddon, fallback: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as unknown as BackendWasm;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) {
      return fallback.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    }
    const { m, k, kb, n, outerA, outerB, outerOut, batchA, batchB, batchOut } = matMulDims(a, b, transposeA, transposeB);
    if (k !== kb) {
      throw new Error(`BatchMatMul: inner dimensions differ (${k} and ${kb}) for shapes [${a.shape}] and [${b.shape}]`);
    }
    const out = backend.makeOutput([...outerOut, m, n], 'float32');
    const size = batchOut * m * n;
    if (size === 0) return out;
    const [ao, bo, co] = [offsetOf(a, backend), offsetOf(b, backend), offsetOf(out, backend)];
    const heap = heapBuffer(backend);
    if (k === 0) {
      addon.fill(heap, co, size, 0);
    } else if (batchB === 1 && !transposeA) {
      // b is shared by the batch: [batchA*m, k] x [k, n] is one sgemm.
      addon.batchMatMul(heap, ao, bo, co, batchA * m, n, k, 0, transposeB ? 1 : 0, 1, 0, 0);
    } else if ((batchA === batchOut || batchA === 1) && (batchB === batchOut || batchB === 1)) {
      const aStride = batchA === 1 ? 0 : m * k;
      const bStride = batchB === 1 ? 0 : k * n;
      addon.batchMatMul(heap, ao, bo, co, m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0, batchOut, aStride, bStride);
    } else {
      // Broadcasting inner batch dims (e.g. [2,1,3] against [1,4,3]): one call per output slice.
      broadcastPairs(outerA, outerB, outerOut).forEach(([ia, ib], i) => {
        addon.batchMatMul(
          heap, ao + 4 * ia * m * k, bo + 4 * ib * k * n, co + 4 * i * m * n,
          m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0, 1, 0, 0,
        );
      });
    }
    return out;
  };
  return { kernelName: tf.BatchMatMul, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
