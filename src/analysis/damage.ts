import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../backend/engine';
import { corrupt, formatCorruptionSpec, parseCorruptionSpec, parseCorruptionString, type CorruptionSpec } from '../corruption';
import { UserError } from '../errors';
import { loadCheckpoint, checkTokenizerFits } from '../io/checkpoint';
import { resolveModelDir } from '../io/models';
import type { ModelConfig } from '../model/config';
import { fillMask } from '../model/fill-mask';
import { disposeParams, type ParamMap } from '../model/names';
import { deriveSeed } from '../random';
import { loadTokenizer, type BertTokenizer } from '../tokenizer/tokenizer';
import { packSequences } from '../train/masking';
import { heldOutMetrics } from '../train/pretrain';
import { linearCKA } from './cka';
import { parseLayerSpec, type Side } from './frames';
import type { Figure } from './figures';
import { hiddenStateNames, hiddenStatesFor, type Pooling } from './hidden';
import { mean, pct } from './stats';

/**
 * What corruption does before any fine-tuning: how much of the pretrained model's masked-LM skill is
 * left, what it now guesses for a [MASK], and how far each layer's representations moved from the
 * clean model's. The corrupted weights are exactly those an experiment with the same seed fine-tunes
 * (prepareModel derives the corruption seed the same way), so this is the starting point of healing.
 */

/** A loaded masked-LM model; pass one to the functions below to load it once for several analyses. */
export interface MlmModel {
  dir: string;
  config: ModelConfig;
  params: ParamMap;
  tokenizer: BertTokenizer;
}

/** Loads a model with its masked-LM head ('default', 'tiny', a directory or a hub id). Dispose with disposeParams(model.params). */
export async function loadMlmModel(model: string): Promise<MlmModel> {
  await initEngine();
  const dir = await resolveModelDir(model);
  const checkpoint = await loadCheckpoint(dir, { head: 'mlm' });
  if (checkpoint.report.initialised.length > 0) {
    disposeParams(checkpoint.params);
    throw new UserError(
      `${dir}: has no masked-LM head (${checkpoint.report.initialised[0].name} is missing), so its pretrained knowledge cannot be measured; use a checkpoint saved with its MLM head`,
    );
  }
  const tokenizer = await loadTokenizer(dir);
  try {
    checkTokenizerFits(tokenizer, checkpoint.config, dir);
  } catch (error) {
    disposeParams(checkpoint.params);
    throw error;
  }
  return { dir, config: checkpoint.config, params: checkpoint.params, tokenizer };
}

type ModelArg = string | MlmModel;

async function withModel<T>(model: ModelArg, fn: (m: MlmModel) => Promise<T> | T): Promise<T> {
  if (typeof model !== 'string') return fn(model);
  const loaded = await loadMlmModel(model);
  try {
    return await fn(loaded);
  } finally {
    disposeParams(loaded.params);
  }
}

/** "bottom:2" (every component, re-initialised, as the paper does) or a full "bottom:2/attention/noise:0.5". */
export function damageSpec(text: string, numLayers: number): CorruptionSpec {
  return text.includes('/') ? parseCorruptionString(text, numLayers) : parseCorruptionSpec({ layers: text }, numLayers);
}

/** Row types here are type aliases (not interfaces), so rows pass as plain records to showTable and frameOf. */
export type CorruptionInfo = {
  /** 'clean', or the corruption as the user gave it (e.g. "bottom:2"). */
  corruption: string;
  side: Side;
  /** Number of corrupted layers (0 for clean). */
  k: number;
  /** The corrupted layer indices, "0,1" (empty for clean). */
  layers: string;
};

type Variant = CorruptionInfo & {
  /** Valid only during the callback: a corrupted variant's weights are disposed right after it. */
  params: ParamMap;
};

/**
 * Runs `fn` on the clean model (when includeClean) and on each corrupted variant in turn, holding
 * one corrupted copy at a time so memory stays that of two models.
 */
