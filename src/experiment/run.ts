import { initEngine } from '../backend/engine';
import { maxBatchTokens } from '../backend/memory';
import { corrupt, parseCorruptionSpec, type CorruptionReport } from '../corruption';
import type { LabeledData } from '../data/dataset';
import { loadExperimentData, sampleExperiment } from './examples';
import { loadCheckpoint, checkTokenizerFits } from '../io/checkpoint';
import { resolveModelDir } from '../io/models';
import { initParams } from '../model/init';
import { disposeParams, type ParamMap } from '../model/names';
import type { ModelConfig } from '../model/config';
import { loadTokenizer, type BertTokenizer } from '../tokenizer/tokenizer';
import { deriveSeed } from '../random';
import { fineTune, type EncodedSplit, type FineTuneProgress, type FineTuneResult } from '../train/finetune';
import { provenance } from './provenance';
import { datasetLabel, specLabel, type ExperimentSpec, type ResultRow } from './spec';
import { resolveRecipe } from '../train/recipe';
import { engineNumerics, identityHash, modelFingerprint, type RunIdentity } from './identity';

// Where they lived before identities did (src/analysis imports modelFingerprint from here): identity.ts
// owns the fingerprint, src/train/recipe.ts the recipe.
export { modelFingerprint } from './identity';
export { defaultLearningRate, resolveRecipe } from '../train/recipe';

/**
 * One experiment: load the model, corrupt it (or not), fine-tune on the dataset, evaluate, and return
 * the result row the store records. The path of the paper, end to end, from a spec that is pure data.
 */

/** Tokenizes texts for classification: [CLS] text [SEP], truncated to maxLength, unpadded. */
export function encodeSplit(tokenizer: BertTokenizer, data: LabeledData, maxLength: number): EncodedSplit {
  const inputIds = data.texts.map((text) => tokenizer.encode(text, undefined, { maxLength, truncation: true }).inputIds);
  return { inputIds, labels: data.labels };
}

export interface PreparedModel {
  config: ModelConfig;
  params: ParamMap;
  tokenizer: BertTokenizer;
  corruption?: CorruptionReport;
  dir: string;
}

/**
 * The model a spec fine-tunes: pretrained weights (or fresh ones for --from-scratch), a classifier head
 * for the dataset's labels initialised from the seed, and the spec's corruption applied.
 */
export async function prepareModel(
  spec: Pick<ExperimentSpec, 'model' | 'corruption' | 'seed' | 'fromScratch'>,
  numLabels: number,
  labels?: string[],
): Promise<PreparedModel> {
  const dir = await resolveModelDir(spec.model);
  const tokenizer = await loadTokenizer(dir);
  const checkpoint = await loadCheckpoint(dir, { head: 'classifier', numLabels, labels, seed: deriveSeed(spec.seed, 'head') });
  try {
    checkTokenizerFits(tokenizer, checkpoint.config, dir);
  } catch (error) {
    disposeParams(checkpoint.params);
    throw error;
  }
  let params = checkpoint.params;
  const config = checkpoint.config;
  if (spec.fromScratch) {
    disposeParams(params);
    params = initParams(config, 'classifier', numLabels, deriveSeed(spec.seed, 'scratch'));
  }
  let report: CorruptionReport | undefined;
  if (spec.corruption) {
    const corruption = parseCorruptionSpec(
      {
        layers: spec.corruption.layers,
        components: spec.corruption.components,
        mode: spec.corruption.mode,
        ratio: spec.corruption.ratio,
        fraction: spec.corruption.fraction,
      },
      config.numLayers,
    );
    const corrupted = corrupt(params, config, corruption, deriveSeed(spec.seed, 'corruption'));
    disposeParams(params);
    params = corrupted.params;
    report = corrupted.report;
  }
  return { config, params, tokenizer, corruption: report, dir };
}

export interface RunOptions {
  onProgress?: (p: FineTuneProgress) => void;
  progressBar?: boolean;
  dataDir?: string;
  /** Keep the fine-tuned weights (returned alongside the row; the caller disposes them). */
  keepParams?: boolean;
}

export interface RunOutput {
  row: ResultRow;
  finetuned?: FineTuneResult;
  model: PreparedModel;
}

function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

export async function runExperimentDetailed(spec: ExperimentSpec, options: RunOptions = {}): Promise<RunOutput> {
  const engine = await initEngine();
  const startedAt = new Date();
  const data = await loadExperimentData(spec, { dataDir: options.dataDir });
  const numLabels = data.labelNames.length;
  const { train, eval: evalData, warnings } = sampleExperiment(spec, data);
  // The paper preset's 1,000 against SST-2's 872 validation sentences: all are used, and evalExamples says how many.
  for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
  const model = await prepareModel(spec, numLabels, data.labelNames);
  // The identity is taken before training, from the weights as they were loaded.
  const identity: RunIdentity = {
    spec,
    modelFingerprint: await modelFingerprint(model.dir),
    recipe: resolveRecipe(spec, model.config),
    numerics: await engineNumerics(),
  };
  const recipe = identity.recipe;
  const batchTokens = maxBatchTokens(engine);
  const result = await fineTune({
    config: model.config,
    params: model.params,
    numLabels,
    train: encodeSplit(model.tokenizer, train, spec.dataset.maxLength),
    eval: encodeSplit(model.tokenizer, evalData, spec.dataset.maxLength),
    recipe: { ...recipe },
    seed: spec.seed,
    padId: model.tokenizer.padId,
    label: specLabel(spec),
    onProgress: options.onProgress,
    progressBar: options.progressBar,
    keepParams: options.keepParams,
    maxBatchTokens: batchTokens,
  });
  const finishedAt = new Date();
  const last = result.epochs[result.epochs.length - 1];
  const row: ResultRow = {
    hash: identityHash(identity),
    spec,
    numerics: identity.numerics,
    status: result.status,
    label: specLabel(spec),
    numLabels,
    labelNames: data.labelNames,
    // The memory cap is how the run was executed, not what it asks for: recorded, not hashed.
    recipe: { ...recipe, ...(batchTokens !== undefined ? { maxBatchTokens: batchTokens } : {}) },
    epochs: result.epochs.map((e) => ({
      epoch: e.epoch,
      trainLoss: finite(e.trainLoss),
      eval: { ...e.eval, accuracy: finite(e.eval.accuracy), macroF1: finite(e.eval.macroF1) },
    })),
    lossCurve: result.lossCurve.map((p) => ({ step: p.step, loss: finite(p.loss) })),
    final: { accuracy: last ? finite(last.eval.accuracy) : null, macroF1: last ? finite(last.eval.macroF1) : null },
    divergedAt: result.divergedAt,
    corruption: model.corruption ? { layers: model.corruption.layers, tensors: model.corruption.tensors.length } : undefined,
    trainExamples: train.labels.length,
    evalExamples: evalData.labels.length,
    dataset: datasetLabel(spec.dataset),
    modelDir: model.dir,
    modelFingerprint: identity.modelFingerprint,
    timings: {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      trainTokensPerSecond: finite(result.trainTokensPerSecond),
    },
    provenance: await provenance({ engine }),
  };
  return { row, finetuned: result, model };
}

/** The grid's entry point: one spec in, one result row out. */
export async function runExperiment(spec: ExperimentSpec, options: RunOptions = {}): Promise<ResultRow> {
  const { row, model, finetuned } = await runExperimentDetailed(spec, { ...options, keepParams: false });
  disposeParams(model.params);
  if (finetuned?.params) disposeParams(finetuned.params);
  return row;
}
