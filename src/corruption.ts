import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from './errors';
import type { ModelConfig } from './model/config';
import { parameterLayout, type ParamInfo, type ParamMap, type ParamRole } from './model/names';
import { createRng, deriveSeed, type Rng } from './random';

/**
 * Corrupting encoder layers of a pretrained BERT, the intervention of "Healing Powers of BERT".
 * `corrupt` is a pure function over named parameters: it returns a new ParamMap and a report of
 * what it touched, so a loaded model is never changed in place and an analysis can point at exactly
 * which tensors moved.
 *
 * Layer syntax (text form, as on the command line; layer 0 is the bottom, next to the embeddings):
 *   bottom:K      the K lowest layers            (K a whole number, 0 allowed: a no-op baseline)
 *   top:K         the K highest layers
 *   bottom:F      a fraction F in (0,1) of the layers, from the bottom: round(F x numLayers), at least 1
 *   top:F         the same, from the top
 *   0,3,5         an explicit list of layer indices (a single index "3" works too)
 *   all           every layer;  none: no layer (only `embeddings` / `pooler` can then be touched)
 */

export const LAYER_COMPONENTS = ['all', 'attention', 'ffn', 'layernorm'] as const;
/** Outside the encoder layers; touched only when named, whatever the layer selector says. */
export const EXTRA_COMPONENTS = ['embeddings', 'pooler'] as const;
export const COMPONENTS = [...LAYER_COMPONENTS, ...EXTRA_COMPONENTS] as const;
export const MODES = ['reinit', 'noise', 'zero', 'partial'] as const;

export const DEFAULT_NOISE_RATIO = 1.0;
export const DEFAULT_PARTIAL_FRACTION = 0.5;

export const layerSelectorSchema = z.union([
  z.object({ kind: z.enum(['bottom', 'top']), count: z.number().int().nonnegative() }).strict(),
  z.object({ kind: z.literal('list'), layers: z.array(z.number().int().nonnegative()) }).strict(),
  z
    .object({ kind: z.literal('fraction'), fraction: z.number().gt(0).max(1), from: z.enum(['bottom', 'top']) })
    .strict(),
]);

export const corruptionSpecSchema = z
  .object({
    layers: layerSelectorSchema,
    components: z.array(z.enum(COMPONENTS)).min(1),
    mode: z.enum(MODES),
    /** noise: the added Gaussian's std as a multiple of each tensor's own std. */
    ratio: z.number().nonnegative().finite().optional(),
    /** partial: the probability that each entry is re-initialised. */
    fraction: z.number().min(0).max(1).optional(),
  })
  .strict();

export type LayerSelector = z.infer<typeof layerSelectorSchema>;
export type CorruptionSpec = z.infer<typeof corruptionSpecSchema>;
export type CorruptionComponent = CorruptionSpec['components'][number];
export type CorruptionMode = CorruptionSpec['mode'];

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

function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Validates the object form (e.g. from an experiment spec file); `source` names it in errors. */
export function validateCorruptionSpec(value: unknown, source = 'corruption spec'): CorruptionSpec {
  const parsed = corruptionSpecSchema.safeParse(value);
  if (!parsed.success) throw new UserError(`${source}: ${issuesText(parsed.error)}`);
  return parsed.data;
}

const WHOLE = /^\d+$/;
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;

/**
 * Parses the text form of a layer selector (syntax at the top of this file). With `numLayers`,
 * also checks the selection fits the model. `source` prefixes error messages (the CLI flag).
 */
export function parseLayers(text: string, numLayers?: number, source = '--layers'): LayerSelector {
  const t = text.trim().toLowerCase();
  const fail = (why: string): never => {
    throw new UserError(`${source} ${text}: ${why}`);
  };
  let selector: LayerSelector;
  const m = /^(bottom|top):(.*)$/.exec(t);
  if (t === 'all') selector = { kind: 'fraction', fraction: 1, from: 'bottom' };
  else if (t === 'none') selector = { kind: 'list', layers: [] };
  else if (m) {
    const from = m[1] as 'bottom' | 'top';
    const n = m[2].trim();
    if (!DECIMAL.test(n)) fail(`expected ${from}:K (a number of layers) or ${from}:F (a fraction in (0,1))`);
    const value = Number(n);
    if (WHOLE.test(n) || Number.isInteger(value)) selector = { kind: from, count: value };
    else if (value > 0 && value < 1) selector = { kind: 'fraction', fraction: value, from };
    else selector = fail(`${n} is neither a whole number of layers nor a fraction in (0,1)`);
  } else if (/^\d+(\s*,\s*\d+)*$/.test(t)) {
    const layers = [...new Set(t.split(',').map((s) => Number(s.trim())))].sort((a, b) => a - b);
    selector = { kind: 'list', layers };
  } else {
    selector = fail('expected bottom:K, top:K, bottom:F / top:F with F in (0,1), a list like 0,3,5, all or none');
  }
  if (numLayers !== undefined) selectedLayers(selector, numLayers, `${source} ${text}`);
  return selector;
}

/**
 * The layer indices a selector picks on a model with `numLayers` layers, ascending. Throws a
 * UserError when the selector asks for layers the model does not have.
 */
