import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { UserError } from '../errors';
import { planGrid, runGrid, type GridEvent, type GridPlan, type GridSummary } from '../experiment/grid';
import { specHash } from '../experiment/hash';
import { createIdentityResolver, rowHash } from '../experiment/identity';
import { PAPER_DATASETS, PAPER_EVAL_SIZE, PAPER_SEEDS, PAPER_SEEDS_BY_DATASET, PAPER_TRAIN_SIZE } from '../experiment/presets';
import { provenance } from '../experiment/provenance';
import { modelFingerprint } from '../experiment/run';
import { ExperimentSpecSchema, specLabel, type ExperimentSpec, type ResultRow } from '../experiment/spec';
import { DEFAULT_RESULTS_FILE, readResults, storeWarning } from '../experiment/store';
import { resolveModelDir } from '../io/models';
import { parseConfig } from '../model/config';
import { RECIPE_DEFAULTS, type RecipeSchema } from '../train/recipe';
import { staleRows } from './findings';

/**
 * What notebooks call: their parameters (quick for CI, full for the study), the runs they stand on
 * (read from the result store, the missing ones run through the grid on request), and the stamp
 * that says which code and which results a page was made from.
 */

type RecipeInput = z.input<typeof RecipeSchema>;

export interface NotebookParameters {
  /** HEALING_QUICK=1 (the default of scripts/notebooks.sh): small, fast, for CI. */
  quick: boolean;
  /** "default", "tiny", a checkpoint directory or a hub id. */
  model: string;
  datasets: string[];
  seeds: number[];
  /** Seeds of particular datasets, instead of `seeds` (full mode: the paper preset's, PAPER_SEEDS_BY_DATASET). */
  seedsPerDataset?: Readonly<Record<string, readonly number[]>>;
  /** Corruption depths K for bottom:K / top:K; "all" = 1..L of the model. */
  ks: number[] | 'all';
  trainSize: number;
  evalSize: number;
  maxLength: number;
  epochs: number;
  resultsFile: string;
  /** Run the experiments the result store lacks (else only report them). */
  runMissing: boolean;
  workers: number;
}

/** Where quick-mode notebooks record their runs (gitignored), so later notebooks reuse earlier ones. */
export const QUICK_RESULTS_DIR = join('runs', 'notebooks');

const envFlag = (value: string | undefined): boolean | undefined =>
  value === undefined || value === '' ? undefined : !['0', 'false', 'no'].includes(value.toLowerCase());

/**
 * Quick vs full defaults, then the notebook's overrides. HEALING_QUICK picks the mode (quick unless
 * "0"); HEALING_MODEL and HEALING_RUN_MISSING override the model and runMissing of either mode.
 * Full mode is the paper preset on the study model, read from data/results/results.jsonl.
 */
export function notebookParameters(overrides: Partial<NotebookParameters> = {}): NotebookParameters {
  const quick = overrides.quick ?? envFlag(process.env.HEALING_QUICK) ?? true;
  const model = overrides.model ?? (process.env.HEALING_MODEL || (quick ? 'tiny' : 'default'));
  const base: NotebookParameters = quick
    ? {
        quick,
        model,
        datasets: ['sst2'],
        seeds: [0, 1, 2],
        ks: [1, 2],
        trainSize: 128,
        evalSize: 100,
        maxLength: 64,
        // Two epochs, so that per-epoch evaluation can say whether longer fine-tuning closes the gap (F1).
        epochs: 2,
        resultsFile: join(QUICK_RESULTS_DIR, `quick-${model.replace(/[^\w.-]+/g, '_')}.jsonl`),
        runMissing: true,
        workers: Math.min(2, availableParallelism()),
      }
    : {
        quick,
        model,
        datasets: [...PAPER_DATASETS],
        seeds: [...PAPER_SEEDS],
        seedsPerDataset: PAPER_SEEDS_BY_DATASET,
        ks: 'all',
        trainSize: PAPER_TRAIN_SIZE,
        evalSize: PAPER_EVAL_SIZE,
        maxLength: 128,
        epochs: RECIPE_DEFAULTS.epochs,
        resultsFile: DEFAULT_RESULTS_FILE,
        runMissing: false,
        workers: availableParallelism(),
      };
  const params = { ...base, ...overrides, quick, model };
  const runMissing = envFlag(process.env.HEALING_RUN_MISSING);
  if (runMissing !== undefined && overrides.runMissing === undefined) params.runMissing = runMissing;
  return params;
}

/** Encoder depth of a model from its config.json. */
export async function modelDepth(model: string): Promise<number> {
  const dir = await resolveModelDir(model);
  const file = join(dir, 'config.json');
  return parseConfig(JSON.parse(readFileSync(file, 'utf8')), file).numLayers;
}

