import type { Command } from 'commander';
import { saveCheckpoint } from '../io/checkpoint';
import { disposeParams } from '../model/names';
import { ExperimentSpecSchema, formatIssues, type ExperimentSpecInput } from '../experiment/spec';
import { appendResult } from '../experiment/store';
import { runExperimentDetailed } from '../experiment/run';
import { UserError } from '../errors';
import { int, num, printJson } from './options';
import { resolveModelDir, SHIPPED_MODEL_NAMES } from '../io/models';
import { checkOutputDir, checkWritableFile } from '../io/output-dir';
import { LEARNING_RATE_RULE, RECIPE_DEFAULTS as d } from '../train/recipe';
import { dataDirDefaultText } from '../data/local';
import { COMPONENTS, DEFAULT_MODE, MODES } from '../corruption/spec';

/** Recipe flags shared by finetune and the spec they build; absent flags keep the spec defaults. */
function recipeFrom(o: Record<string, string | undefined>): ExperimentSpecInput['recipe'] {
  const recipe: NonNullable<ExperimentSpecInput['recipe']> = {};
  if (o.lr !== undefined) recipe.learningRate = num(o.lr, '--lr');
  if (o.epochs !== undefined) recipe.epochs = int(o.epochs, '--epochs', 1);
  if (o.batchSize !== undefined) recipe.batchSize = int(o.batchSize, '--batch-size', 1);
  if (o.gradientAccumulation !== undefined) recipe.gradientAccumulation = int(o.gradientAccumulation, '--gradient-accumulation', 1);
  if (o.warmupRatio !== undefined) recipe.warmupRatio = num(o.warmupRatio, '--warmup-ratio');
  if (o.weightDecay !== undefined) recipe.weightDecay = num(o.weightDecay, '--weight-decay');
  if (o.maxGradNorm !== undefined) recipe.maxGradNorm = num(o.maxGradNorm, '--max-grad-norm');
  return recipe;
}

export function register(program: Command): void {
  program
    .command('finetune')
    .description('fine-tune a (corrupted) model on a classification dataset and evaluate every epoch')
    .option('--model <dir>', `checkpoint directory, hub repo id, or a shipped model (${SHIPPED_MODEL_NAMES})`, 'default')
    .option('--dataset <name>', 'a registry dataset (sst2, imdb, ag_news, emotion, dbpedia_14, twitter_financial_news_topic)')
    .option('--train <file>', 'your own training JSONL ({"text","label"} per line)')
    .option('--eval <file>', 'your own evaluation JSONL')
    .option('--num-labels <n>', 'with --train/--eval: the label count (default: inferred from the files)')
    .option('--eval-split <split>', 'registry split to evaluate on (default: the dataset\'s evaluation split)')
    .option('--train-size <n>', 'stratified subsample of the training split')
    .option('--eval-size <n>', 'stratified subsample of the evaluation split')
    .option('--max-length <n>', 'truncate to this many tokens', '128')
    .option('--corrupt <layers>', 'corrupt these layers first: bottom:K, top:K, 0,3,5, or a fraction')
    .option('--components <list>', `with --corrupt, comma-separated: ${COMPONENTS.join(', ')} (default all)`)
    .option('--mode <mode>', `with --corrupt: ${MODES.join(' | ')} (default ${DEFAULT_MODE})`)
    .option('--ratio <x>', 'with --mode noise: noise std relative to each tensor\'s std')
    .option('--fraction <x>', 'with --mode partial: share of entries re-initialised')
    .option('--from-scratch', 'same architecture with random weights (what pretraining is worth)')
    .option('--lr <x>', `peak learning rate (default: ${LEARNING_RATE_RULE})`)
    .option('--epochs <n>', `epochs (default ${d.epochs})`)
    .option('--batch-size <n>', `examples per optimizer step (default ${d.batchSize})`)
    .option('--gradient-accumulation <n>', `micro-batches per step (default ${d.gradientAccumulation})`)
    .option('--warmup-ratio <x>', `share of steps with linear warmup (default ${d.warmupRatio})`)
    .option('--weight-decay <x>', `AdamW weight decay (default ${d.weightDecay})`)
    .option('--max-grad-norm <x>', `global gradient-norm clipping (default ${d.maxGradNorm})`)
    .option('--seed <n>', 'seed for head init, corruption, sampling, shuffling and dropout', '0')
    .option('--data-dir <dir>', `datasets directory (default: ${dataDirDefaultText()})`)
    .option('--out <dir>', 'save the fine-tuned checkpoint here (a new or empty directory)')
    .option('--force', 'replace a non-empty --out (never the --model directory or one containing it)')
    .option('--results <file>', 'also append the result row to this result store')
    .action(async (o) => {
      const input: ExperimentSpecInput = {
        model: o.model,
        dataset: {
          name: o.dataset,
          train: o.train,
          eval: o.eval,
          evalSplit: o.evalSplit,
          trainSize: o.trainSize === undefined ? undefined : int(o.trainSize, '--train-size', 1),
          evalSize: o.evalSize === undefined ? undefined : int(o.evalSize, '--eval-size', 1),
          maxLength: int(o.maxLength, '--max-length', 8),
          numLabels: o.numLabels === undefined ? undefined : int(o.numLabels, '--num-labels', 2),
        },
        corruption: o.corrupt
          ? {
              layers: o.corrupt,
              components: o.components ? String(o.components).split(/[,+]/).map((s) => s.trim()) : undefined,
              mode: o.mode,
              ratio: o.ratio === undefined ? undefined : num(o.ratio, '--ratio'),
              fraction: o.fraction === undefined ? undefined : num(o.fraction, '--fraction'),
            }
          : null,
        recipe: recipeFrom(o),
        seed: int(o.seed, '--seed'),
        fromScratch: Boolean(o.fromScratch),
      } as ExperimentSpecInput;
      if (!o.corrupt && (o.components || o.mode || o.ratio || o.fraction)) throw new UserError('--components, --mode, --ratio and --fraction need --corrupt');
      const parsed = ExperimentSpecSchema.safeParse(input);
      if (!parsed.success) throw new UserError(`invalid options: ${formatIssues(parsed.error)}`);
      // Where the results go is checked before the run, not after it.
      if (o.out) {
        const modelDir = await resolveModelDir(parsed.data.model);
        await checkOutputDir(o.out, { flag: '--out', inputs: [{ flag: '--model', dir: modelDir }], force: Boolean(o.force) });
      }
      if (o.results) await checkWritableFile(o.results, '--results');
      const { row, model, finetuned } = await runExperimentDetailed(parsed.data, { dataDir: o.dataDir, keepParams: Boolean(o.out) });
      disposeParams(model.params);
      if (o.out && finetuned?.params) {
        await saveCheckpoint(o.out, { config: model.config, params: finetuned.params, head: 'classifier', labels: row.labelNames, tokenizerFiles: model.dir });
        disposeParams(finetuned.params);
      }
      if (o.results) appendResult(o.results, row);
      for (const e of row.epochs) {
        process.stderr.write(`epoch ${e.epoch}: train loss ${e.trainLoss?.toFixed(4)}, accuracy ${((e.eval.accuracy ?? NaN) * 100).toFixed(2)} %, macro-F1 ${((e.eval.macroF1 ?? NaN) * 100).toFixed(2)} %\n`);
      }
      printJson(o.out ? { ...row, out: o.out } : row);
    });
}
