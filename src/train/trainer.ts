import * as tf from '@tensorflow/tfjs';
import type { ParamMap } from '../model/names';
import { clipCoefficient, createAdamW, globalGradNorm } from './adamw';

/**
 * What fine-tuning and pretraining share: trainable copies of the parameters, gradients accumulated
 * over micro-batches (the wasm heap is capped at 4 GB, so large batches are split), global-norm
 * clipping and one AdamW step. The loss function builds the graph; this module owns the memory.
 */

export interface Trainable {
  /** Hugging Face name -> variable; a ParamMap the model functions read directly. */
  variables: Map<string, tf.Variable>;
  optimizer: ReturnType<typeof createAdamW>;
}

let variableCounter = 0;

export function makeTrainable(
  params: ParamMap,
  options: { weightDecay: number; learningRate: number },
): Trainable {
  // TF.js variable names are global to the engine; a per-run prefix lets several models coexist.
  const run = `run${++variableCounter}`;
  const variables = new Map<string, tf.Variable>();
  for (const [name, tensor] of params) variables.set(name, tf.variable(tensor, true, `${run}/${name}`));
  const optimizer = createAdamW(variables, { weightDecay: options.weightDecay, learningRate: options.learningRate });
  return { variables, optimizer };
}

export function disposeTrainable(trainable: Trainable): void {
  trainable.optimizer.dispose();
  for (const v of trainable.variables.values()) v.dispose();
}

/** A snapshot of the current weights as plain tensors (the caller owns them). */
export function snapshotParams(trainable: Trainable): ParamMap {
  const out: ParamMap = new Map();
  for (const [name, v] of trainable.variables) out.set(name, v.clone());
  return out;
}

export interface StepResult {
  /** Mean loss over the examples of the step. */
  loss: number;
  gradNorm: number;
}

/**
 * One optimizer step over several micro-batches. `lossOf(i)` returns the mean loss of micro-batch i
 * and `weights[i]` its share of the step's examples, so the accumulated gradient equals the gradient
 * of the mean over the whole step.
 */
export function trainStep(
  trainable: Trainable,
  microBatches: number,
  weights: number[],
  lossOf: (i: number) => tf.Scalar,
  options: { learningRate: number; maxGradNorm: number },
): StepResult {
  const names = [...trainable.variables.keys()];
  const varList = [...trainable.variables.values()];
  const byVarName = new Map(varList.map((v, i) => [v.name, names[i]]));
  let accumulated: Map<string, tf.Tensor> | undefined;
  let loss = 0;
  for (let i = 0; i < microBatches; i++) {
    const { value, grads } = tf.variableGrads(() => lossOf(i).mul(weights[i]) as tf.Scalar, varList);
    loss += value.dataSync()[0];
    value.dispose();
    if (!accumulated) {
      accumulated = new Map();
      for (const [varName, g] of Object.entries(grads)) accumulated.set(byVarName.get(varName)!, g);
    } else {
      for (const [varName, g] of Object.entries(grads)) {
        const name = byVarName.get(varName)!;
        const previous = accumulated.get(name)!;
        accumulated.set(name, previous.add(g));
        previous.dispose();
        g.dispose();
      }
    }
  }
  if (!accumulated) throw new Error('trainStep needs at least one micro-batch');
  let gradNorm = NaN;
  if (Number.isFinite(loss)) {
    gradNorm = globalGradNorm(accumulated);
    // Clipping scales the gradients inside the update (torch's clip_grad_norm_ then step), without copies.
    if (Number.isFinite(gradNorm)) trainable.optimizer.step(accumulated, options.learningRate, clipCoefficient(gradNorm, options.maxGradNorm));
  }
  for (const g of accumulated.values()) g.dispose();
  return { loss, gradNorm };
}

/** Mean cross-entropy of integer labels under logits [n, classes]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const logProbs = tf.logSoftmax(logits);
  const picked = logProbs.mul(tf.oneHot(labels.toInt(), logits.shape[1])).sum(1);
  return picked.mean().neg() as tf.Scalar;
}