/** What studySpecs and loadStudy take besides the parameters. */
export interface StudySpecOptions {
  /** Layer specs to run ('bottom:2', '0,3'; null = the clean run); default: clean plus bottom:K and top:K for each K. */
  corruptions?: ReadonlyArray<string | null>;
  /** Recipe fields of every run (default: the recipe's defaults). */
  recipe?: RecipeInput;
  /** Epochs of every run (default: recipe.epochs, else params.epochs). */
  epochs?: number;
  /** Fine-tune the model's architecture from random weights instead (the reference for what pretraining is worth). */
  fromScratch?: boolean;
}

/**
 * The experiments behind a notebook: per dataset and seed the clean run plus bottom:K and top:K for
 * each K (K = L is included: it is where bottom and top meet). With the full defaults these are
 * exactly the paper preset's specs, so their hashes find the recorded results.
 */
export function studySpecs(
  params: NotebookParameters,
  numLayers: number,
  options: StudySpecOptions = {},
): ExperimentSpec[] {
  const ks = params.ks === 'all' ? Array.from({ length: numLayers }, (_, i) => i + 1) : params.ks.filter((k) => k <= numLayers);
  const corruptions = options.corruptions ?? [null, ...ks.flatMap((k) => [`bottom:${k}`, `top:${k}`])];
  return params.datasets.flatMap((name) =>
    corruptions.flatMap((layers) =>
      (params.seedsPerDataset?.[name] ?? params.seeds).map((seed) =>
        ExperimentSpecSchema.parse({
          model: params.model,
          dataset: { name, trainSize: params.trainSize, evalSize: params.evalSize, maxLength: params.maxLength },
          corruption: layers === null ? null : { layers },
          recipe: { ...options.recipe, epochs: options.epochs ?? options.recipe?.epochs ?? params.epochs },
          seed,
          ...(options.fromScratch ? { fromScratch: true } : {}),
        }),
      ),
    ),
  );
}

export interface EnsureOptions {
  resultsFile: string;
  workers?: number;
  runMissing: boolean;
  /** One line per finished or failed run (default: console.log); the CLI uses the grid's bar instead. */
  log?: ((line: string) => void) | false;
  /** Draw the grid's progress bar (default: only on a terminal). */
  progress?: boolean;
  /** Runner module for the grid (default src/experiment/run.ts; tests pass a stand-in). */
  runnerModule?: string;
  /** Every event of the grid (start, progress, result, failure), with the runs finished so far of the `pending` this call runs. */
  onEvent?: (event: GridEvent, counts: { finished: number; pending: number }) => void;
}

export interface EnsureOutcome {
  total: number;
  /**
   * Specs already in the store before this call: with runMissing, under the identity they run under
   * now (model fingerprint, resolved recipe, engine numerics); without, under any.
   */
  recorded: number;
  /** Specs still missing after this call (not run, failed, or interrupted), in the same sense. */
  missing: ExperimentSpec[];
  ran: number;
  failed: number;
  failures: GridSummary['failures'];
  /** Rows of these specs made with other weights than the model now has (see findings.staleRows). */
  stale: number;
  /**
   * The store's rows for these specs, in spec order: with runMissing, the row of each spec's current
   * identity; without, the newest row of each spec.
   */
  rows: ResultRow[];
  /** One sentence for the notebook. */
  message: string;
}

/** The fingerprint of a spec's model as it is now, or undefined when the model is not here. */
export async function currentFingerprint(model: string): Promise<string | undefined> {
  try {
    return await modelFingerprint(await resolveModelDir(model));
  } catch {
    return undefined;
  }
}

/**
 * Per spec, the row to report: the one with the identity the spec runs under now when the caller
 * planned it (`planned`, by spec hash), else the newest recorded row of the spec (a store may hold a
 * spec under several identities: another model's weights, another engine's numerics).
 */
function rowsFor(
  specs: readonly ExperimentSpec[],
  resultsFile: string,
  planned?: ReadonlyMap<string, string>,
): { rows: ResultRow[]; missing: ExperimentSpec[]; all: ResultRow[] } {
  const outcome = readResults(resultsFile);
  const warning = storeWarning(resultsFile, outcome);
  if (warning) process.stderr.write(`warning: ${warning}\n`);
  const newest = new Map<string, ResultRow>();
  const byIdentity = new Map<string, ResultRow>();
  for (const row of outcome.rows) {
    newest.set(specHash(row.spec), row);
    byIdentity.set(rowHash(row), row);
  }
  const rows: ResultRow[] = [];
  const missing: ExperimentSpec[] = [];
  for (const spec of specs) {
    const key = specHash(spec);
    const want = planned?.get(key);
    const row = want !== undefined ? byIdentity.get(want) : newest.get(key);
    if (row) rows.push(row);
    else missing.push(spec);
  }
  return { rows, missing, all: outcome.rows };
}

