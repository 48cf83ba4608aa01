import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { UserError } from '../errors';
import type { LabeledData, TrainEvalData } from '../data/dataset';
import { appendLine, readJsonLines, skippedLinesWarning, type JsonLines } from '../io/jsonl';
import { createProgress } from '../progress';
import { resolveModelDir } from '../io/models';
import { runPythonScript } from '../io/python';
import { loadTokenizer, type BertTokenizer } from '../tokenizer/tokenizer';
import { specialTokensPerText, textWithinTokens } from '../tokenizer/text-prefix';
import { loadExperimentData, sampleExperiment } from '../experiment/examples';
import { canonicalJson } from '../experiment/hash';
import { gitState } from '../experiment/provenance';
import { datasetLabel, formatIssues, type ExperimentSpec } from '../experiment/spec';
import { VERSION } from '../version';
import { mean, sampleStd } from './stats';

/**
 * What "learned" means, measured: a bag-of-words classifier (TF-IDF over word 1-2-grams, logistic
 * regression with C chosen by cross-validation on the training examples) fitted by scikit-learn
 * (scripts/bag_of_words.py) on exactly the examples a study run trains and is scored on
 * (src/experiment/examples.ts). By default each text is cut to what the BERT sees of it (the first
 * maxLength - 2 WordPiece tokens of the model's tokenizer); `fullText` keeps whole texts, which
 * differs for IMDB, whose reviews are longer than 128 tokens.
 */

export const BAG_OF_WORDS_SCRIPT = fileURLToPath(new URL('../../scripts/bag_of_words.py', import.meta.url));

/**
 * The script's method string. Part of every row's key, so a change of hyperparameters (which must
 * change the string in both places) reruns instead of being mixed with old rows.
 */
export const BAG_OF_WORDS_METHOD = 'tfidf(word 1-2-grams, sublinear tf)+logreg(lbfgs), C in 1e-2..1e4 by 5-fold stratified CV on train';

export const DEFAULT_BAG_OF_WORDS_RESULTS = 'data/results/bag-of-words.jsonl';

/** The bag-of-words store that goes with a result store: bag-of-words.jsonl beside it (what the report and notebooks read). */
export function defaultBagOfWordsFile(resultsFile: string): string {
  return join(dirname(resultsFile), basename(DEFAULT_BAG_OF_WORDS_RESULTS));
}

/** The fields of an experiment spec the baseline depends on: a study spec can be passed as it is. */
export type BaselineSpec = Pick<ExperimentSpec, 'model' | 'dataset' | 'seed'>;

const TruncationSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('tokens'),
    maxLength: z.number().int().positive(),
    /** maxLength minus the special tokens ([CLS], [SEP]). */
    maxTokens: z.number().int().nonnegative(),
    /** The --model whose tokenizer cut the texts, and a fingerprint of that tokenizer. */
    model: z.string().min(1),
    tokenizer: z.string().regex(/^[0-9a-f]{16}$/),
  }),
  z.strictObject({ kind: z.literal('none') }),
]);

export type Truncation = z.infer<typeof TruncationSchema>;

const ScriptOutputSchema = z.strictObject({
  accuracy: z.number().min(0).max(1),
  macro_f1: z.number().min(0).max(1),
  C: z.number().positive(),
  cv_accuracy: z.number().min(0).max(1),
  cv_folds: z.number().int().min(2),
  c_grid: z.array(z.number().positive()).min(1),
  n_train: z.number().int().positive(),
  n_eval: z.number().int().positive(),
  n_features: z.number().int().nonnegative(),
  convergence_warnings: z.number().int().nonnegative(),
  sklearn_version: z.string().min(1),
  python_version: z.string().min(1),
  method: z.string().min(1),
});

const fraction = z.number().min(0).max(1);

