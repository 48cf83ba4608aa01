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
