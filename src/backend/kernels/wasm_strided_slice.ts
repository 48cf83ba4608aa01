import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * StridedSlice for the wasm backend, fixed for int32 and bool.
 *
 * The stock kernel's general (non-contiguous) path always allocates a float32 output and copies 4-byte
 * elements: an int32 slice comes back as float32 holding the int bits (1e-44 for 8), a bool slice as
 * garbage. Here non-float32 inputs on that path are sliced in JS; everything else goes to the stock kernel.
 */

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };

let stock: tf.KernelConfig | undefined;
const setUp = new WeakSet<object>();

function stridedSlice(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as unknown as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const a = args.attrs as unknown as tf.StridedSliceAttrs;
  if (!setUp.has(backend.wasm)) {
    // The engine only sets up kernels registered when the backend starts; the stock one may not have been.
    stock!.setupFunc?.(args.backend);
    setUp.add(backend.wasm);
  }
  const info = tf.slice_util.sliceInfo(
    x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask,
  );
  if (x.dtype === 'float32' || info.isIdentity || info.sliceDim0 || info.isSimpleSlice) {
    return stock!.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const outShape = info.finalShapeSparse;
  const rank = x.shape.length;
  const xStrides = [...tf.util.computeStrides(x.shape), 1];
  const size = tf.util.sizeFromShape(outShape);
  const out = backend.makeOutput(info.finalShape, x.dtype);
  // Views after makeOutput: allocating may grow the heap and detach older views.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const coord = new Array(rank).fill(0);
  for (let i = 0; i < size; i++) {
    let rest = i;
    for (let d = rank - 1; d >= 0; d--) {
      coord[d] = rest % outShape[d];
      rest = Math.floor(rest / outShape[d]);
    }
    let at = 0;
    for (let d = 0; d < rank; d++) at += (info.begin[d] + coord[d] * info.strides[d]) * xStrides[d];
    dst[i] = src[at];
  }
  return out;
}

/** The fixed kernel; `stockConfig` is the kernel it replaces, used for every case it does not handle. */
export function wasmStridedSliceConfig(stockConfig: tf.KernelConfig): tf.KernelConfig {
  stock = stockConfig;
  return { kernelName: tf.StridedSlice, backendName: 'wasm', kernelFunc: stridedSlice as unknown as tf.KernelFunc };
}
