/**
 * healing-bert's public API: one import for notebooks (`import { loadModel } from './src'`) and for
 * other projects (`import { loadModel } from 'healing-bert'`). Everything here wraps the modules the
 * CLI uses (src/io, src/corruption, src/train, src/analysis), so a script and `healing finetune` run
 * the same code; what this file adds is ownership: every call that makes tensors either returns them
 * inside a {@link Model} the caller disposes, or frees them before it returns.
 *
 * Names follow Hugging Face (`from_pretrained` -> {@link loadModel}, `fill-mask`, `hidden_states`) and the
 * paper (corrupt, fine-tune, recovery, findings F1-F3).
 *
 * @packageDocumentation
 */
import { availableParallelism } from 'node:os';
import { resolve, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine, type EngineInfo } from './backend/engine';
import { maxBatchTokens } from './backend/memory';
import { corrupt as corruptParams, parseCorruptionSpec, type CorruptionComponent, type CorruptionMode, type CorruptionReport } from './corruption';
import { loadDataset, type LabeledData } from './data/dataset';
import { datasetEntry } from './data/registry';
import { sampleExperiment } from './experiment/examples';
import { encodeSplit } from './experiment/run';
import { readResults, storeWarning } from './experiment/store';
import type { ResultRow } from './experiment/spec';
import { allFindings } from './analysis/findings';
import { loadStudy, studySpecs, type NotebookParameters } from './analysis/study';
import { bagOfWordsBaselines, defaultBagOfWordsFile, summariseBagOfWords, type BagOfWordsRow, type BagOfWordsSummary } from './analysis/bag-of-words';
import { PAPER_EVAL_SIZE, PAPER_TRAIN_SIZE } from './experiment/presets';
import type { ExperimentSpec } from './experiment/spec';
import { resultsFrame } from './analysis/frames';
import { checkOutputDir } from './io/output-dir';
import { checkTokenizerFits, loadCheckpoint, saveCheckpoint, type LoadReport } from './io/checkpoint';
import type { DownloadProgress } from './io/hub';
import { resolveModelDir } from './io/models';
import type { ModelConfig } from './model/config';
import { encode as encoderForward } from './model/encoder';
import { fillMask as fillMaskParams, type MaskPrediction } from './model/fill-mask';
import { initTensor } from './model/init';
import { architecture, disposeParams, parameterLayout, type HeadKind, type ParamMap } from './model/names';
import { deriveSeed } from './random';
import { loadTokenizer, type BatchEncoding, type BertTokenizer } from './tokenizer/tokenizer';
import { fineTune as fineTuneParams, evaluate as evaluateParams, type EpochRecord, type EvalMetrics, type FineTuneProgress } from './train/finetune';
import { RecipeSchema, resolveRecipe, type ResolvedRecipe } from './train/recipe';
import { UserError } from './errors';
import { VERSION } from './version';
import type { DataFrame } from 'danfojs-node';

export type { BatchEncoding, BertTokenizer, CorruptionComponent, CorruptionMode, CorruptionReport, EngineInfo, EpochRecord, EvalMetrics };
export type { ExperimentSpec, NotebookParameters };
export type { FineTuneProgress, HeadKind, LabeledData, LoadReport, MaskPrediction, ModelConfig, ParamMap, ResolvedRecipe, ResultRow };
export { UserError, VERSION };
// Types the exported ones refer to, so a consumer can name them (and the API reference links them).
export type { CorruptionSpec, TensorStats, TouchedTensor } from './corruption';
export type { Component, ParamRole } from './model/names';
export type { NativeStatus } from './backend/engine';
export type { Note, NoteKind, Verdict, EpochGapResult, F1Detail, F1Finding, RecoveryGroup, F2Detail, TrendLine, F3Detail, F3Finding, PairedResult } from './analysis/findings';
export type { SafetensorsDtype } from './io/safetensors';
export type { Encoding, SpecialTokenNames, TokenizerJson, TokenizerSettings, BatchEncodeOptions, EncodeOptions as TokenizerEncodeOptions } from './tokenizer/tokenizer';
export type { LayerDrift } from './analysis/drift';
export type { BaselineDetail, BaselineOptions, Reference } from './analysis/findings';
export type { BagOfWordsRow, BagOfWordsSummary, Truncation } from './analysis/bag-of-words';
export type { Pooling } from './analysis/hidden';
export type { ProbeResult } from './analysis/probes';
export type { RowWithRecovery } from './experiment/recovery';
export type { DownloadProgress } from './io/hub';