/** One baseline fit, one line of data/results/bag-of-words.jsonl. Loose: newer writers may add fields. */
export const BagOfWordsRowSchema = z.looseObject({
  key: z.string().regex(/^[0-9a-f]{16}$/),
  dataset: z.string().min(1),
  /** Requested subset sizes (null: the whole split), as in the experiment spec. */
  trainSize: z.number().int().positive().nullable(),
  evalSize: z.number().int().positive().nullable(),
  seed: z.number().int().nonnegative(),
  truncation: TruncationSchema,
  accuracy: fraction,
  macroF1: fraction,
  C: z.number().positive(),
  cvAccuracy: fraction,
  cvFolds: z.number().int().min(2),
  cGrid: z.array(z.number().positive()),
  /** Share of the evaluation examples in the training sample's most frequent class: the majority baseline. */
  majority: fraction,
  numLabels: z.number().int().min(2),
  trainExamples: z.number().int().positive(),
  evalExamples: z.number().int().positive(),
  features: z.number().int().nonnegative(),
  convergenceWarnings: z.number().int().nonnegative(),
  /** How many texts truncation shortened, and how many of those do not tokenize to exactly the kept tokens. */
  cut: z.strictObject({ train: z.number().int().nonnegative(), eval: z.number().int().nonnegative(), inexact: z.number().int().nonnegative() }),
  method: z.string().min(1),
  provenance: z.looseObject({
    date: z.string().min(1),
    seconds: z.number().nonnegative(),
    python: z.string().min(1),
    pythonVersion: z.string().min(1),
    sklearnVersion: z.string().min(1),
    packageVersion: z.string().min(1),
    gitCommit: z.string().min(1),
    gitDirty: z.boolean().optional(),
    host: z.string(),
  }),
});

export type BagOfWordsRow = z.output<typeof BagOfWordsRowSchema>;

/** A tokenizer that cuts texts, with what identifies it in a row. */
export interface TruncatingTokenizer {
  model: string;
  tokenizer: BertTokenizer;
  fingerprint: string;
}

/** The tokenizer of a --model (default: the study's), fingerprinted by what it runs, not by its files' bytes. */
export async function loadTruncatingTokenizer(model = 'default'): Promise<TruncatingTokenizer> {
  const tokenizer = await loadTokenizer(await resolveModelDir(model));
  const fingerprint = createHash('sha256')
    .update(canonicalJson({ json: tokenizer.toJSON(), settings: tokenizer.settings }))
    .digest('hex')
    .slice(0, 16);
  return { model, tokenizer, fingerprint };
}

export function truncationOf(spec: BaselineSpec, tokenizer: TruncatingTokenizer | undefined): Truncation {
  if (!tokenizer) return { kind: 'none' };
  const maxLength = spec.dataset.maxLength;
  return {
    kind: 'tokens',
    maxLength,
    maxTokens: Math.max(0, maxLength - specialTokensPerText(tokenizer.tokenizer)),
    model: tokenizer.model,
    tokenizer: tokenizer.fingerprint,
  };
}

/** What a row is: which examples, how they were cut, which method. A recorded key is not run again. */
export function baselineKey(spec: BaselineSpec, truncation: Truncation): string {
  const { name, train, eval: evalFile, evalSplit, trainSize, evalSize } = spec.dataset;
  const identity = { dataset: { name, train, eval: evalFile, evalSplit, trainSize, evalSize }, seed: spec.seed, truncation, method: BAG_OF_WORDS_METHOD };
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 16);
}

export interface BagOfWordsInput {
  train: { texts: string[]; labels: number[] };
  eval: { texts: string[]; labels: number[] };
  seed: number;
  num_labels: number;
}

export interface PreparedBaseline {
  input: BagOfWordsInput;
  truncation: Truncation;
  cut: BagOfWordsRow['cut'];
  warnings: string[];
}

export interface BagOfWordsOptions {
  /** Whole texts instead of what the model sees. */
  fullText?: boolean;
  dataDir?: string;
  /** The dataset already loaded (a caller running several seeds loads it once). */
  data?: TrainEvalData;
  /** The cutting tokenizer already loaded (default: spec.model's). */
  tokenizer?: TruncatingTokenizer;
}

