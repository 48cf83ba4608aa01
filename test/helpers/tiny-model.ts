import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bertConfig, type ModelConfig } from '../../src/model/config';
import { initParams } from '../../src/model/init';
import { disposeParams, type HeadKind } from '../../src/model/names';
import { saveCheckpoint } from '../../src/io/checkpoint';
import { BERT_SPECIAL_TOKENS, BertTokenizer } from '../../src/tokenizer/tokenizer';
import { createRng } from '../../src/random';

/**
 * A tiny BERT checkpoint directory (config.json, model.safetensors, tokenizer files) for tests that
 * need the whole path (load -> fine-tune -> save -> evaluate) without a download: a whole-word
 * vocabulary, so every test sentence tokenizes to known ids, and weights from initParams.
 */

/** Sentiment-bearing words: a label is decided by which list a sentence's cue word comes from. */
export const POSITIVE_WORDS = ['good', 'great', 'fine', 'nice', 'superb'];
export const NEGATIVE_WORDS = ['bad', 'awful', 'poor', 'dull', 'weak'];
export const FILLER_WORDS = ['the', 'a', 'movie', 'film', 'plot', 'acting', 'was', 'is', 'really', 'very', 'and', 'but', 'story', 'cast', 'music', 'ending'];

export const TINY_VOCAB: readonly string[] = [...BERT_SPECIAL_TOKENS, ...FILLER_WORDS, ...POSITIVE_WORDS, ...NEGATIVE_WORDS, '.', ','];

export interface TinyModelOptions {
  head?: HeadKind;
  hiddenSize?: number;
  numLayers?: number;
  numHeads?: number;
  intermediateSize?: number;
  /** Hidden and attention dropout (the classifier's follows the hidden one, as in BERT). */
  dropout?: number;
  seed?: number;
}

export interface TinyModel {
  dir: string;
  config: ModelConfig;
  tokenizer: BertTokenizer;
}

export function tinyConfig(options: TinyModelOptions = {}): ModelConfig {
  return bertConfig({
    vocabSize: TINY_VOCAB.length,
    hiddenSize: options.hiddenSize ?? 32,
    numLayers: options.numLayers ?? 2,
    numHeads: options.numHeads ?? 4,
    intermediateSize: options.intermediateSize ?? 64,
    maxPositions: 64,
    hiddenDropout: options.dropout,
    attentionDropout: options.dropout,
  });
}

/** Writes a tiny checkpoint into `dir` (MLM head by default, so fill-mask and fine-tuning both work). */
export async function makeTinyModel(dir: string, options: TinyModelOptions = {}): Promise<TinyModel> {
  const config = tinyConfig(options);
  const tokenizer = BertTokenizer.fromVocab(TINY_VOCAB, { modelMaxLength: config.maxPositions });
  const head = options.head ?? 'mlm';
  const params = initParams(config, head, 2, options.seed ?? 1);
  try {
    await saveCheckpoint(dir, { config, params, head });
  } finally {
    disposeParams(params);
  }
  await tokenizer.saveTo(dir);
  return { dir, config, tokenizer };
}

export interface Example {
  text: string;
  label: number;
}

/**
 * A separable sentiment task: filler words around one cue word whose list decides the label
 * (1 = positive). Balanced, shuffled by the seed.
 */
export function sentimentExamples(count: number, seed: number): Example[] {
  const rng = createRng(seed);
  const pick = (words: readonly string[]) => words[rng.int(words.length)];
  const out: Example[] = [];
  for (let i = 0; i < count; i++) {
    const label = i % 2;
    const words = Array.from({ length: 2 + rng.int(5) }, () => pick(FILLER_WORDS));
    words.splice(rng.int(words.length + 1), 0, pick(label === 1 ? POSITIVE_WORDS : NEGATIVE_WORDS));
    out.push({ text: words.join(' '), label });
  }
  return out;
}

export async function writeJsonl(file: string, examples: readonly Example[]): Promise<string> {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return file;
}
