import * as tf from '@tensorflow/tfjs';
// Registers the wasm backend and its stock kernels, some of which the fixes replace.
import '../wasm_package';
import { gradientFixes } from './gradients';
import { unsortedSegmentSumCpuConfig, unsortedSegmentSumWasmConfig } from './unsorted_segment_sum';
import { wasmBatchMatMulConfig } from './wasm_batch_mat_mul';
import { wasmStridedSliceConfig } from './wasm_strided_slice';
import type { NativeAddon } from '../native/addon';
import { nativeBatchMatMulConfig } from '../native/batch_mat_mul';

/** The kernels this project replaces or adds, by kernel name and backend. */
export interface KernelFix {
  kernelName: string;
  backendName: 'cpu' | 'wasm';
  why: string;
}

export const KERNEL_FIXES: readonly KernelFix[] = [
  { kernelName: tf.UnsortedSegmentSum, backendName: 'cpu', why: 'stock kernel builds one full-size mask per segment' },
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', why: 'no stock kernel (gradient of gather)' },
  { kernelName: tf.BatchMatMul, backendName: 'wasm', why: 'stock kernel uses XNNPACK only for batch 1 without transposes' },
  { kernelName: tf.StridedSlice, backendName: 'wasm', why: 'stock kernel returns float32 garbage for strided int32/bool slices' },
];

const stockKernels = new Map<string, tf.KernelConfig | undefined>();
let registered = false;

const key = (kernelName: string, backendName: string) => `${backendName}_${kernelName}`;

function replace(config: tf.KernelConfig): void {
  // unregister first: registerKernel over an existing entry works but logs a warning.
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

export { BROADCAST_GRADIENT_FIXES, MISSING_GRADIENT_FIXES, sumToShape } from './gradients';

/**
 * Registers the kernel fixes for cpu and wasm, and the gradient fixes (which hold on any backend).
 * Idempotent. Call it before the backend runs its first op (initEngine does); it also works later,
 * since the wasm BatchMatMul sets itself up on first use.
 */
export function registerKernelFixes(): void {
  if (registered) return;
  for (const fix of KERNEL_FIXES) {
    stockKernels.set(key(fix.kernelName, fix.backendName), tf.getKernel(fix.kernelName, fix.backendName));
  }
  const stockMatMul = stockKernels.get(key(tf.BatchMatMul, 'wasm'));
  const stockStridedSlice = stockKernels.get(key(tf.StridedSlice, 'wasm'));
  if (!stockMatMul || !stockStridedSlice) throw new Error('registerKernelFixes: the stock wasm kernels are not registered');
  replace(unsortedSegmentSumCpuConfig);
  replace(unsortedSegmentSumWasmConfig);
  replace(wasmBatchMatMulConfig(stockMatMul));
  replace(wasmStridedSliceConfig(stockStridedSlice));
  for (const config of gradientFixes()) tf.registerGradient(config);
  registered = true;
}

/**
 * Puts the native addon's kernels over the wasm ones (after registerKernelFixes): BatchMatMul on BLAS,
 * with the XNNPACK fix kept as the fallback for what BLAS does not take (non-float32); and an Identity
 * that shares its input's data, as the cpu backend's does. TF.js clones every tensor a fused op saves
 * for its backward pass, and the stock wasm Identity copies (128 copies per training step of the
 * reference model). Sharing is safe: wasm data is reference-counted and nothing writes into a tensor in
 * place except the fused AdamW, which copies a variable whose data is shared first.
 */
export function registerNativeKernels(addon: NativeAddon): void {
  registerKernelFixes();
  const fixed = wasmBatchMatMulConfig(stockKernels.get(key(tf.BatchMatMul, 'wasm'))!);
  replace(nativeBatchMatMulConfig(addon, fixed));
  replace({ kernelName: tf.Identity, backendName: 'wasm', kernelFunc: sharingIdentity as unknown as tf.KernelFunc });
}

function sharingIdentity({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend }): tf.TensorInfo {
  const { x } = inputs as { x: tf.TensorInfo };
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Runs `fn` with the stock kernel (or no kernel, if there was none) in place of a fix, then puts the fix
 * back. For tests and benchmarks that compare a fix with what it replaced.
 */
export function withStockKernel<T>(kernelName: string, backendName: 'cpu' | 'wasm', fn: () => T): T {
  const k = key(kernelName, backendName);
  if (!stockKernels.has(k)) throw new Error(`withStockKernel: no fix registered for ${kernelName} on ${backendName}`);
  const fixed = tf.getKernel(kernelName, backendName)!;
  const stock = stockKernels.get(k);
  tf.unregisterKernel(kernelName, backendName);
  if (stock) {
    tf.registerKernel(stock);
    // The engine set up the kernels registered when the backend started; the stock one may not have been.
    const backend = tf.findBackend(backendName);
    if (backend) stock.setupFunc?.(backend);
  }
  try {
    return fn();
  } finally {
    if (stock) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel(fixed);
  }
}
