import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors';
import { resolveModelDir, SHIPPED_MODEL_NAMES } from '../io/models';
import { parseConfig } from '../model/config';
import { Claims, claimsDir, DEFAULT_LEASE_MS } from '../experiment/claims';
import { expandGrid, planGrid, runGrid, shardOf } from '../experiment/grid';
import { createIdentityResolver } from '../experiment/identity';
import { isPresetName, PRESET_FALLBACKS, PRESET_NAMES, presetSpecs } from '../experiment/presets';
import { prepareDatasets } from '../data/availability';
import { datasetLabel, type ExperimentSpec } from '../experiment/spec';
import { resolveShard, shardResultsFile, type Shard } from '../experiment/shard';
import { DEFAULT_RESULTS_FILE, readResults, storeWarning } from '../experiment/store';
import { checkWritableFile } from '../io/output-dir';
import { DATASET_NAMES, isRegistered } from '../data/registry';

interface RunOptions {
  grid?: string;
  preset?: string;
  model: string;
  numLayers?: string;
  datasets?: string;
  workers?: string;
  shard?: string;
  shardCount?: string;
  results: string;
  claimLease?: string;
  runner?: string;
  dryRun?: boolean;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n < 1) throw new UserError(`${flag} ${value}: expected a positive integer`);
  return n;
}

function listOption(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new UserError(`--datasets ${JSON.stringify(value)}: expected a comma-separated list of dataset names`);
  return items;
}

/** Encoder depth of the preset's model, from its config.json (or --num-layers, which skips loading). */
async function modelDepth(model: string, numLayers: string | undefined): Promise<number> {
  if (numLayers !== undefined) return positiveInt('--num-layers', numLayers);
  let dir: string;
  try {
    dir = await resolveModelDir(model);
  } catch (error) {
    if (error instanceof UserError) throw new UserError(`${error.message} (or pass --num-layers N)`);
    throw error;
  }
  const file = join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UserError(`${file}: cannot read the model config (${(error as Error).message}); pass --num-layers N`);
  }
  return parseConfig(json, file).numLayers;
}

/** The shard the flags select (--shard i/n, or auto from the job array's variables in `env`). */
export function selectShard(options: Pick<RunOptions, 'shard' | 'shardCount'>, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  if (options.shard === undefined) {
    if (options.shardCount !== undefined) throw new UserError('--shard-count goes with --shard auto');
    return undefined;
  }
  return resolveShard(options.shard, { env, shardCount: options.shardCount });
}

/**
 * The store a run writes: --results as given, except that with --shard auto and --results left at
 * its default each array task gets its own (shardResultsFile), never one file for all tasks.
 */
export function resultsFileFor(options: Pick<RunOptions, 'results' | 'shard'>, shard: Shard | undefined, resultsGiven: boolean): string {
  const auto = options.shard?.trim().toLowerCase() === 'auto';
  return shard && auto && !resultsGiven ? shardResultsFile(options.results, shard) : options.results;
}

function claimLeaseMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !(seconds > 0)) throw new UserError(`--claim-lease ${text}: expected a positive number of seconds`);
  return seconds * 1000;
}

/** The specs the flags select, before the store is consulted. */
export async function selectSpecs(options: RunOptions, shard: Shard | undefined = selectShard(options)): Promise<ExperimentSpec[]> {
  if ((options.grid === undefined) === (options.preset === undefined)) {
    throw new UserError('give exactly one of --grid FILE or --preset NAME');
  }
  const datasets = listOption(options.datasets);
  let specs: ExperimentSpec[];
  if (options.grid !== undefined) {
    specs = expandGrid(options.grid);
    if (datasets) specs = specs.filter((s) => datasets.includes(datasetLabel(s.dataset)));
  } else {
    const name = options.preset!;
    if (!isPresetName(name)) throw new UserError(`--preset ${name}: unknown preset (expected one of: ${PRESET_NAMES.join(', ')})`);
    const numLayers = await modelDepth(options.model, options.numLayers);
    // Found or fetched once here, not in every worker; the quick preset falls back to its embedded sample.
    specs = await prepareDatasets(presetSpecs(name, { model: options.model, numLayers, datasets }), {
      fallbacks: datasets ? undefined : PRESET_FALLBACKS[name],
    });
  }
  if (shard) specs = shardOf(specs, shard.index, shard.count);
  return specs;
}