/** The statistics the findings rest on (mean, bootstrap and t intervals, paired tests, Spearman, OLS). */
export * as stats from './analysis/stats';
/** Plotly figure specs of result frames (accuracy vs K, bottom vs top, learning curves, heat maps). */
export * as figures from './analysis/figures';
export { show, showFigure, showTable, showHtml, escapeHtml, resetDisplay, type Showable } from './analysis/display';
export { limitsOfHealing, moreCorruptionHurtsMore, bottomVsTop, cleanBaselines, byDataset, verdictLine, type DatasetVerdict, type Finding, type FindingOptions } from './analysis/findings';
/** Result rows as danfojs frames, and their summaries over seeds (resultsFrame, aggregateOverSeeds, pairedComparison, frameOf). */
export * as frames from './analysis/frames';
/** What corruption does before any fine-tuning, read off the masked-LM head and CKA (notebook 02). */
export * as damage from './analysis/damage';
/** Layer anatomy (notebook 06): single-layer effects, healed vs clean layer by layer, weight drift, linear probes. */
export * as anatomy from './analysis/anatomy';
export * as beyond from './api/beyond';
/** What pretraining is worth per token: clean runs of several checkpoints on a log-token line, and the budget each target needs (notebook 01). */
export * as budget from './analysis/pretraining-budget';
/** The study's report as self-contained HTML or Markdown (`healing report`): buildReport, writeReport and its figures. */
export * as report from './analysis/report';
export { notebookParameters, modelDepth, provenanceStamp, stampText, type ProvenanceStamp } from './analysis/study';
export { syntheticResults, type SyntheticOptions } from './analysis/synthetic';
export { linearCKA } from './analysis/cka';

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /**
   * Which head to keep: `'mlm'` for {@link Model.fillMask}, `'classifier'` for {@link fineTune} and
   * {@link evaluate}, `'none'` for the bare encoder. Default: the checkpoint's classifier if it has
   * one, else `'mlm'` if it has a masked-LM head, else `'none'`.
   */
  head?: HeadKind;
  /** With `head: 'classifier'`: the label count (a classifier of another size is replaced by a fresh one). */
  numLabels?: number;
  /** With `head: 'classifier'`: the label names, in id order. */
  labels?: string[];
  /** Seed for head parameters the checkpoint lacks (default 0). */
  seed?: number;
  /**
   * Called as a hub repository's files download (transformers.js's `progress_callback`): per file, its
   * name, the bytes received so far and its size when the hub reports one, from 0 (or the bytes a resumed
   * download already had) up to the full size. Given, it replaces the progress bar otherwise drawn on
   * stderr. Not called for a shipped model, a local directory or files already in the Hugging Face cache.
   */
  onProgress?: (progress: DownloadProgress) => void;
}

/** Options of {@link Model.corrupt}; the vocabulary is the CLI's (`healing corrupt --help`). */
export interface CorruptOptions {
  /** `'reinit'` (the paper's, default), `'reinit-hf'`, `'noise'`, `'zero'` or `'partial'`. */
  mode?: CorruptionMode;
  /** Parts of each chosen layer: `['all']` (default), or any of attention, ffn, layernorm; embeddings and pooler only when named. */
  components?: CorruptionComponent | CorruptionComponent[];
  /** With `mode: 'noise'`: noise std as a multiple of each tensor's std (default 1). */
  ratio?: number;
  /** With `mode: 'partial'`: share of entries re-initialised (default 0.5). */
  fraction?: number;
  /** Seed of the random draws (default 0); the same seed gives the same tensors. */
  seed?: number;
}

/** Options of {@link Model.save}. */
export interface SaveOptions {
  /** Replace a non-empty target directory (never the directory the model was loaded from). */
  overwrite?: boolean;
  /** Weight dtype in model.safetensors (default `'F32'`). */
  dtype?: 'F32' | 'F16';
}

/** Options of {@link Model.encode} and {@link Model.hiddenStates}. */
export interface EncodeOptions {
  /** Tokens per text including [CLS] and [SEP] (default: the model's max_position_embeddings). */
  maxLength?: number;
}

/**
 * A loaded BERT: its config, tokenizer and weights (a name -> tensor map in Hugging Face's names).
 * It owns its tensors: call {@link Model.dispose} when done (or `using` in TypeScript 5.2+ scripts).
 * Methods never change the weights; {@link Model.corrupt} and {@link fineTune} return new Models.
 */
export class Model {
  /** The Hugging Face config (camelCased: numLayers, hiddenSize, ...). */
  readonly config: ModelConfig;
  /** The WordPiece tokenizer that came with the checkpoint. */
  readonly tokenizer: BertTokenizer;
  /** Which head the weights include. */
  readonly head: HeadKind;
  /** Classifier label names, in id order (classifier head only). */
  readonly labels?: string[];
  /** Where the weights came from: the checkpoint directory, or the model this one was derived from. */
  readonly source: string;
  /** The checkpoint directory this model (or the one it was derived from) was loaded from: save never replaces it. */
  private readonly origin: string;
  /** Tokenizer files to copy when saving. */
  private readonly tokenizerFiles: string[];
  private weights: ParamMap | undefined;

  /** @internal Models come from {@link loadModel}, {@link Model.corrupt} and {@link fineTune}. */
  constructor(init: { config: ModelConfig; tokenizer: BertTokenizer; head: HeadKind; labels?: string[]; source: string; origin: string; tokenizerFiles: string[]; params: ParamMap }) {
    this.config = init.config;
    this.tokenizer = init.tokenizer;
    this.head = init.head;
    this.labels = init.labels;
    this.source = init.source;
    this.origin = init.origin;
    this.tokenizerFiles = init.tokenizerFiles;
    this.weights = init.params;
  }

