import type { Command } from 'commander';
import { UserError } from '../errors';
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

export function register(program: Command): void {
  program
    .command('results')
    .description('print one row per stored run with accuracy, macro-F1 and recovery (corrupted accuracy / clean accuracy, same dataset, model, recipe and seed)')
    .option('--results <file>', 'result store (JSONL); shard stores can be concatenated first', DEFAULT_RESULTS_FILE)
    .option('--format <format>', `output format: ${FORMATS.join(' | ')}`, 'table')
    .action((options: { results: string; format: string }) => {
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
