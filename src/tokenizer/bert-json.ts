import { UserError } from '../errors';
import { bertNormalizerConfig, type BertNormalizerOptions } from './normalize';

/** The special tokens of every BERT vocabulary, in the order a freshly trained vocabulary puts them. */
export const BERT_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

export interface SpecialTokenNames {
  pad: string;
  unk: string;
  cls: string;
  sep: string;
  mask: string;
}

export const DEFAULT_SPECIAL_TOKENS: SpecialTokenNames = {
  pad: '[PAD]',
  unk: '[UNK]',
  cls: '[CLS]',
  sep: '[SEP]',
  mask: '[MASK]',
};

export interface BuildBertTokenizerOptions extends BertNormalizerOptions {
  specialTokens?: Partial<SpecialTokenNames>;
  maxInputCharsPerWord?: number;
}

/** tokenizer.json as far as we read or write it; everything else passes through untouched. */
export interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; unk_token?: string; [key: string]: unknown };
  normalizer: ({ type: string } & Record<string, unknown>) | null;
  added_tokens: Array<{ id: number; content: string; special?: boolean } & Record<string, unknown>>;
  [key: string]: unknown;
}

/**
 * A vocab.txt as Hugging Face reads it: one token per line, the line number is the id, only the
 * newline is stripped (a later duplicate wins, as in transformers' load_vocab).
 */
export function parseVocabTxt(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * The tokenizer.json that transformers' BertConverter writes for a BertTokenizerFast built from
 * this vocabulary (BertNormalizer, BertPreTokenizer, WordPiece "##", [CLS] $A [SEP] / [CLS] $A
 * [SEP] $B:1 [SEP]:1, WordPiece decoder, the special tokens as added tokens).
 */
export function buildBertTokenizerJson(vocab: readonly string[], options: BuildBertTokenizerOptions = {}): TokenizerJson {
  const specials = { ...DEFAULT_SPECIAL_TOKENS, ...options.specialTokens };
  const ids: Record<string, number> = {};
  vocab.forEach((token, id) => {
    ids[token] = id;
  });
  const idOf = (token: string): number => {
    const id = ids[token];
    if (id === undefined) throw new UserError(`special token ${token} is not in the vocabulary (${vocab.length} tokens)`);
    return id;
  };
  const addedOrder = [specials.pad, specials.unk, specials.cls, specials.sep, specials.mask];
  const added_tokens = [...new Set(addedOrder)]
    .map((content) => ({
      id: idOf(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }))
    .sort((a, b) => a.id - b.id);
  const cls = { id: specials.cls, ids: [idOf(specials.cls)], tokens: [specials.cls] };
  const sep = { id: specials.sep, ids: [idOf(specials.sep)], tokens: [specials.sep] };
  const special = (id: string, type_id: number) => ({ SpecialToken: { id, type_id } });
  const sequence = (id: 'A' | 'B', type_id: number) => ({ Sequence: { id, type_id } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: bertNormalizerConfig(options),
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(specials.cls, 0), sequence('A', 0), special(specials.sep, 0)],
      pair: [
        special(specials.cls, 0),
        sequence('A', 0),
        special(specials.sep, 0),
        sequence('B', 1),
        special(specials.sep, 1),
      ],
      special_tokens: { [specials.cls]: cls, [specials.sep]: sep },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: specials.unk,
      continuing_subword_prefix: '##',
      max_input_chars_per_word: options.maxInputCharsPerWord ?? 100,
      vocab: ids,
    },
  };
}