  /**
   * The weights, keyed by Hugging Face parameter names (`bert.encoder.layer.0.attention.self.query.weight`),
   * for analyses the API does not wrap. They belong to the model: read them, don't dispose them.
   */
  get params(): ParamMap {
    if (!this.weights) throw new UserError('this model has been disposed');
    return this.weights;
  }

  /** Whether {@link Model.dispose} has run. */
  get disposed(): boolean {
    return this.weights === undefined;
  }

  /** Token ids of each text, [CLS] ... [SEP], padded to the longest (Hugging Face's `tokenizer(texts, padding=True)`). */
  encode(texts: string | readonly string[], options: EncodeOptions = {}): BatchEncoding {
    const list = typeof texts === 'string' ? [texts] : texts;
    return this.tokenizer.encodeBatch(list, null, { maxLength: options.maxLength ?? this.config.maxPositions, truncation: true, padding: 'longest' });
  }

  /**
   * The masked-LM head's top `k` tokens at each [MASK] of `text` (Hugging Face's fill-mask pipeline),
   * one entry per mask. Needs a model loaded with `head: 'mlm'`.
   */
  fillMask(text: string, k = 5): MaskPrediction[] {
    if (this.head !== 'mlm') throw new UserError(`fillMask needs the masked-LM head; this model has head '${this.head}' (loadModel(name, { head: 'mlm' }))`);
    return fillMaskParams(this.config, this.params, this.tokenizer, text, k);
  }

  /**
   * Eval-mode hidden states (`output_hidden_states=True`): for each text, numLayers + 1 arrays
   * [tokens][hidden] (the embeddings, then each layer's output), without padding. Plain numbers, no tensors.
   */
  hiddenStates(texts: string | readonly string[], options: EncodeOptions = {}): number[][][][] {
    const batch = this.encode(texts, options);
    const lengths = batch.attentionMask.map((row) => row.reduce((a, b) => a + b, 0));
    const layers = tf.tidy(() => {
      const shape: [number, number] = [batch.inputIds.length, batch.inputIds[0]?.length ?? 0];
      const inputs = {
        inputIds: tf.tensor2d(batch.inputIds.flat(), shape, 'int32'),
        attentionMask: tf.tensor2d(batch.attentionMask.flat(), shape, 'int32'),
        tokenTypeIds: tf.tensor2d(batch.tokenTypeIds.flat(), shape, 'int32'),
      };
      return encoderForward(this.config, this.params, inputs, { training: false }).hiddenStates.map((h) => h.arraySync());
    });
    return lengths.map((n, text) => layers.map((layer) => layer[text].slice(0, n)));
  }

  /**
   * A corrupted copy: `layers` is `'bottom:K'`, `'top:K'`, a list `'0,3,5'` or a fraction `'bottom:0.5'`
   * (layer 0 is next to the embeddings). The original is untouched; the copy is a new Model the caller
   * disposes, and `report` names every tensor changed with its statistics before and after.
   */
  corrupt(layers: string, options: CorruptOptions = {}): { model: Model; report: CorruptionReport } {
    const spec = parseCorruptionSpec(
      { layers, components: options.components, mode: options.mode, ratio: options.ratio, fraction: options.fraction },
      this.config.numLayers,
    );
    const { params, report } = corruptParams(this.params, this.config, spec, options.seed ?? 0);
    return { model: this.derive(params, `${this.source} corrupted ${report.spec} seed ${report.seed}`), report };
  }

  /**
   * Writes a Hugging Face checkpoint directory (config.json, model.safetensors, tokenizer files) that
   * {@link loadModel} and transformers read. A non-empty `dir` is refused unless `overwrite: true`, and
   * the directory the model came from is never replaced; the check runs before anything is written.
   * @returns the absolute path written.
   */
  async save(dir: string, options: SaveOptions = {}): Promise<string> {
    const params = this.params;
    const target = await checkOutputDir(dir, { flag: 'save', inputs: [{ flag: 'model', dir: this.origin }], force: options.overwrite === true, forceHint: 'save(dir, { overwrite: true })' });
    await saveCheckpoint(target, { config: this.config, params, head: this.head, labels: this.labels, tokenizerFiles: this.tokenizerFiles }, { dtype: options.dtype });
    return target;
  }

  /** Frees the weights' tensors. Idempotent; the model is unusable afterwards. */
  dispose(): void {
    if (this.weights) disposeParams(this.weights);
    this.weights = undefined;
  }

  /** `using model = await loadModel(...)` (TypeScript 5.2+) disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal A model with the same tokenizer and config and other weights (owned by the new model). */
  derive(params: ParamMap, source: string, head: HeadKind = this.head, labels: string[] | undefined = this.labels): Model {
    return new Model({ config: this.config, tokenizer: this.tokenizer, head, labels, source, origin: this.origin, tokenizerFiles: this.tokenizerFiles, params });
  }
}

