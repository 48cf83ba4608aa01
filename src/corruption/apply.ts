import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import type { ModelConfig } from '../model/config';
import { parameterLayout, type ParamInfo, type ParamMap, type ParamRole } from '../model/names';
import { createRng, deriveSeed, type Rng } from '../random';
import { INITIALIZER_RANGE } from '../model/init';
import {
  DEFAULT_NOISE_RATIO,
  DEFAULT_PARTIAL_FRACTION,
  EXTRA_COMPONENTS,
  formatCorruptionSpec,
  selectedLayers,
  validateCorruptionSpec,
  type CorruptionComponent,
  type CorruptionSpec,
} from './spec';

/**
 * Corrupting encoder layers of a pretrained BERT, the intervention of "Healing Powers of BERT".
 * `corrupt` is a pure function over named parameters: it returns a new ParamMap and a report of
 * what it touched, so a loaded model is never changed in place and an analysis can point at exactly
 * which tensors moved. What a spec may say, and its text form, is ./spec.ts.
 */

export interface TensorStats {
  mean: number;
  std: number;
  min: number;
  max: number;
}

export interface TouchedTensor {
  name: string;
  role: ParamRole;
  layer?: number;
  component: ParamInfo['component'];
  shape: number[];
  before: TensorStats;
  after: TensorStats;
}

export interface CorruptionReport {
  /** formatCorruptionSpec(spec), e.g. "bottom:2/all/reinit". */
  spec: string;
  seed: number;
  /** Encoder layers that had at least one tensor touched, ascending. */
  layers: number[];
  tensors: TouchedTensor[];
}

/** Whether a spec picks a parameter. Heads (classifier, MLM) are never touched. */
function picks(info: ParamInfo, layers: ReadonlySet<number>, components: ReadonlySet<CorruptionComponent>): boolean {
  switch (info.component) {
    case 'head':
      return false;
    case 'embeddings':
    case 'pooler':
      return components.has(info.component);
    default:
      if (info.layer === undefined || !layers.has(info.layer)) return false;
      return components.has('all') || components.has(info.component);
  }
}

/** Mean, population std, min and max, accumulated in float64. */
export function tensorStats(values: ArrayLike<number>): TensorStats {
  const n = values.length;
  if (n === 0) return { mean: 0, std: 0, min: 0, max: 0 };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = values[i];
    sum += x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - mean;
    sq += d * d;
  }
  return { mean, std: Math.sqrt(sq / n), min, max };
}

/**
 * What `reinit` puts in a tensor of this role: a constant, or for weights torch's kaiming_uniform_
 * with a = 0 (gain sqrt(2)), i.e. U(-b, b) with b = sqrt(6 / fan_in). fan_in is shape[1], as torch
 * computes it for any 2-D tensor: the input size of an [out, in] Linear weight, and the embedding
 * dim for an [rows, dim] embedding matrix (torch's convention, though "fan in" of a lookup table
 * is debatable).
 */
function reinitRule(info: ParamInfo, shape: number[]): { constant: number } | { bound: number } {
  switch (info.role) {
    case 'layernorm_weight':
      return { constant: 1 };
    case 'bias':
    case 'layernorm_bias':
      return { constant: 0 };
    case 'linear_weight':
    case 'embedding':
      if (shape.length !== 2) throw new UserError(`${info.name}: expected a 2-D weight, got shape [${shape.join(', ')}]`);
      return { bound: Math.sqrt(6 / shape[1]) };
  }
}

// The loops below run over up to 110M entries (bert-base), so they stay monomorphic: no per-entry closures.
function corruptValues(values: Float32Array, info: ParamInfo, shape: number[], spec: CorruptionSpec, rng: Rng, before: TensorStats): void {
  const n = values.length;
  switch (spec.mode) {
    case 'zero':
      values.fill(0);
      return;
    case 'reinit': {
      const rule = reinitRule(info, shape);
      if ('constant' in rule) values.fill(rule.constant);
      else for (let i = 0; i < n; i++) values[i] = (2 * rng.next() - 1) * rule.bound;
      return;
    }
    case 'reinit-hf': {
      // Hugging Face's _init_weights: Linear and Embedding weights N(0, initializer_range), biases 0, LayerNorm 1 and 0.
      const rule = reinitRule(info, shape);
      if ('constant' in rule) values.fill(rule.constant);
      else for (let i = 0; i < n; i++) values[i] = rng.normal() * INITIALIZER_RANGE;
      return;
    }
    case 'noise': {
      // Noise scaled to the tensor's own spread, so the same ratio hurts small and large tensors alike;
      // a constant tensor (std 0, e.g. a fresh LayerNorm weight) is left as it is.
      const sigma = (spec.ratio ?? DEFAULT_NOISE_RATIO) * before.std;
      if (sigma === 0) return;
      for (let i = 0; i < n; i++) values[i] += sigma * rng.normal();
      return;
    }
    case 'partial': {
      // Each entry is re-initialised independently with probability `fraction` (Bernoulli, not an
      // exact count): no index permutation to hold in memory for a 23M-entry embedding matrix.
      const fraction = spec.fraction ?? DEFAULT_PARTIAL_FRACTION;
      const rule = reinitRule(info, shape);
      if ('constant' in rule) {
        for (let i = 0; i < n; i++) if (rng.next() < fraction) values[i] = rule.constant;
      } else {
        for (let i = 0; i < n; i++) if (rng.next() < fraction) values[i] = (2 * rng.next() - 1) * rule.bound;
      }
      return;
    }
    default: {
      // A mode added to MODES without a case here would otherwise leave every tensor as it was.
      const unhandled: never = spec.mode;
      throw new Error(`corruption mode ${String(unhandled)} has no rule in src/corruption/apply.ts`);
    }
  }
}

