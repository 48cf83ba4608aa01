import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Tensors as places in the wasm heap, for the native kernels. Outputs are allocated by the wasm backend
 * (so TF.js owns and frees them as usual) and filled by native code; the heap's ArrayBuffer is fetched
 * after the allocations of a call, since an allocation can grow (and so replace) it.
 */

export const NONE = -1;

interface Tracked {
  state: { tensorInfo: WeakMap<object, { backend: tf.KernelBackend }> };
  moveData(backend: tf.KernelBackend, dataId: object): void;
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: tf.KernelBackend): tf.Tensor;
}

export function wasmBackend(): BackendWasm {
  return tf.findBackend('wasm') as unknown as BackendWasm;
}

export function heapBuffer(backend: BackendWasm = wasmBackend()): ArrayBuffer {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer as ArrayBuffer;
}

/** Byte offset of a tensor's data in the wasm heap (moving it there first if another backend holds it). */
export function offsetOf(x: tf.TensorInfo, backend: BackendWasm = wasmBackend()): number {
  let data = backend.dataIdMap.get(x.dataId);
  if (!data) {
    const engine = tf.engine() as unknown as Tracked;
    engine.moveData(backend as unknown as tf.KernelBackend, x.dataId);
    data = backend.dataIdMap.get(x.dataId);
  }
  if (!data || data.memoryOffset == null) throw new Error('native kernels: a tensor has no data in the wasm heap');
  return data.memoryOffset;
}

export function optionalOffset(x: tf.TensorInfo | undefined, backend?: BackendWasm): number {
  return x ? offsetOf(x, backend) : NONE;
}

/** A new tensor whose (uninitialised) data the caller's native kernel writes. */
export function allocate(shape: number[], dtype: 'float32' | 'int32' = 'float32', backend: BackendWasm = wasmBackend()): tf.Tensor {
  const info = backend.makeOutput(shape, dtype);
  return (tf.engine() as unknown as Tracked).makeTensorFromTensorInfo(info, backend as unknown as tf.KernelBackend);
}

/** How many references share a tensor's data (a variable and the tensor it was made from share it). */
export function refCount(x: tf.TensorInfo, backend: BackendWasm = wasmBackend()): number {
  return backend.refCount(x.dataId);
}
