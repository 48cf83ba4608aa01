import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config';
import type { ParamMap } from '../model/names';
import { encode } from '../model/encoder';
import { classifierLogits } from '../model/heads';
import { DropoutSeeds } from '../model/layers';
import { makeBatches, splitBatch, type Batch, type EncodedExamples } from '../data/batching';
import { deriveSeed } from '../random';
import { createProgress } from '../progress';
import { classificationMetrics } from './metrics';
import type { ResolvedRecipe } from './recipe';
import { linearSchedule, warmupStepsFrom } from './schedule';
import { crossEntropy, disposeTrainable, makeTrainable, snapshotParams, trainStep } from './trainer';

/** Tokenized examples: unpadded token ids (with [CLS]/[SEP], already truncated) and labels. */
export type EncodedSplit = EncodedExamples;

export interface EvalMetrics {
  accuracy: number;
  macroF1: number;
  perClassF1: number[];
  confusion: number[][];
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  eval: EvalMetrics;
}

export interface FineTuneProgress {
  phase: 'train' | 'eval';
  epoch: number;
  step: number;
  totalSteps: number;
  loss?: number;
  tokensPerSecond?: number;
}

export interface FineTuneOptions {
  config: ModelConfig;
  /** Encoder plus classifier head; not modified (training works on copies). */
  params: ParamMap;
  numLabels: number;
  train: EncodedSplit;
  eval: EncodedSplit;
  /** Defaults and the learning-rate rule that resolve it: ./recipe.ts. */
  recipe: ResolvedRecipe;
  seed: number;
  padId: number;
  label?: string;
  onProgress?: (p: FineTuneProgress) => void;
  /** Show a progress bar on stderr (default: when stderr is a terminal). */
  progressBar?: boolean;
  /** Keep the fine-tuned weights in the result (for --out and per-layer analyses). */
  keepParams?: boolean;
  /**
   * Cut any batch of more padded tokens than this into micro-batches of the same optimizer step (and
   * evaluation batches likewise); absent = no cap. See src/backend/memory.ts maxBatchTokens.
   */
  maxBatchTokens?: number;
}

export interface FineTuneResult {
  status: 'ok' | 'diverged';
  epochs: EpochRecord[];
  lossCurve: Array<{ step: number; loss: number }>;
  divergedAt?: { epoch: number; step: number };
  params?: ParamMap;
  trainTokens: number;
  trainSeconds: number;
  trainTokensPerSecond: number;
}

function batchTensors(batch: Batch): { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D; tokenTypeIds: tf.Tensor2D } {
  const shape: [number, number] = [batch.batchSize, batch.seqLen];
  return {
    inputIds: tf.tensor2d(batch.inputIds, shape, 'int32'),
    attentionMask: tf.tensor2d(batch.attentionMask, shape, 'int32'),
    tokenTypeIds: tf.tensor2d(batch.tokenTypeIds, shape, 'int32'),
  };
}

function realTokens(batch: Batch): number {
  let n = 0;
  for (let i = 0; i < batch.attentionMask.length; i++) n += batch.attentionMask[i];
  return n;
}

/** Predicted labels for a split, in example order. Eval mode: no dropout. */
export function predict(
  config: ModelConfig,
  params: ParamMap,
  data: EncodedSplit,
  options: { batchSize: number; padId: number; maxBatchTokens?: number },
): number[] {
  // Rows are independent in eval mode, so cutting a batch changes memory, not predictions.
  const batches = makeBatches(data, { batchSize: options.batchSize, padId: options.padId, bucket: true })
    .flatMap((b) => splitBatch(b, options.maxBatchTokens));
  const predictions = new Array<number>(data.labels.length);
  for (const batch of batches) {
    const predicted = tf.tidy(() => {
      const inputs = batchTensors(batch);
      const { lastHiddenState } = encode(config, params, inputs, { training: false });
      const { logits } = classifierLogits(config, params, lastHiddenState, new DropoutSeeds(undefined), false);
      return logits.argMax(1).dataSync();
    });
    batch.indices.forEach((exampleIndex, row) => {
      predictions[exampleIndex] = predicted[row];
    });
  }
  return predictions;
}