export function register(program: Command): void {
  program
    .command('run')
    .description(
      'run a grid of experiments (a grid file or a preset) on worker processes, appending each finished run to the ' +
        'result store; runs already in the store are skipped, so an interrupted grid continues where it stopped. ' +
        "A run is in the store when a row has its identity: the spec, the model's fingerprint (hash of its config " +
        "and weights), the resolved recipe and the engine's numerics version; a changed model, recipe rule or " +
        'engine numerics runs it again (rows from before identities count as the stock engines\' tfjs-1)',
    )
    .option('--grid <file>', 'grid JSON: { model, datasets, corruptions, seeds, recipe } (a cross product) or { experiments: [spec, ...] }')
    .option('--preset <name>', `a built-in grid: ${PRESET_NAMES.join(' | ')}`)
    .option('--model <model>', `model for a preset: a shipped model (${SHIPPED_MODEL_NAMES}), a checkpoint directory or a hub repo id`, 'default')
    .option('--num-layers <n>', "encoder depth for a preset's bottom/top-K corruptions (default: read from the model's config.json)")
    .option('--datasets <a,b>', 'only these datasets (a preset runs them instead of its own list)')
    .option(
      '--workers <n>',
      'worker processes, each with its own TF.js engine (default: number of cores); each worker gets ' +
        'HEALING_THREADS = max(1, floor(cores / n)) threads for its native kernels, unless HEALING_THREADS is already set',
    )
    .option(
      '--shard <i/n|auto>',
      'run only shard i of n (1-based), a deterministic slice by spec hash; "auto" reads a job array\'s task: Slurm\'s ' +
        'SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, or Kubernetes\' JOB_COMPLETION_INDEX of ' +
        '--shard-count / HEALING_SHARD_COUNT; with auto and no --results, the store is <default>.shard-<i>-of-<n>.jsonl',
    )
    .option('--shard-count <n>', 'with --shard auto in a Kubernetes Indexed Job: the number of shards (its completions); default HEALING_SHARD_COUNT')
    .option('--results <file>', 'result store (JSONL, append-only; several `healing run` processes may share one)', DEFAULT_RESULTS_FILE)
    .option(
      '--claim-lease <seconds>',
      `how long another process waits on a silent claim of this one before taking its run over (default ${DEFAULT_LEASE_MS / 1000}; heartbeats every tenth)`,
    )
    .option('--runner <module>', 'module exporting runExperiment(spec, options) (default: src/experiment/run.ts)')
    .option('--dry-run', 'list the selected runs as done/pending (with what changed since a recorded run) and exit')
    .action(async (options: RunOptions, command: Command) => {
      const shard = selectShard(options);
      options.results = resultsFileFor(options, shard, command.getOptionValueSource('results') !== 'default');
      if (shard) process.stderr.write(`run: shard ${shard.index} of ${shard.count} (${shard.source}), results in ${options.results}\n`);
      const leaseMs = claimLeaseMs(options.claimLease);
      // Before the datasets are prepared (a fetch can take minutes) and before the first run: an
      // unwritable store would lose a finished run. A dry run only reads it.
      if (!options.dryRun) await checkWritableFile(options.results, '--results');
      const specs = await selectSpecs(options, shard);
      // Names the registry does not know fail here, --dry-run included, not in a worker after the grid has
      // started (the row schema stays open: a store may hold rows of datasets this version does not ship).
      const unknown = [...new Set(specs.flatMap((s) => (s.dataset.name !== undefined && !isRegistered(s.dataset.name) ? [s.dataset.name] : [])))];
      if (unknown.length) {
        throw new UserError(`unknown dataset${unknown.length === 1 ? '' : 's'} ${unknown.map((n) => JSON.stringify(n)).join(', ')}; known datasets: ${DATASET_NAMES.join(', ')}`);
      }
      const workers = options.workers === undefined ? undefined : positiveInt('--workers', options.workers);

      if (options.dryRun) {
        const store = readResults(options.results);
        const warning = storeWarning(options.results, store);
        if (warning) process.stderr.write(`warning: ${warning}\n`);
        // The same decision the grid makes (it starts this process's engine once, for its numerics).
        const plan = await planGrid(specs, store.rows, createIdentityResolver());
        const claims = new Claims(claimsDir(options.results));
        const order = new Map(specs.map((spec, i) => [spec, i]));
        const claimed = (hash: string): string => {
          const status = claims.status(hash);
          if (!status) return '';
          const { claim } = status.found;
          const who = claim ? `pid ${claim.pid} on ${claim.host === hostname() ? 'this host' : claim.host} since ${claim.startedAt}` : 'a claim being written';
          return status.staleness.stale ? `  (stale claim: ${status.staleness.reason})` : `  (running elsewhere: ${who})`;
        };
        const lines = [
          ...plan.done.map((p) => ({ spec: p.spec, text: `${p.hash}  ${'done'.padEnd(7)}  ${p.label}` })),
          ...plan.pending.map((p) => ({
            spec: p.spec,
            text: `${p.hash}  ${'pending'.padEnd(7)}  ${p.label}${p.changes.length ? `  (changed since recorded: ${p.changes.join(' | ')})` : ''}${claimed(p.hash)}`,
          })),
          ...plan.unresolved.map((u) => ({ spec: u.spec, text: `${u.hash}  ${'error'.padEnd(7)}  ${u.label}  (${u.error})` })),
        ].sort((a, b) => (order.get(a.spec) ?? 0) - (order.get(b.spec) ?? 0));
        for (const line of lines) process.stdout.write(`${line.text}\n`);
        const counts = { total: specs.length, done: plan.done.length, pending: plan.pending.length, ...(shard ? { shard: { index: shard.index, count: shard.count } } : {}) };
        process.stdout.write(`${JSON.stringify(plan.unresolved.length ? { ...counts, unresolved: plan.unresolved.length } : counts)}\n`);
        return;
      }

      const summary = await runGrid(specs, { workers, resultsFile: options.results, runnerModule: options.runner, claimLeaseMs: leaseMs });
      const { failures, ...counts } = summary;
      const where = shard ? { shard: { index: shard.index, count: shard.count } } : {};
      process.stdout.write(`${JSON.stringify({ ...counts, ...where, results: options.results, failures })}\n`);
      if (summary.interrupted) throw new UserError('interrupted; finished runs are saved, rerun the same command to continue');
      if (summary.failed > 0) {
        throw new UserError(`${summary.failed} run(s) failed (not stored); rerun the same command to retry them`);
      }
    });
}
