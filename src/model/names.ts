import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';
import type { LayerNames } from './layers';

/**
 * Parameters are addressed by their Hugging Face names everywhere
 * (`bert.encoder.layer.3.attention.self.query.weight`), so checkpoints load by a name map and
 * a corruption spec or an analysis can point at exactly what changed. Linear weights keep
 * PyTorch's [out, in] layout, so fan_in is shape[1] as in torch.nn.init.
 */
export type ParamMap = Map<string, tf.Tensor>;

/** Which head a parameter set carries besides the encoder. */
export type HeadKind = 'classifier' | 'mlm' | 'none';

/** The parts of an encoder layer a parameter can belong to. */
export const LAYER_PARTS = ['attention', 'ffn', 'layernorm'] as const;
/** The parts outside the encoder layers, heads apart (a head is what fine-tuning trains anew). */
export const OUTER_PARTS = ['embeddings', 'pooler'] as const;

/** The part of the model a parameter belongs to; corruption selects by these (src/corruption/spec.ts). */
export type Component = (typeof LAYER_PARTS)[number] | (typeof OUTER_PARTS)[number] | 'head';

/** What kind of tensor, which decides how it is (re-)initialised. */
export type ParamRole = 'linear_weight' | 'bias' | 'layernorm_weight' | 'layernorm_bias' | 'embedding';

export interface ParamInfo {
  name: string;
  shape: number[];
  /** Encoder layer index (0 = bottom, next to the embeddings), undefined outside the encoder. */
  layer?: number;
  component: Component;
  role: ParamRole;
}

/**
 * One architecture's parameter names, spelled once: the attribute paths of its Hugging Face modeling
 * file, as transformers derives checkpoint keys (BertForSequenceClassification.bert.encoder.layer[3]
 * .attention.self.query is "bert.encoder.layer.3.attention.self.query"), without .weight / .bias.
 * The layout, the encoder, the heads and checkpoint loading all read names from here, so a name
 * cannot be spelled two ways.
 */
export interface Architecture {
  /** Hugging Face's class for each head (config.json's `architectures`). */
  classes: Record<HeadKind, string>;
  /** The base model's attribute on the task model; every encoder name starts with it. */
  base: string;
  /** Under the base model. No tokenType: the architecture has no segment embeddings. */
  embeddings: { word: string; position: string; tokenType?: string; norm: string };
  /** The encoder's list of layers, under the base model. */
  layers: string;
  /** One layer's modules, under `${base}.${layers}.${i}`. */
  layer: LayerNames;
  /** Full names from here on: heads hang off the task model, not the base model. */
  classifier: {
    /** The dense layer between [CLS] and the classifier: BERT's pooler, DistilBERT's pre_classifier. */
    pooler: string;
    out: string;
  };
  mlm: {
    transform: string;
    norm: string;
    /** The decoder's bias, a parameter (not a module). */
    bias: string;
    /** The decoder weight: tied to the word embeddings, stored by HF files but never a parameter of its own. */
    tiedDecoder: string;
    /** Another name files may hold for the same bias Parameter. */
    biasAlias?: string;
  };
}

export const ARCHITECTURES: Record<ModelConfig['modelType'], Architecture> = {
  bert: {
    classes: { classifier: 'BertForSequenceClassification', mlm: 'BertForMaskedLM', none: 'BertModel' },
    base: 'bert',
    embeddings: {
      word: 'embeddings.word_embeddings',
      position: 'embeddings.position_embeddings',
      tokenType: 'embeddings.token_type_embeddings',
      norm: 'embeddings.LayerNorm',
    },
    layers: 'encoder.layer',
    layer: {
      attention: { query: 'attention.self.query', key: 'attention.self.key', value: 'attention.self.value', output: 'attention.output.dense' },
      attentionNorm: 'attention.output.LayerNorm',
      ffnIn: 'intermediate.dense',
      ffnOut: 'output.dense',
      outputNorm: 'output.LayerNorm',
    },
    classifier: { pooler: 'bert.pooler.dense', out: 'classifier' },
    mlm: {
      transform: 'cls.predictions.transform.dense',
      norm: 'cls.predictions.transform.LayerNorm',
      bias: 'cls.predictions.bias',
      tiedDecoder: 'cls.predictions.decoder.weight',
      biasAlias: 'cls.predictions.decoder.bias',
    },
  },
  distilbert: {
    classes: { classifier: 'DistilBertForSequenceClassification', mlm: 'DistilBertForMaskedLM', none: 'DistilBertModel' },
    base: 'distilbert',
    embeddings: { word: 'embeddings.word_embeddings', position: 'embeddings.position_embeddings', norm: 'embeddings.LayerNorm' },
    layers: 'transformer.layer',
    layer: {
      attention: { query: 'attention.q_lin', key: 'attention.k_lin', value: 'attention.v_lin', output: 'attention.out_lin' },
      attentionNorm: 'sa_layer_norm',
      ffnIn: 'ffn.lin1',
      ffnOut: 'ffn.lin2',
      outputNorm: 'output_layer_norm',
    },
    // DistilBERT has no pooler; pre_classifier plays its part, so corruption treats it as one.
    classifier: { pooler: 'pre_classifier', out: 'classifier' },
    mlm: { transform: 'vocab_transform', norm: 'vocab_layer_norm', bias: 'vocab_projector.bias', tiedDecoder: 'vocab_projector.weight' },
  },
};