/** The script's input: the study's examples for this spec, cut to the model's view unless fullText. */
export async function prepareBagOfWords(spec: BaselineSpec, options: BagOfWordsOptions = {}): Promise<PreparedBaseline> {
  const data = options.data ?? (await loadExperimentData(spec, { dataDir: options.dataDir }));
  const examples = sampleExperiment(spec, data);
  const tokenizer = options.fullText ? undefined : options.tokenizer ?? (await loadTruncatingTokenizer(spec.model));
  const truncation = truncationOf(spec, tokenizer);
  const cut = { train: 0, eval: 0, inexact: 0 };
  const view = (split: LabeledData, which: 'train' | 'eval') => {
    if (truncation.kind === 'none' || !tokenizer) return { texts: split.texts.slice(), labels: split.labels.slice() };
    const texts = split.texts.map((text) => {
      const prefix = textWithinTokens(tokenizer.tokenizer, text, truncation.maxTokens);
      if (prefix.truncated) cut[which]++;
      if (!prefix.exact) cut.inexact++;
      return prefix.text;
    });
    return { texts, labels: split.labels.slice() };
  };
  const input: BagOfWordsInput = {
    train: view(examples.train, 'train'),
    eval: view(examples.eval, 'eval'),
    seed: spec.seed,
    num_labels: examples.labelNames.length,
  };
  return { input, truncation, cut, warnings: examples.warnings };
}

function majorityShare(train: readonly number[], evalLabels: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const label of train) counts.set(label, (counts.get(label) ?? 0) + 1);
  // Ties go to the lower class id, as an argmax over class ids would.
  const [majority] = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
  return evalLabels.filter((l) => l === majority).length / evalLabels.length;
}

/**
 * That the interpreter runs the script and imports scikit-learn, before any work (the same errors as a
 * fit: interpreter or library missing). Returns scikit-learn's version.
 */
export async function checkBagOfWordsPython(): Promise<string> {
  const { lastLine, interpreter } = await runScript({ args: ['--check'] });
  const parsed = z.looseObject({ sklearn_version: z.string().min(1) }).safeParse(lastJson(lastLine, interpreter));
  if (!parsed.success) throw new UserError(`${BAG_OF_WORDS_SCRIPT} --check on ${interpreter} printed no scikit-learn version`);
  return parsed.data.sklearn_version;
}

function runScript(options: { input?: BagOfWordsInput; args?: string[] }) {
  return runPythonScript(BAG_OF_WORDS_SCRIPT, { ...options, needs: 'scikit-learn', debianPackage: 'python3-sklearn', missingLibraryExit: 3 });
}

function lastJson(lastLine: string, interpreter: string): unknown {
  try {
    return JSON.parse(lastLine);
  } catch {
    throw new UserError(`${BAG_OF_WORDS_SCRIPT} on ${interpreter} did not print a JSON line last (got ${JSON.stringify(lastLine.slice(0, 80))})`);
  }
}

/** Runs scripts/bag_of_words.py on prepared input and checks what it prints. */
export async function fitBagOfWords(input: BagOfWordsInput): Promise<z.output<typeof ScriptOutputSchema> & { interpreter: string }> {
  const { lastLine, interpreter } = await runScript({ input });
  const parsed = ScriptOutputSchema.safeParse(lastJson(lastLine, interpreter));
  if (!parsed.success) throw new UserError(`${BAG_OF_WORDS_SCRIPT} printed an unexpected result: ${formatIssues(parsed.error)}`);
  const out = parsed.data;
  if (out.method !== BAG_OF_WORDS_METHOD) {
    throw new UserError(
      `${BAG_OF_WORDS_SCRIPT} reports method ${JSON.stringify(out.method)} but src/analysis/bag-of-words.ts expects ${JSON.stringify(BAG_OF_WORDS_METHOD)}; change both together`,
    );
  }
  if (out.n_train !== input.train.texts.length || out.n_eval !== input.eval.texts.length) {
    throw new UserError(`${BAG_OF_WORDS_SCRIPT} saw ${out.n_train}/${out.n_eval} examples but was given ${input.train.texts.length}/${input.eval.texts.length}`);
  }
  return { ...out, interpreter };
}

