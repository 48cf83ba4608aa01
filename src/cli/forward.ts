import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { initEngine } from '../backend/engine';
import { jsonErrorText, UserError } from '../errors';
import { loadCheckpoint } from '../io/checkpoint';
import { resolveModelDir, SHIPPED_MODEL_NAMES } from '../io/models';
import { forward } from '../model/heads';
import { disposeParams } from '../model/names';

const ids = z.array(z.array(z.number().int().nonnegative())).min(1);

/** The parity fixtures' input.json: equal-length rows (right padding) of ids and masks. */
export const ForwardInputSchema = z.object({
  input_ids: ids,
  attention_mask: ids,
  token_type_ids: ids.optional(),
});

export type ForwardInput = z.infer<typeof ForwardInputSchema>;

function checkRectangular(input: ForwardInput, file: string): void {
  const width = input.input_ids[0].length;
  // A row without a single attended token has no representation: its outputs would be made up.
  if (width === 0) throw new UserError(`${file}: input_ids rows are empty (zero tokens)`);
  input.attention_mask.forEach((row, i) => {
    if (!row.some((m) => m !== 0)) throw new UserError(`${file}: attention_mask[${i}] attends to no token (an empty input)`);
  });
  for (const key of ['input_ids', 'attention_mask', 'token_type_ids'] as const) {
    const rows = input[key];
    if (!rows) continue;
    if (rows.length !== input.input_ids.length) throw new UserError(`${file}: ${key} has ${rows.length} rows, input_ids has ${input.input_ids.length}`);
    rows.forEach((row, i) => {
      if (row.length !== width) throw new UserError(`${file}: ${key}[${i}] has ${row.length} entries, expected ${width}`);
    });
  }
}

/** Math.max(...rows.flat()) overflows the call stack on large inputs. */
function largest(rows: number[][]): number {
  let max = -Infinity;
  for (const row of rows) for (const x of row) if (x > max) max = x;
  return max;
}

export function register(program: Command): void {
  program
    .command('forward')
    .description('run a checkpoint on token ids and write hidden states, pooler output and logits (eval mode)')
    .option('--model <dir>', `checkpoint directory, hub repo id, or a shipped model (${SHIPPED_MODEL_NAMES})`, 'default')
    .requiredOption('--input <file>', 'JSON with input_ids, attention_mask[, token_type_ids]')
    .option('--output <file>', 'write the JSON here instead of stdout')
    .action(async (o) => {
      await initEngine();
      let inputText: string;
      try {
        inputText = await readFile(o.input, 'utf8');
      } catch (error) {
        throw new UserError(`${o.input}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
      let raw: unknown;
      try {
        raw = JSON.parse(inputText);
      } catch (error) {
        throw new UserError(`${o.input}: ${jsonErrorText(error, inputText)}`);
      }
      const parsed = ForwardInputSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new UserError(`${o.input}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
      }
      const input = parsed.data;
      checkRectangular(input, o.input);
      const checkpoint = await loadCheckpoint(await resolveModelDir(o.model));
      const { config } = checkpoint;
      const maxId = largest(input.input_ids);
      if (maxId >= config.vocabSize) throw new UserError(`${o.input}: token id ${maxId} is outside the vocabulary (size ${config.vocabSize})`);
      // Out-of-range type ids would surface as a bare GatherV2 error; other mask values silently skew attention.
      if (input.token_type_ids && config.typeVocabSize > 0) {
        const maxType = largest(input.token_type_ids);
        if (maxType >= config.typeVocabSize) {
          throw new UserError(`${o.input}: token_type_ids holds ${maxType}, outside type_vocab_size ${config.typeVocabSize}`);
        }
      }
      const badMask = input.attention_mask.flat().find((m) => m !== 0 && m !== 1);
      if (badMask !== undefined) throw new UserError(`${o.input}: attention_mask holds ${badMask}; expected 0 or 1`);
      if (input.input_ids[0].length > config.maxPositions) {
        throw new UserError(`${o.input}: sequence length ${input.input_ids[0].length} exceeds max_position_embeddings ${config.maxPositions}`);
      }
      const out = tf.tidy(() => {
        const result = forward(config, checkpoint.params, checkpoint.head, {
          inputIds: tf.tensor2d(input.input_ids, undefined, 'int32'),
          attentionMask: tf.tensor2d(input.attention_mask, undefined, 'int32'),
          tokenTypeIds: input.token_type_ids ? tf.tensor2d(input.token_type_ids, undefined, 'int32') : undefined,
        });
        return {
          hidden_states: result.hiddenStates.map((h) => h.arraySync()),
          last_hidden_state: result.lastHiddenState.arraySync(),
          pooler_output: result.poolerOutput?.arraySync(),
          logits: result.logits?.arraySync(),
        };
      });
      disposeParams(checkpoint.params);
      const text = JSON.stringify(out);
      if (o.output) {
        await writeFile(o.output, text + '\n');
        process.stdout.write(JSON.stringify({ output: o.output, layers: out.hidden_states.length - 1, logits: out.logits !== undefined }) + '\n');
      } else process.stdout.write(text + '\n');
    });
}
