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
 * engine) train as two micro-batches. Native engines have no such ceiling: no cap there.
 * HEALING_MAX_BATCH_TOKENS overrides it (a positive integer, or "none").
 */
export const WASM_MAX_BATCH_TOKENS = 2816;

export function maxBatchTokens(backend: string, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.HEALING_MAX_BATCH_TOKENS?.trim();
  if (raw) {
    if (raw.toLowerCase() === 'none') return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) {
      throw new UserError(`HEALING_MAX_BATCH_TOKENS must be a positive integer or "none", got "${raw}"`);
    }
    return value;
  }
  return backend === 'wasm' ? WASM_MAX_BATCH_TOKENS : undefined;
}
