import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { THREADS_ENV } from '../backend/native/addon';
import { UserError } from '../errors';
import { specHash } from './hash';
import {
  createIdentityResolver,
  identityChanges,
  identityHash,
  rowHash,
  rowIdentity,
  type IdentityResolver,
  type RunIdentity,
} from './identity';
import { Claims, claimsDir } from './claims';
import { GridPool } from './pool';
import { readResults, storeWarning } from './store';
import {
  CorruptionSpecSchema,
  DatasetSpecSchema,
  ExperimentSpecSchema,
  formatIssues,
  RecipeSchema,
  specLabel,
  type ExperimentSpec,
  type ResultRow,
} from './spec';

// ---------------------------------------------------------------------------------------------
// Grid files

/** A dataset in a grid may be just its registry name. */
const GridDatasetSchema = z.preprocess((v) => (typeof v === 'string' ? { name: v } : v), DatasetSpecSchema);
/** A corruption in a grid may be just its layer selector ("bottom:1"); null is the clean baseline. */
const GridCorruptionSchema = z.preprocess((v) => (typeof v === 'string' ? { layers: v } : v), CorruptionSpecSchema.nullable());

/** The cross product form: every dataset x corruption x seed, sharing one model and recipe. */
export const CrossGridSchema = z.strictObject({
  model: z.string().min(1).default('default'),
  datasets: z.array(GridDatasetSchema).min(1),
  corruptions: z.array(GridCorruptionSchema).min(1).default([null]),
  seeds: z.array(z.number().int().nonnegative()).min(1).default([0]),
  recipe: RecipeSchema.prefault({}),
  fromScratch: z.boolean().default(false),
});

/** The explicit form: a list of specs. */
export const ListGridSchema = z.strictObject({ experiments: z.array(ExperimentSpecSchema).min(1) });

/** Expands an already parsed grid JSON value; `source` names the file in errors. Duplicates are dropped. */
export function expandGridJson(json: unknown, source = 'grid'): ExperimentSpec[] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UserError(`${source}: expected a JSON object with "datasets" (a cross product) or "experiments" (a list of specs)`);
  }
  let specs: ExperimentSpec[];
  if ('experiments' in json) {
    const parsed = ListGridSchema.safeParse(json);
    if (!parsed.success) throw new UserError(`${source}: ${formatIssues(parsed.error)}`);
    specs = parsed.data.experiments;
  } else {
    const parsed = CrossGridSchema.safeParse(json);
    if (!parsed.success) throw new UserError(`${source}: ${formatIssues(parsed.error)}`);
    const g = parsed.data;
    specs = g.datasets.flatMap((dataset) =>
      g.corruptions.flatMap((corruption) =>
        g.seeds.map((seed) =>
          ExperimentSpecSchema.parse({ model: g.model, dataset, corruption, recipe: g.recipe, seed, fromScratch: g.fromScratch }),
        ),
      ),
    );
  }
  return uniqueSpecs(specs);
}

