import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * UnsortedSegmentSum as one pass over the rows: out[segmentIds[i]] += x[i].
 *
 * It is the gradient of every embedding lookup (tf.gather), so BERT training needs it on every step.
 * The wasm backend has no kernel for it at all, and the stock cpu kernel builds one full-size mask per
 * segment (per vocabulary row), which is O(vocab * tokens * hidden) time and memory.
 *
 * Semantics follow TensorFlow: segmentIds has the shape of a prefix of x's shape, the output has shape
 * [numSegments, ...x.shape.slice(segmentIds.rank)], ids outside [0, numSegments) are dropped, and
 * segments that no id names are zero.
 */

type TypedArray = Float32Array | Int32Array;

function accumulate(
  x: ArrayLike<number>,
  ids: ArrayLike<number>,
  numSegments: number,
  rowSize: number,
  out: TypedArray,
): void {
  out.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i];
    if (segment < 0 || segment >= numSegments) continue;
    const src = i * rowSize;
    const dst = segment * rowSize;
    for (let j = 0; j < rowSize; j++) out[dst + j] += x[src + j];
  }
}

function plan(x: tf.TensorInfo, segmentIds: tf.TensorInfo, numSegments: number) {
  const idRank = segmentIds.shape.length;
  for (let d = 0; d < idRank; d++) {
    if (segmentIds.shape[d] !== x.shape[d]) {
      throw new Error(
        `unsortedSegmentSum: segmentIds shape [${segmentIds.shape}] is not a prefix of x shape [${x.shape}]`,
      );
    }
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`unsortedSegmentSum: dtype ${x.dtype} is not supported (float32 or int32)`);
  }
  const rowShape = x.shape.slice(idRank);
  return {
    outShape: [numSegments, ...rowShape],
    rowSize: tf.util.sizeFromShape(rowShape),
    dtype: x.dtype as 'float32' | 'int32',
  };
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

function inputsOf(args: KernelArgs): { x: tf.TensorInfo; segmentIds: tf.TensorInfo; numSegments: number } {
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  return { x, segmentIds, numSegments: (args.attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments };
}

function cpuKernel(args: KernelArgs): tf.TensorInfo {
  const { x, segmentIds, numSegments } = inputsOf(args);
  const backend = args.backend as tf.KernelBackend & {
    makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  };
  const { outShape, rowSize, dtype } = plan(x, segmentIds, numSegments);
  const out = dtype === 'int32' ? new Int32Array(numSegments * rowSize) : new Float32Array(numSegments * rowSize);
  accumulate(
    backend.readSync(x.dataId) as TypedArray,
    backend.readSync(segmentIds.dataId) as Int32Array,
    numSegments,
    rowSize,
    out,
  );
  return backend.makeTensorInfo(outShape, dtype, out);
}

function wasmKernel(args: KernelArgs): tf.TensorInfo {
  const { x, segmentIds, numSegments } = inputsOf(args);
  const backend = args.backend as unknown as BackendWasm;
  const { outShape, rowSize, dtype } = plan(x, segmentIds, numSegments);
  // Views are taken after makeOutput: allocating may grow the wasm heap, which detaches older views.
  const out = backend.makeOutput(outShape, dtype);
  const ids = segmentIds.dtype === 'int32'
    ? (backend.typedArrayFromHeap(segmentIds) as Int32Array)
    : Int32Array.from(backend.typedArrayFromHeap(segmentIds));
  accumulate(
    backend.typedArrayFromHeap(x) as TypedArray,
    ids,
    numSegments,
    rowSize,
    backend.typedArrayFromHeap(out) as TypedArray,
  );
  return out;
}

export const unsortedSegmentSumCpuConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'cpu',
  kernelFunc: cpuKernel as unknown as tf.KernelFunc,
};

export const unsortedSegmentSumWasmConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: wasmKernel as unknown as tf.KernelFunc,
};
