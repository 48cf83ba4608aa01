import { createRequire } from 'node:module';
import { availableParallelism, platform } from 'node:os';
import { UserError } from '../../errors';

/**
 * The optional native addon (native/, built by `npm ci` with node-gyp): OpenBLAS (Linux) or Accelerate
 * (macOS) matmuls and fused BERT kernels that read and write the TF.js wasm heap in place. Loading it
 * never throws: without it the wasm engine runs as before, and `reason` says why and what to install.
 */

export const NATIVE_PACKAGE = 'healing-bert-native';
export const NATIVE_ENV = 'HEALING_NATIVE';
export const THREADS_ENV = 'HEALING_THREADS';

type Offset = number;
type Heap = ArrayBuffer;

/** The addon's functions (native/src/addon.cc). Offsets are byte offsets into the heap, -1 for none. */
export interface NativeAddon {
  sgemm(heap: Heap, transA: number, transB: number, m: number, n: number, k: number, alpha: number, a: Offset, lda: number, b: Offset, ldb: number, beta: number, c: Offset, ldc: number): void;
  batchMatMul(heap: Heap, a: Offset, b: Offset, c: Offset, m: number, n: number, k: number, transA: number, transB: number, batch: number, aStride: number, bStride: number): void;
  linearForward(heap: Heap, out: Offset, inp: Offset, w: Offset, bias: Offset, rows: number, inDim: number, outDim: number): void;
  linearBackward(heap: Heap, dinp: Offset, dw: Offset, dbias: Offset, dout: Offset, inp: Offset, w: Offset, rows: number, inDim: number, outDim: number, accumulate: number): void;
  geluForward(heap: Heap, out: Offset, inp: Offset, n: number): void;
  geluBackward(heap: Heap, dinp: Offset, inp: Offset, dout: Offset, n: number): void;
  layerNormForward(heap: Heap, out: Offset, mean: Offset, rstd: Offset, inp: Offset, gamma: Offset, beta: Offset, rows: number, c: number, eps: number): void;
  layerNormBackward(heap: Heap, dinp: Offset, dgamma: Offset, dbeta: Offset, dout: Offset, inp: Offset, mean: Offset, rstd: Offset, gamma: Offset, rows: number, c: number): void;
  dropoutAddForward(heap: Heap, out: Offset, x: Offset, residual: Offset, n: number, p: number, seed: number): void;
  dropoutBackward(heap: Heap, dx: Offset, dout: Offset, n: number, p: number, seed: number): void;
  attentionForward(heap: Heap, ctx: Offset, probs: Offset, q: Offset, k: Offset, v: Offset, mask: Offset, b: number, t: number, nh: number, d: number, scale: number, p: number, seed: number): void;
  attentionBackward(heap: Heap, dq: Offset, dk: Offset, dv: Offset, dctx: Offset, q: Offset, k: Offset, v: Offset, probs: Offset, b: number, t: number, nh: number, d: number, scale: number, p: number, seed: number): void;
  embeddingsForward(heap: Heap, out: Offset, ids: Offset, typeIds: Offset, word: Offset, pos: Offset, type: Offset, b: number, t: number, c: number, vocab: number, positions: number, types: number): void;
  embeddingsBackward(heap: Heap, dword: Offset, dpos: Offset, dtype: Offset, dout: Offset, ids: Offset, typeIds: Offset, b: number, t: number, c: number, vocab: number, positions: number, types: number): void;
  sumSquares(heap: Heap, x: Offset, n: number): number;
  adamw(heap: Heap, p: Offset, m: Offset, v: Offset, g: Offset, n: number, beta1: number, beta2: number, eps: number, decayFactor: number, stepSize: number, invSqrtBc2: number, gradScale: number, first: number): void;
  fill(heap: Heap, x: Offset, n: number, value: number): void;
  setThreads(n: number): void;
  info(): { blas: string; threads: number; openmp?: boolean };
  /** Wall time per kernel since profileReset(), for the benchmark. */
  profile(): Record<string, { seconds: number; calls: number }>;
  profileReset(): void;
}

export type NativeLoad = { ok: true; addon: NativeAddon; blas: string; threads: number } | { ok: false; reason: string };

const require = createRequire(import.meta.url);

const INSTALL_HINT =
  platform() === 'darwin'
    ? 'install the Xcode command-line tools, then run `npm install` in the repository (it builds native/)'
    : 'install OpenBLAS (Debian/Ubuntu: `apt-get install libopenblas-dev`), then run `npm install` in the repository (it builds native/)';

/**
 * Threads for the native kernels: HEALING_THREADS, else every core (a single process owns the machine;
 * `healing run --workers W` sets HEALING_THREADS for its workers).
 */
export function nativeThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[THREADS_ENV]?.trim();
  if (!raw) return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new UserError(`${THREADS_ENV} must be a positive integer (threads for the native kernels), got "${raw}"`);
  }
  return n;
}

/** Whether HEALING_NATIVE turns the addon off ("0", "false", "off", "no"). */
export function nativeDisabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[NATIVE_ENV]?.trim().toLowerCase();
  if (raw === undefined || raw === '' || raw === '1' || raw === 'true' || raw === 'on' || raw === 'yes') return false;
  if (raw === '0' || raw === 'false' || raw === 'off' || raw === 'no') return true;
  throw new UserError(`${NATIVE_ENV} must be 0 or 1, got "${env[NATIVE_ENV]}"`);
}

export function loadNative(env: NodeJS.ProcessEnv = process.env): NativeLoad {
  if (nativeDisabledByEnv(env)) return { ok: false, reason: `turned off by ${NATIVE_ENV}=${env[NATIVE_ENV]!.trim()}` };
  const threads = nativeThreads(env);
  // OpenMP threads that spin while waiting steal the core BLAS's threads need; passive waiting is
  // what PyTorch's CPU guidance sets too. libgomp reads it when the addon loads, so it is set first.
  if (env === process.env && process.env.OMP_WAIT_POLICY === undefined) process.env.OMP_WAIT_POLICY = 'PASSIVE';
  let addon: NativeAddon;
  try {
    addon = require(NATIVE_PACKAGE) as NativeAddon;
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 160);
    const missing = (error as { code?: string }).code === 'MODULE_NOT_FOUND';
    return { ok: false, reason: `${missing ? 'not built' : `failed to load (${message})`}: ${INSTALL_HINT}` };
  }
  addon.setThreads(threads);
  const info = addon.info();
  return { ok: true, addon, blas: info.blas, threads: info.threads };
}