export function selectedLayers(selector: LayerSelector, numLayers: number, source?: string): number[] {
  const where = source ?? `layers ${formatLayers(selector)}`;
  const range = (from: 'bottom' | 'top', count: number): number[] =>
    Array.from({ length: count }, (_, i) => (from === 'bottom' ? i : numLayers - count + i));
  switch (selector.kind) {
    case 'bottom':
    case 'top':
      if (selector.count > numLayers) throw new UserError(`${where}: the model has ${numLayers} layers`);
      return range(selector.kind, selector.count);
    case 'fraction': {
      // Math.round sends .5 up: half of 3 layers is 2. A positive fraction always picks at least one.
      const count = Math.min(numLayers, Math.max(1, Math.round(selector.fraction * numLayers)));
      return range(selector.from, count);
    }
    case 'list': {
      const bad = selector.layers.filter((l) => l >= numLayers);
      if (bad.length > 0) {
        throw new UserError(`${where}: layer ${bad.join(', ')} does not exist (the model has ${numLayers} layers, 0-${numLayers - 1})`);
      }
      return [...new Set(selector.layers)].sort((a, b) => a - b);
    }
  }
}

function formatLayers(selector: LayerSelector): string {
  switch (selector.kind) {
    case 'bottom':
    case 'top':
      return `${selector.kind}:${selector.count}`;
    case 'fraction':
      return selector.fraction === 1 ? 'all' : `${selector.from}:${selector.fraction}`;
    case 'list':
      return selector.layers.length === 0 ? 'none' : selector.layers.join(',');
  }
}

function parseComponents(text: string, source: string): CorruptionComponent[] {
  const parts = text
    .split(/[,+]/)
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
  if (parts.length === 0) throw new UserError(`${source} "${text}": name at least one component (${COMPONENTS.join(', ')})`);
  for (const p of parts) {
    if (!(COMPONENTS as readonly string[]).includes(p)) {
      throw new UserError(`${source} ${text}: unknown component "${p}" (expected ${COMPONENTS.join(', ')})`);
    }
  }
  return [...new Set(parts)] as CorruptionComponent[];
}

function parseNumber(text: string | number, flag: string, check: (v: number) => boolean, expected: string): number {
  const value = typeof text === 'number' ? text : DECIMAL.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isFinite(value) || !check(value)) throw new UserError(`${flag} ${text}: expected ${expected}`);
  return value;
}

/**
 * Builds a spec from CLI-style strings. `components` is comma (or +) separated and defaults to all;
 * `mode` defaults to reinit. With `numLayers`, the layer selection is checked against the model.
 */
export function parseCorruptionSpec(
  input: {
    layers: string;
    components?: string | string[];
    mode?: string;
    ratio?: string | number;
    fraction?: string | number;
  },
  numLayers?: number,
): CorruptionSpec {
  const layers = parseLayers(input.layers, numLayers);
  const components =
    input.components === undefined
      ? (['all'] as CorruptionComponent[])
      : parseComponents(Array.isArray(input.components) ? input.components.join(',') : input.components, '--components');
  const mode = (input.mode ?? 'reinit').trim().toLowerCase();
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new UserError(`--mode ${input.mode}: expected one of ${MODES.join(', ')}`);
  }
  if (input.ratio !== undefined && mode !== 'noise') throw new UserError(`--ratio applies only to --mode noise (got --mode ${mode})`);
  if (input.fraction !== undefined && mode !== 'partial') {
    throw new UserError(`--fraction applies only to --mode partial (got --mode ${mode})`);
  }
  const spec: CorruptionSpec = { layers, components, mode: mode as CorruptionMode };
  if (input.ratio !== undefined) spec.ratio = parseNumber(input.ratio, '--ratio', (v) => v >= 0, 'a number >= 0');
  if (input.fraction !== undefined) {
    spec.fraction = parseNumber(input.fraction, '--fraction', (v) => v >= 0 && v <= 1, 'a number in [0, 1]');
  }
  return spec;
}

/**
 * A short string for result tables: layers/components/mode, with the noise ratio or partial
 * fraction after a colon, e.g. "bottom:2/all/reinit", "0,3/attention+ffn/noise:0.5".
 * parseCorruptionString reads it back.
 */
export function formatCorruptionSpec(spec: CorruptionSpec): string {
  let mode: string = spec.mode;
  if (spec.mode === 'noise') mode += `:${spec.ratio ?? DEFAULT_NOISE_RATIO}`;
  if (spec.mode === 'partial') mode += `:${spec.fraction ?? DEFAULT_PARTIAL_FRACTION}`;
  return `${formatLayers(spec.layers)}/${spec.components.join('+')}/${mode}`;
}

/** Inverse of formatCorruptionSpec. */
export function parseCorruptionString(text: string, numLayers?: number): CorruptionSpec {
  const parts = text.split('/');
  if (parts.length !== 3) throw new UserError(`corruption "${text}": expected LAYERS/COMPONENTS/MODE, e.g. bottom:2/all/reinit`);
  const [layers, components, modeText] = parts;
  const [mode, param] = modeText.split(':');
  return parseCorruptionSpec(
    {
      layers,
      components,
      mode,
      ratio: mode === 'noise' && param !== undefined ? param : undefined,
      fraction: mode === 'partial' && param !== undefined ? param : undefined,
    },
    numLayers,
  );
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
