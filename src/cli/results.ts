import type { Command } from 'commander';
import { UserError } from '../errors';
import { checkMergeOut, conflictLines, inputWarnings, planMerge, writeMerged } from '../experiment/merge';
import { withRecovery, type RowWithRecovery } from '../experiment/recovery';
import { corruptionLabel, datasetLabel } from '../experiment/spec';
import { DEFAULT_RESULTS_FILE, readResults, storeWarning } from '../experiment/store';

const FORMATS = ['table', 'csv', 'json'] as const;
type Format = (typeof FORMATS)[number];

/** One printed row per run: the paper's numbers plus what identifies the run. */
export interface ResultLine {
  dataset: string;
  corruption: string;
  seed: number;
  accuracy: number | null;
  macroF1: number | null;
  recovery: number | null;
  status: string;
  model: string;
  hash: string;
}

const COLUMNS: Array<keyof ResultLine> = ['dataset', 'corruption', 'seed', 'accuracy', 'macroF1', 'recovery', 'status', 'model', 'hash'];

export function resultLines(rows: readonly RowWithRecovery[]): ResultLine[] {
  return rows.map((row) => ({
    dataset: datasetLabel(row.spec.dataset),
    corruption: corruptionLabel(row.spec),
    seed: row.spec.seed,
    accuracy: row.final.accuracy,
    macroF1: row.final.macroF1,
    recovery: row.recovery ?? null,
    status: row.status,
    model: row.spec.model,
    hash: row.hash,
  }));
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function formatResults(lines: readonly ResultLine[], format: Format): string {
  if (format === 'json') return `${JSON.stringify(lines, null, 2)}\n`;
  if (format === 'csv') {
    return [COLUMNS.join(','), ...lines.map((l) => COLUMNS.map((c) => csvCell(l[c])).join(','))].join('\n') + '\n';
  }
  const cell = (line: ResultLine, column: keyof ResultLine): string => {
    const value = line[column];
    if (value === null) return '-';
    if (typeof value === 'number' && column !== 'seed') return value.toFixed(4);
    return String(value);
  };
  const table = [COLUMNS.map(String), ...lines.map((l) => COLUMNS.map((c) => cell(l, c)))];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const numeric = new Set<keyof ResultLine>(['seed', 'accuracy', 'macroF1', 'recovery']);
  return (
    table
      .map((r) => r.map((text, i) => (numeric.has(COLUMNS[i]) ? text.padStart(widths[i]) : text.padEnd(widths[i]))).join('  ').trimEnd())
      .join('\n') + '\n'
  );
}

interface ResultsOptions {
  results: string;
  format: string;
  merge?: string[];
  out?: string;
  force?: boolean;
  keepFirst?: boolean;
}

/**
 * `--merge a b ... --out m`: the inputs' rows, one per identity, into a new store. Conflicting rows
 * (one identity, other measurements) fail the merge, naming hash and files, unless --keep-first.
 */
function merge(options: ResultsOptions & { merge: string[] }): void {
  const out = options.out;
  if (out === undefined) throw new UserError('--merge needs --out FILE (the merged store; the inputs are not changed)');
  checkMergeOut(out, options.merge, options.force === true);
  const plan = planMerge(options.merge);
  for (const warning of inputWarnings(plan)) process.stderr.write(`warning: ${warning}\n`);
  const conflicts = conflictLines(plan.conflicts);
  if (conflicts.length > 0 && !options.keepFirst) {
    for (const line of conflicts) process.stderr.write(`${line}\n`);
    throw new UserError(
      `${plan.conflicts.length} identit${plan.conflicts.length === 1 ? 'y has' : 'ies have'} rows with different measurements; ` +
        `nothing written (--keep-first keeps the first row of each, in argument order)`,
    );
  }
  for (const line of conflicts) process.stderr.write(`warning: ${line} (kept the first)\n`);
  writeMerged(out, plan.lines, options.force === true);
  const inputs = plan.inputs.map((i) => ({ file: i.file, rows: i.rows, torn: i.torn, invalid: i.invalid.length }));
  const summary = { out, rows: plan.lines.length, duplicates: plan.duplicates, conflicts: plan.conflicts, inputs };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

export function register(program: Command): void {
  program
    .command('results')
    .description(
      'print one row per stored run with accuracy, macro-F1 and recovery (corrupted accuracy / clean accuracy, same dataset, model, ' +
        'recipe and seed); or, with --merge, combine stores (e.g. the shards of a job array) into one',
    )
    .option('--results <file>', 'result store (JSONL)', DEFAULT_RESULTS_FILE)
    .option('--format <format>', `output format: ${FORMATS.join(' | ')}`, 'table')
    .option('--merge <stores...>', 'merge these stores into --out: one row per identity; rows of one identity with other metrics are conflicts')
    .option('--out <file>', 'with --merge: the merged store to write (never one of the inputs)')
    .option('--force', 'with --merge: replace an existing --out')
    .option('--keep-first', 'with --merge: on a conflict keep the first row (in argument order) and warn, instead of failing')
    .action((options: ResultsOptions) => {
      if (options.merge !== undefined) {
        merge({ ...options, merge: options.merge });
        return;
      }
      for (const flag of ['out', 'force', 'keepFirst'] as const) {
        if (options[flag] !== undefined) throw new UserError(`--${flag === 'keepFirst' ? 'keep-first' : flag} goes with --merge`);
      }
      if (!(FORMATS as readonly string[]).includes(options.format)) {
        throw new UserError(`--format ${options.format}: expected one of ${FORMATS.join(', ')}`);
      }
      const store = readResults(options.results);
      const warning = storeWarning(options.results, store);
      if (warning) process.stderr.write(`warning: ${warning}\n`);
      if (store.rows.length === 0) process.stderr.write(`${options.results}: no results yet\n`);
      process.stdout.write(formatResults(resultLines(withRecovery(store.rows)), options.format as Format));
    });
}
