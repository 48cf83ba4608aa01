import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';
import type { ParamMap } from './names';
import { embeddingsFused } from '../backend/fused';
import { fusedNative } from '../backend/native/state';
import { additiveMask, attentionBlock, DropoutSeeds, feedForwardBlock, layerNorm, param, type LayerNames } from './layers';

/**
 * The BERT and DistilBERT encoders (Hugging Face modeling_bert / modeling_distilbert, eval and train
 * modes). Both are post-LayerNorm transformers with the same data flow; they differ only in parameter
 * names and in DistilBERT having no token type embeddings, so one function serves both with a
 * name table per model type.
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

function layerNames(config: ModelConfig, i: number): LayerNames {
  if (config.modelType === 'bert') {
    const p = `bert.encoder.layer.${i}`;
    return {
      attention: {
        query: `${p}.attention.self.query`,
        key: `${p}.attention.self.key`,
        value: `${p}.attention.self.value`,
        output: `${p}.attention.output.dense`,
      },
      attentionNorm: `${p}.attention.output.LayerNorm`,
      ffnIn: `${p}.intermediate.dense`,
      ffnOut: `${p}.output.dense`,
      outputNorm: `${p}.output.LayerNorm`,
    };
  }
  const p = `distilbert.transformer.layer.${i}`;
  return {
    attention: { query: `${p}.attention.q_lin`, key: `${p}.attention.k_lin`, value: `${p}.attention.v_lin`, output: `${p}.attention.out_lin` },
    attentionNorm: `${p}.sa_layer_norm`,
    ffnIn: `${p}.ffn.lin1`,
    ffnOut: `${p}.ffn.lin2`,
    outputNorm: `${p}.output_layer_norm`,
  };
}

export function prefixOf(config: ModelConfig): string {
  return config.modelType === 'bert' ? 'bert' : 'distilbert';
}

function embeddings(config: ModelConfig, params: ParamMap, inputs: EncoderInputs, dropout: DropoutSeeds, training: boolean): tf.Tensor3D {
  const prefix = `${prefixOf(config)}.embeddings`;
  const [b, t] = inputs.inputIds.shape;
  if (t > config.maxPositions) {
    throw new Error(`sequence length ${t} exceeds max_position_embeddings ${config.maxPositions}`);
  }
  const native = fusedNative();
  if (native) {
    const hasTypes = config.modelType === 'bert' && config.typeVocabSize > 0;
    const hidden = dropout.next(config.hiddenDropout, training);
    return embeddingsFused(
      native, inputs.inputIds, hasTypes ? inputs.tokenTypeIds : undefined,
      param(params, `${prefix}.word_embeddings.weight`), param(params, `${prefix}.position_embeddings.weight`),
      hasTypes ? param(params, `${prefix}.token_type_embeddings.weight`) : undefined,
      { weight: param(params, `${prefix}.LayerNorm.weight`), bias: param(params, `${prefix}.LayerNorm.bias`) },
      { eps: config.layerNormEps, hiddenDropout: hidden.rate, hiddenSeed: hidden.seed },
    );
  }
  const flatIds = inputs.inputIds.reshape([-1]).toInt();
  let x = tf.gather(param(params, `${prefix}.word_embeddings.weight`), flatIds).reshape([b, t, config.hiddenSize]);
  const positions = tf.gather(param(params, `${prefix}.position_embeddings.weight`), tf.range(0, t, 1, 'int32'));
  x = x.add(positions.expandDims(0));
  if (config.modelType === 'bert' && config.typeVocabSize > 0) {
    const typeTable = param(params, `${prefix}.token_type_embeddings.weight`);
    const typeIds = inputs.tokenTypeIds ?? tf.zeros([b, t], 'int32');
    x = x.add(tf.gather(typeTable, typeIds.reshape([-1]).toInt()).reshape([b, t, config.hiddenSize]));
  }
  x = layerNorm(params, `${prefix}.LayerNorm`, x, config.layerNormEps);
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