/**
 * Loads a BERT checkpoint (Hugging Face's `from_pretrained`): `'default'` or `'tiny'` (the models this
 * project pretrains and ships), a checkpoint directory, or a hub repository id (downloaded once into the
 * Hugging Face cache; HF_ENDPOINT, HF_HOME, HF_TOKEN apply; `onProgress` follows the download).
 * Starts the TensorFlow.js engine on first use.
 *
 * ```ts
 * const bert = await loadModel('google/bert_uncased_L-6_H-256_A-4', {
 *   onProgress: ({ filename, downloaded, total }) => console.log(filename, downloaded, total),
 * });
 * ```
 */
export async function loadModel(name: string = 'default', options: LoadModelOptions = {}): Promise<Model> {
  await initEngine();
  const dir = await resolveModelDir(name, { onProgress: options.onProgress });
  const tokenizer = await loadTokenizer(dir);
  const load = { numLabels: options.numLabels, labels: options.labels, seed: options.seed };
  if (options.head !== undefined) return fromCheckpoint(await loadCheckpoint(dir, { ...load, head: options.head }), tokenizer, dir);
  // No head asked for: the checkpoint's classifier (a fine-tuned model), else its masked-LM head, else none.
  const checkpoint = await loadCheckpoint(dir, load);
  const mlm = architecture(checkpoint.config).mlm;
  if (checkpoint.head === 'none' && checkpoint.report.ignored.some((i) => i.name === mlm.bias || i.name.startsWith(`${mlm.transform}.`))) {
    disposeParams(checkpoint.params);
    return fromCheckpoint(await loadCheckpoint(dir, { ...load, head: 'mlm' }), tokenizer, dir);
  }
  return fromCheckpoint(checkpoint, tokenizer, dir);
}

function fromCheckpoint(checkpoint: Awaited<ReturnType<typeof loadCheckpoint>>, tokenizer: BertTokenizer, dir: string): Model {
  try {
    checkTokenizerFits(tokenizer, checkpoint.config, dir);
  } catch (error) {
    disposeParams(checkpoint.params);
    throw error;
  }
  return new Model({
    config: checkpoint.config,
    tokenizer,
    head: checkpoint.head,
    labels: checkpoint.labels,
    source: dir,
    origin: dir,
    tokenizerFiles: checkpoint.tokenizerFiles,
    params: checkpoint.params,
  });
}

/** One labelled example: `label` is the class id, in [0, number of labels). */
export interface Example {
  text: string;
  label: number;
}

/** Examples with their label names (what a dataset split is). */
export interface Examples {
  examples: readonly Example[];
  /** Label names in id order (default: LABEL_0, LABEL_1, ... up to the largest label). */
  labelNames?: string[];
}

/** Training and evaluation data for {@link fineTune}: a registry dataset's name, or your own examples. */
export type FineTuneData = string | { train: readonly Example[] | Examples; eval: readonly Example[] | Examples };

/** The recipe's fields (README "The fine-tuning recipe"); any left out take the project's defaults. */
export type Recipe = Partial<ResolvedRecipe>;

/** Options of {@link fineTune}. */
export interface FineTuneOptions {
  /** Seed of the classifier head, sampling, shuffling and dropout (default 0). */
  seed?: number;
  /** With a dataset name: stratified subsample sizes of its training and evaluation splits. */
  trainSize?: number;
  evalSize?: number;
  /** Tokens per example including [CLS]/[SEP] (default 128, as `healing finetune`). */
  maxLength?: number;
  /** Datasets folder (default $HEALING_DATA_DIR or ~/.cache/healing-bert/datasets). */
  dataDir?: string;
  /** Called after every optimizer step and before every evaluation. */
  onProgress?: (progress: FineTuneProgress) => void;
  /** Stops training at the next step; the promise rejects with the signal's reason and frees every tensor. */
  signal?: AbortSignal;
  /** Draw a progress bar on stderr (default: when stderr is a terminal). */
  progressBar?: boolean;
}

/** What {@link fineTune} returns. */
export interface FineTuneResult {
  /** The fine-tuned model (a new Model with a classifier head; dispose it). */
  model: Model;
  /** The last epoch's evaluation: accuracy, macro-F1, per-class F1, confusion matrix. */
  metrics: EvalMetrics;
  /** One record per epoch: mean training loss and evaluation metrics. */
  history: EpochRecord[];
  /** Loss after every optimizer step. */
  lossCurve: Array<{ step: number; loss: number }>;
  /** `'diverged'` when a loss went non-finite (training stopped there). */
  status: 'ok' | 'diverged';
  /** The recipe that ran, every field resolved. */
  recipe: ResolvedRecipe;
  /** Label names in id order. */
  labelNames: string[];
}