/**
 * Makes sure the result store holds these specs: counts what is recorded, runs the rest through the
 * grid when `runMissing` (each finished run is appended at once, so an interrupted notebook loses
 * nothing), and returns the rows. Without `runMissing` it says what is missing instead.
 */
export async function ensureResults(specs: readonly ExperimentSpec[], options: EnsureOptions): Promise<EnsureOutcome> {
  const log = options.log === false ? () => {} : options.log ?? ((line: string) => console.log(line));
  const before = rowsFor(specs, options.resultsFile);
  let recorded = before.rows.length;
  let summary: GridSummary | undefined;
  let plan: GridPlan | undefined;
  const identity = createIdentityResolver();
  if (options.runMissing) {
    // What is recorded is decided by identity, as the grid decides it: a row of the spec made with
    // other weights, another recipe rule or another engine's numerics does not count.
    plan = await planGrid(specs, before.all, identity);
    recorded = plan.done.length;
  }
  const pending = plan ? [...plan.pending, ...plan.unresolved].map((p) => p.spec) : [];
  if (pending.length) {
    log(`running ${pending.length} of ${specs.length} experiment(s) into ${options.resultsFile} on ${options.workers ?? 'all'} worker(s)`);
    const started = Date.now();
    let finished = 0;
    summary = await runGrid(pending, {
      resultsFile: options.resultsFile,
      workers: options.workers,
      progress: options.progress,
      runnerModule: options.runnerModule,
      identity,
      onEvent: (event) => {
        const final = event.type === 'result' || (event.type === 'failure' && !event.retrying);
        options.onEvent?.(event, { finished: finished + (final ? 1 : 0), pending: pending.length });
        if (event.type === 'result') {
          finished++;
          const acc = event.row.final.accuracy;
          const elapsed = (Date.now() - started) / 1000;
          const eta = (elapsed / finished) * (pending.length - finished);
          log(`[${finished}/${pending.length}] ${event.label}: accuracy ${acc == null ? 'NaN' : acc.toFixed(4)} ` +
            `(${event.row.timings.seconds.toFixed(1)} s; elapsed ${elapsed.toFixed(0)} s, ETA ${eta.toFixed(0)} s)`);
        } else if (event.type === 'failure' && !event.retrying) {
          finished++;
          log(`[${finished}/${pending.length}] ${event.label}: FAILED (${event.error})`);
        }
      },
    });
  }
  const planned = plan ? new Map([...plan.done, ...plan.pending].map((p) => [specHash(p.spec), p.hash])) : undefined;
  const after = plan ? rowsFor(specs, options.resultsFile, planned) : before;
  const missing = after.missing;
  const models = [...new Set(specs.map((s) => s.model))];
  let stale = 0;
  for (const model of models) {
    const now = await currentFingerprint(model);
    const own = after.rows.filter((r) => r.spec.model === model);
    const fingerprints = own.map((r) => (r as { modelFingerprint?: string }).modelFingerprint);
    stale += now
      ? fingerprints.filter((f) => f !== undefined && f !== now).length
      : staleRows(own).reduce((n, s) => n + s.stale.length, 0);
  }
  const parts = [`${after.rows.length} of ${specs.length} experiment(s) recorded in ${options.resultsFile}`];
  if (summary) parts.push(`${summary.ran} run now in ${summary.seconds.toFixed(0)} s`);
  if (missing.length) {
    const names = missing.slice(0, 3).map(specLabel).join('; ');
    parts.push(
      `${missing.length} missing (${names}${missing.length > 3 ? '; ...' : ''})` +
        (options.runMissing ? '' : ': set runMissing: true in the parameters cell (or HEALING_RUN_MISSING=1) to run them'),
    );
  }
  if (stale) parts.push(`${stale} stale (made with other weights than the model has now; the findings leave them out)`);
  const message = parts.join('; ');
  log(message);
  return {
    total: specs.length,
    recorded,
    missing,
    ran: summary?.ran ?? 0,
    failed: summary?.failed ?? 0,
    failures: summary?.failures ?? [],
    stale,
    rows: after.rows,
    message,
  };
}

/**
 * The study's rows in one call: the specs of the parameters (when the model is here to tell its
 * depth), made sure of, then read. When the model is absent and nothing is to be run, every row of
 * the store for that model name is used instead, so a reader without the weights still sees the
 * recorded findings.
 */
