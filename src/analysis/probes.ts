import * as tf from '@tensorflow/tfjs';
import { hiddenStateNames } from './hidden';

/**
 * Linear probes: how much of a task a frozen layer's representation already separates. A softmax
 * regression (L2-regularised, full batch, Adam) on standardised features; the problem is convex and
 * starts from zero weights on the whole training set, so it needs no seed and gives the same answer
 * every time. A probe's evaluation accuracy well above the majority baseline means the layer encodes
 * the labels linearly.
 */

export interface ProbeOptions {
  /** Classes (default: 1 + the largest label seen). */
  numClasses?: number;
  /** L2 penalty on the weights (default 1e-2: with about as many examples as features, a probe overfits without it). */
  l2?: number;
  /** Full-batch optimisation steps (default 300). */
  steps?: number;
  /** Adam step size (default 0.05). */
  learningRate?: number;
}

export type ProbeResult = {
  trainAccuracy: number;
  evalAccuracy: number;
  /** Cross-entropy plus penalty at the last step. */
  trainLoss: number;
};

function checkLabels(x: tf.Tensor2D, labels: readonly number[], which: string): void {
  if (x.shape[0] !== labels.length) throw new RangeError(`probe: ${which} has ${x.shape[0]} examples and ${labels.length} labels`);
  labels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0) throw new RangeError(`probe: ${which} label ${i} is ${l}, expected a class index >= 0`);
  });
}

function accuracy(logits: tf.Tensor2D, labels: readonly number[]): number {
  const predicted = logits.argMax(1).dataSync();
  let hits = 0;
  labels.forEach((l, i) => {
    if (predicted[i] === l) hits++;
  });
  return labels.length ? hits / labels.length : NaN;
}

/** Trains one probe on (trainX, trainY) and scores it on both splits. Inputs are not disposed. */
export function trainProbe(
  trainX: tf.Tensor2D,
  trainY: readonly number[],
  evalX: tf.Tensor2D,
  evalY: readonly number[],
  options: ProbeOptions = {},
): ProbeResult {
  checkLabels(trainX, trainY, 'train');
  checkLabels(evalX, evalY, 'eval');
  if (trainX.shape[1] !== evalX.shape[1]) throw new RangeError(`probe: train has ${trainX.shape[1]} features and eval ${evalX.shape[1]}`);
  if (trainY.length === 0) throw new RangeError('probe: no training examples');
  const numClasses = options.numClasses ?? Math.max(...trainY, ...evalY) + 1;
  const l2 = options.l2 ?? 1e-2;
  const steps = options.steps ?? 300;
  const features = trainX.shape[1];

  // Standardising with the training statistics puts every layer on one scale, so one step size and
  // one penalty serve all depths (LayerNorm outputs and raw embeddings differ a lot in scale).
  const [mean, scale, xTrain, xEval, yTrain] = tf.tidy(() => {
    const { mean: m, variance } = tf.moments(trainX, 0);
    const s = tf.sqrt(variance).add(1e-6);
    return [m, s, trainX.sub(m).div(s), evalX.sub(m).div(s), tf.oneHot(tf.tensor1d(trainY as number[], 'int32'), numClasses)];
  });
  // tidy frees the zeros a variable is created from (variables themselves survive it).
  const weights = tf.tidy(() => tf.variable(tf.zeros([features, numClasses]), true));
  const bias = tf.tidy(() => tf.variable(tf.zeros([numClasses]), true));
  const optimizer = tf.train.adam(options.learningRate ?? 0.05);
  const predictor = (x: tf.Tensor2D) => tf.add(tf.matMul(x, weights), bias) as tf.Tensor2D;
  let trainLoss = NaN;
  try {
    for (let step = 0; step < steps; step++) {
      const last = step === steps - 1;
      const loss = optimizer.minimize(
        () => tf.add(tf.losses.softmaxCrossEntropy(yTrain, predictor(xTrain as tf.Tensor2D)), tf.mul(l2, tf.sum(tf.square(weights)))) as tf.Scalar,
        last,
        [weights, bias],
      );
      if (loss) {
        trainLoss = loss.dataSync()[0];
        loss.dispose();
      }
    }
    return tf.tidy(() => ({
      trainAccuracy: accuracy(predictor(xTrain as tf.Tensor2D), trainY),
      evalAccuracy: accuracy(predictor(xEval as tf.Tensor2D), evalY),
      trainLoss,
    }));
  } finally {
    optimizer.dispose();
    tf.dispose([weights, bias, mean, scale, xTrain, xEval, yTrain]);
  }
}

export type LayerProbeRow = ProbeResult & {
  /** "embeddings", "layer 0" (bottom), ... */
  layerName: string;
  /** Encoder layer index; -1 for the embedding output. */
  layer: number;
};

/**
 * One probe per depth: train[i] / eval[i] are the pooled hidden states at depth i (embeddings first,
 * as hiddenStatesFor returns them), the labels those of the examples.
 */
export function layerProbes(
  train: readonly tf.Tensor2D[],
  trainY: readonly number[],
  evalStates: readonly tf.Tensor2D[],
  evalY: readonly number[],
  options: ProbeOptions = {},
): LayerProbeRow[] {
  if (train.length !== evalStates.length) throw new RangeError(`layerProbes: ${train.length} train depths against ${evalStates.length} eval depths`);
  const names = hiddenStateNames(train.length - 1);
  const numClasses = options.numClasses ?? Math.max(...trainY, ...evalY) + 1;
  return train.map((x, i) => ({ layerName: names[i], layer: i - 1, ...trainProbe(x, trainY, evalStates[i], evalY, { ...options, numClasses }) }));
}

/** Accuracy of always predicting the most frequent training label: what a probe must beat. */
export function majorityBaseline(trainY: readonly number[], evalY: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const y of trainY) counts.set(y, (counts.get(y) ?? 0) + 1);
  let best = -1;
  let bestCount = -1;
  for (const [label, c] of counts) if (c > bestCount || (c === bestCount && label < best)) [best, bestCount] = [label, c];
  return evalY.length ? evalY.filter((y) => y === best).length / evalY.length : NaN;
}
