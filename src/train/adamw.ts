import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from '../backend/native/addon';
import { allocate, heapBuffer, offsetOf, refCount } from '../backend/native/heap';
import { fusedNative } from '../backend/native/state';

/**
 * AdamW with torch.optim.AdamW semantics (decoupled weight decay, Loshchilov & Hutter), the
 * optimizer BERT fine-tuning recipes use. TF.js's own tf.train.adam has no decoupled decay and
 * its epsilon sits inside the bias correction differently, so results would not match torch.
 *
 * Per parameter p with gradient g, at step t (1-based):
 *   p <- p * (1 - lr * wd)                       (only where decay(name); skipped when wd = 0)
 *   m <- b1 m + (1 - b1) g
 *   v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
export interface AdamWOptions {
  /** Used when step() is called without a learning rate. */
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  /** 1e-8, the torch and Hugging Face AdamW default. */
  epsilon?: number;
  weightDecay?: number;
  /** Which parameters get weight decay; default: all but biases and LayerNorm weights. */
  decay?: (name: string) => boolean;
}

/**
 * Everything needed to resume exactly: the step count and the moment estimates per parameter name
 * (flat Float32Arrays in the parameter's row-major order). One step count for all parameters:
 * a parameter that receives no gradient in a step keeps its moments (as torch does), but its bias
 * correction still advances with the shared count.
 */
export interface AdamWState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export interface AdamW {
  /**
   * One update from these gradients times `gradScale` (the clipping coefficient); names without a
   * gradient are left alone. Does not dispose `grads`.
   */
  step(grads: Map<string, tf.Tensor>, lr?: number, gradScale?: number): void;
  /** Number of steps taken so far. */
  readonly iterations: number;
  state(): AdamWState;
  load(state: AdamWState): void;
  dispose(): void;
}

/** Hugging Face's rule: no weight decay on biases and LayerNorm weights (and old-style gamma/beta). */
export function defaultDecay(name: string): boolean {
  if (name.endsWith('.bias') || name.endsWith('.beta') || name.endsWith('.gamma')) return false;
  return !(name.includes('LayerNorm') || name.includes('layer_norm'));
}