function toLabeled(data: readonly Example[] | Examples, source: string, labelNames?: string[]): LabeledData {
  const examples = 'examples' in data ? data.examples : data;
  const names = labelNames ?? ('examples' in data ? data.labelNames : undefined);
  if (examples.length === 0) throw new UserError(`${source}: no examples`);
  const count = names?.length ?? Math.max(...examples.map((e) => e.label)) + 1;
  for (const [i, e] of examples.entries()) {
    if (typeof e.text !== 'string' || !Number.isInteger(e.label) || e.label < 0 || e.label >= count) {
      throw new UserError(`${source} example ${i}: expected { text: string, label: integer in [0, ${count}) }, got ${JSON.stringify(e)}`);
    }
  }
  return {
    texts: examples.map((e) => e.text),
    labels: examples.map((e) => e.label),
    labelNames: names ?? Array.from({ length: count }, (_, i) => `LABEL_${i}`),
    source,
  };
}

async function trainEval(data: FineTuneData, options: FineTuneOptions): Promise<{ train: LabeledData; eval: LabeledData; labelNames: string[] }> {
  if (typeof data === 'string') {
    const loaded = await loadDataset({ name: data, dataDir: options.dataDir });
    const sampled = sampleExperiment(
      { seed: options.seed ?? 0, dataset: { name: data, trainSize: options.trainSize, evalSize: options.evalSize, maxLength: options.maxLength ?? 128 } } as Parameters<typeof sampleExperiment>[0],
      loaded,
    );
    return { train: sampled.train, eval: sampled.eval, labelNames: sampled.labelNames };
  }
  const givenNames = ('examples' in data.train ? data.train.labelNames : undefined) ?? ('examples' in data.eval ? data.eval.labelNames : undefined);
  const all = [...('examples' in data.train ? data.train.examples : data.train), ...('examples' in data.eval ? data.eval.examples : data.eval)];
  // One label space for both splits: the evaluation set may lack a class the training set has.
  const labelNames = givenNames ?? Array.from({ length: Math.max(...all.map((e) => e.label)) + 1 }, (_, i) => `LABEL_${i}`);
  return { train: toLabeled(data.train, 'train', labelNames), eval: toLabeled(data.eval, 'eval', labelNames), labelNames };
}

/**
 * The encoder of `model` plus a classifier head for `labelNames`: the model's own classifier if it has one
 * of that size, else a fresh head (Hugging Face's init) seeded by deriveSeed(seed, 'head') as the experiments do.
 * Returns new tensors (clones share data), so the caller disposes them without touching `model`.
 */
function withClassifier(model: Model, labelNames: string[], seed: number): ParamMap {
  const layout = parameterLayout(model.config, 'classifier', labelNames.length);
  const params: ParamMap = new Map();
  for (const info of layout) {
    const own = model.params.get(info.name);
    const fits = own !== undefined && own.shape.length === info.shape.length && own.shape.every((d, i) => d === info.shape[i]);
    params.set(info.name, fits ? tf.clone(own) : initTensor(info, deriveSeed(seed, 'head')));
  }
  return params;
}

/**
 * Fine-tunes a copy of `model` for sentence classification (AdamW, linear warmup and decay, gradient
 * clipping: the project's recipe, overridable field by field) and evaluates it after every epoch.
 * `data` is a registry dataset (`'sst2'`, `'ag_news'`, ...; fetched on first use) or `{ train, eval }`
 * examples. `model` is not changed.
 */
export async function fineTune(model: Model, data: FineTuneData, recipe: Recipe = {}, options: FineTuneOptions = {}): Promise<FineTuneResult> {
  options.signal?.throwIfAborted();
  const engine = await initEngine();
  const seed = options.seed ?? 0;
  const parsed = RecipeSchema.safeParse(recipe);
  if (!parsed.success) throw new UserError(`recipe: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const resolved = resolveRecipe({ recipe: parsed.data }, model.config);
  const split = await trainEval(data, options);
  const maxLength = options.maxLength ?? 128;
  const params = withClassifier(model, split.labelNames, seed);
  try {
    const result = await fineTuneParams({
      config: model.config,
      params,
      numLabels: split.labelNames.length,
      train: encodeSplit(model.tokenizer, split.train, maxLength),
      eval: encodeSplit(model.tokenizer, split.eval, maxLength),
      recipe: resolved,
      seed,
      padId: model.tokenizer.padId,
      // The trainer yields to the event loop after every step and calls this: throwing here is the abort,
      // and its finally frees the trainable copies.
      onProgress: (p) => {
        options.signal?.throwIfAborted();
        options.onProgress?.(p);
      },
      progressBar: options.progressBar,
      keepParams: true,
      maxBatchTokens: maxBatchTokens(engine),
    });
    const last = result.epochs[result.epochs.length - 1];
    const tuned = model.derive(result.params!, `${model.source} fine-tuned`, 'classifier', split.labelNames);
    return {
      model: tuned,
      metrics: last?.eval ?? { accuracy: NaN, macroF1: NaN, perClassF1: [], confusion: [] },
      history: result.epochs,
      lossCurve: result.lossCurve,
      status: result.status,
      recipe: resolved,
      labelNames: split.labelNames,
    };
  } finally {
    disposeParams(params);
  }
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** With a dataset name: the split (default: its evaluation split). */
  split?: string;
  /** Tokens per example including [CLS]/[SEP] (default 128). */
  maxLength?: number;
  /** Examples per forward pass (default 64). */
  batchSize?: number;
  /** Datasets folder (default $HEALING_DATA_DIR or ~/.cache/healing-bert/datasets). */
  dataDir?: string;
}

/**
 * Accuracy, macro-F1, per-class F1 and the confusion matrix of a classifier (a {@link fineTune} result,
 * or a checkpoint loaded with its classifier) on a registry dataset's split or your own examples.
 */
export async function evaluate(model: Model, data: string | readonly Example[] | Examples, options: EvaluateOptions = {}): Promise<EvalMetrics & { examples: number }> {
  if (model.head !== 'classifier') throw new UserError(`evaluate needs a classifier; this model has head '${model.head}' (fine-tune it first)`);
  const engine = await initEngine();
  const numLabels = model.params.get(`${architecture(model.config).classifier.out}.weight`)!.shape[0];
  const labeled =
    typeof data === 'string'
      ? await loadDatasetSplit(data, options)
      : toLabeled(data, 'evaluate', model.labels?.length === numLabels ? model.labels : Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`));
  if (labeled.labelNames.length !== numLabels) throw new UserError(`${labeled.source} has ${labeled.labelNames.length} labels but the classifier has ${numLabels}`);
  const metrics = evaluateParams(model.config, model.params, encodeSplit(model.tokenizer, labeled, options.maxLength ?? 128), {
    batchSize: options.batchSize ?? 64,
    padId: model.tokenizer.padId,
    numLabels,
    maxBatchTokens: maxBatchTokens(engine),
  });
  return { ...metrics, examples: labeled.labels.length };
}

