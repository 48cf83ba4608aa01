import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './addon';

/**
 * Whether this process's engine has the native kernels, and whether the model should call the fused ops.
 * One place, so the model, the optimizer and the engine agree.
 */
let active: NativeAddon | undefined;
let fusedOff = 0;

export function setActiveNative(addon: NativeAddon | undefined): void {
  active = addon;
}

/** The addon when the engine is wasm with native kernels, else undefined. */
export function activeNative(): NativeAddon | undefined {
  return active;
}

/**
 * The addon when fused ops should be used: the native engine, the wasm backend current (tests switch to
 * cpu for references), and not inside withoutFusedOps.
 */
export function fusedNative(): NativeAddon | undefined {
  return fusedOff > 0 || !active || tf.getBackend() !== 'wasm' ? undefined : active;
}

/**
 * Runs fn with the model and optimizer on their unfused TF.js paths (native BatchMatMul stays on): for
 * tests and benchmarks that compare a fused op with the graph it replaces. An async fn keeps the
 * unfused paths until its promise settles (do not interleave it with fused work meanwhile).
 */
export function withoutFusedOps<T>(fn: () => T): T {
  fusedOff++;
  let result: T;
  try {
    result = fn();
  } catch (error) {
    fusedOff--;
    throw error;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      fusedOff--;
    }) as T;
  }
  fusedOff--;
  return result;
}
