import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, fstatSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../errors';

/**
 * Appends one line to an append-only JSONL file so that a crash can at worst leave one torn line at
 * the end: one write() per line, then fsync (of the directory too when the file is new). Readers of
 * such files skip a torn line; this writer starts on a fresh line after one.
 */
export function appendLine(file: string, line: string): void {
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

export interface JsonLines<T> {
  /** Lines that parsed, in file order. */
  rows: T[];
  /** Lines that are not JSON at all: a write cut short by a crash (or a hand edit gone wrong). */
  torn: number;
  /** Lines that are JSON but not a row (1-based line numbers). */
  invalid: Array<{ line: number; error: string }>;
}

/**
 * Reads an append-only JSONL file (a missing file has no rows). `parse` turns one JSON value into a
 * row or says why it is not one; bad lines are counted, never fatal.
 */
export function readJsonLines<T>(file: string, parse: (json: unknown) => { row: T } | { error: string }, what: string): JsonLines<T> {
  const outcome: JsonLines<T> = { rows: [], torn: 0, invalid: [] };
  if (!existsSync(file)) return outcome;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UserError(`${file}: cannot read ${what} (${(error as Error).message})`);
  }
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
    const parsed = parse(json);
    if ('error' in parsed) outcome.invalid.push({ line: i + 1, error: parsed.error });
    else outcome.rows.push(parsed.row);
  }
  return outcome;
}

/** One line about the lines a reader skipped, or nothing when the file is clean. */
export function skippedLinesWarning(file: string, outcome: Pick<JsonLines<unknown>, 'torn' | 'invalid'>): string | undefined {
  const parts: string[] = [];
  if (outcome.torn) parts.push(`${outcome.torn} torn line(s) ignored (an interrupted write)`);
  if (outcome.invalid.length) {
    const first = outcome.invalid[0];
    parts.push(`${outcome.invalid.length} invalid line(s) ignored (first: line ${first.line}: ${first.error})`);
  }
  return parts.length ? `${file}: ${parts.join('; ')}` : undefined;
}
