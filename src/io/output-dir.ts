import { constants } from 'node:fs';
import { access, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { UserError } from '../errors';

/**
 * The one rule for commands that write a directory (a checkpoint, an exported model): checked when the
 * command starts, before any work, so a long run never ends in a refused save.
 * - a target that exists and is not a directory is an error;
 * - a non-empty target is replaced only with --force;
 * - a target that is, or contains, one of the command's inputs is never replaced, --force or not
 *   (replacing a parent of the model directory would delete the model);
 * - the nearest existing ancestor must be writable.
 */
export interface OutputDirCheck {
  /** The flag that named the target, for messages (e.g. "--out"). */
  flag: string;
  /** Directories the command reads (the model), by flag: never replaced. */
  inputs?: Array<{ flag: string; dir: string }>;
  force?: boolean;
  /** How the caller says "replace it", for the refusal (default "pass --force"; the API says "overwrite: true"). */
  forceHint?: string;
}

async function real(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

/** Whether `inner` is `outer` or lies below it. */
function within(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Nearest existing ancestor of a path (the path itself if it exists). */
async function existingAncestor(path: string): Promise<string> {
  let at = path;
  for (;;) {
    try {
      await stat(at);
      return at;
    } catch {
      const up = dirname(at);
      if (up === at) return at;
      at = up;
    }
  }
}

/** A file a command appends to (a result store): checked at start, so a finished run is never lost to it. */
export async function checkWritableFile(file: string, flag: string): Promise<string> {
  const resolved = resolve(file);
  let isDir = false;
  try {
    isDir = (await stat(resolved)).isDirectory();
  } catch {
    // absent: its folder must be creatable
  }
  if (isDir) throw new UserError(`${flag} ${file}: is a directory, not a file`);
  const at = await existingAncestor(resolved);
  try {
    await access(at, constants.W_OK);
  } catch {
    throw new UserError(`${flag} ${file}: cannot write there (${at} is not writable)`);
  }
  return resolved;
}

export async function checkOutputDir(target: string, check: OutputDirCheck): Promise<string> {
  const resolved = resolve(target);
  const out = await real(resolved);
  for (const input of check.inputs ?? []) {
    const dir = await real(input.dir);
    if (within(out, dir)) {
      const how = out === dir ? 'is' : 'contains';
      throw new UserError(`${check.flag} ${target}: ${how} the ${input.flag} directory ${input.dir}; replacing it would lose the input (choose another directory)`);
    }
  }
  let kind: 'dir' | 'other' | undefined;
  try {
    kind = (await stat(resolved)).isDirectory() ? 'dir' : 'other';
  } catch {
    kind = undefined;
  }
  if (kind === 'other') throw new UserError(`${check.flag} ${target}: exists and is not a directory`);
  if (kind === 'dir' && !check.force && (await readdir(resolved)).length > 0) {
    throw new UserError(`${check.flag} ${target}: already exists and is not empty (${check.forceHint ?? 'pass --force'} to replace it)`);
  }
  const ancestor = await existingAncestor(dirname(resolved));
  try {
    await access(ancestor, constants.W_OK);
  } catch {
    throw new UserError(`${check.flag} ${target}: cannot write there (${ancestor} is not writable)`);
  }
  return resolved;
}
