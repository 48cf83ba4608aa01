import type { BertTokenizer } from './tokenizer';

/**
 * A text cut to what a model sees of it: the longest prefix whose WordPiece tokens are the first
 * `maxTokens` tokens of the whole text. Used to give a bag-of-words baseline the same words a BERT
 * fine-tuned with truncation reads (the first maxLength - 2 tokens, [CLS] and [SEP] aside).
 *
 * The tokenizer port gives no character offsets, so the cut is found with the tokenizer itself. BERT
 * splits a text at whitespace before anything else (tokenizer.json's BertNormalizer turns \t \n \r
 * into spaces, the pre-tokenizer splits at them and at Unicode Zs), so the tokens of a prefix that
 * ends at a whitespace-separated chunk are those of its chunks: chunks are counted until the budget
 * is reached, and inside the chunk where it runs out (a word cut into pieces, or "film," whose comma
 * is a token of its own) the longest prefix of that chunk with the wanted tokens is searched for.
 * The result is checked by tokenizing it again; `exact` says whether it gives exactly the kept tokens.
 */

export interface TextPrefix {
  text: string;
  /** Tokens of the returned text. */
  tokens: number;
  /** Whether anything was cut. */
  truncated: boolean;
  /** Whether the returned text tokenizes to exactly the first maxTokens tokens (or the whole text). */
  exact: boolean;
}

type Tokenize = Pick<BertTokenizer, 'tokenize'>;

const CHUNK = /[^\t\n\r\p{Zs}]+/gu;

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

export function textWithinTokens(tokenizer: Tokenize, text: string, maxTokens: number): TextPrefix {
  const all = tokenizer.tokenize(text);
  if (all.length <= maxTokens) return { text, tokens: all.length, truncated: false, exact: true };
  const kept = all.slice(0, maxTokens);
  let end = 0;
  let count = 0;
  for (const match of text.matchAll(CHUNK)) {
    const chunk = match[0];
    const start = match.index ?? 0;
    const pieces = tokenizer.tokenize(chunk);
    if (count + pieces.length <= maxTokens) {
      count += pieces.length;
      end = start + chunk.length;
      if (count === maxTokens) break;
      continue;
    }
    const wanted = pieces.slice(0, maxTokens - count);
    // Longest first: characters that add no token (a combining accent) stay with the word they follow.
    for (let j = chunk.length - 1; j > 0; j--) {
      if (sameTokens(tokenizer.tokenize(chunk.slice(0, j)), wanted)) {
        end = start + j;
        break;
      }
    }
    break;
  }
  const prefix = text.slice(0, end);
  const tokens = tokenizer.tokenize(prefix);
  return { text: prefix, tokens: tokens.length, truncated: true, exact: sameTokens(tokens, kept) };
}

/** Special tokens a single-text encoding adds ([CLS] and [SEP] for BERT): maxLength minus these is what survives. */
export function specialTokensPerText(tokenizer: Pick<BertTokenizer, 'encode'>): number {
  return tokenizer.encode('', null, { truncation: false }).inputIds.length;
}