/** The baseline for one spec: sample the study's examples, cut them (or not), fit, return the row. */
export async function bagOfWordsBaseline(spec: BaselineSpec, options: BagOfWordsOptions = {}): Promise<{ row: BagOfWordsRow; warnings: string[] }> {
  const started = Date.now();
  const prepared = await prepareBagOfWords(spec, options);
  const out = await fitBagOfWords(prepared.input);
  const { commit, dirty } = gitState();
  const row: BagOfWordsRow = {
    key: baselineKey(spec, prepared.truncation),
    dataset: datasetLabel(spec.dataset),
    trainSize: spec.dataset.trainSize ?? null,
    evalSize: spec.dataset.evalSize ?? null,
    seed: spec.seed,
    truncation: prepared.truncation,
    accuracy: out.accuracy,
    macroF1: out.macro_f1,
    C: out.C,
    cvAccuracy: out.cv_accuracy,
    cvFolds: out.cv_folds,
    cGrid: out.c_grid,
    majority: majorityShare(prepared.input.train.labels, prepared.input.eval.labels),
    numLabels: prepared.input.num_labels,
    trainExamples: out.n_train,
    evalExamples: out.n_eval,
    features: out.n_features,
    convergenceWarnings: out.convergence_warnings,
    cut: prepared.cut,
    method: out.method,
    provenance: {
      date: new Date().toISOString(),
      seconds: (Date.now() - started) / 1000,
      python: out.interpreter,
      pythonVersion: out.python_version,
      sklearnVersion: out.sklearn_version,
      packageVersion: VERSION,
      gitCommit: commit,
      ...(dirty !== undefined ? { gitDirty: dirty } : {}),
      host: hostname(),
    },
  };
  return { row: BagOfWordsRowSchema.parse(row), warnings: prepared.warnings };
}

/** The recorded rows (a missing file has none); bad lines are counted, not fatal. */
export function readBagOfWordsRows(file: string): JsonLines<BagOfWordsRow> {
  return readJsonLines<BagOfWordsRow>(
    file,
    (json) => {
      const parsed = BagOfWordsRowSchema.safeParse(json);
      return parsed.success ? { row: parsed.data } : { error: formatIssues(parsed.error) };
    },
    'the bag-of-words results',
  );
}

export function appendBagOfWordsRow(file: string, row: BagOfWordsRow): void {
  appendLine(file, JSON.stringify(BagOfWordsRowSchema.parse(row)));
}

/** "tokens:128" (cut to what a maxLength-128 model sees) or "full text". */
export function truncationLabel(truncation: Truncation): string {
  return truncation.kind === 'tokens' ? `tokens:${truncation.maxLength}` : 'full text';
}

export interface BagOfWordsSummary {
  dataset: string;
  truncation: string;
  trainSize: number | null;
  evalSize: number | null;
  seeds: number[];
  accuracy: { mean: number; sd: number };
  macroF1: { mean: number; sd: number };
  /** The C chosen for each seed, in seed order. */
  C: number[];
  majority: number;
}

/** Mean and sample sd over seeds per (dataset, sizes, truncation), in first-seen order. */
export function summariseBagOfWords(rows: readonly BagOfWordsRow[]): BagOfWordsSummary[] {
  const groups = new Map<string, BagOfWordsRow[]>();
  for (const row of rows) {
    const id = canonicalJson([row.dataset, row.trainSize, row.evalSize, row.truncation]);
    const group = groups.get(id);
    if (group) group.push(row);
    else groups.set(id, [row]);
  }
  return [...groups.values()].map((group) => {
    const sorted = group.slice().sort((a, b) => a.seed - b.seed);
    const stat = (values: number[]) => ({ mean: mean(values), sd: sampleStd(values) });
    return {
      dataset: sorted[0].dataset,
      truncation: truncationLabel(sorted[0].truncation),
      trainSize: sorted[0].trainSize,
      evalSize: sorted[0].evalSize,
      seeds: sorted.map((r) => r.seed),
      accuracy: stat(sorted.map((r) => r.accuracy)),
      macroF1: stat(sorted.map((r) => r.macroF1)),
      C: sorted.map((r) => r.C),
      majority: mean(sorted.map((r) => r.majority)),
    };
  });
}

