import { UserError } from '../errors';

/**
 * The wasm engine's heap is capped at 4 GB and does not shrink. When it runs out, TF.js fails
 * either with an Emscripten `Aborted()` or with a RangeError from a typed-array view past the heap's
 * end (seen training bert-base shapes with micro-batches of 4 x 128). Both mean the same thing to a
 * user, who can fix it with smaller micro-batches.
 */
export function isWasmOutOfMemory(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /^Aborted\(/.test(message) || /Invalid typed array length|Array buffer allocation failed|memory access out of bounds/.test(message);
}

export const WASM_MEMORY_HINT =
  'the TF.js wasm engine ran out of memory (its heap is capped at 4 GB): use a smaller batch or more --gradient-accumulation';

/**
 * The most padded tokens (rows x sequence length) one forward/backward pass may hold; larger batches
 * are cut into micro-batches (src/data/batching.ts splitBatch) with the same optimizer step.
 *
 * Why 2,816 on wasm: a fine-tuning step of the default model (6 x 256) keeps ~1.3 MB of heap per padded
 * token (measured: 32 x 66 tokens -> 2.7 GB, 32 x 88 -> 3.6 GB, 32 x 96 -> 3.8 GB, 16 x 128 -> 2.8 GB,
 * of the 4 GB the heap can reach). 32 x 88 is the longest batch the SST-2 and Emotion paper runs
 * met, so those runs are untouched by the cap, while AG News batches of 32 x 128 (which abort the
 * engine) train as two micro-batches. The tensorflow engines (tfjs-node, tfjs-node-gpu) have no such
 * ceiling: no cap there.
 * HEALING_MAX_BATCH_TOKENS overrides it (a positive integer, or "none").
 */
export const WASM_MAX_BATCH_TOKENS = 2816;

/**
 * The same cap with the native kernels: their fused ops keep ~0.13 MB of heap per padded token for the
 * default model (6 x 256) at 128 tokens (`npm run bench`'s memory row: 16 x 128 tokens -> 270 MB), a
 * tenth of the stock graph's, so 16,384 tokens (~2.1 GB with the model and optimizer) leave the
 * heap room; every batch of the paper preset (at most 32 x 128) trains whole. bert-base shapes keep
 * ~0.6 MB per token plus 1.8 GB of weights, gradients and moments: use HEALING_MAX_BATCH_TOKENS=2048 there.
 */
export const NATIVE_MAX_BATCH_TOKENS = 16384;

/** The engine as far as memory goes: its backend, and whether the native kernels run under wasm. */
export type MemoryEngine = string | { backend: string; native?: { enabled: boolean } };

export function maxBatchTokens(engine: MemoryEngine, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const backend = typeof engine === 'string' ? engine : engine.backend;
  const native = typeof engine !== 'string' && engine.native?.enabled === true;
  const raw = env.HEALING_MAX_BATCH_TOKENS?.trim();
  if (raw) {
    if (raw.toLowerCase() === 'none') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) {
      throw new UserError(`HEALING_MAX_BATCH_TOKENS must be a positive integer or "none", got "${raw}"`);
    }
    return value;
  }
  if (backend !== 'wasm') return undefined;
  return native ? NATIVE_MAX_BATCH_TOKENS : WASM_MAX_BATCH_TOKENS;
}
