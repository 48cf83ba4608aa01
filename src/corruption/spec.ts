import { z } from 'zod';
import { UserError } from '../errors';
import { LAYER_PARTS, OUTER_PARTS } from '../model/names';

/**
 * The corruption vocabulary and its text form: what a corruption spec may say, how it is parsed from
 * flags and strings, checked and printed. Applying a spec is ./apply.ts. This file loads no TF.js, so
 * experiment specs (src/experiment/spec.ts) validate their corruption with these very schemas in the
 * grid's parent process, and the two cannot drift apart.
 *
 * Layer syntax (text form, as on the command line; layer 0 is the bottom, next to the embeddings):
 *   bottom:K      the K lowest layers            (K a whole number, 0 allowed: a no-op baseline)
 *   top:K         the K highest layers
 *   bottom:F      a fraction F in (0,1) of the layers, from the bottom: round(F x numLayers), at least 1
 *   top:F         the same, from the top
 *   0,3,5         an explicit list of layer indices (a single index "3" works too)
 *   all           every layer;  none: no layer (only `embeddings` / `pooler` can then be touched)
 */

/** Parts of the chosen layers; `all` is every one of them. */
export const LAYER_COMPONENTS = ['all', ...LAYER_PARTS] as const;
/** Outside the encoder layers; touched only when named, whatever the layer selector says. */
export const EXTRA_COMPONENTS = OUTER_PARTS;
export const COMPONENTS = [...LAYER_COMPONENTS, ...EXTRA_COMPONENTS] as const;
/**
 * reinit: the paper's, as public descriptions give it (LayerNorm 1, biases 0, weights Kaiming-uniform).
 * reinit-hf: Hugging Face's _init_weights, weights ~ N(0, initializer_range), the start of pretraining;
 *   Zhang et al. (2021, "Revisiting Few-sample BERT Fine-tuning") re-initialise top layers this way.
 * noise: Gaussian noise scaled to each tensor's std. zero: all zeros. partial: reinit of a fraction of entries.
 */
export const MODES = ['reinit', 'reinit-hf', 'noise', 'zero', 'partial'] as const;
export const DEFAULT_MODE = 'reinit' satisfies (typeof MODES)[number];

export const DEFAULT_NOISE_RATIO = 1.0;
export const DEFAULT_PARTIAL_FRACTION = 0.5;

// Zero is refused for both: noise of ratio 0 and partial of fraction 0 change nothing, and a run
// recorded as corrupted that was not would pass for a model that healed completely.
const RATIO_EXPECTED = 'a number > 0';
const FRACTION_EXPECTED = 'a number in (0, 1]';

export const componentsSchema = z.array(z.enum(COMPONENTS)).min(1);
export const modeSchema = z.enum(MODES);
/** noise: the added Gaussian's std as a multiple of each tensor's own std. */
export const ratioSchema = z.number().positive(`expected ${RATIO_EXPECTED}`);
/** partial: the probability that each entry is re-initialised. */
export const fractionSchema = z.number().gt(0, `expected ${FRACTION_EXPECTED}`).max(1, `expected ${FRACTION_EXPECTED}`);

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
    components: componentsSchema,
    mode: modeSchema,
    ratio: ratioSchema.optional(),
    fraction: fractionSchema.optional(),
  })
  .strict();

export type LayerSelector = z.infer<typeof layerSelectorSchema>;
export type CorruptionSpec = z.infer<typeof corruptionSpecSchema>;
export type CorruptionComponent = CorruptionSpec['components'][number];
export type CorruptionMode = CorruptionSpec['mode'];

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

/** A flag's number, held to the same schema as the object form, so flags and spec files agree on bounds. */
function parseNumber(text: string | number, flag: string, schema: z.ZodNumber, expected: string): number {
  const value = typeof text === 'number' ? text : DECIMAL.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isFinite(value) || !schema.safeParse(value).success) throw new UserError(`${flag} ${text}: expected ${expected}`);
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
  const mode = (input.mode ?? DEFAULT_MODE).trim().toLowerCase();
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new UserError(`--mode ${input.mode}: expected one of ${MODES.join(', ')}`);
  }
  if (input.ratio !== undefined && mode !== 'noise') throw new UserError(`--ratio applies only to --mode noise (got --mode ${mode})`);
  if (input.fraction !== undefined && mode !== 'partial') {
    throw new UserError(`--fraction applies only to --mode partial (got --mode ${mode})`);
  }
  const spec: CorruptionSpec = { layers, components, mode: mode as CorruptionMode };
  if (input.ratio !== undefined) spec.ratio = parseNumber(input.ratio, '--ratio', ratioSchema, RATIO_EXPECTED);
  if (input.fraction !== undefined) spec.fraction = parseNumber(input.fraction, '--fraction', fractionSchema, FRACTION_EXPECTED);
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
