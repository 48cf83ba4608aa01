import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';
import { ARCHITECTURES, architecture, embeddingNames, type HeadKind, type ParamMap } from './names';
import { denseGelu, DropoutSeeds, layerNorm, linear, param } from './layers';
import { encode, type EncoderInputs, type ForwardOptions } from './encoder';

/** BERT's pooler: tanh(dense(hidden state of [CLS])). */
export function pool(params: ParamMap, lastHiddenState: tf.Tensor3D): tf.Tensor2D {
  const cls = lastHiddenState.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
  return tf.tanh(linear(params, ARCHITECTURES.bert.classifier.pooler, cls)) as tf.Tensor2D;
}

/**
 * Sequence-classification logits. BERT: pooler -> dropout -> classifier (BertForSequenceClassification).
 * DistilBERT: pre_classifier -> ReLU -> dropout -> classifier (DistilBertForSequenceClassification).
 */
export function classifierLogits(
  config: ModelConfig,
  params: ParamMap,
  lastHiddenState: tf.Tensor3D,
  dropout: DropoutSeeds,
  training: boolean,
): { logits: tf.Tensor2D; pooled?: tf.Tensor2D } {
  const names = architecture(config).classifier;
  if (config.modelType === 'bert') {
    const pooled = pool(params, lastHiddenState);
    const x = dropout.apply(pooled, config.classifierDropout, training);
    return { logits: linear(params, names.out, x) as tf.Tensor2D, pooled };
  }
  const cls = lastHiddenState.slice([0, 0, 0], [-1, 1, -1]).squeeze([1]);
  const x = dropout.apply(tf.relu(linear(params, names.pooler, cls)), config.classifierDropout, training);
  return { logits: linear(params, names.out, x) as tf.Tensor2D };
}

/**
 * Masked-LM logits for selected hidden states [n, hidden] -> [n, vocab]. The decoder is tied to the
 * word embeddings (as in Hugging Face), so only the transform and a bias are parameters of the head.
 * Callers pass only the masked positions: the vocabulary projection is the most expensive matMul.
 */
export function mlmLogits(config: ModelConfig, params: ParamMap, hidden: tf.Tensor2D): tf.Tensor2D {
  const words = param(params, `${embeddingNames(config).word}.weight`) as tf.Tensor2D;
  const names = architecture(config).mlm;
  // DistilBERT's layerNormEps is its hard-coded 1e-12 (config.ts), the eps of its vocab_layer_norm too.
  const t = layerNorm(params, names.norm, denseGelu(params, names.transform, hidden), config.layerNormEps);
  return tf.matMul(t as tf.Tensor2D, words, false, true).add(param(params, names.bias));
}

export interface ForwardOutput {
  hiddenStates: tf.Tensor3D[];
  lastHiddenState: tf.Tensor3D;
  poolerOutput?: tf.Tensor2D;
  logits?: tf.Tensor2D;
}

/** Encoder plus whatever classifier head the parameters carry, as Hugging Face returns it. */
export function forward(
  config: ModelConfig,
  params: ParamMap,
  head: HeadKind,
  inputs: EncoderInputs,
  options: ForwardOptions = {},
): ForwardOutput {
  const training = options.training ?? false;
  const dropout = new DropoutSeeds(options.dropoutSeed);
  const { hiddenStates, lastHiddenState } = encode(config, params, inputs, { training, dropout });
  if (head === 'classifier') {
    const { logits, pooled } = classifierLogits(config, params, lastHiddenState, dropout, training);
    return { hiddenStates, lastHiddenState, poolerOutput: pooled, logits };
  }
  const poolerOutput = config.modelType === 'bert' && params.has(`${ARCHITECTURES.bert.classifier.pooler}.weight`) ? pool(params, lastHiddenState) : undefined;
  return { hiddenStates, lastHiddenState, poolerOutput };
}
