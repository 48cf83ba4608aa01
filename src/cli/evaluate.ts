import type { Command } from 'commander';
import { dataDirDefaultText } from '../data/local';
import { maxBatchTokens } from '../backend/memory';
import { initEngine } from '../backend/engine';
import { UserError } from '../errors';
import { loadJsonl, loadSplit } from '../data/dataset';
import { datasetEntry } from '../data/registry';
import { stratifiedSample } from '../data/sampling';
import { loadCheckpoint, checkTokenizerFits } from '../io/checkpoint';
import { resolveModelDir } from '../io/models';
import { disposeParams } from '../model/names';
import { loadTokenizer } from '../tokenizer/tokenizer';
import { encodeSplit } from '../experiment/run';
import { evaluate } from '../train/finetune';
import { int, printJson } from './options';

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('accuracy, macro-F1, per-class F1 and confusion matrix of a fine-tuned classifier')
    .requiredOption('--model <dir>', 'a checkpoint with a classifier head (e.g. from healing finetune --out)')
    .option('--dataset <name>', 'a registry dataset')
    .option('--split <split>', 'split of --dataset (default: its evaluation split)')
    .option('--data <file>', 'your own JSONL ({"text","label"} per line)')
    .option('--eval-size <n>', 'stratified subsample')
    .option('--max-length <n>', 'truncate to this many tokens', '128')
    .option('--batch-size <n>', 'evaluation batch size', '64')
    .option('--data-dir <dir>', `datasets directory (default: ${dataDirDefaultText()})`)
    .action(async (o) => {
      if (Boolean(o.dataset) === Boolean(o.data)) throw new UserError('give exactly one of --dataset NAME or --data FILE');
      const engine = await initEngine();
      const dir = await resolveModelDir(o.model);
      const checkpoint = await loadCheckpoint(dir);
      if (checkpoint.head !== 'classifier' || !checkpoint.numLabels) {
        throw new UserError(`${dir} has no classifier head; evaluate a fine-tuned checkpoint (healing finetune --out DIR)`);
      }
      const numLabels = checkpoint.numLabels;
      const split = o.dataset ? o.split ?? datasetEntry(o.dataset).evalSplit : undefined;
      let data = o.dataset ? await loadSplit(o.dataset, split!, { dataDir: o.dataDir }) : await loadJsonl(o.data, { numLabels });
      if (data.labelNames.length !== numLabels) {
        throw new UserError(`${o.dataset ?? o.data} has ${data.labelNames.length} labels but the classifier in ${dir} has ${numLabels}`);
      }
      if (o.evalSize) data = stratifiedSample(data, int(o.evalSize, '--eval-size', 1), 0);
      const tokenizer = await loadTokenizer(dir);
      checkTokenizerFits(tokenizer, checkpoint.config, dir);
      const metrics = evaluate(checkpoint.config, checkpoint.params, encodeSplit(tokenizer, data, int(o.maxLength, '--max-length', 8)), {
        batchSize: int(o.batchSize, '--batch-size', 1),
        padId: tokenizer.padId,
        numLabels,
        maxBatchTokens: maxBatchTokens(engine),
      });
      disposeParams(checkpoint.params);
      process.stderr.write(`accuracy ${(metrics.accuracy * 100).toFixed(2)} %, macro-F1 ${(metrics.macroF1 * 100).toFixed(2)} % on ${data.labels.length} examples\n`);
      printJson({ model: dir, data: o.dataset ? `${o.dataset}/${split}` : o.data, examples: data.labels.length, labelNames: data.labelNames, backend: engine.backend, ...metrics });
    });
}
