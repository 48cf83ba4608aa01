import type { Command } from 'commander';
import { UserError } from '../errors';
import { datasetEntry } from '../data/registry';
import { checkWritableFile } from '../io/output-dir';
import { PAPER_DATASETS, PAPER_EVAL_SIZE, PAPER_SEEDS, PAPER_TRAIN_SIZE } from '../experiment/presets';
import { DatasetSpecSchema, ExperimentSpecSchema, type ExperimentSpec } from '../experiment/spec';
import { bagOfWordsBaselines, DEFAULT_BAG_OF_WORDS_RESULTS, summariseBagOfWords, type BagOfWordsSummary } from '../analysis/bag-of-words';
import { pct } from '../analysis/stats';
import { int, printJson } from './options';
import { dataDirDefaultText } from '../data/local';

export interface BaselineOptions {
  dataset: string;
  trainSize: string;
  evalSize: string;
  seeds: string;
  maxLength: string;
  fullText?: boolean;
  model: string;
  results: string;
  dataDir?: string;
}

/** "all" for the paper's six, else a comma list of registry names (an unknown one lists the known). */
export function parseDatasetList(value: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UserError(`--dataset ${JSON.stringify(value)}: expected a dataset name, a comma list, or "all"`);
  if (items.length === 1 && items[0] === 'all') return [...PAPER_DATASETS];
  return [...new Set(items.map((name) => datasetEntry(name).name))];
}

function parseSeeds(value: string): number[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UserError(`--seeds ${JSON.stringify(value)}: expected a comma list of integers, e.g. 0,1,2`);
  return [...new Set(items.map((s) => int(s, '--seeds')))];
}

const DEFAULT_MAX_LENGTH = DatasetSpecSchema.parse({ name: 'sst2' }).maxLength;

export function register(program: Command): void {
  program
    .command('baseline')
    .description(
      'a bag-of-words baseline (TF-IDF over word 1-2-grams + logistic regression, C by cross-validation on the ' +
        "training examples; scikit-learn via scripts/bag_of_words.py) on exactly the study's training and evaluation " +
        "examples for each dataset and seed, texts cut to the model's first max-length - 2 tokens unless --full-text; " +
        'appends one row per setting to --results and skips settings already recorded. Python: $HEALING_PYTHON, default /usr/bin/python3',
    )
    .requiredOption('--dataset <names>', `a dataset, a comma list, or "all" (${PAPER_DATASETS.join(', ')})`)
    .option('--train-size <n>', "training examples (the study's stratified sample)", String(PAPER_TRAIN_SIZE))
    .option('--eval-size <n>', 'evaluation examples (all of the split when it has fewer)', String(PAPER_EVAL_SIZE))
    .option('--seeds <list>', 'seeds: each picks its training sample and cross-validation folds', PAPER_SEEDS.join(','))
    .option('--max-length <n>', "the model's max length; texts keep its first n - 2 tokens", String(DEFAULT_MAX_LENGTH))
    .option('--full-text', 'no truncation: whole texts')
    .option('--model <model>', 'whose tokenizer cuts the texts', 'default')
    .option('--results <file>', 'JSONL the rows are appended to', DEFAULT_BAG_OF_WORDS_RESULTS)
    .option('--data-dir <dir>', `datasets directory (default: ${dataDirDefaultText()})`)
    .action(async (o: BaselineOptions) => printJson(await runBaselines(o)));
}

export interface BaselinesOutcome {
  results: string;
  ran: number;
  skipped: number;
  summary: BagOfWordsSummary[];
}

/** The command without its JSON line: fits what is not recorded yet, appends it, summarises the selection. */
export async function runBaselines(o: BaselineOptions): Promise<BaselinesOutcome> {
  const datasets = parseDatasetList(o.dataset);
  const seeds = parseSeeds(o.seeds);
  const trainSize = int(o.trainSize, '--train-size', 1);
  const evalSize = int(o.evalSize, '--eval-size', 1);
  const maxLength = int(o.maxLength, '--max-length', 3);
  // Before any work: a store that cannot be written would lose every fit.
  const results = await checkWritableFile(o.results, '--results');
  const specs: ExperimentSpec[] = datasets.flatMap((name) =>
    seeds.map((seed) => ExperimentSpecSchema.parse({ model: o.model, dataset: { name, trainSize, evalSize, maxLength }, seed })),
  );
  const { rows, ran, skipped } = await bagOfWordsBaselines(specs, { results, model: o.model, fullText: o.fullText, dataDir: o.dataDir });
  const summary = summariseBagOfWords(rows);
  for (const s of summary) {
    process.stderr.write(
      `${s.dataset} (${s.truncation}, ${s.seeds.length} seed${s.seeds.length === 1 ? '' : 's'}): accuracy ${pct(s.accuracy.mean)} ± ${pct(s.accuracy.sd)} %, ` +
        `macro-F1 ${pct(s.macroF1.mean)} %, majority class ${pct(s.majority)} %, C ${s.C.join(', ')}\n`,
    );
  }
  return { results: o.results, ran, skipped, summary };
}
