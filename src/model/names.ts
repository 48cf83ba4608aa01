import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';

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

/** Every parameter of a model, in a stable order, with the shape config.json implies. */
export function parameterLayout(config: ModelConfig, head: HeadKind, numLabels = 2): ParamInfo[] {
  const h = config.hiddenSize;
  const f = config.intermediateSize;
  const out: ParamInfo[] = [];
  if (config.modelType === 'bert') {
    out.push(embedding('bert.embeddings.word_embeddings', config.vocabSize, h));
    out.push(embedding('bert.embeddings.position_embeddings', config.maxPositions, h));
    if (config.typeVocabSize > 0) out.push(embedding('bert.embeddings.token_type_embeddings', config.typeVocabSize, h));
    out.push(...layerNorm('bert.embeddings.LayerNorm', h, undefined, 'embeddings'));
    for (let i = 0; i < config.numLayers; i++) {
      const p = `bert.encoder.layer.${i}`;
      out.push(...linear(`${p}.attention.self.query`, h, h, i, 'attention'));
      out.push(...linear(`${p}.attention.self.key`, h, h, i, 'attention'));
      out.push(...linear(`${p}.attention.self.value`, h, h, i, 'attention'));
      out.push(...linear(`${p}.attention.output.dense`, h, h, i, 'attention'));
      out.push(...layerNorm(`${p}.attention.output.LayerNorm`, h, i, 'layernorm'));
      out.push(...linear(`${p}.intermediate.dense`, f, h, i, 'ffn'));
      out.push(...linear(`${p}.output.dense`, h, f, i, 'ffn'));
      out.push(...layerNorm(`${p}.output.LayerNorm`, h, i, 'layernorm'));
    }
    if (head === 'classifier') {
      out.push(...linear('bert.pooler.dense', h, h, undefined, 'pooler'));
      out.push(...linear('classifier', numLabels, h, undefined, 'head'));
    } else if (head === 'mlm') {
      out.push(...linear('cls.predictions.transform.dense', h, h, undefined, 'head'));
      out.push(...layerNorm('cls.predictions.transform.LayerNorm', h, undefined, 'head'));
      // The decoder weight is tied to the word embeddings; only its bias is a parameter of its own.
      out.push({ name: 'cls.predictions.bias', shape: [config.vocabSize], component: 'head', role: 'bias' });
    }
    return out;
  }
  out.push(embedding('distilbert.embeddings.word_embeddings', config.vocabSize, h));
  out.push(embedding('distilbert.embeddings.position_embeddings', config.maxPositions, h));
  out.push(...layerNorm('distilbert.embeddings.LayerNorm', h, undefined, 'embeddings'));
  for (let i = 0; i < config.numLayers; i++) {
    const p = `distilbert.transformer.layer.${i}`;
    out.push(...linear(`${p}.attention.q_lin`, h, h, i, 'attention'));
    out.push(...linear(`${p}.attention.k_lin`, h, h, i, 'attention'));
    out.push(...linear(`${p}.attention.v_lin`, h, h, i, 'attention'));
    out.push(...linear(`${p}.attention.out_lin`, h, h, i, 'attention'));
    out.push(...layerNorm(`${p}.sa_layer_norm`, h, i, 'layernorm'));
    out.push(...linear(`${p}.ffn.lin1`, f, h, i, 'ffn'));
    out.push(...linear(`${p}.ffn.lin2`, h, f, i, 'ffn'));
    out.push(...layerNorm(`${p}.output_layer_norm`, h, i, 'layernorm'));
  }
  if (head === 'classifier') {
    // DistilBERT has no pooler; pre_classifier plays its part, so corruption treats it as one.
    out.push(...linear('pre_classifier', h, h, undefined, 'pooler'));
    out.push(...linear('classifier', numLabels, h, undefined, 'head'));
  } else if (head === 'mlm') {
    out.push(...linear('vocab_transform', h, h, undefined, 'head'));
    out.push(...layerNorm('vocab_layer_norm', h, undefined, 'head'));
    out.push({ name: 'vocab_projector.bias', shape: [config.vocabSize], component: 'head', role: 'bias' });
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
