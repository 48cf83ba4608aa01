import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, fstatSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../errors';
import { rowHash } from './identity';
import { formatIssues, ResultRowSchema, type ResultRow } from './spec';

/**
 * The result store: an append-only JSONL file, one finished run per line. Only one process writes a
 * given store at a time (the grid's parent; workers hand results over IPC), each line goes down in a
 * single write() followed by fsync, so a crash can at worst leave one torn line at the end. Shards
 * written on different machines merge by plain concatenation: readers dedupe by identity (rowHash:
 * spec, model fingerprint, resolved recipe, engine numerics; the `hash` of every row written since
 * identities exist, computed from the fields of older rows).
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
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const created = !existsSync(file);
  const fd = openSync(file, 'a+');
  try {
    // A torn tail from a crash would swallow our line into its own; start on a fresh line instead.
    const size = fstatSync(fd).size;
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = '\n';
    }
    const bytes = Buffer.from(`${prefix}${line}\n`, 'utf8');
    // One write call per line: O_APPEND places it at the end in one piece; loop only if the kernel
    // accepts part of it (never seen for regular files, but write() is allowed to).
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // A newly created file is only durable once its directory entry is.
  if (created) syncDir(dir);
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the data itself is already synced.
  }
}

/** Reads a store (a missing file is an empty store). Bad lines are counted, never fatal. */
export function readResults(file: string): ReadResultsOutcome {
  const outcome: ReadResultsOutcome = { rows: [], torn: 0, invalid: [], duplicates: 0 };
  if (!existsSync(file)) return outcome;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UserError(`${file}: cannot read the result store (${(error as Error).message})`);
  }
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      outcome.torn++;
      continue;
    }
    const parsed = ResultRowSchema.safeParse(json);
    if (!parsed.success) {
      outcome.invalid.push({ line: i + 1, error: formatIssues(parsed.error) });
      continue;
    }
    const identity = rowHash(parsed.data);
    if (seen.has(identity)) {
      outcome.duplicates++;
      continue;
    }
    seen.add(identity);
    outcome.rows.push(parsed.data);
  }
  return outcome;
}

/** One stderr line about skipped lines, or nothing when the store is clean. */
export function storeWarning(file: string, outcome: ReadResultsOutcome): string | undefined {
  const parts: string[] = [];
  if (outcome.torn) parts.push(`${outcome.torn} torn line(s) ignored (an interrupted write)`);
  if (outcome.invalid.length) {
    const first = outcome.invalid[0];
    parts.push(`${outcome.invalid.length} invalid line(s) ignored (first: line ${first.line}: ${first.error})`);
  }
  return parts.length ? `${file}: ${parts.join('; ')}` : undefined;
}