/**
 * One split of a registry dataset (`'sst2'`, `'ag_news'`, ..., fetched on first use): its texts, labels and
 * label names. Default: the dataset's evaluation split.
 */
export async function datasetSplit(name: string, options: { split?: string; dataDir?: string } = {}): Promise<LabeledData> {
  return loadDatasetSplit(name, options);
}

async function loadDatasetSplit(name: string, options: { split?: string; dataDir?: string }): Promise<LabeledData> {
  const split = options.split ?? datasetEntry(name).evalSplit;
  return (await loadDataset({ name, evalSplit: split, dataDir: options.dataDir })).eval;
}

/** What {@link results} returns. */
export interface Results {
  /** Valid result rows, first of each identity, in file order. */
  rows: ResultRow[];
  /** One row per run (dataset, model, corruption, side, k, seed, accuracy, recovery, ...), a danfojs DataFrame. */
  frame: DataFrame;
  /** Why lines were skipped (torn, invalid or duplicate), if any were. */
  warning?: string;
}

/** Reads a result store (a .jsonl of runs, e.g. data/results/results.jsonl) into rows and a danfojs frame. */
export function results(file: string): Results {
  const outcome = readResults(file);
  return { rows: outcome.rows, frame: resultsFrame(outcome.rows), warning: storeWarning(file, outcome) };
}

/** The paper's three findings on a set of result rows: F1 limits of healing, F2 more corruption hurts more, F3 bottom vs top. */
export function findings(rows: readonly ResultRow[], options: Parameters<typeof allFindings>[1] = {}): ReturnType<typeof allFindings> {
  return allFindings(rows, options);
}

/** The engine TensorFlow.js runs on (starting it if needed): backend, native kernels, threads. */
export function engine(): Promise<EngineInfo> {
  return initEngine();
}

/** Where {@link study} records its runs unless told otherwise: this file in the caller's working directory. */
export const STUDY_RESULTS_FILE = 'healing-results.jsonl';

/** Options of {@link study}. */
export interface StudyOptions {
  /** The model every run starts from: `'default'`, `'tiny'`, a checkpoint directory or a hub id (each worker loads it by name). */
  model: string;
  /** Registry datasets (`'sst2'`, `'ag_news'`, ...; fetched on first use). */
  datasets: readonly string[];
  /**
   * One run per dataset and seed for each: a layer spec (`'bottom:2'`, `'top:1'`, `'0,3'`, as {@link Model.corrupt}
   * takes) or `null` for the clean run. Default: the paper's grid, clean plus bottom:K and top:K for K = 1..L.
   */
  corruptions?: ReadonlyArray<string | null>;
  /** With the default corruptions: which K (default every K from 1 to the model's depth). */
  ks?: number[];
  /** Fine-tune the architecture from random weights instead of the pretrained ones (what pretraining is worth; use with `corruptions: [null]`). */
  fromScratch?: boolean;
  seeds: readonly number[];
  /** Per dataset, seeds in place of `seeds` (the paper preset's: 5 where a run costs under 2 minutes, 3 on IMDB; notebooks pass theirs). */
  seedsPerDataset?: Readonly<Record<string, readonly number[]>>;
  /**
   * The result store, a .jsonl file (default {@link STUDY_RESULTS_FILE} in `process.cwd()`); runs already
   * recorded there are not run again, and each finished run is appended at once, so an interrupted
   * study loses nothing. The default is refused inside node_modules/: pass a path of yours.
   */
  results?: string;
  /** Recipe fields of every run (default: the project's recipe, README "The fine-tuning recipe"). */
  recipe?: Recipe;
  /** Stratified subsample sizes of each dataset's training and evaluation splits (default: the paper preset's, 2,000 and 1,000). */
  trainSize?: number;
  evalSize?: number;
  /** Tokens per example including [CLS]/[SEP] (default 128). */
  maxLength?: number;
  /** Run what the store lacks (default true); false only reads, and the result lists what is missing. */
  runMissing?: boolean;
  /** Worker processes (default: every core), each with its own TensorFlow.js engine. */
  workers?: number;
  /** Called as runs start, progress, finish or fail; without it, one line per finished run is printed. */
  onProgress?: (event: StudyProgress) => void;
}

