/**
 * Which arithmetic produced a result. Engines with the same numerics give the same numbers for the same
 * seed (up to float noise); a result's identity includes it, so runs of different numerics never mix.
 * A module of its own (no TF.js import) so the result store and the analyses can read it cheaply.
 */

/** Every stock TF.js engine (and every run recorded before the native kernels existed). */
export const TFJS_NUMERICS = 'tfjs-1';
/**
 * wasm with the native kernels: BLAS matmuls, fused sublayers, a counter-based dropout RNG. Bump the
 * number when a change moves results beyond float noise (a new RNG, another reduction order).
 */
export const NATIVE_NUMERICS = 'native-1';

/** A result row's numerics; rows from before the field existed are TF.js's. */
export function numericsOf(row: { numerics?: unknown }): string {
  return typeof row.numerics === 'string' ? row.numerics : TFJS_NUMERICS;
}