export async function loadStudy(
  params: NotebookParameters,
  options: StudySpecOptions & Pick<EnsureOptions, 'log' | 'onEvent' | 'progress'> = {},
): Promise<EnsureOutcome & { specs: ExperimentSpec[] }> {
  let numLayers: number;
  try {
    numLayers = await modelDepth(params.model);
  } catch (error) {
    if (params.runMissing || !(error instanceof UserError)) throw error;
    const all = readResults(params.resultsFile).rows.filter((r) => r.spec.model === params.model && params.datasets.includes(r.spec.dataset.name ?? ''));
    const message = `model "${params.model}" is not available (${error.message}); using the ${all.length} recorded row(s) of it in ${params.resultsFile}`;
    if (options.log !== false) (options.log ?? console.log)(message);
    return { specs: [], total: all.length, recorded: all.length, missing: [], ran: 0, failed: 0, failures: [], stale: staleRows(all).reduce((n, s) => n + s.stale.length, 0), rows: all, message };
  }
  const specs = studySpecs(params, numLayers, options);
  const outcome = await ensureResults(specs, { resultsFile: params.resultsFile, workers: params.workers, runMissing: params.runMissing, log: options.log, onEvent: options.onEvent, progress: options.progress });
  return { ...outcome, specs };
}

// ---------------------------------------------------------------------------------------------
// Provenance

export interface ProvenanceStamp {
  packageVersion: string;
  gitCommit: string;
  gitDirty?: boolean;
  /** The TF.js engine of this process ("none" when nothing was computed here). */
  backend: string;
  /** Engines that produced the results, from the rows' own provenance. */
  resultBackends: string[];
  resultsFile?: string;
  /** sha256 of the results file's bytes (absent when there is no file). */
  resultsSha256?: string;
  resultRows: number;
  /** Rows made with other weights than the majority of their model name. */
  staleRows: number;
  /** Model fingerprints (first 16 hex of sha256 of config + weights) by model name, from the rows. */
  models: Record<string, string[]>;
  node: string;
  date: string;
}

/** Which code, engine and results a notebook page or report was made from. */
export async function provenanceStamp(
  options: { resultsFile?: string; rows?: readonly ResultRow[]; /** The engine this process computed on, when the caller knows it. */ backend?: string } = {},
): Promise<ProvenanceStamp> {
  const base = await provenance({ backend: options.backend });
  const file = options.resultsFile;
  const exists = file !== undefined && existsSync(file);
  const rows = options.rows ?? (exists ? readResults(file!).rows : []);
  const models: Record<string, string[]> = {};
  for (const row of rows) {
    const f = (row as { modelFingerprint?: string }).modelFingerprint ?? 'unrecorded';
    const list = (models[row.spec.model] ??= []);
    if (!list.includes(f)) list.push(f);
  }
  return {
    packageVersion: base.packageVersion,
    gitCommit: base.gitCommit,
    ...(base.gitDirty !== undefined ? { gitDirty: base.gitDirty } : {}),
    backend: base.backend === 'unknown' ? 'none (no computation in this process)' : base.backend,
    resultBackends: [...new Set(rows.map((r) => r.provenance.backend))].sort(),
    ...(file !== undefined ? { resultsFile: file } : {}),
    ...(exists ? { resultsSha256: createHash('sha256').update(readFileSync(file!)).digest('hex') } : {}),
    resultRows: rows.length,
    staleRows: staleRows(rows).reduce((n, s) => n + s.stale.length, 0),
    models,
    node: base.node,
    date: new Date().toISOString(),
  };
}

/** The stamp as one line, e.g. for the last cell of a notebook. */
export function stampText(stamp: ProvenanceStamp): string {
  const commit = `${stamp.gitCommit.slice(0, 12)}${stamp.gitDirty ? ' (with uncommitted changes)' : ''}`;
  const results = stamp.resultsFile
    ? `results ${stamp.resultsFile} (${stamp.resultRows} rows, sha256 ${stamp.resultsSha256 ? stamp.resultsSha256.slice(0, 16) : 'no file'}` +
      `${stamp.staleRows ? `, ${stamp.staleRows} stale` : ''}) from ${stamp.resultBackends.join(', ') || 'no engine'}`
    : 'no results file';
  const models = Object.entries(stamp.models).map(([m, f]) => `${m}=${f.join('/')}`).join(', ');
  return `healing-bert ${stamp.packageVersion}, commit ${commit}, engine ${stamp.backend}, ${results}` +
    `${models ? `, models ${models}` : ''}, node ${stamp.node}, ${stamp.date}`;
}
