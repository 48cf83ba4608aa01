import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors';
import {
  buildBertTokenizerJson,
  DEFAULT_SPECIAL_TOKENS,
  parseVocabTxt,
  type SpecialTokenNames,
  type TokenizerJson,
} from './bert-json';
import { alignWithRust, type BertNormalizerOptions } from './normalize';
import { longestFirstLengths } from './truncation';

export { buildBertTokenizerJson, parseVocabTxt, BERT_SPECIAL_TOKENS } from './bert-json';
export type { BuildBertTokenizerOptions, SpecialTokenNames, TokenizerJson } from './bert-json';

/** BERT's position limit; used when a checkpoint does not say (or says "unlimited", 1e30). */
export const DEFAULT_MODEL_MAX_LENGTH = 512;

export interface Encoding {
  tokens: string[];
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
}

export interface EncodeOptions {
  /** Total length including [CLS]/[SEP]; defaults to the tokenizer's modelMaxLength. */
  maxLength?: number;
  /** Cut to maxLength ('longest_first' for pairs). Default true, as a model cannot take more. */
  truncation?: boolean;
}

export interface BatchEncodeOptions extends EncodeOptions {
  /** 'longest': pad to the longest row of this batch; 'max_length': pad every row to maxLength. */
  padding?: 'longest' | 'max_length';
}

export interface BatchEncoding {
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds: number[][];
}

export interface TokenizerSettings {
  /** Whether the normaliser lower-cases (tokenizer_config.json's do_lower_case). */
  lowercase: boolean;
  stripAccents: boolean | null;
  handleChineseChars: boolean;
  modelMaxLength: number;
  specialTokens: SpecialTokenNames;
}

type PostProcessed = { tokens: string[]; token_type_ids?: number[] };

/**
 * A BERT WordPiece tokenizer that gives what Hugging Face's BertTokenizerFast gives: the
 * normalisation, pre-tokenisation and WordPiece of @huggingface/tokenizers (plus the small
 * alignments in ./normalize), and around it what that port leaves out: pair truncation, padding,
 * token type ids and batches.
 */
