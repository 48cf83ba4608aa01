import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { broadcastPairs, matMulDims } from './broadcast';

/**
 * A BatchMatMul for the wasm backend that always lands on XNNPACK.
 *
 * The stock kernel calls XNNPACK only for one un-transposed 2-D product; any transpose flag (every matMul
 * gradient has one) or a batch > 1 (attention) falls to a naive C++ loop that runs ~10x slower. Here:
 * - transposed operands are transposed explicitly with the wasm Transpose kernel, so XNNPACK sees [m,k]x[k,n];
 * - a batch whose right operand is shared (a dense layer on [batch, seq, hidden]) is folded into one 2-D call;
 * - otherwise each batch slice is one 2-D call over tensor ids registered at offsets into the operands' wasm
 *   memory (zero-copy views), honouring broadcast batch dims.
 * Anything else (non-float32, empty) goes to the stock kernel.
 */

type WasmBatchMatMul = (
  aId: number, aShape: Uint8Array, aRank: number,
  bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number,
) => void;

interface WasmModuleApi {
  cwrap(name: string, ret: null, args: string[]): WasmBatchMatMul;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };

const bound = new WeakMap<object, WasmBatchMatMul>();
let stock: tf.KernelConfig | undefined;

function module(backend: BackendWasm): WasmModuleApi {
  return backend.wasm as unknown as WasmModuleApi;
}

/**
 * The C++ BatchMatMul bound to this backend's module. The stock kernel's setup runs here too, once per
 * module: it is the fallback, and the engine only sets up kernels that are registered when it starts.
 */
function wasmCall(backend: BackendWasm): WasmBatchMatMul {
  const wasm = module(backend);
  let fn = bound.get(wasm);
  if (!fn) {
    stock?.setupFunc?.(backend as unknown as tf.KernelBackend);
    fn = wasm.cwrap(tf.BatchMatMul, null, [
      'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
    ]);
    bound.set(wasm, fn);
  }
  return fn;
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

function tensorId(backend: BackendWasm, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId)!.id;
}

function offsetOf(backend: BackendWasm, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId)!.memoryOffset;
}

/** Registers `size` floats at byte `offset` as a tensor the C++ side can address; no copy. */
function view(backend: BackendWasm, offset: number, size: number): number {
  const internal = backend as unknown as { dataIdNextNumber: number };
  const id = internal.dataIdNextNumber++;
  module(backend).tfjs.registerTensor(id, size, offset);
  return id;
}

/** Forgets a view without freeing its memory (it belongs to the tensor it views). */
function dropView(backend: BackendWasm, id: number): void {
  // dispose_data also runs the disposal callbacks, which delete the XNNPACK operator cached on this id.
  module(backend).tfjs.disposeData(id);
}

function transposeLastTwo(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const kernel = tf.getKernel(tf.Transpose, 'wasm')!;
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return kernel.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
}

function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as unknown as BackendWasm;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const fallback = () => {
    wasmCall(backend);
    return stock!.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  };

  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) {
    return fallback();
  }
  const { m, k, kb, n, outerA, outerB, outerOut, batchA, batchB, batchOut } = matMulDims(a, b, transposeA, transposeB);
  if (k !== kb || m === 0 || n === 0 || k === 0) return fallback();

  const call = wasmCall(backend);
  const at = transposeA ? transposeLastTwo(backend, a) : a;
  const bt = transposeB ? transposeLastTwo(backend, b) : b;
  const out = backend.makeOutput([...outerOut, m, n], 'float32');
  try {
    if (batchB === 1) {
      // b is shared by every batch: [batchA*m, k] x [k, n] is one XNNPACK call with b's packing cached.
      call(
        tensorId(backend, at), shapeBytes([1, batchA * m, k]), 3,
        tensorId(backend, bt), shapeBytes([1, k, n]), 3,
        false, false, tensorId(backend, out),
      );
    } else {
      const aBase = offsetOf(backend, at);
      const bBase = offsetOf(backend, bt);
      const outBase = offsetOf(backend, out);
      const aShape = shapeBytes([1, m, k]);
      const bShape = shapeBytes([1, k, n]);
      const aViews = new Map<number, number>();
      const pairs = broadcastPairs(outerA, outerB, outerOut);
      try {
        for (let i = 0; i < batchOut; i++) {
          const [ia, ib] = pairs[i];
          let aId = aViews.get(ia);
          if (aId === undefined) {
            aId = view(backend, aBase + 4 * ia * m * k, m * k);
            aViews.set(ia, aId);
          }
          // A fresh b id per slice: XNNPACK caches packed weights by id, and dropping the id frees them.
          const bId = view(backend, bBase + 4 * ib * k * n, k * n);
          const outId = view(backend, outBase + 4 * i * m * n, m * n);
          try {
            call(aId, aShape, 3, bId, bShape, 3, false, false, outId);
          } finally {
            dropView(backend, bId);
            dropView(backend, outId);
          }
        }
      } finally {
        for (const id of aViews.values()) dropView(backend, id);
      }
    }
  } finally {
    if (at !== a) backend.disposeData(at.dataId);
    if (bt !== b) backend.disposeData(bt.dataId);
  }
  return out;
}


/** The fixed kernel; `stockConfig` is the kernel it replaces, kept as the fallback. */
export function wasmBatchMatMulConfig(stockConfig: tf.KernelConfig): tf.KernelConfig {
  stock = stockConfig;
  return {
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    kernelFunc: batchMatMul as unknown as tf.KernelFunc,
  };
}
