import { z } from 'zod';

/**
 * One normalised view of a BERT-family config.json. BERT and DistilBERT name the same
 * hyperparameters differently (hidden_size vs dim, ...); the model code reads only this shape,
 * while `raw` keeps the original JSON so saving a checkpoint round-trips fields we don't use.
 */
export interface ModelConfig {
  modelType: 'bert' | 'distilbert';
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  /** 0 for DistilBERT, which has no token type embeddings. */
  typeVocabSize: number;
  layerNormEps: number;
  hiddenDropout: number;
  attentionDropout: number;
  /** Dropout before the classifier (BERT: classifier_dropout ?? hidden_dropout_prob; DistilBERT: seq_classif_dropout). */
  classifierDropout: number;
  hiddenAct: 'gelu';
  padTokenId: number;
  /** Label names in id order, when the checkpoint declares them. */
  labels?: string[];
  raw: Record<string, unknown>;
}

const positiveInt = z.number().int().positive();
const probability = z.number().min(0).max(1);
const id2label = z.record(z.string(), z.string()).optional();

const bertSchema = z.object({
  model_type: z.literal('bert'),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  intermediate_size: positiveInt,
  max_position_embeddings: positiveInt,
  type_vocab_size: z.number().int().nonnegative().default(2),
  layer_norm_eps: z.number().positive().default(1e-12),
  hidden_dropout_prob: probability.default(0.1),
  attention_probs_dropout_prob: probability.default(0.1),
  classifier_dropout: probability.nullable().optional(),
  hidden_act: z.string().default('gelu'),
  pad_token_id: z.number().int().nonnegative().default(0),
  position_embedding_type: z.string().default('absolute'),
  id2label,
});

const distilbertSchema = z.object({
  model_type: z.literal('distilbert'),
  vocab_size: positiveInt,
  dim: positiveInt,
  n_layers: positiveInt,
  n_heads: positiveInt,
  hidden_dim: positiveInt,
  max_position_embeddings: positiveInt,
  sinusoidal_pos_embds: z.boolean().default(false),
  dropout: probability.default(0.1),
  attention_dropout: probability.default(0.1),
  seq_classif_dropout: probability.default(0.2),
  activation: z.string().default('gelu'),
  pad_token_id: z.number().int().nonnegative().default(0),
  id2label,
});

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function labelsFrom(map: Record<string, string> | undefined): string[] | undefined {
  if (!map) return undefined;
  const ids = Object.keys(map).map(Number).sort((a, b) => a - b);
  if (!ids.every((id, i) => id === i)) return undefined;
  return ids.map((id) => map[String(id)]);
}

