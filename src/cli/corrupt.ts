import type { Command } from 'commander';
import { initEngine } from '../backend/engine';
import { corrupt, parseCorruptionSpec, MODES, COMPONENTS, DEFAULT_MODE, DEFAULT_NOISE_RATIO, DEFAULT_PARTIAL_FRACTION, type CorruptionReport } from '../corruption';
import { resolveModelDir, SHIPPED_MODEL_NAMES } from '../io/models';
import { UserError } from '../errors';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint';
import { checkOutputDir } from '../io/output-dir';
import { disposeParams, type HeadKind } from '../model/names';

export interface CorruptCommandOptions {
  model: string;
  layers: string;
  components?: string;
  mode?: string;
  ratio?: string;
  fraction?: string;
  seed?: string;
  out: string;
  head?: string;
  dtype?: string;
  force?: boolean;
  json?: boolean;
}

export interface CorruptCommandResult extends CorruptionReport {
  model: string;
  out: string;
}

function parseSeed(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text.trim()) || Number(text) > 0xffffffff) throw new UserError(`--seed ${text}: expected a whole number in 0..4294967295`);
  return Number(text);
}

/** A fixed-width table of the touched tensors, for people; the JSON report is for programs. */
export function formatCorruptionTable(report: CorruptionReport): string {
  const num = (x: number) => (x === 0 ? '0' : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toFixed(4) : x.toExponential(3));
  const rows = report.tensors.map((t) => [t.name, `[${t.shape.join(',')}]`, num(t.before.std), num(t.after.std), num(t.after.mean)]);
  const header = ['tensor', 'shape', 'std before', 'std after', 'mean after'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const title = `corruption ${report.spec}, seed ${report.seed}: ${report.tensors.length} tensors in layers [${report.layers.join(', ')}]`;
  return [title, line(header), ...rows.map(line)].join('\n');
}

/** Loads, corrupts and saves; returns the report. Used by the CLI and callable from scripts. */
export async function runCorrupt(options: CorruptCommandOptions, log: (text: string) => void = () => {}): Promise<CorruptCommandResult> {
  const seed = parseSeed(options.seed);
  const dtype = (options.dtype ?? 'F32').toUpperCase();
  if (dtype !== 'F32' && dtype !== 'F16') throw new UserError(`--dtype ${options.dtype}: expected F32 or F16`);
  const head = options.head as HeadKind | undefined;
  if (head !== undefined && !['classifier', 'mlm', 'none'].includes(head)) {
    throw new UserError(`--head ${options.head}: expected classifier, mlm or none`);
  }
  // Validate the flags that don't depend on the model before reading (or downloading) a checkpoint.
  parseCorruptionSpec(options);
  const modelDir = await resolveModelDir(options.model);
  // The pretrained model is the baseline of every experiment: never replace it (or a folder holding it).
  const outDir = await checkOutputDir(options.out, { flag: '--out', inputs: [{ flag: '--model', dir: modelDir }], force: options.force });
  await initEngine();
  const checkpoint = await loadCheckpoint(modelDir, head ? { head } : {});
  let corrupted: ReturnType<typeof corrupt> | undefined;
  try {
    const spec = parseCorruptionSpec(options, checkpoint.config.numLayers);
    corrupted = corrupt(checkpoint.params, checkpoint.config, spec, seed);
    log(formatCorruptionTable(corrupted.report));
    await saveCheckpoint(
      options.out,
      {
        config: checkpoint.config,
        params: corrupted.params,
        head: checkpoint.head,
        labels: checkpoint.labels,
        tokenizerFiles: checkpoint.tokenizerFiles,
      },
      { dtype },
    );
    log(`wrote ${outDir}`);
    return { model: modelDir, out: outDir, ...corrupted.report };
  } finally {
    disposeParams(checkpoint.params);
    if (corrupted) disposeParams(corrupted.params);
  }
}

export function register(program: Command): void {
  program
    .command('corrupt')
    .description(
      'corrupt encoder layers of a checkpoint and save the result; prints a table of touched tensors on stderr and the JSON report on stdout',
    )
    .option('--model <dir>', `checkpoint directory, hub repo id, or a shipped model (${SHIPPED_MODEL_NAMES})`, 'default')
    .requiredOption(
      '--layers <spec>',
      'layers to corrupt, 0 = bottom: bottom:K, top:K, bottom:F / top:F (fraction F in (0,1)), a list 0,3,5, all, none',
    )
    .option('--components <list>', `comma-separated: ${COMPONENTS.join(', ')} (embeddings/pooler only when named)`, 'all')
    .option('--mode <mode>', MODES.join(' | '), DEFAULT_MODE)
    .option('--ratio <r>', `noise: std of the added noise as a multiple of each tensor std (default ${DEFAULT_NOISE_RATIO})`)
    .option('--fraction <f>', `partial: fraction of entries to re-initialise (default ${DEFAULT_PARTIAL_FRACTION})`)
    .option('--seed <n>', 'random seed', '0')
    .requiredOption('--out <dir>', 'directory to write the corrupted checkpoint to')
    .option('--head <kind>', 'head to keep: classifier | mlm | none (default: classifier if the checkpoint has one, else none)')
    .option('--dtype <dtype>', 'F32 | F16 weights in the written file', 'F32')
    .option('--force', 'replace --out if it already exists')
    .option('--json', 'print only the JSON report (no table on stderr)')
    .action(async (options: CorruptCommandOptions) => {
      const log = options.json ? () => {} : (text: string) => process.stderr.write(`${text}\n`);
      const result = await runCorrupt(options, log);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    });
}