/** What {@link bagOfWordsBaselines} takes. */
export interface BagOfWordsRunOptions {
  /** The JSONL store: recorded settings are read from it, new fits appended to it at once. */
  results: string;
  /** Whose tokenizer cuts the texts (every spec's model must be it); ignored with fullText. */
  model: string;
  fullText?: boolean;
  dataDir?: string;
  /** Fit what the store lacks (default true); false only reads, and `missing` lists the rest. */
  runMissing?: boolean;
  /** Draw a progress bar (default: when stderr is a terminal). */
  progressBar?: boolean;
  /** Where warnings go (default stderr), once each. */
  warn?: (message: string) => void;
}

/** What {@link bagOfWordsBaselines} returns: one row per spec the store holds, in the specs' order. */
export interface BagOfWordsRunResult {
  rows: BagOfWordsRow[];
  ran: number;
  skipped: number;
  missing: BaselineSpec[];
  /** The fingerprint of the tokenizer that cut the texts (absent with fullText). */
  tokenizerFingerprint?: string;
}

/**
 * The bag of words for each spec, resumable like the grid: settings already in the store are read, the
 * others fitted one by one (each appended before the next starts), one dataset in memory at a time.
 */
export async function bagOfWordsBaselines(specs: readonly BaselineSpec[], options: BagOfWordsRunOptions): Promise<BagOfWordsRunResult> {
  const warned = new Set<string>();
  const warn = (message: string) => {
    if (warned.has(message)) return;
    warned.add(message);
    (options.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`)))(message);
  };
  const other = specs.find((s) => s.model !== options.model);
  if (other && !options.fullText) throw new UserError(`bag of words: spec model ${JSON.stringify(other.model)} but texts are cut by ${JSON.stringify(options.model)}'s tokenizer; use one model`);
  const tokenizer = options.fullText ? undefined : await loadTruncatingTokenizer(options.model);
  const recorded = readBagOfWordsRows(options.results);
  const skippedWarning = skippedLinesWarning(options.results, recorded);
  if (skippedWarning) warn(skippedWarning);
  const byKey = new Map(recorded.rows.map((row) => [row.key, row]));
  const keys = specs.map((spec) => baselineKey(spec, truncationOf(spec, tokenizer)));
  const pending = specs.filter((_, i) => !byKey.has(keys[i]));
  const toRun = options.runMissing === false ? [] : pending;
  if (toRun.length > 0) await checkBagOfWordsPython();

  const progress = createProgress({ label: 'bag-of-words', total: specs.length, unit: 'fits', fields: ['dataset', 'accuracy'], enabled: options.progressBar });
  progress.update(specs.length - pending.length);
  // Specs come grouped by dataset; IMDB's two splits are 50,000 reviews.
  let loaded: { name: string; data: TrainEvalData } | undefined;
  try {
    for (const spec of toRun) {
      const name = datasetLabel(spec.dataset);
      if (loaded?.name !== name) loaded = { name, data: await loadExperimentData(spec, { dataDir: options.dataDir }) };
      const { row, warnings } = await bagOfWordsBaseline(spec, { fullText: options.fullText, tokenizer, data: loaded.data });
      for (const w of warnings) warn(w);
      appendBagOfWordsRow(options.results, row);
      byKey.set(row.key, row);
      progress.increment(1, { dataset: name, accuracy: (100 * row.accuracy).toFixed(1) });
    }
  } finally {
    progress.stop();
  }
  const rows = keys.map((key) => byKey.get(key)).filter((row): row is BagOfWordsRow => row !== undefined);
  return {
    rows,
    ran: toRun.length,
    skipped: specs.length - pending.length,
    missing: specs.filter((_, i) => !byKey.has(keys[i])),
    ...(tokenizer ? { tokenizerFingerprint: tokenizer.fingerprint } : {}),
  };
}