export class BertTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number;
  readonly unkId: number;
  readonly settings: TokenizerSettings;
  private readonly hf: Tokenizer;
  private readonly json: TokenizerJson;
  private readonly idToTokenTable: string[];
  private readonly alignOptions: BertNormalizerOptions;
  private readonly specialsSingle: number;
  private readonly specialsPair: number;

  constructor(json: TokenizerJson, settings: TokenizerSettings) {
    this.json = json;
    this.settings = settings;
    this.hf = new Tokenizer(json, { do_lower_case: settings.lowercase, model_max_length: settings.modelMaxLength });
    const vocab = this.hf.get_vocab(true);
    this.idToTokenTable = [];
    for (const [token, id] of vocab) this.idToTokenTable[id] = token;
    this.vocabSize = this.idToTokenTable.length;
    const required = (role: keyof SpecialTokenNames): number => {
      const token = settings.specialTokens[role];
      const id = this.hf.token_to_id(token);
      if (id === undefined) throw new UserError(`the ${role} token ${token} is not in the vocabulary`);
      return id;
    };
    this.padId = required('pad');
    this.unkId = required('unk');
    this.clsId = required('cls');
    this.sepId = required('sep');
    this.maskId = required('mask');
    const normalizer = json.normalizer;
    this.alignOptions =
      normalizer?.type === 'BertNormalizer'
        ? {
            cleanText: normalizer.clean_text !== false,
            handleChineseChars: normalizer.handle_chinese_chars !== false,
            lowercase: normalizer.lowercase !== false,
          }
        : { cleanText: false, handleChineseChars: false, lowercase: false };
    memoizeWordPiece(this.hf);
    this.specialsSingle = this.postProcess([], null).tokens.length;
    this.specialsPair = this.postProcess([], []).tokens.length;
  }

  /** A tokenizer for this vocabulary with the standard BERT tokenizer.json around it. */
  static fromVocab(
    vocab: readonly string[],
    options: Partial<Omit<TokenizerSettings, 'specialTokens'>> & { specialTokens?: Partial<SpecialTokenNames> } = {},
  ): BertTokenizer {
    const settings: TokenizerSettings = {
      lowercase: options.lowercase ?? true,
      stripAccents: options.stripAccents ?? null,
      handleChineseChars: options.handleChineseChars ?? true,
      modelMaxLength: options.modelMaxLength ?? DEFAULT_MODEL_MAX_LENGTH,
      specialTokens: { ...DEFAULT_SPECIAL_TOKENS, ...options.specialTokens },
    };
    return new BertTokenizer(buildBertTokenizerJson(vocab, { ...settings }), settings);
  }

  /** WordPiece tokens of a text, without special tokens ("unaffable" -> una ##ffa ##ble). */
  tokenize(text: string): string[] {
    return this.hf.tokenize(alignWithRust(text, this.alignOptions));
  }

  encode(text: string, pair?: string | null, options: EncodeOptions = {}): Encoding {
    let a = this.tokenize(text);
    let b = pair === undefined || pair === null ? null : this.tokenize(pair);
    if (options.truncation ?? true) {
      const maxLength = options.maxLength ?? this.settings.modelMaxLength;
      const budget = maxLength - (b === null ? this.specialsSingle : this.specialsPair);
      if (budget < 0) {
        throw new UserError(`max length ${maxLength} leaves no room for the ${b === null ? this.specialsSingle : this.specialsPair} special tokens`);
      }
      if (b === null) {
        if (a.length > budget) a = a.slice(0, budget);
      } else {
        const [keepA, keepB] = longestFirstLengths(a.length, b.length, budget);
        a = a.slice(0, keepA);
        b = b.slice(0, keepB);
      }
    }
    const processed = this.postProcess(a, b);
    const tokens = processed.tokens;
    const inputIds = tokens.map((t) => this.hf.token_to_id(t) ?? this.unkId);
    return {
      tokens,
      inputIds,
      attentionMask: new Array<number>(tokens.length).fill(1),
      tokenTypeIds: processed.token_type_ids ?? new Array<number>(tokens.length).fill(0),
    };
  }

  /**
   * Encode many texts (or pairs) into rectangular arrays, right-padded with [PAD] (attention 0,
   * token type 0), as a model batch needs.
   */
  encodeBatch(texts: readonly string[], pairs?: readonly string[] | null, options: BatchEncodeOptions = {}): BatchEncoding {
    if (pairs && pairs.length !== texts.length) {
      throw new UserError(`encodeBatch got ${texts.length} texts but ${pairs.length} pairs`);
    }
    const maxLength = options.maxLength ?? this.settings.modelMaxLength;
    const encodings = texts.map((text, i) => this.encode(text, pairs ? pairs[i] : null, { ...options, maxLength }));
    const width =
      options.padding === 'max_length'
        ? Math.max(maxLength, ...encodings.map((e) => e.inputIds.length))
        : Math.max(0, ...encodings.map((e) => e.inputIds.length));
    const pad = (row: number[], value: number): number[] => {
      const out = row.slice();
      while (out.length < width) out.push(value);
      return out;
    };
    return {
      inputIds: encodings.map((e) => pad(e.inputIds, this.padId)),
      attentionMask: encodings.map((e) => pad(e.attentionMask, 0)),
      tokenTypeIds: encodings.map((e) => pad(e.tokenTypeIds, 0)),
    };
  }

  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return '';
    const kept = options.skipSpecial ? ids.filter((id) => !this.isSpecialId(id)) : ids.slice();
    if (kept.length === 0) return '';
    return this.hf.decode(kept, { skip_special_tokens: false });
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenTable[id];
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** The vocabulary in id order, as vocab.txt lists it. */
  vocabulary(): string[] {
    return Array.from(this.idToTokenTable, (t, i) => t ?? `[unused_id_${i}]`);
  }

  /** The tokenizer.json this tokenizer runs (a copy). */
  toJSON(): TokenizerJson {
    return structuredClone(this.json);
  }

  /**
   * Write the Hugging Face tokenizer files (vocab.txt, tokenizer.json, tokenizer_config.json,
   * special_tokens_map.json) so that transformers or loadTokenizer reads back this tokenizer.
   */
  async saveTo(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const s = this.settings.specialTokens;
    const specialMap = { unk_token: s.unk, sep_token: s.sep, pad_token: s.pad, cls_token: s.cls, mask_token: s.mask };
    const config = {
      tokenizer_class: 'BertTokenizer',
      do_lower_case: this.settings.lowercase,
      strip_accents: this.settings.stripAccents,
      tokenize_chinese_chars: this.settings.handleChineseChars,
      model_max_length: this.settings.modelMaxLength,
      clean_up_tokenization_spaces: true,
      ...specialMap,
    };
    await writeAtomic(join(dir, 'vocab.txt'), this.vocabulary().join('\n') + '\n');
    await writeAtomic(join(dir, 'tokenizer.json'), JSON.stringify(this.json));
    await writeAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
    await writeAtomic(join(dir, 'special_tokens_map.json'), JSON.stringify(specialMap, null, 2) + '\n');
  }

  private isSpecialId(id: number): boolean {
    return id === this.padId || id === this.unkId || id === this.clsId || id === this.sepId || id === this.maskId ||
      this.json.added_tokens.some((t) => t.special && t.id === id);
  }

  private postProcess(a: string[], b: string[] | null): PostProcessed {
    const post = this.hf.post_processor;
    if (post === null) return { tokens: b === null ? a : [...a, ...b] };
    return post(a, b, true) as PostProcessed;
  }
}

/** Words remembered by one tokenizer; beyond this the memo starts afresh (bounded memory). */
const WORD_MEMO_LIMIT = 200_000;

/**
 * The port's WordPiece rebuilds every candidate substring of every word, which is most of the
 * tokenizing time; natural text repeats words so much that remembering each word's pieces makes
 * that step nearly free. The port calls `this.encode(words)` on its model, so an own `encode`
 * property on that instance takes over.
 */