export function evaluate(
  config: ModelConfig,
  params: ParamMap,
  data: EncodedSplit,
  options: { batchSize: number; padId: number; numLabels: number; maxBatchTokens?: number },
): EvalMetrics {
  const predictions = predict(config, params, data, options);
  const m = classificationMetrics(predictions, data.labels, options.numLabels);
  return { accuracy: m.accuracy, macroF1: m.macroF1, perClassF1: m.perClassF1, confusion: m.confusion };
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Fine-tunes a classifier: AdamW, linear warmup and decay, global-norm clipping, dropout from config,
 * gradient accumulation, evaluation after every epoch. A NaN or infinite loss ends the run as
 * 'diverged' with what it had reached, rather than throwing.
 */
export async function fineTune(options: FineTuneOptions): Promise<FineTuneResult> {
  const { config, recipe, seed } = options;
  if (recipe.batchSize % recipe.gradientAccumulation !== 0) {
    throw new Error(`batch size ${recipe.batchSize} is not divisible by gradient accumulation ${recipe.gradientAccumulation}`);
  }
  const microBatchSize = recipe.batchSize / recipe.gradientAccumulation;
  const stepsPerEpoch = Math.ceil(options.train.labels.length / recipe.batchSize);
  const totalSteps = stepsPerEpoch * recipe.epochs;
  const schedule = linearSchedule({
    peakLr: recipe.learningRate,
    totalSteps,
    warmupSteps: warmupStepsFrom(totalSteps, recipe.warmupRatio),
  });
  const trainable = makeTrainable(options.params, { weightDecay: recipe.weightDecay, learningRate: recipe.learningRate });
  const bar = createProgress({
    label: options.label ?? 'fine-tune',
    total: totalSteps,
    unit: 'steps',
    fields: ['epoch', 'loss', 'tok_s'],
    enabled: options.progressBar,
  });
  const epochs: EpochRecord[] = [];
  const lossCurve: Array<{ step: number; loss: number }> = [];
  let step = 0;
  let tokens = 0;
  let trainMs = 0;
  let divergedAt: FineTuneResult['divergedAt'];
  try {
    for (let epoch = 1; epoch <= recipe.epochs && !divergedAt; epoch++) {
      const batches = makeBatches(options.train, {
        batchSize: microBatchSize,
        padId: options.padId,
        bucket: true,
        seed: deriveSeed(seed, `shuffle/${epoch}`),
      });
      let epochLoss = 0;
      let epochSteps = 0;
      for (let start = 0; start < batches.length; start += recipe.gradientAccumulation) {
        // Each micro-batch keeps its dropout stream; a batch cut for memory gets one stream per slice
        // (an uncut batch keeps the key it always had, so capped and uncapped runs agree where no cut happens).
        const group = batches.slice(start, start + recipe.gradientAccumulation).flatMap((batch, i) => {
          const slices = splitBatch(batch, options.maxBatchTokens);
          return slices.map((slice, j) => ({ batch: slice, dropoutKey: slices.length === 1 ? `dropout/${step}/${i}` : `dropout/${step}/${i}/${j}` }));
        });
        const examples = group.reduce((n, g) => n + g.batch.batchSize, 0);
        const began = performance.now();
        const lr = schedule(step);
        const { loss, gradNorm } = trainStep(
          trainable,
          group.length,
          group.map((g) => g.batch.batchSize / examples),
          (i) => {
            const inputs = batchTensors(group[i].batch);
            const dropout = new DropoutSeeds(deriveSeed(seed, group[i].dropoutKey));
            const { lastHiddenState } = encode(config, trainable.variables, inputs, { training: true, dropout });
            const { logits } = classifierLogits(config, trainable.variables, lastHiddenState, dropout, true);
            return crossEntropy(logits, tf.tensor1d(group[i].batch.labels, 'int32'));
          },
          { learningRate: lr, maxGradNorm: recipe.maxGradNorm },
        );
        trainMs += performance.now() - began;
        step++;
        tokens += group.reduce((n, g) => n + realTokens(g.batch), 0);
        // trainStep skips the update on a non-finite loss or gradient; either way the run has diverged.
        if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
          divergedAt = { epoch, step };
          break;
        }
        epochLoss += loss;
        epochSteps++;
        lossCurve.push({ step, loss });
        const tokensPerSecond = tokens / (trainMs / 1000);
        bar.update(step, { epoch, loss: loss.toFixed(4), tok_s: tokensPerSecond.toFixed(0) });
        options.onProgress?.({ phase: 'train', epoch, step, totalSteps, loss, tokensPerSecond });
        await yieldToEventLoop();
      }
      options.onProgress?.({ phase: 'eval', epoch, step, totalSteps });
      const metrics = evaluate(config, trainable.variables, options.eval, {
        batchSize: recipe.evalBatchSize,
        padId: options.padId,
        numLabels: options.numLabels,
        maxBatchTokens: options.maxBatchTokens,
      });
      epochs.push({ epoch, trainLoss: epochSteps > 0 ? epochLoss / epochSteps : NaN, eval: metrics });
    }
    return {
      status: divergedAt ? 'diverged' : 'ok',
      epochs,
      lossCurve,
      divergedAt,
      params: options.keepParams ? snapshotParams(trainable) : undefined,
      trainTokens: tokens,
      trainSeconds: trainMs / 1000,
      trainTokensPerSecond: trainMs > 0 ? tokens / (trainMs / 1000) : 0,
    };
  } finally {
    bar.stop();
    disposeTrainable(trainable);
  }
}