/** Reads and expands a grid file (see CrossGridSchema / ListGridSchema). */
export function expandGrid(gridFile: string): ExperimentSpec[] {
  let text: string;
  try {
    text = readFileSync(gridFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(`${gridFile}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${gridFile}: not valid JSON (${(error as Error).message})`);
  }
  return expandGridJson(json, gridFile);
}

function uniqueSpecs(specs: ExperimentSpec[]): ExperimentSpec[] {
  const seen = new Set<string>();
  return specs.filter((spec) => {
    const hash = specHash(spec);
    if (seen.has(hash)) return false;
    seen.add(hash);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Shards

/** Parses "--shard i/n" (1-based i, as Slurm/Kubernetes array indices are usually offset by one). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new UserError(`--shard ${text}: expected i/n, e.g. 2/4`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new UserError(`--shard ${text}: n must be at least 1`);
  if (index < 1 || index > count) throw new UserError(`--shard ${text}: i must be between 1 and ${count}`);
  return { index, count };
}

/**
 * The specs of shard i of n: those whose hash mod n is i - 1. Decided by the spec alone, so every
 * machine computes the same partition without talking to the others, and adding specs to a grid
 * never moves existing ones to another shard.
 */
export function shardOf(specs: readonly ExperimentSpec[], index: number, count: number): ExperimentSpec[] {
  if (!Number.isInteger(count) || count < 1) throw new UserError(`shard count must be a positive integer, got ${count}`);
  if (!Number.isInteger(index) || index < 1 || index > count) {
    throw new UserError(`shard index must be between 1 and ${count}, got ${index}`);
  }
  const n = BigInt(count);
  const want = BigInt(index - 1);
  return specs.filter((spec) => BigInt(`0x${specHash(spec)}`) % n === want);
}

// ---------------------------------------------------------------------------------------------
// What to run: identities against the store

/** A spec with the identity it would run under now. */
export interface PlannedRun {
  spec: ExperimentSpec;
  identity: RunIdentity;
  /** identityHash(identity): the hash its row will carry. */
  hash: string;
  label: string;
  /**
   * For a pending spec that the store holds under other identities: what changed since, per
   * recorded row (e.g. "numerics tfjs-1 -> native-1"). Empty when the spec was never run.
   */
  changes: string[];
}

export interface GridPlan {
  /** Already in the store under the identity they would run under now. */
  done: PlannedRun[];
  pending: PlannedRun[];
  /** Specs whose identity cannot be computed (a missing model, a bad config): a worker would fail the same way. */
  unresolved: Array<{ spec: ExperimentSpec; hash: string; label: string; error: string }>;
}

/**
 * Decides, before anything runs, which specs the store already holds: a spec is done when a row has
 * the identity the spec would run under now (spec, model fingerprint, resolved recipe, engine
 * numerics; see identity.ts). A re-pretrained model, a changed learning-rate rule or another
 * engine's numerics makes it pending again; rows from before identities count as 'tfjs-1'.
 */
export async function planGrid(specs: readonly ExperimentSpec[], rows: readonly ResultRow[], resolve: IdentityResolver): Promise<GridPlan> {
  const recorded = new Set(rows.map(rowHash));
  const bySpec = new Map<string, ResultRow[]>();
  for (const row of rows) {
    const key = specHash(row.spec);
    bySpec.set(key, [...(bySpec.get(key) ?? []), row]);
  }
  const plan: GridPlan = { done: [], pending: [], unresolved: [] };
  for (const spec of uniqueSpecs([...specs])) {
    const label = specLabel(spec);
    let identity: RunIdentity;
    try {
      identity = await resolve(spec);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      plan.unresolved.push({ spec, hash: specHash(spec), label, error: error.message });
      continue;
    }
    const hash = identityHash(identity);
    if (recorded.has(hash)) {
      plan.done.push({ spec, identity, hash, label, changes: [] });
    } else {
      const changes = (bySpec.get(specHash(spec)) ?? []).map((row) => identityChanges(rowIdentity(row), identity).join('; '));
      plan.pending.push({ spec, identity, hash, label, changes: [...new Set(changes)] });
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Running a grid on worker processes (the pool itself: pool.ts)

/**
 * Threads per worker (HEALING_THREADS: the native kernels' thread count, src/backend/native/addon.ts):
 * the cores shared out, max(1, floor(cores / workers)), so W workers of T threads each do not
 * oversubscribe the machine (2 cores: 1 worker x 2 threads, or 2 x 1).
 */
export function workerThreads(cores: number, workers: number): number {
  return Math.max(1, Math.floor(cores / Math.max(1, workers)));
}

/**
 * The environment of a grid worker: this process's, the caller's extra variables on top, no
 * progress bars of its own, and HEALING_THREADS = workerThreads(cores, workers) unless
 * HEALING_THREADS is already set (in `base` or `extra`), which then wins unchanged. `workers` is the
 * number of worker processes the grid runs at once (--workers, capped at the runs left to do).
 * Pure, so the rule is testable without starting a worker.
 */
export function workerEnv(options: {
  base: NodeJS.ProcessEnv;
  extra?: Readonly<Record<string, string>>;
  workers: number;
  cores: number;
}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...options.base, ...options.extra, HEALING_PROGRESS: '0' };
  const set = env[THREADS_ENV];
  if (set === undefined || set.trim() === '') env[THREADS_ENV] = String(workerThreads(options.cores, options.workers));
  return env;
}

export type GridEvent =
  | { type: 'start'; hash: string; label: string; worker: number; attempt: number }
  | { type: 'progress'; hash: string; label: string; phase: string; step: number; totalSteps: number; loss?: number }
  | { type: 'result'; hash: string; label: string; row: ResultRow }
  | { type: 'failure'; hash: string; label: string; error: string; attempt: number; retrying: boolean };

export interface RunGridOptions {
  /**
   * Worker processes (default: the number of cores); never more than the runs left to do. Each gets
   * HEALING_THREADS = max(1, floor(cores / workers)) unless HEALING_THREADS is set (see workerEnv).
   */
  workers?: number;
  resultsFile: string;
  /** Module exporting runExperiment(spec, { onProgress }); a path (relative to cwd) or file URL. */
  runnerModule?: string;
  /** Extra attempts for a run whose worker crashed (default 1). */
  retries?: number;
  onEvent?: (event: GridEvent) => void;
  /** Extra environment for the workers (e.g. HEALING_BACKEND), on top of this process's. */
  env?: Record<string, string>;
  /** Force the progress bar on or off (default: on for a terminal, see src/progress.ts). */
  progress?: boolean;
  /**
   * Numerics of the engine the workers will run (default: this process's engine, started once via
   * initEngine(); workers inherit this process's environment, so they choose the same engine). Each
   * result is checked against it: a worker that ran other numerics fails its run.
   */
  numerics?: string;
  /** How identities are computed (default: createIdentityResolver({ numerics })); shared with a caller that planned first. */
  identity?: IdentityResolver;
  /**
   * Lease of this process's claims on its runs (default DEFAULT_LEASE_MS, 5 min; see claims.ts):
   * another process on the same store takes a run over once its heartbeat is this old. Heartbeats
   * come every tenth of it.
   */
  claimLeaseMs?: number;
}

export interface GridSummary {
  total: number;
  /** Already in the store before this call. */
  skipped: number;
  /** Finished and appended by this call. */
  ran: number;
  /** Finished meanwhile by another process sharing the store (claimed there, so not run here). */
  elsewhere: number;
  failed: number;
  seconds: number;
  failures: Array<{ hash: string; label: string; error: string }>;
  /** Stopped by SIGINT/SIGTERM before the grid finished. */
  interrupted: boolean;
}

/**
 * Runs every spec whose identity (planGrid) is not yet in the store on `workers` child processes
 * (each owns its TF.js engine; see pool.ts), appending each result the moment it arrives. Safe to
 * kill at any time: finished runs are on disk (fsync'ed), unfinished ones are simply not there and
 * run again next time. Several processes may run grids on one store at once: each run is claimed
 * before it starts (claims.ts), so they split the work and store every run once.
 */
export async function runGrid(specs: readonly ExperimentSpec[], options: RunGridOptions): Promise<GridSummary> {
  const started = Date.now();
  const all = uniqueSpecs([...specs]);
  const store = readResults(options.resultsFile);
  const warning = storeWarning(options.resultsFile, store);
  if (warning) process.stderr.write(`warning: ${warning}\n`);
  const resolve = options.identity ?? createIdentityResolver({ numerics: options.numerics });
  const plan = await planGrid(all, store.rows, resolve);
  const summary: GridSummary = {
    total: all.length,
    skipped: plan.done.length,
    ran: 0,
    elsewhere: 0,
    failed: 0,
    seconds: 0,
    failures: [],
    interrupted: false,
  };
  const emit = (event: GridEvent): void => options.onEvent?.(event);
  for (const u of plan.unresolved) {
    // Not started: every worker would fail it the same way (as a UserError, which is never retried).
    process.stderr.write(`grid: run ${u.label} cannot start: ${u.error}\n`);
    emit({ type: 'failure', hash: u.hash, label: u.label, error: u.error, attempt: 0, retrying: false });
    summary.failed++;
    summary.failures.push({ hash: u.hash, label: u.label, error: u.error });
  }
  const claims = new Claims(claimsDir(options.resultsFile), {
    leaseMs: options.claimLeaseMs,
    onLost: (hash) => process.stderr.write(`grid: the claim on run ${hash} was taken over by another process (this one missed its heartbeats)\n`),
  });
  claims.sweep(new Set(plan.done.map((p) => p.hash)));
  if (plan.pending.length > 0) {
    const cores = availableParallelism();
    const size = Math.max(1, Math.min(options.workers ?? cores, plan.pending.length));
    const env = workerEnv({ base: process.env, extra: options.env, workers: size, cores });
    const pool = new GridPool(plan.pending, {
      size,
      env,
      runnerModule: options.runnerModule,
      retries: options.retries ?? 1,
      resultsFile: options.resultsFile,
      emit,
      progress: options.progress,
      claims,
      // Often enough that a run finished elsewhere ends our wait soon, rarely enough to cost nothing.
      pollMs: Math.min(5_000, claims.heartbeatMs),
    });
    const outcome = await pool.run();
    summary.ran = outcome.ran;
    summary.elsewhere = outcome.elsewhere;
    summary.failed += outcome.failed;
    summary.failures.push(...outcome.failures);
    summary.interrupted = outcome.interrupted;
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}