export function createAdamW(variables: Map<string, tf.Variable>, options: AdamWOptions = {}): AdamW {
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const epsilon = options.epsilon ?? 1e-8;
  const weightDecay = options.weightDecay ?? 0.01;
  const decay = options.decay ?? defaultDecay;
  const m = new Map<string, tf.Tensor>();
  const v = new Map<string, tf.Tensor>();
  let t = 0;

  const variable = (name: string): tf.Variable => {
    const p = variables.get(name);
    if (!p) throw new Error(`AdamW: gradient for unknown parameter ${name}`);
    return p;
  };

  return {
    get iterations() {
      return t;
    },
    step(grads, lr = options.learningRate, gradScale = 1) {
      if (lr === undefined || !Number.isFinite(lr)) throw new Error(`AdamW: learning rate ${lr} is not a finite number`);
      for (const [name, g] of grads) {
        const p = variable(name);
        if (!tf.util.arraysEqual(g.shape, p.shape)) {
          throw new Error(`AdamW: gradient for ${name} has shape [${g.shape}], parameter has [${p.shape}]`);
        }
      }
      t += 1;
      const bc1 = 1 - beta1 ** t;
      const invSqrtBc2 = 1 / Math.sqrt(1 - beta2 ** t);
      const stepSize = lr / bc1;
      const native = fusedNative();
      if (native) {
        for (const [name, g] of grads) {
          const p = variable(name);
          const keepFactor = decay(name) ? 1 - lr * weightDecay : 1;
          nativeUpdate(native, p, g, m, v, name, { beta1, beta2, epsilon, keepFactor, stepSize, invSqrtBc2, gradScale });
        }
        return;
      }
      for (const [name, g0] of grads) {
        const g = gradScale === 1 ? g0 : tf.tidy(() => g0.mul(gradScale));
        const p = variable(name);
        const keepFactor = decay(name) ? 1 - lr * weightDecay : 1;
        const oldM = m.get(name);
        const oldV = v.get(name);
        const [newM, newV, newP] = tf.tidy(() => {
          const mt = oldM ? oldM.mul(beta1).add(g.mul(1 - beta1)) : g.mul(1 - beta1);
          const vt = oldV ? oldV.mul(beta2).add(g.square().mul(1 - beta2)) : g.square().mul(1 - beta2);
          const denom = vt.sqrt().mul(invSqrtBc2).add(epsilon);
          const decayed = keepFactor === 1 ? p : p.mul(keepFactor);
          return [mt, vt, decayed.sub(mt.div(denom).mul(stepSize))];
        });
        p.assign(newP);
        newP.dispose();
        oldM?.dispose();
        oldV?.dispose();
        m.set(name, newM);
        v.set(name, newV);
        if (g !== g0) g.dispose();
      }
    },
    state() {
      const out: AdamWState = { step: t, m: {}, v: {} };
      for (const [name, tensor] of m) out.m[name] = new Float32Array(tensor.dataSync() as Float32Array);
      for (const [name, tensor] of v) out.v[name] = new Float32Array(tensor.dataSync() as Float32Array);
      return out;
    },
    load(state) {
      if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamW state: step ${state.step} is not a count`);
      const next = { m: new Map<string, tf.Tensor>(), v: new Map<string, tf.Tensor>() };
      try {
        for (const key of ['m', 'v'] as const) {
          for (const [name, values] of Object.entries(state[key])) {
            const p = variables.get(name);
            if (!p) throw new Error(`AdamW state: ${key} for unknown parameter ${name}`);
            if (values.length !== p.size) {
              throw new Error(`AdamW state: ${key} for ${name} has ${values.length} values, parameter has ${p.size}`);
            }
            next[key].set(name, tf.tensor(Float32Array.from(values), p.shape, 'float32'));
          }
        }
      } catch (error) {
        for (const map of [next.m, next.v]) for (const x of map.values()) x.dispose();
        throw error;
      }
      for (const x of [...m.values(), ...v.values()]) x.dispose();
      m.clear();
      v.clear();
      for (const [name, x] of next.m) m.set(name, x);
      for (const [name, x] of next.v) v.set(name, x);
      t = state.step;
    },
    dispose() {
      for (const x of [...m.values(), ...v.values()]) x.dispose();
      m.clear();
      v.clear();
    },
  };
}

/**
 * One AdamW update in place on the wasm heap: the parameter, its moments and the gradient are read and
 * written by one native call (instead of ~10 TF.js ops per tensor). A variable that shares its data
 * with another tensor (the tensor it was made from, a snapshot) gets its own copy first, so the update
 * never shows through anything else.
 */
function nativeUpdate(
  native: NativeAddon,
  p: tf.Variable,
  g: tf.Tensor,
  m: Map<string, tf.Tensor>,
  v: Map<string, tf.Tensor>,
  name: string,
  o: { beta1: number; beta2: number; epsilon: number; keepFactor: number; stepSize: number; invSqrtBc2: number; gradScale: number },
): void {
  if (refCount(p) > 1) {
    // A real copy: tf.clone shares data on the native engine.
    const own = allocate(p.shape);
    const heap = new Float32Array(heapBuffer());
    const from = offsetOf(p) / 4;
    heap.copyWithin(offsetOf(own) / 4, from, from + p.size);
    p.assign(own);
    own.dispose();
  }
  let mt = m.get(name);
  let vt = v.get(name);
  const first = !mt || !vt;
  if (!mt || !vt) {
    mt?.dispose();
    vt?.dispose();
    mt = tf.keep(allocate(p.shape));
    vt = tf.keep(allocate(p.shape));
    m.set(name, mt);
    v.set(name, vt);
  }
  native.adamw(
    heapBuffer(), offsetOf(p), offsetOf(mt), offsetOf(vt), offsetOf(g), p.size,
    o.beta1, o.beta2, o.epsilon, o.keepFactor, o.stepSize, o.invSqrtBc2, o.gradScale, first ? 1 : 0,
  );
}

/**
 * The global L2 norm over all gradients, as torch.nn.utils.clip_grad_norm_ computes it: on the native
 * engine one pass per tensor summed in double in map order, else TF.js's graph.
 */
export function globalGradNorm(grads: Map<string, tf.Tensor>): number {
  if (grads.size === 0) return 0;
  const native = fusedNative();
  if (native) {
    let sum = 0;
    for (const g of grads.values()) sum += native.sumSquares(heapBuffer(), offsetOf(g), g.size);
    return Math.sqrt(sum);
  }
  const normTensor = tf.tidy(() => tf.addN([...grads.values()].map((g) => g.square().sum())).sqrt());
  const norm = normTensor.dataSync()[0];
  normTensor.dispose();
  return norm;
}

/** clip_grad_norm_'s scale: min(1, maxNorm / (norm + 1e-6)); maxNorm <= 0 means no clipping. */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
}

/**
 * torch.nn.utils.clip_grad_norm_: the global L2 norm over all gradients, and gradients scaled by
 * min(1, maxNorm / (norm + 1e-6)). Returns new tensors (clones when nothing is scaled) so the caller
 * disposes input and output the same way either way; the input is not disposed.
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { grads: Map<string, tf.Tensor>; norm: number } {
  if (grads.size === 0) return { grads: new Map(), norm: 0 };
  const norm = globalGradNorm(grads);
  // maxNorm <= 0 means no clipping (Hugging Face's max_grad_norm = 0); the norm is still reported.
  const coef = clipCoefficient(norm, maxNorm);
  const out = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) out.set(name, coef < 1 ? tf.tidy(() => g.mul(coef)) : tf.clone(g));
  return { grads: out, norm };
}
