import { Command, InvalidArgumentError } from 'commander';
import { resolveModelDir, SHIPPED_MODEL_NAMES } from '../io/models';
import { loadTokenizer } from '../tokenizer/tokenizer';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * `healing tokenize --model DIR [--max-length N] [--pair TEXT] TEXT...`: one JSON line per text with
 * the model inputs a checkpoint's tokenizer makes (Hugging Face field names), to check by eye or
 * compare with transformers. DIR needs only the tokenizer files.
 */
export function register(program: Command): void {
  program
    .command('tokenize')
    .description("tokenize texts with a checkpoint's tokenizer; prints one JSON object per text")
    .option('--model <dir>', `directory with tokenizer.json or vocab.txt (+ tokenizer_config.json), a hub repo id, or a shipped model (${SHIPPED_MODEL_NAMES})`, 'default')
    .option('--max-length <n>', 'truncate to this many tokens, specials included (longest_first for pairs)', positiveInt)
    .option('--pair <text>', 'second segment (token type 1) encoded with every text')
    .argument('<text...>', 'texts to tokenize')
    .action(async (texts: string[], options: { model: string; maxLength?: number; pair?: string }) => {
      const tokenizer = await loadTokenizer(await resolveModelDir(options.model));
      for (const text of texts) {
        const e = tokenizer.encode(text, options.pair ?? null, {
          truncation: options.maxLength !== undefined,
          maxLength: options.maxLength,
        });
        const line = { tokens: e.tokens, input_ids: e.inputIds, attention_mask: e.attentionMask, token_type_ids: e.tokenTypeIds };
        process.stdout.write(JSON.stringify(line) + '\n');
      }
    });
}
