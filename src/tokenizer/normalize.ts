import { BertNormalizer, BertPreTokenizer } from '@huggingface/tokenizers';

/**
 * BERT text normalisation and pre-tokenisation, shared by the tokenizer and the vocabulary trainer
 * so that a vocabulary is trained on exactly the words the tokenizer will later see.
 *
 * The work is done by @huggingface/tokenizers' BertNormalizer and BertPreTokenizer. Three spots where
 * that JS port differs from the Rust `tokenizers` crate (what BertTokenizerFast runs) are patched by
 * `alignWithRust` before the port sees the text:
 * - CJK ideographs outside the BMP (extensions B-F, compatibility supplement) are surrogate pairs in
 *   JS; the port tests UTF-16 code units, so it never isolates them. Rust does.
 * - Rust's clean_text drops every "Other" character, unassigned code points (Cn) included; the port
 *   drops Cc/Cf/Co/Cs only.
 * - Rust lower-cases one char at a time, so 'Σ' always becomes 'σ'; String#toLowerCase applies the
 *   Final_Sigma rule and may produce 'ς' (a different vocabulary entry).
 */
export interface BertNormalizerOptions {
  cleanText?: boolean;
  handleChineseChars?: boolean;
  /** null (the default) means: strip accents exactly when lower-casing, as BERT does. */
  stripAccents?: boolean | null;
  lowercase?: boolean;
}

const ASTRAL_CJK = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;
const UNASSIGNED = /\p{Cn}/gu;
// One cheap test decides whether any patch applies; almost all text skips the rest.
const NEEDS_PATCH = /[\u{20000}-\u{2FA1F}\p{Cn}\u03A3]/u;

export function alignWithRust(text: string, options: BertNormalizerOptions): string {
  if (!NEEDS_PATCH.test(text)) return text;
  if (options.cleanText ?? true) text = text.replace(UNASSIGNED, '');
  if (options.handleChineseChars ?? true) text = text.replace(ASTRAL_CJK, ' $& ');
  if (options.lowercase ?? true) text = text.replace(/\u03A3/g, '\u03C3');
  return text;
}

/** The config object of a BertNormalizer in tokenizer.json, from our options (HF defaults). */
export function bertNormalizerConfig(options: BertNormalizerOptions = {}) {
  return {
    type: 'BertNormalizer' as const,
    clean_text: options.cleanText ?? true,
    handle_chinese_chars: options.handleChineseChars ?? true,
    strip_accents: options.stripAccents ?? null,
    lowercase: options.lowercase ?? true,
  };
}

/**
 * A function from raw text to BERT words (whitespace split, punctuation isolated, CJK chars
 * isolated, optionally lower-cased and accent-stripped): the units WordPiece works on.
 */
export function createBertWordSplitter(options: BertNormalizerOptions = {}): (text: string) => string[] {
  // The port's types declare strip_accents as boolean; null is what HF writes and what the port
  // checks for (`!== false`), so the cast only bridges the declaration.
  const normalizer = new BertNormalizer(bertNormalizerConfig(options) as never);
  const preTokenizer = new BertPreTokenizer();
  return (text) => preTokenizer.pre_tokenize_text(normalizer.normalize(alignWithRust(text, options)));
}
