/**
 * Merging result stores (the shards of a job array, stores from several machines) into one: rows
 * deduplicated by identity (rowHash), inputs never changed. Two rows with one identity but other
 * measurements are conflicts: the same experiment gave two answers (BLAS at another thread count,
 * a hand-edited row), and which one the study should use is the user's call, not ours.
 */
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { UserError } from '../errors';
import { readJsonLines, skippedLinesWarning, type JsonLines } from '../io/jsonl';
import { canonicalJson } from './hash';
import { rowHash } from './identity';
import { formatIssues, ResultRowSchema, type ResultRow } from './spec';

/** What a rerun of one identity must reproduce for the two rows to count as one result. */
function measurements(row: ResultRow): string {
  return canonicalJson({ status: row.status, final: row.final, epochs: row.epochs, lossCurve: row.lossCurve, divergedAt: row.divergedAt });
}

interface Entry {
  row: ResultRow;
  /** The line as parsed JSON, before the schema's defaults: what the merged store receives, unchanged. */
  json: unknown;
}

export interface MergeInput {
  file: string;
  rows: number;
  torn: number;
  invalid: JsonLines<unknown>['invalid'];
}

export interface MergeConflict {
  hash: string;
  label: string;
  /** Every file holding a row of this identity with measurements unlike the first one's, the first one's file first. */
  files: string[];
  /** The differing final metrics, as "file: accuracy a, macroF1 f". */
  values: string[];
}

export interface MergePlan {
  inputs: MergeInput[];
  /** One JSON value per kept row (the first of each identity, in argument then file order). */
  lines: unknown[];
  /** Rows dropped as exact repeats of an identity already kept with the same measurements. */
  duplicates: number;
  conflicts: MergeConflict[];
}

function readEntries(file: string): JsonLines<Entry> {
  return readJsonLines<Entry>(
    file,
    (json) => {
      const parsed = ResultRowSchema.safeParse(json);
      return parsed.success ? { row: { row: parsed.data, json } } : { error: formatIssues(parsed.error) };
    },
    'the result store',
  );
}

/** Reads the inputs and decides the merged store's lines; writes nothing. */
export function planMerge(files: readonly string[]): MergePlan {
  const plan: MergePlan = { inputs: [], lines: [], duplicates: 0, conflicts: [] };
  const kept = new Map<string, { entry: Entry; file: string; measured: string }>();
  const conflicts = new Map<string, MergeConflict>();
  for (const file of files) {
    if (!existsSync(file)) throw new UserError(`--merge ${file}: no such file`);
    const read = readEntries(file);
    plan.inputs.push({ file, rows: read.rows.length, torn: read.torn, invalid: read.invalid });
    for (const entry of read.rows) {
      const hash = rowHash(entry.row);
      const measured = measurements(entry.row);
      const first = kept.get(hash);
      if (!first) {
        kept.set(hash, { entry, file, measured });
        plan.lines.push(entry.json);
        continue;
      }
      if (first.measured === measured) {
        plan.duplicates++;
        continue;
      }
      const conflict = conflicts.get(hash) ?? { hash, label: first.entry.row.label, files: [first.file], values: [metricsText(first.file, first.entry.row)] };
      conflict.files.push(file);
      conflict.values.push(metricsText(file, entry.row));
      conflicts.set(hash, conflict);
    }
  }
  plan.conflicts = [...conflicts.values()];
  return plan;
}

function metricsText(file: string, row: ResultRow): string {
  const f = (x: number | null): string => (x === null ? 'NaN' : String(x));
  return `${file}: ${row.status}, accuracy ${f(row.final.accuracy)}, macroF1 ${f(row.final.macroF1)}`;
}

/** One line per conflict, for the error or the --keep-first warning. */
export function conflictLines(conflicts: readonly MergeConflict[]): string[] {
  return conflicts.map((c) => `conflict: ${c.hash} (${c.label}) differs between ${[...new Set(c.files)].join(', ')}: ${c.values.join(' | ')}`);
}

/** Warnings about lines the merge skipped in its inputs (they stay in the inputs). */
export function inputWarnings(plan: MergePlan): string[] {
  return plan.inputs.flatMap((input) => {
    const warning = skippedLinesWarning(input.file, input);
    return warning ? [`${warning} (not merged)`] : [];
  });
}

/** Same file by device and inode (a symlink or a hard link counts), or by resolved path when it does not exist yet. */
function sameFile(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    const real = (p: string): string => {
      try {
        return realpathSync(p);
      } catch {
        return join(realpathOr(dirname(p)), basename(p));
      }
    };
    return real(a) === real(b);
  }
}

function realpathOr(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return resolve(dir);
  }
}

/** Refuses an --out that is an input, or that exists without --force; before anything is read. */
export function checkMergeOut(out: string, inputs: readonly string[], force: boolean): void {
  for (const input of inputs) {
    if (sameFile(out, input)) throw new UserError(`--out ${out} is also an input (${input}); write the merge to a new file`);
  }
  if (existsSync(out)) {
    if (statSync(out).isDirectory()) throw new UserError(`--out ${out}: is a directory, not a file`);
    if (!force) throw new UserError(`--out ${out} exists; pass --force to replace it`);
  }
}

/**
 * Writes the merged lines to `out` through a temporary file beside it, then links (no --force: fails
 * if `out` appeared meanwhile) or renames (--force) it into place, so `out` is never half written.
 */
export function writeMerged(out: string, lines: readonly unknown[], force: boolean): void {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'wx');
  try {
    writeSync(fd, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    if (force) {
      renameSync(tmp, out);
      return;
    }
    try {
      linkSync(tmp, out);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new UserError(`--out ${out} exists; pass --force to replace it`);
      throw error;
    }
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
}