/**
 * Applies a corruption spec to a model's parameters.
 *
 * Pure: the input map and its tensors are neither mutated nor disposed. The result is a NEW map
 * holding NEW tensors for every name (untouched ones are tf.clone'd, which shares the data buffer in
 * TF.js and costs no copy), so the caller owns and disposes the input and the output independently.
 *
 * Every tensor draws from createRng(deriveSeed(seed, name)), so the numbers depend only on
 * (seed, name, spec), not on map order or on which other tensors were selected.
 * Names the architecture does not know are carried over untouched.
 */
export function corrupt(
  params: ParamMap,
  config: ModelConfig,
  spec: CorruptionSpec,
  seed: number,
): { params: ParamMap; report: CorruptionReport } {
  spec = validateCorruptionSpec(spec);
  const specText = formatCorruptionSpec(spec);
  const layers = new Set(selectedLayers(spec.layers, config.numLayers, `corruption ${specText}`));
  const components = new Set(spec.components);
  const layout = new Map<string, ParamInfo>();
  // Head names and shapes differ between heads, but only names, layer, component and role matter here.
  for (const head of ['classifier', 'mlm'] as const) for (const p of parameterLayout(config, head)) layout.set(p.name, p);

  const chosen: Array<[string, tf.Tensor, ParamInfo]> = [];
  for (const [name, tensor] of params) {
    const info = layout.get(name);
    if (info && picks(info, layers, components)) chosen.push([name, tensor, info]);
  }
  const asksForSomething =
    components.has('embeddings') || components.has('pooler') || (layers.size > 0 && spec.components.some((c) => !(EXTRA_COMPONENTS as readonly string[]).includes(c)));
  if (chosen.length === 0 && asksForSomething) {
    throw new UserError(
      `corruption ${specText}: selects no parameter of this ${config.modelType} model (are the parameter names Hugging Face's, e.g. ${[...layout.keys()][0]}?)`,
    );
  }
  for (const [name, tensor] of chosen) {
    if (tensor.dtype !== 'float32') throw new UserError(`${name}: cannot corrupt a ${tensor.dtype} tensor (expected float32)`);
  }

  const out: ParamMap = new Map();
  const touched = new Map<string, TouchedTensor>();
  try {
    for (const [name, tensor, info] of chosen) {
      // Copy: on the CPU backend dataSync() hands out the backend's own buffer.
      const values = new Float32Array(tensor.dataSync() as Float32Array);
      const before = tensorStats(values);
      corruptValues(values, info, tensor.shape, spec, createRng(deriveSeed(seed, name)), before);
      out.set(name, tf.tensor(values, tensor.shape, 'float32'));
      touched.set(name, {
        name,
        role: info.role,
        ...(info.layer !== undefined ? { layer: info.layer } : {}),
        component: info.component,
        shape: [...tensor.shape],
        before,
        after: tensorStats(values),
      });
    }
    for (const [name, tensor] of params) if (!out.has(name)) out.set(name, tf.clone(tensor));
  } catch (error) {
    for (const t of out.values()) t.dispose();
    throw error;
  }
  // Keep the input's order so a saved checkpoint lists tensors as the original did.
  const ordered: ParamMap = new Map([...params.keys()].map((name) => [name, out.get(name)!]));
  const tensors = [...params.keys()].filter((n) => touched.has(n)).map((n) => touched.get(n)!);
  const touchedLayers = [...new Set(tensors.flatMap((t) => (t.layer === undefined ? [] : [t.layer])))].sort((a, b) => a - b);
  return { params: ordered, report: { spec: specText, seed, layers: touchedLayers, tensors } };
}