async function forEachVariant<T>(
  model: MlmModel,
  specs: readonly string[],
  seed: number,
  includeClean: boolean,
  fn: (v: Variant) => T,
): Promise<T[]> {
  const out: T[] = [];
  if (includeClean) out.push(fn({ corruption: 'clean', side: 'clean', k: 0, layers: '', params: model.params }));
  for (const text of specs) {
    const spec = damageSpec(text, model.config.numLayers);
    const { params, report } = corrupt(model.params, model.config, spec, deriveSeed(seed, 'corruption'));
    try {
      const layersText = formatCorruptionSpec(spec).split('/')[0];
      out.push(fn({ corruption: text, side: parseLayerSpec(layersText).side, k: report.layers.length, layers: report.layers.join(','), params }));
    } finally {
      disposeParams(params);
    }
    // Corrupting and scoring a variant is seconds of synchronous work; let a notebook's output through.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

export interface MlmDamageOptions {
  /** 'default', 'tiny', a checkpoint directory, or a loaded model. */
  model: ModelArg;
  /** Corruptions, e.g. ['bottom:1', 'bottom:2', 'top:1', 'top:2']; the clean model is always scored first. */
  specs: readonly string[];
  /** Held-out text (a dataset's evaluation texts, or any text the model was not pretrained on). */
  texts: readonly string[];
  /** Corruption seed(s); each gives its own rows (default [0]). */
  seeds?: readonly number[];
  /** Which positions are masked: fixed across corruptions so every row is scored on the same predictions (default 0). */
  maskSeed?: number;
  /** Length of the packed sequences (default 128, at most the model's max positions). */
  maxLength?: number;
  /** At most this many packed sequences are scored (default 64). */
  maxSequences?: number;
  batchSize?: number;
}

export type MlmDamageRow = CorruptionInfo & {
  seed: number;
  /** Mean cross-entropy over the masked positions (nats). */
  mlmLoss: number;
  /** Share of masked positions whose original token is the top prediction. */
  mlmAccuracy: number;
  /** Packed sequences of maxLength tokens scored (about 15 % of their tokens are predicted). */
  sequences: number;
};

/**
 * Packs texts into full sequences of maxLength tokens ([CLS] ... [SEP]), as pretraining does, so the
 * MLM metrics here and in the model card measure the same thing.
 */
export function packTexts(tokenizer: BertTokenizer, texts: readonly string[], maxLength: number): Int32Array[] {
  const documents = texts.map((t) => tokenizer.encode(t, undefined, { truncation: false }).inputIds.slice(1, -1));
  return packSequences(documents, maxLength, tokenizer.clsId, tokenizer.sepId);
}

function specialIds(tokenizer: BertTokenizer): Set<number> {
  return new Set([tokenizer.padId, tokenizer.clsId, tokenizer.sepId, tokenizer.unkId, tokenizer.maskId]);
}

/**
 * Masked-LM loss and accuracy of the clean model and of each corruption (per seed), on the same
 * masked positions of the same texts. Rows: the clean model once per seed, then the specs in order.
 */
export async function mlmDamage(options: MlmDamageOptions): Promise<MlmDamageRow[]> {
  return withModel(options.model, async (model) => {
    const maxLength = Math.min(options.maxLength ?? 128, model.config.maxPositions);
    const sequences = packTexts(model.tokenizer, options.texts, maxLength).slice(0, options.maxSequences ?? 64);
    if (sequences.length === 0) {
      throw new UserError(`mlmDamage: ${options.texts.length} text(s) do not fill one sequence of ${maxLength} tokens; give more text or a smaller maxLength`);
    }
    const masking = { maskId: model.tokenizer.maskId, specialIds: specialIds(model.tokenizer) };
    const maskSeed = options.maskSeed ?? 0;
    const rows: MlmDamageRow[] = [];
    for (const seed of options.seeds ?? [0]) {
      const scored = await forEachVariant(model, options.specs, seed, true, (v) => {
        const m = heldOutMetrics(model.config, v.params, sequences, masking, maskSeed, options.batchSize ?? 16);
        return { corruption: v.corruption, side: v.side, k: v.k, layers: v.layers, seed, mlmLoss: m.loss, mlmAccuracy: m.accuracy, sequences: sequences.length };
      });
      rows.push(...scored);
    }
    return rows;
  });
}

export type FillMaskRow = CorruptionInfo & {
  sentence: string;
  /** Top predictions at the first [MASK], best first. */
  tokens: string[];
  probabilities: number[];
  /** "great 21.0 % · good 10.3 % · ..." for tables. */
  predictions: string;
};

/**
 * What the clean model and each corruption predict for the [MASK] in each sentence (top `top` tokens
 * at the first mask), e.g. for "the movie was [MASK] .".
 */
export async function fillMaskComparison(
  model: ModelArg,
  sentences: readonly string[],
  specs: readonly string[],
  options: { seed?: number; top?: number } = {},
): Promise<FillMaskRow[]> {
  return withModel(model, async (m) => {
    const perVariant = await forEachVariant(m, specs, options.seed ?? 0, true, (v) =>
      sentences.map((sentence) => {
        const [first] = fillMask(m.config, v.params, m.tokenizer, sentence, options.top ?? 5);
        const tokens = first.predictions.map((p) => p.token);
        const probabilities = first.predictions.map((p) => p.probability);
        return {
          sentence,
          corruption: v.corruption,
          side: v.side,
          k: v.k,
          layers: v.layers,
          tokens,
          probabilities,
          predictions: first.predictions.map((p) => `${p.token} ${(100 * p.probability).toFixed(1)} %`).join(' · '),
        };
      }),
    );
    // Sentence-major, so a table shows each sentence's predictions under every corruption together.
    return sentences.flatMap((_, i) => perVariant.map((rows) => rows[i]));
  });
}

export type SimilarityRow = CorruptionInfo & {
  seed: number;
  /** "embeddings", "layer 0" (bottom), ... */
  layerName: string;
  /** Encoder layer index; -1 for the embedding output. */
  layer: number;
  /** Linear CKA between the clean and the corrupted model's pooled representations at this depth. */
  cka: number;
};

/**
 * Per spec and per depth, linear CKA between the clean and the corrupted model's pooled hidden
 * states of the same texts: 1 where corruption left the representation intact (up to rotation and
 * scale), lower where it changed what the layer encodes.
 */
export async function representationSimilarity(
  model: ModelArg,
  specs: readonly string[],
  texts: readonly string[],
  options: { seeds?: readonly number[]; maxLength?: number; pooling?: Pooling; batchSize?: number } = {},
): Promise<SimilarityRow[]> {
  return withModel(model, async (m) => {
    const hiddenOptions = { maxLength: options.maxLength ?? 128, pooling: options.pooling ?? 'mean', batchSize: options.batchSize };
    const names = hiddenStateNames(m.config.numLayers);
    const clean = hiddenStatesFor(m.config, m.params, m.tokenizer, texts, hiddenOptions);
    try {
      const rows: SimilarityRow[] = [];
      for (const seed of options.seeds ?? [0]) {
        const perVariant = await forEachVariant(m, specs, seed, false, (v) => {
          const states = hiddenStatesFor(m.config, v.params, m.tokenizer, texts, hiddenOptions);
          try {
            return states.map((s, depth) => ({
              corruption: v.corruption,
              side: v.side,
              k: v.k,
              layers: v.layers,
              seed,
              layerName: names[depth],
              layer: depth - 1,
              cka: linearCKA(clean[depth], s),
            }));
          } finally {
            tf.dispose(states);
          }
        });
        rows.push(...perVariant.flat());
      }
      return rows;
    } finally {
      tf.dispose(clean);
    }
  });
}

export type DamageVerdict = 'supported' | 'not supported' | 'not enough data';

export interface DamageFindings {
  /** Mean MLM accuracy of the clean model over seeds. */
  clean: number;
  /** Mean MLM accuracy per side and K over seeds, K ascending. */
  curves: Record<'bottom' | 'top', Array<{ k: number; accuracy: number; layers: string }>>;
  /** Clean accuracy minus the lowest corrupted accuracy: how much there was to destroy. */
  range: number;
  /** Every corruption scores below the clean model. */
  damages: boolean;
  /** Per side, the K at which accuracy rose (by more than the tolerance) from K-1; empty = monotone. */
  increases: Record<'bottom' | 'top', number[]>;
  /** Ks where bottom-K and top-K corrupt different layers, and those where bottom-K scores lower. */
  comparedKs: number[];
  bottomWorseKs: number[];
  /** Compared Ks where both sides score the same (e.g. both collapsed to predicting one frequent token). */
  tiedKs: number[];
  /** "Corrupting more layers damages more" (damage, and monotone on both sides). */
  moreIsWorse: DamageVerdict;
  /** "Bottom layers matter more" (bottom-K below top-K at every compared K). */
  bottomIsWorse: DamageVerdict;
  /** One sentence per part, with the numbers. */
  text: string[];
}

/**
 * The damage claim checked on mlmDamage rows. With less than `margin` between the clean model and
 * its most corrupted variant there is nothing measurable to destroy (an untrained model), and both
 * parts say 'not enough data' rather than reading noise.
 */
export function damageFindings(rows: readonly MlmDamageRow[], options: { tolerance?: number; margin?: number } = {}): DamageFindings {
  const tolerance = options.tolerance ?? 0.002;
  const margin = options.margin ?? 0.01;
  const cleanValues = rows.filter((r) => r.side === 'clean').map((r) => r.mlmAccuracy);
  const clean = mean(cleanValues);
  const curve = (side: 'bottom' | 'top') => {
    const ks = [...new Set(rows.filter((r) => r.side === side).map((r) => r.k))].sort((a, b) => a - b);
    return ks.map((k) => {
      const group = rows.filter((r) => r.side === side && r.k === k);
      return { k, accuracy: mean(group.map((r) => r.mlmAccuracy)), layers: group[0].layers };
    });
  };
  const curves = { bottom: curve('bottom'), top: curve('top') };
  const corrupted = [...curves.bottom, ...curves.top];
  const range = corrupted.length ? clean - Math.min(...corrupted.map((c) => c.accuracy)) : NaN;
  const damages = corrupted.length > 0 && corrupted.every((c) => c.accuracy < clean);
  const rises = (points: Array<{ k: number; accuracy: number }>) => {
    const withClean = [{ k: 0, accuracy: clean }, ...points];
    return withClean.slice(1).filter((p, i) => p.accuracy > withClean[i].accuracy + tolerance).map((p) => p.k);
  };
  const increases = { bottom: rises(curves.bottom), top: rises(curves.top) };
  const comparedKs: number[] = [];
  const bottomWorseKs: number[] = [];
  const tiedKs: number[] = [];
  for (const b of curves.bottom) {
    const t = curves.top.find((p) => p.k === b.k);
    if (!t || t.layers === b.layers) continue;
    comparedKs.push(b.k);
    if (b.accuracy < t.accuracy) bottomWorseKs.push(b.k);
    else if (b.accuracy === t.accuracy) tiedKs.push(b.k);
  }
  const enough = Number.isFinite(clean) && corrupted.length > 0 && range >= margin;
  const moreIsWorse: DamageVerdict = !enough
    ? 'not enough data'
    : damages && increases.bottom.length === 0 && increases.top.length === 0 ? 'supported' : 'not supported';
  const bottomIsWorse: DamageVerdict = !enough || comparedKs.length === 0
    ? 'not enough data'
    : bottomWorseKs.length === comparedKs.length ? 'supported' : 'not supported';
  const text: string[] = [];
  if (!Number.isFinite(clean) || corrupted.length === 0) {
    text.push('Not enough data: the rows need the clean model and at least one corruption.');
  } else if (range < margin) {
    text.push(`Not enough data: the clean model's MLM accuracy (${pct(clean)} %) is within ${pct(margin)} % of its most corrupted variant, so there is no measurable knowledge to destroy (is the model pretrained?).`);
  } else {
    const describe = (side: 'bottom' | 'top') => curves[side].map((p) => `${p.k}: ${pct(p.accuracy)} %`).join(', ');
    text.push(
      `More corruption, more damage: ${moreIsWorse}. Clean MLM accuracy ${pct(clean)} %; bottom-K ${describe('bottom')}; top-K ${describe('top')}. ` +
        (damages ? 'Every corruption scores below the clean model. ' : 'Some corruption scores at or above the clean model. ') +
        (increases.bottom.length + increases.top.length === 0
          ? `Accuracy never rises with K (tolerance ${pct(tolerance)} %).`
          : `Accuracy rises with K at bottom K = ${increases.bottom.join(', ') || 'none'} and top K = ${increases.top.join(', ') || 'none'}.`),
    );
    text.push(
      comparedKs.length === 0
        ? 'Bottom vs top: not enough data (no K where bottom-K and top-K corrupt different layers).'
        : `Bottom layers matter more: ${bottomIsWorse}. Bottom-K scores below top-K at ${bottomWorseKs.length} of ${comparedKs.length} K (${comparedKs.join(', ')})` +
            (tiedKs.length ? `; equal at K = ${tiedKs.join(', ')}.` : '.'),
    );
  }
  return { clean, curves, range, damages, increases, comparedKs, bottomWorseKs, tiedKs, moreIsWorse, bottomIsWorse, text };
}

/**
 * MLM accuracy (or loss) against the number of corrupted layers K, bottom vs top, mean over seeds;
 * the clean model is the K = 0 point of both lines.
 */
export function damageFigure(rows: readonly MlmDamageRow[], metric: 'mlmAccuracy' | 'mlmLoss' = 'mlmAccuracy'): Figure {
  const clean = rows.filter((r) => r.side === 'clean').map((r) => r[metric]);
  const name = metric === 'mlmAccuracy' ? 'Masked-LM accuracy' : 'Masked-LM loss (nats)';
  const data = (['bottom', 'top'] as const).map((side) => {
    const ks = [...new Set(rows.filter((r) => r.side === side).map((r) => r.k))].sort((a, b) => a - b);
    const points = [...(clean.length ? [{ k: 0, y: mean(clean) }] : []), ...ks.map((k) => ({ k, y: mean(rows.filter((r) => r.side === side && r.k === k).map((r) => r[metric])) }))];
    return { type: 'scatter', mode: 'lines+markers', name: `${side} layers corrupted`, x: points.map((p) => p.k), y: points.map((p) => p.y) };
  });
  return {
    data,
    layout: {
      title: { text: `${name} before fine-tuning, by corrupted layers` },
      xaxis: { title: { text: 'Corrupted layers K (0 = clean)' }, dtick: 1 },
      yaxis: { title: { text: name } },
      template: 'plotly_white',
      legend: { orientation: 'h', y: -0.2 },
    },
  };
}