/** One event of {@link study}: a run started, stepped, finished (with its row) or failed. */
export interface StudyProgress {
  type: 'start' | 'progress' | 'result' | 'failure';
  /** The run, e.g. `sst2[128/100] bottom:1 seed 0`. */
  label: string;
  /** Runs finished (or failed for good) so far in this call, and how many this call runs. */
  done: number;
  total: number;
  /** With 'progress': the fine-tuning step and the run's step count. */
  step?: number;
  totalSteps?: number;
  /** With 'result': the recorded row. */
  row?: ResultRow;
  /** With 'failure': why. */
  error?: string;
}

/** What {@link study} returns. */
export interface StudyResult {
  /** One row per run asked for that the store holds, in the order datasets x corruptions x seeds. */
  rows: ResultRow[];
  /** The rows as a danfojs DataFrame (as {@link results} gives), with recovery against the clean run. */
  frame: DataFrame;
  /** The absolute path of the result store. */
  results: string;
  /** Runs asked for, already recorded before this call, and run by it. */
  total: number;
  recorded: number;
  ran: number;
  failed: number;
  /** Runs still not in the store (not run, failed, or interrupted). */
  missing: ExperimentSpec[];
  /** One sentence: how many are recorded, run, missing. */
  message: string;
}

/** A notebook's parameters ({@link notebookParameters}) as {@link study} takes them, with the corruptions to run. */
export type NotebookStudy = NotebookParameters & Pick<StudyOptions, 'corruptions' | 'fromScratch' | 'onProgress'>;

function fromNotebook(p: NotebookStudy): StudyOptions {
  return {
    model: p.model,
    datasets: p.datasets,
    corruptions: p.corruptions,
    fromScratch: p.fromScratch,
    ks: p.ks === 'all' ? undefined : p.ks,
    seeds: p.seeds,
    seedsPerDataset: p.seedsPerDataset,
    results: p.resultsFile,
    recipe: { epochs: p.epochs },
    trainSize: p.trainSize,
    evalSize: p.evalSize,
    maxLength: p.maxLength,
    runMissing: p.runMissing,
    workers: p.workers,
    onProgress: p.onProgress,
  };
}

/** The options {@link study} and {@link bagOfWords} share, as the notebook parameters the grid reads, with the library's defaults. */
function studyParameters(
  options: Pick<StudyOptions, 'model' | 'datasets' | 'seeds' | 'seedsPerDataset' | 'ks' | 'trainSize' | 'evalSize' | 'maxLength' | 'runMissing'>,
  run: { resultsFile: string; workers: number; epochs?: number },
): NotebookParameters {
  return {
    quick: false,
    model: options.model,
    datasets: [...options.datasets],
    seeds: [...options.seeds],
    ...(options.seedsPerDataset ? { seedsPerDataset: options.seedsPerDataset } : {}),
    ks: options.ks ?? 'all',
    trainSize: options.trainSize ?? PAPER_TRAIN_SIZE,
    evalSize: options.evalSize ?? PAPER_EVAL_SIZE,
    maxLength: options.maxLength ?? 128,
    epochs: run.epochs ?? RecipeSchema.parse({}).epochs,
    resultsFile: run.resultsFile,
    runMissing: options.runMissing ?? true,
    workers: run.workers,
  };
}

function defaultStudyResults(): string {
  const file = resolve(process.cwd(), STUDY_RESULTS_FILE);
  if (file.split(sep).includes('node_modules')) {
    throw new UserError(`study: the working directory ${process.cwd()} is inside node_modules/; pass results: 'path/of/yours.jsonl'`);
  }
  return file;
}

/**
 * Runs a grid of experiments through the resumable grid `healing run` uses: per dataset, corruption and
 * seed, the model is corrupted, fine-tuned and evaluated in worker processes, and each run's row is
 * appended to the result store. Runs already recorded there (same spec, model weights, recipe and engine
 * numerics) are skipped, so calling it again costs nothing and a killed study resumes. No tensors are
 * made in the calling process.
 *
 * A notebook passes its parameters as they are: `await study(P)` or `await study({ ...P, corruptions: [null] })`
 * with `P = notebookParameters()`.
 *
 * ```ts
 * const { rows, frame } = await study({ model: 'tiny', datasets: ['sst2'], corruptions: [null, 'bottom:1', 'top:1'], seeds: [0, 1], recipe: { epochs: 2 } });
 * show(figures.accuracyVsK(frame));
 * ```
 */
