import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

/**
 * The one import of '@tensorflow/tfjs-backend-wasm'. Importing it registers the wasm backend with the
 * highest priority; wasm starts asynchronously, so any tf op run before initEngine would throw "The
 * highest priority backend 'wasm' has not yet been initialized". Re-registering it below cpu keeps the
 * old default (cpu) until initEngine picks a backend explicitly.
 */
type Factory = { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number };
const entry = (tf.engine().registryFactory as Record<string, Factory>).wasm;
const started = (tf.engine().registry as Record<string, unknown>).wasm !== undefined;
if (entry && entry.priority > 0 && !started) {
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', entry.factory, 0);
}

export { getThreadsCount, setWasmPaths };