function issuesText(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * The architecture of a config.json written before transformers stored `model_type` (Google's BERT
 * miniatures still are: transformers guesses from the repository's name, we from the fields, which a
 * local copy keeps too). Undefined when the fields don't say.
 */
function inferredModelType(raw: Record<string, unknown>): 'bert' | 'distilbert' | undefined {
  const has = (...keys: string[]) => keys.every((k) => raw[k] !== undefined);
  const bert = has('hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size');
  const distilbert = has('dim', 'n_layers', 'n_heads', 'hidden_dim');
  if (bert && !distilbert) return 'bert';
  if (distilbert && !bert) return 'distilbert';
  return undefined;
}

/** Parses a Hugging Face config.json object. `source` names the file in error messages. */
export function parseConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null) throw new ConfigError(`${source}: not a JSON object`);
  const stated = json as Record<string, unknown>;
  const modelType = stated.model_type ?? inferredModelType(stated);
  // A model saved from here states what it was read as.
  const raw = stated.model_type === undefined && modelType !== undefined ? { ...stated, model_type: modelType } : stated;
  // transformers derives num_labels from id2label; a file that states both must agree, or which one the
  // classifier has is a guess.
  if (raw.num_labels !== undefined && raw.id2label && typeof raw.id2label === 'object') {
    const named = Object.keys(raw.id2label as object).length;
    if (raw.num_labels !== named) {
      throw new ConfigError(`${source}: num_labels is ${JSON.stringify(raw.num_labels)} but id2label names ${named} label${named === 1 ? '' : 's'}`);
    }
  }
  if (modelType === 'bert') {
    const parsed = bertSchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(`${source}: ${issuesText(parsed.error)}`);
    const c = parsed.data;
    if (c.hidden_act !== 'gelu') throw new ConfigError(`${source}: hidden_act "${c.hidden_act}" is not supported (only "gelu")`);
    if (c.position_embedding_type !== 'absolute') {
      throw new ConfigError(`${source}: position_embedding_type "${c.position_embedding_type}" is not supported (only "absolute")`);
    }
    if (c.hidden_size % c.num_attention_heads !== 0) {
      throw new ConfigError(`${source}: hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`);
    }
    return {
      modelType: 'bert',
      vocabSize: c.vocab_size,
      hiddenSize: c.hidden_size,
      numLayers: c.num_hidden_layers,
      numHeads: c.num_attention_heads,
      intermediateSize: c.intermediate_size,
      maxPositions: c.max_position_embeddings,
      typeVocabSize: c.type_vocab_size,
      layerNormEps: c.layer_norm_eps,
      hiddenDropout: c.hidden_dropout_prob,
      attentionDropout: c.attention_probs_dropout_prob,
      classifierDropout: c.classifier_dropout ?? c.hidden_dropout_prob,
      hiddenAct: 'gelu',
      padTokenId: c.pad_token_id,
      labels: labelsFrom(c.id2label),
      raw,
    };
  }
  if (modelType === 'distilbert') {
    const parsed = distilbertSchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(`${source}: ${issuesText(parsed.error)}`);
    const c = parsed.data;
    if (c.activation !== 'gelu') throw new ConfigError(`${source}: activation "${c.activation}" is not supported (only "gelu")`);
    if (c.sinusoidal_pos_embds) throw new ConfigError(`${source}: sinusoidal_pos_embds=true is not supported`);
    if (c.dim % c.n_heads !== 0) throw new ConfigError(`${source}: dim ${c.dim} is not a multiple of n_heads ${c.n_heads}`);
    return {
      modelType: 'distilbert',
      vocabSize: c.vocab_size,
      hiddenSize: c.dim,
      numLayers: c.n_layers,
      numHeads: c.n_heads,
      intermediateSize: c.hidden_dim,
      maxPositions: c.max_position_embeddings,
      typeVocabSize: 0,
      // DistilBERT hard-codes eps 1e-12 in its LayerNorms.
      layerNormEps: 1e-12,
      hiddenDropout: c.dropout,
      attentionDropout: c.attention_dropout,
      classifierDropout: c.seq_classif_dropout,
      hiddenAct: 'gelu',
      padTokenId: c.pad_token_id,
      labels: labelsFrom(c.id2label),
      raw,
    };
  }
  throw new ConfigError(
    modelType === undefined
      ? `${source}: model_type is missing, and the fields name neither BERT (hidden_size, num_hidden_layers, num_attention_heads, intermediate_size) nor DistilBERT (dim, n_layers, n_heads, hidden_dim)`
      : `${source}: model_type ${JSON.stringify(modelType)} is not supported (expected "bert" or "distilbert")`,
  );
}

/** A BERT config in Hugging Face form, for models this project creates (pretraining, tests). */
export function bertConfig(options: {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions?: number;
  typeVocabSize?: number;
  hiddenDropout?: number;
  attentionDropout?: number;
  labels?: string[];
}): ModelConfig {
  const raw: Record<string, unknown> = {
    model_type: 'bert',
    architectures: ['BertForMaskedLM'],
    vocab_size: options.vocabSize,
    hidden_size: options.hiddenSize,
    num_hidden_layers: options.numLayers,
    num_attention_heads: options.numHeads,
    intermediate_size: options.intermediateSize,
    hidden_act: 'gelu',
    max_position_embeddings: options.maxPositions ?? 512,
    type_vocab_size: options.typeVocabSize ?? 2,
    layer_norm_eps: 1e-12,
    hidden_dropout_prob: options.hiddenDropout ?? 0.1,
    attention_probs_dropout_prob: options.attentionDropout ?? 0.1,
    pad_token_id: 0,
  };
  if (options.labels) raw.id2label = Object.fromEntries(options.labels.map((l, i) => [String(i), l]));
  return parseConfig(raw, 'generated config');
}

/** config.json content for a config, with labels written as id2label/label2id. */
export function configToJson(config: ModelConfig, labels = config.labels): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config.raw };
  if (labels) {
    out.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
    out.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
    // A num_labels carried over from the source config would contradict the new labels.
    if (out.num_labels !== undefined) out.num_labels = labels.length;
  }
  return out;
}
