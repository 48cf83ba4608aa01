import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { jsonErrorText, UserError } from '../errors';
import { userCacheDir } from '../io/hub';

/**
 * Where datasets live on this machine, and the info.json that describes each one:
 *   <dataDir>/<name>/<split>.jsonl   one {"text": string, "label": int} per line, labels 0-based
 *   <dataDir>/<name>/info.json       label names and per-split row / label counts
 */

/**
 * The data directory when neither --data-dir nor HEALING_DATA_DIR says otherwise: a user cache beside
 * the hub's (~/.cache/huggingface), outside any checkout, so that every clone shares one download and
 * `git clean` never deletes it.
 */
export function defaultDataDir(): string {
  return join(userCacheDir(), 'healing-bert', 'datasets');
}

/** --data-dir, else HEALING_DATA_DIR, else defaultDataDir(). */
/** How --data-dir's default reads in every command's --help. */
export function dataDirDefaultText(): string {
  return `HEALING_DATA_DIR, else ${defaultDataDir()}; a missing dataset is fetched from the hub on first use`;
}

export function dataDir(option?: string): string {
  return resolve(option || process.env.HEALING_DATA_DIR || defaultDataDir());
}

/** What chose dataDir(option), for messages that tell the user how to point it elsewhere. */
export function dataDirOrigin(option?: string): string {
  if (option) return '--data-dir';
  if (process.env.HEALING_DATA_DIR) return 'HEALING_DATA_DIR';
  return 'the default data directory; HEALING_DATA_DIR is not set';
}

const labelCounts = z.record(z.string().regex(/^\d+$/), z.number().int().nonnegative());

export const DatasetInfoSchema = z.looseObject({
  name: z.string().min(1),
  hub_id: z.string().optional(),
  task: z.string().optional(),
  label_names: z.array(z.string().min(1)).min(2),
  splits: z.record(
    z.string().min(1),
    z.looseObject({
      rows: z.number().int().nonnegative(),
      label_counts: labelCounts.optional(),
      official: z.boolean().optional(),
    }),
  ),
  source: z.string().optional(),
  notes: z.string().optional(),
});

export type DatasetInfo = z.infer<typeof DatasetInfoSchema>;

export async function readInfo(file: string): Promise<DatasetInfo> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file}: ${code ?? (error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${file}: not valid JSON (${jsonErrorText(error, text)})`);
  }
  const parsed = DatasetInfoSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