function memoizeWordPiece(hf: Tokenizer): void {
  const model = hf.model as unknown as { encode(words: string[]): string[] } | null;
  if (!model) return;
  const encodeWords = model.encode.bind(model);
  let memo = new Map<string, string[]>();
  model.encode = (words: string[]): string[] => {
    const out: string[] = [];
    for (const word of words) {
      let pieces = memo.get(word);
      if (pieces === undefined) {
        pieces = encodeWords([word]);
        if (memo.size >= WORD_MEMO_LIMIT) memo = new Map();
        memo.set(word, pieces);
      }
      for (const piece of pieces) out.push(piece);
    }
    return out;
  };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, 'utf8');
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new UserError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/** tokenizer_config.json names special tokens as strings or as {content: ...} objects. */
function tokenName(value: unknown, fallback: string): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return fallback;
}

function settingsFrom(config: Record<string, unknown>, path: string): TokenizerSettings {
  const flag = (key: string, fallback: boolean): boolean => {
    const value = config[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') throw new UserError(`${path}: ${key} must be true or false, got ${JSON.stringify(value)}`);
    return value;
  };
  const strip = config.strip_accents;
  if (strip !== undefined && strip !== null && typeof strip !== 'boolean') {
    throw new UserError(`${path}: strip_accents must be true, false or null, got ${JSON.stringify(strip)}`);
  }
  const maxLen = config.model_max_length;
  return {
    lowercase: flag('do_lower_case', true),
    stripAccents: (strip as boolean | null | undefined) ?? null,
    handleChineseChars: flag('tokenize_chinese_chars', true),
    // transformers writes 1e30 for "no limit"; BERT's positions stop at 512 anyway.
    modelMaxLength:
      typeof maxLen === 'number' && Number.isInteger(maxLen) && maxLen > 0 && maxLen <= 1_000_000 ? maxLen : DEFAULT_MODEL_MAX_LENGTH,
    specialTokens: {
      pad: tokenName(config.pad_token, DEFAULT_SPECIAL_TOKENS.pad),
      unk: tokenName(config.unk_token, DEFAULT_SPECIAL_TOKENS.unk),
      cls: tokenName(config.cls_token, DEFAULT_SPECIAL_TOKENS.cls),
      sep: tokenName(config.sep_token, DEFAULT_SPECIAL_TOKENS.sep),
      mask: tokenName(config.mask_token, DEFAULT_SPECIAL_TOKENS.mask),
    },
  };
}

/**
 * Load the tokenizer of a Hugging Face checkpoint directory: tokenizer.json when present, else
 * vocab.txt with the flags of tokenizer_config.json (do_lower_case defaults to true: uncased).
 */
export async function loadTokenizer(dir: string): Promise<BertTokenizer> {
  const jsonPath = join(dir, 'tokenizer.json');
  const vocabPath = join(dir, 'vocab.txt');
  const configPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(configPath) ? await readJson(configPath) : {};
  const settings = settingsFrom(config, configPath);
  if (existsSync(jsonPath)) {
    const json = (await readJson(jsonPath)) as unknown as TokenizerJson;
    const model = json.model as TokenizerJson['model'] | undefined;
    if (!model || model.type !== 'WordPiece' || typeof model.vocab !== 'object') {
      throw new UserError(`${jsonPath}: model.type must be WordPiece (a BERT tokenizer), got ${JSON.stringify(model?.type)}`);
    }
    json.added_tokens ??= [];
    json.normalizer ??= null;
    for (const key of ['pre_tokenizer', 'post_processor', 'decoder']) json[key] ??= null;
    if (!('do_lower_case' in config) && json.normalizer?.type === 'BertNormalizer') {
      settings.lowercase = json.normalizer.lowercase !== false;
    }
    // BertTokenizerFast lets tokenizer_config.json override the saved normaliser's flags.
    if (json.normalizer?.type === 'BertNormalizer') {
      json.normalizer = {
        ...json.normalizer,
        lowercase: settings.lowercase,
        strip_accents: 'strip_accents' in config ? settings.stripAccents : json.normalizer.strip_accents ?? null,
        handle_chinese_chars: 'tokenize_chinese_chars' in config ? settings.handleChineseChars : json.normalizer.handle_chinese_chars,
      };
    }
    if (!('unk_token' in config) && typeof model.unk_token === 'string') settings.specialTokens.unk = model.unk_token;
    return wrapUserError(jsonPath, () => new BertTokenizer(json, settings));
  }
  if (existsSync(vocabPath)) {
    const vocab = parseVocabTxt(await readFile(vocabPath, 'utf8'));
    if (vocab.length === 0) throw new UserError(`${vocabPath}: empty vocabulary`);
    return wrapUserError(vocabPath, () =>
      new BertTokenizer(buildBertTokenizerJson(vocab, { ...settings }), settings),
    );
  }
  throw new UserError(`${dir}: no tokenizer found (need tokenizer.json or vocab.txt)`);
}

function wrapUserError<T>(path: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof UserError) throw new UserError(`${path}: ${error.message}`, { cause: error });
    throw error;
  }
}
