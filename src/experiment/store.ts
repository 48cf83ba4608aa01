import { appendLine, readJsonLines, skippedLinesWarning } from '../io/jsonl';
import { rowHash } from './identity';
import { formatIssues, ResultRowSchema, type ResultRow } from './spec';

/**
 * The result store: an append-only JSONL file, one finished run per line. Its writers are grid
 * parents (workers hand results over IPC), several at once on one store if they like: claims.ts
 * keeps them off each other's runs, and each line goes down in a single O_APPEND write() followed by
 * fsync, so lines never interleave on a local disk and a crash can at worst leave one torn line at
 * the end. (Appends from several NFS clients are not atomic: job-array tasks write a store each.)
 * Stores from several machines merge with `healing results --merge` (merge.ts), and even by plain
 * concatenation: readers dedupe by identity (rowHash: spec, model fingerprint, resolved recipe,
 * engine numerics; the `hash` of every row written since identities exist, computed from the fields
 * of older rows).
 */

/** The path the CLI uses when --results is not given. */
export const DEFAULT_RESULTS_FILE = 'data/results/results.jsonl';

export interface ReadResultsOutcome {
  /** Valid rows, first occurrence of each identity, in file order. */
  rows: ResultRow[];
  /** Lines that are not JSON at all: a write cut short by a crash (or a hand edit gone wrong). */
  torn: number;
  /** Lines that are JSON but not a result row (1-based line numbers). */
  invalid: Array<{ line: number; error: string }>;
  /** Valid rows dropped because an earlier line has the same identity. */
  duplicates: number;
}

/**
 * Appends one row as one line. The line is validated in the form it will be read back (after JSON,
 * where NaN becomes null), so the store never receives a line its reader would reject.
 */
export function appendResult(file: string, row: ResultRow): void {
  const line = JSON.stringify(row);
  const check = ResultRowSchema.safeParse(JSON.parse(line));
  if (!check.success) throw new Error(`refusing to store an invalid result row: ${formatIssues(check.error)}`);
  appendLine(file, line);
}

/** Reads a store (a missing file is an empty store). Bad lines are counted, never fatal. */
export function readResults(file: string): ReadResultsOutcome {
  const lines = readJsonLines<ResultRow>(
    file,
    (json) => {
      const parsed = ResultRowSchema.safeParse(json);
      return parsed.success ? { row: parsed.data } : { error: formatIssues(parsed.error) };
    },
    'the result store',
  );
  const outcome: ReadResultsOutcome = { ...lines, rows: [], duplicates: 0 };
  const seen = new Set<string>();
  for (const row of lines.rows) {
    const identity = rowHash(row);
    if (seen.has(identity)) {
      outcome.duplicates++;
      continue;
    }
    seen.add(identity);
    outcome.rows.push(row);
  }
  return outcome;
}

/** One stderr line about skipped lines, or nothing when the store is clean. */
export function storeWarning(file: string, outcome: ReadResultsOutcome): string | undefined {
  return skippedLinesWarning(file, outcome);
}