export function architecture(config: ModelConfig): Architecture {
  return ARCHITECTURES[config.modelType];
}

/** Full names of the embedding modules; tokenType only when the model has segment embeddings. */
export function embeddingNames(config: ModelConfig): Architecture['embeddings'] {
  const { base, embeddings: e } = architecture(config);
  return {
    word: `${base}.${e.word}`,
    position: `${base}.${e.position}`,
    ...(e.tokenType !== undefined && config.typeVocabSize > 0 ? { tokenType: `${base}.${e.tokenType}` } : {}),
    norm: `${base}.${e.norm}`,
  };
}

/** Full names of encoder layer i's modules (0 = bottom). */
export function layerNames(config: ModelConfig, i: number): LayerNames {
  const { base, layers, layer: n } = architecture(config);
  const p = `${base}.${layers}.${i}`;
  return {
    attention: {
      query: `${p}.${n.attention.query}`,
      key: `${p}.${n.attention.key}`,
      value: `${p}.${n.attention.value}`,
      output: `${p}.${n.attention.output}`,
    },
    attentionNorm: `${p}.${n.attentionNorm}`,
    ffnIn: `${p}.${n.ffnIn}`,
    ffnOut: `${p}.${n.ffnOut}`,
    outputNorm: `${p}.${n.outputNorm}`,
  };
}

function linear(name: string, out: number, inp: number, layer: number | undefined, component: Component): ParamInfo[] {
  return [
    { name: `${name}.weight`, shape: [out, inp], layer, component, role: 'linear_weight' },
    { name: `${name}.bias`, shape: [out], layer, component, role: 'bias' },
  ];
}

function layerNorm(name: string, dim: number, layer: number | undefined, component: Component): ParamInfo[] {
  return [
    { name: `${name}.weight`, shape: [dim], layer, component, role: 'layernorm_weight' },
    { name: `${name}.bias`, shape: [dim], layer, component, role: 'layernorm_bias' },
  ];
}

function embedding(name: string, rows: number, dim: number): ParamInfo {
  return { name: `${name}.weight`, shape: [rows, dim], component: 'embeddings', role: 'embedding' };
}

/** Every parameter of a model, in a stable order (the checkpoint's), with the shape config.json implies. */
export function parameterLayout(config: ModelConfig, head: HeadKind, numLabels = 2): ParamInfo[] {
  const h = config.hiddenSize;
  const f = config.intermediateSize;
  const arch = architecture(config);
  const e = embeddingNames(config);
  const out: ParamInfo[] = [embedding(e.word, config.vocabSize, h), embedding(e.position, config.maxPositions, h)];
  if (e.tokenType !== undefined) out.push(embedding(e.tokenType, config.typeVocabSize, h));
  out.push(...layerNorm(e.norm, h, undefined, 'embeddings'));
  for (let i = 0; i < config.numLayers; i++) {
    const n = layerNames(config, i);
    out.push(...linear(n.attention.query, h, h, i, 'attention'));
    out.push(...linear(n.attention.key, h, h, i, 'attention'));
    out.push(...linear(n.attention.value, h, h, i, 'attention'));
    out.push(...linear(n.attention.output, h, h, i, 'attention'));
    out.push(...layerNorm(n.attentionNorm, h, i, 'layernorm'));
    out.push(...linear(n.ffnIn, f, h, i, 'ffn'));
    out.push(...linear(n.ffnOut, h, f, i, 'ffn'));
    out.push(...layerNorm(n.outputNorm, h, i, 'layernorm'));
  }
  if (head === 'classifier') {
    out.push(...linear(arch.classifier.pooler, h, h, undefined, 'pooler'));
    out.push(...linear(arch.classifier.out, numLabels, h, undefined, 'head'));
  } else if (head === 'mlm') {
    out.push(...linear(arch.mlm.transform, h, h, undefined, 'head'));
    out.push(...layerNorm(arch.mlm.norm, h, undefined, 'head'));
    // The decoder weight is tied to the word embeddings; only its bias is a parameter of its own.
    out.push({ name: arch.mlm.bias, shape: [config.vocabSize], component: 'head', role: 'bias' });
  }
  return out;
}

/** The layout entry for one name, or undefined for names the architecture does not have. */
export function describeParam(config: ModelConfig, name: string, numLabels = 2): ParamInfo | undefined {
  for (const head of ['classifier', 'mlm'] as const) {
    const found = parameterLayout(config, head, numLabels).find((p) => p.name === name);
    if (found) return found;
  }
  return undefined;
}

/** Disposes every tensor of a parameter map. */
export function disposeParams(params: ParamMap): void {
  for (const t of params.values()) t.dispose();
}