export async function study(options: StudyOptions | NotebookStudy): Promise<StudyResult> {
  if ('resultsFile' in options) return study(fromNotebook(options));
  const file = options.results === undefined ? defaultStudyResults() : resolve(options.results);
  const params = studyParameters(options, {
    resultsFile: file,
    epochs: options.recipe?.epochs,
    workers: options.workers ?? availableParallelism(),
  });
  const onProgress = options.onProgress;
  const outcome = await loadStudy(params, {
    corruptions: options.corruptions,
    fromScratch: options.fromScratch,
    recipe: options.recipe,
    log: onProgress ? false : undefined,
    onEvent: onProgress && ((event, counts) => {
      onProgress({
        type: event.type,
        label: event.label,
        done: counts.finished,
        total: counts.pending,
        ...(event.type === 'progress' ? { step: event.step, totalSteps: event.totalSteps } : {}),
        ...(event.type === 'result' ? { row: event.row } : {}),
        ...(event.type === 'failure' ? { error: event.error } : {}),
      });
    }),
  });
  return {
    rows: outcome.rows,
    frame: resultsFrame(outcome.rows),
    results: file,
    total: outcome.total,
    recorded: outcome.recorded,
    ran: outcome.ran,
    failed: outcome.failed,
    missing: outcome.missing,
    message: outcome.message,
  };
}

/** Options of {@link bagOfWords}: which clean settings to put a bag of words beside. */
export interface BagOfWordsStudyOptions {
  /** Whose tokenizer cuts each text to `maxLength` tokens, as the model sees it (a shipped name, checkpoint directory or hub id). */
  model: string;
  /** Registry datasets (`'sst2'`, `'imdb'`, ...). */
  datasets: readonly string[];
  /** One fit per dataset and seed; a seed draws the same stratified subsets as the model's run of that seed. */
  seeds: readonly number[];
  /** Subset sizes and max length (defaults as {@link study}: 2,000, 1,000 and 128). */
  trainSize?: number;
  evalSize?: number;
  maxLength?: number;
  /** Fit on whole texts instead of what the model sees (IMDB: reviews are longer than 128 tokens). */
  fullText?: boolean;
  /**
   * The bag-of-words store, a .jsonl file (default bag-of-words.jsonl beside the study's default store, in
   * `process.cwd()`); fits recorded there are read, new ones appended at once.
   */
  results?: string;
  /** Fit what the store lacks (default true); false only reads, and `missing` lists the rest. */
  runMissing?: boolean;
}

/** What {@link bagOfWords} returns. */
export interface BagOfWordsResult {
  /** One row per dataset and seed the store holds, in the order asked. */
  rows: BagOfWordsRow[];
  /** Per dataset: mean and spread over seeds, the majority class and the regularisation chosen. */
  summary: BagOfWordsSummary[];
  /** The absolute path of the store. */
  results: string;
  ran: number;
  recorded: number;
  missing: ExperimentSpec[];
  /** What identifies the tokenizer that cut the texts (absent with fullText): pass it to {@link cleanBaselines}. */
  tokenizerFingerprint?: string;
}

/**
 * The reference for "learned": TF-IDF (word 1-2-grams) + logistic regression (scikit-learn, run by
 * /usr/bin/python3 or HEALING_PYTHON) fitted on the same subsets and seeds as the clean runs, and scored on
 * the same evaluation examples, each text cut to what the model sees. Resumable like {@link study}; `healing
 * baseline` runs the same fits. Give the rows to {@link cleanBaselines} to see them next to the clean model.
 *
 * A notebook passes its parameters (`bagOfWords(P)`); the store is then bag-of-words.jsonl beside `P.resultsFile`.
 *
 * ```ts
 * const bow = await bagOfWords({ model: 'default', datasets: ['sst2'], seeds: [0, 1, 2] });
 * show(cleanBaselines(runs.rows, { model: 'default', bagOfWords: bow.rows, tokenizerFingerprint: bow.tokenizerFingerprint }).table);
 * ```
 */
export async function bagOfWords(options: BagOfWordsStudyOptions | NotebookParameters): Promise<BagOfWordsResult> {
  const fromParams = 'resultsFile' in options;
  const params: NotebookParameters = fromParams
    ? options
    : studyParameters(options, { resultsFile: defaultStudyResults(), workers: 1 });
  const file = resolve(fromParams ? defaultBagOfWordsFile(params.resultsFile) : (options.results ?? defaultBagOfWordsFile(params.resultsFile)));
  const fullText = !fromParams && options.fullText === true;
  const specs = studySpecs(params, 0, { corruptions: [null] });
  const outcome = await bagOfWordsBaselines(specs, { results: file, model: params.model, fullText, runMissing: params.runMissing });
  return {
    rows: outcome.rows,
    summary: summariseBagOfWords(outcome.rows),
    results: file,
    ran: outcome.ran,
    recorded: outcome.skipped,
    missing: outcome.missing as ExperimentSpec[],
    ...(outcome.tokenizerFingerprint ? { tokenizerFingerprint: outcome.tokenizerFingerprint } : {}),
  };
}
