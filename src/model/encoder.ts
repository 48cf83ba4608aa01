import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';
import { embeddingNames, layerNames, type ParamMap } from './names';
import { embeddingsFused } from '../backend/fused';
import { fusedNative } from '../backend/native/state';
import { additiveMask, attentionBlock, DropoutSeeds, feedForwardBlock, layerNorm, param } from './layers';

/**
 * The BERT and DistilBERT encoders (Hugging Face modeling_bert / modeling_distilbert, eval and train
 * modes). Both are post-LayerNorm transformers with the same data flow; they differ only in parameter
 * names (one table per architecture, ./names.ts) and in DistilBERT having no token type embeddings,
 * so one function serves both.
 */

export interface EncoderInputs {
  /** [batch, seq] int32 token ids. */
  inputIds: tf.Tensor2D;
  /** [batch, seq] 1 for real tokens, 0 for padding. */
  attentionMask: tf.Tensor2D;
  /** [batch, seq] segment ids (BERT only; zeros when absent). */
  tokenTypeIds?: tf.Tensor2D;
}

export interface ForwardOptions {
  training?: boolean;
  /** Seed for dropout masks; the same seed gives the same masks on the same backend. */
  dropoutSeed?: number;
}

export interface EncoderOutput {
  /** The embedding output, then the output of each layer: numLayers + 1 tensors [batch, seq, hidden]. */
  hiddenStates: tf.Tensor3D[];
  lastHiddenState: tf.Tensor3D;
}

function embeddings(config: ModelConfig, params: ParamMap, inputs: EncoderInputs, dropout: DropoutSeeds, training: boolean): tf.Tensor3D {
  const names = embeddingNames(config);
  const [b, t] = inputs.inputIds.shape;
  if (t > config.maxPositions) {
    throw new Error(`sequence length ${t} exceeds max_position_embeddings ${config.maxPositions}`);
  }
  const native = fusedNative();
  if (native) {
    const hidden = dropout.next(config.hiddenDropout, training);
    return embeddingsFused(
      native, inputs.inputIds, names.tokenType !== undefined ? inputs.tokenTypeIds : undefined,
      param(params, `${names.word}.weight`), param(params, `${names.position}.weight`),
      names.tokenType !== undefined ? param(params, `${names.tokenType}.weight`) : undefined,
      { weight: param(params, `${names.norm}.weight`), bias: param(params, `${names.norm}.bias`) },
      { eps: config.layerNormEps, hiddenDropout: hidden.rate, hiddenSeed: hidden.seed },
    );
  }
  const flatIds = inputs.inputIds.reshape([-1]).toInt();
  let x = tf.gather(param(params, `${names.word}.weight`), flatIds).reshape([b, t, config.hiddenSize]);
  const positions = tf.gather(param(params, `${names.position}.weight`), tf.range(0, t, 1, 'int32'));
  x = x.add(positions.expandDims(0));
  if (names.tokenType !== undefined) {
    const typeTable = param(params, `${names.tokenType}.weight`);
    const typeIds = inputs.tokenTypeIds ?? tf.zeros([b, t], 'int32');
    x = x.add(tf.gather(typeTable, typeIds.reshape([-1]).toInt()).reshape([b, t, config.hiddenSize]));
  }
  x = layerNorm(params, names.norm, x, config.layerNormEps);
  return dropout.apply(x, config.hiddenDropout, training) as tf.Tensor3D;
}

/** Runs one encoder layer (layer 0 = bottom). Exposed for per-layer analyses. */
export function encoderLayer(
  config: ModelConfig,
  params: ParamMap,
  i: number,
  x: tf.Tensor3D,
  mask: tf.Tensor4D,
  dropout: DropoutSeeds,
  training: boolean,
): tf.Tensor3D {
  const n = layerNames(config, i);
  const block = { numHeads: config.numHeads, layerNormEps: config.layerNormEps, hiddenDropout: config.hiddenDropout, attentionDropout: config.attentionDropout };
  const h = attentionBlock(params, n, x, mask, block, dropout, training);
  return feedForwardBlock(params, n, h, block, dropout, training);
}

/** The encoder forward pass. Call inside tf.tidy (or dispose the outputs). */
export function encode(
  config: ModelConfig,
  params: ParamMap,
  inputs: EncoderInputs,
  options: ForwardOptions & { dropout?: DropoutSeeds } = {},
): EncoderOutput {
  const training = options.training ?? false;
  const dropout = options.dropout ?? new DropoutSeeds(options.dropoutSeed);
  const mask = additiveMask(inputs.attentionMask);
  let x = embeddings(config, params, inputs, dropout, training);
  const hiddenStates = [x];
  for (let i = 0; i < config.numLayers; i++) {
    x = encoderLayer(config, params, i, x, mask, dropout, training);
    hiddenStates.push(x);
  }
  return { hiddenStates, lastHiddenState: x };
}
