import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../backend/engine';
import { corrupt, formatCorruptionSpec, parseCorruptionSpec, parseCorruptionString, type CorruptionSpec } from '../corruption';
import { UserError } from '../errors';
import { loadCheckpoint } from '../io/checkpoint';
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
import { hiddenStateNames, hiddenStatesFor, type Pooling } from './hidden';

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
  return { dir, config: checkpoint.config, params: checkpoint.params, tokenizer: await loadTokenizer(dir) };
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

export interface CorruptionInfo {
  /** 'clean', or the corruption as the user gave it (e.g. "bottom:2"). */
  corruption: string;
  side: Side;
  /** Number of corrupted layers (0 for clean). */
  k: number;
  /** The corrupted layer indices, "0,1" (empty for clean). */
  layers: string;
}

interface Variant extends CorruptionInfo {
  params: ParamMap;
  /** Whether `params` belongs to this variant (and is disposed with it). */
  owned: boolean;
}

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
  if (includeClean) out.push(fn({ corruption: 'clean', side: 'clean', k: 0, layers: '', params: model.params, owned: false }));
  for (const text of specs) {
    const spec = damageSpec(text, model.config.numLayers);
    const { params, report } = corrupt(model.params, model.config, spec, deriveSeed(seed, 'corruption'));
    try {
      const layersText = formatCorruptionSpec(spec).split('/')[0];
      out.push(fn({ corruption: text, side: parseLayerSpec(layersText).side, k: report.layers.length, layers: report.layers.join(','), params, owned: true }));
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

export interface MlmDamageRow extends CorruptionInfo {
  seed: number;
  /** Mean cross-entropy over the masked positions (nats). */
  mlmLoss: number;
  /** Share of masked positions whose original token is the top prediction. */
  mlmAccuracy: number;
  /** Packed sequences of maxLength tokens scored (about 15 % of their tokens are predicted). */
  sequences: number;
}

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

export interface FillMaskRow extends CorruptionInfo {
  sentence: string;
  /** Top predictions at the first [MASK], best first. */
  tokens: string[];
  probabilities: number[];
  /** "great 21.0 % · good 10.3 % · ..." for tables. */
  predictions: string;
}

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

export interface SimilarityRow extends CorruptionInfo {
  seed: number;
  /** "embeddings", "layer 0" (bottom), ... */
  layerName: string;
  /** Encoder layer index; -1 for the embedding output. */
  layer: number;
  /** Linear CKA between the clean and the corrupted model's pooled representations at this depth. */
  cka: number;
}

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
