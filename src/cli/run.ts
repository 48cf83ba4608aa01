import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors';
import { resolveModelDir } from '../io/models';
import { parseConfig } from '../model/config';
import { expandGrid, parseShard, runGrid, shardOf } from '../experiment/grid';
import { specHash } from '../experiment/hash';
import { isPresetName, PRESET_NAMES, presetSpecs } from '../experiment/presets';
import { datasetLabel, specLabel, type ExperimentSpec } from '../experiment/spec';
import { DEFAULT_RESULTS_FILE, readResults, storeWarning } from '../experiment/store';

interface RunOptions {
  grid?: string;
  preset?: string;
  model: string;
  numLayers?: string;
  datasets?: string;
  workers?: string;
  shard?: string;
  results: string;
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

/** The specs the flags select, before the store is consulted. */
export async function selectSpecs(options: RunOptions): Promise<ExperimentSpec[]> {
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
    specs = presetSpecs(name, { model: options.model, numLayers, datasets });
  }
  if (options.shard !== undefined) {
    const { index, count } = parseShard(options.shard);
    specs = shardOf(specs, index, count);
  }
  return specs;
}

export function register(program: Command): void {
  program
    .command('run')
    .description(
      'run a grid of experiments (a grid file or a preset) on worker processes, appending each finished run to the ' +
        'result store; runs already in the store are skipped, so an interrupted grid continues where it stopped',
    )
    .option('--grid <file>', 'grid JSON: { model, datasets, corruptions, seeds, recipe } (a cross product) or { experiments: [spec, ...] }')
    .option('--preset <name>', `a built-in grid: ${PRESET_NAMES.join(' | ')}`)
    .option('--model <model>', 'model for a preset: "default", "tiny", a checkpoint directory or a hub repo id', 'default')
    .option('--num-layers <n>', "encoder depth for a preset's bottom/top-K corruptions (default: read from the model's config.json)")
    .option('--datasets <a,b>', 'only these datasets (a preset runs them instead of its own list)')
    .option('--workers <n>', 'worker processes, each with its own TF.js engine (default: number of cores)')
    .option('--shard <i/n>', 'run only shard i of n (1-based), a deterministic slice by spec hash; shard stores merge by concatenation')
    .option('--results <file>', 'result store (JSONL, append-only)', DEFAULT_RESULTS_FILE)
    .option('--runner <module>', 'module exporting runExperiment(spec, options) (default: src/experiment/run.ts)')
    .option('--dry-run', 'list the selected runs as done/pending and exit')
    .action(async (options: RunOptions) => {
      const specs = await selectSpecs(options);
      const workers = options.workers === undefined ? undefined : positiveInt('--workers', options.workers);

      if (options.dryRun) {
        const store = readResults(options.results);
        const warning = storeWarning(options.results, store);
        if (warning) process.stderr.write(`warning: ${warning}\n`);
        const done = new Set(store.rows.map((r) => r.hash));
        let doneCount = 0;
        for (const spec of specs) {
          const hash = specHash(spec);
          const state = done.has(hash) ? 'done' : 'pending';
          if (state === 'done') doneCount++;
          process.stdout.write(`${hash}  ${state.padEnd(7)}  ${specLabel(spec)}\n`);
        }
        process.stdout.write(`${JSON.stringify({ total: specs.length, done: doneCount, pending: specs.length - doneCount })}\n`);
        return;
      }

      const summary = await runGrid(specs, { workers, resultsFile: options.results, runnerModule: options.runner });
      const { failures, ...counts } = summary;
      process.stdout.write(`${JSON.stringify({ ...counts, results: options.results, failures })}\n`);
      if (summary.interrupted) throw new UserError('interrupted; finished runs are saved, rerun the same command to continue');
      if (summary.failed > 0) {
        throw new UserError(`${summary.failed} run(s) failed (not stored); rerun the same command to retry them`);
      }
    });
}
