import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { UserError } from '../errors';
import { resolveModel, type DownloadModelOptions } from './hub';

/**
 * The small BERTs this project pretrains and ships in data/models/ (see their model cards). They are
 * what every command uses when --model is not given, so a fresh clone runs the study offline.
 */
export const SHIPPED_MODELS = {
  /**
   * The study model: 6 x 256, pretrained on 50M tokens (its model card), deep enough to compare
   * bottom-K and top-K corruption. Also reachable as `small-v3`, the name its first runs recorded.
   */
  default: 'healing-bert-small-v3',
  /** A fast model for tests, CI and quick runs. */
  tiny: 'healing-bert-tiny',
  /** The same shape as `default`, pretrained on 50M tokens; `default` names it. */
  'small-v3': 'healing-bert-small-v3',
  /** The default until 2026-12: the same shape on 1.6M tokens, kept so its recorded results stay reproducible. */
  'small-v1': 'healing-bert-small',
} as const;

export type ShippedModel = keyof typeof SHIPPED_MODELS;

/** The shipped models' names as --model help texts list them. */
export const SHIPPED_MODEL_NAMES = Object.keys(SHIPPED_MODELS).join(' / ');

export const MODELS_DIR = fileURLToPath(new URL('../../data/models/', import.meta.url));

export function shippedModelDir(name: ShippedModel): string {
  return join(MODELS_DIR, SHIPPED_MODELS[name]);
}

/**
 * A --model argument to a checkpoint directory: absent or "default" / "tiny" name a shipped model;
 * anything else is a local directory or a hub repository id (downloaded into the cache, with a
 * progress bar unless `onProgress` is given: loadModel's callback).
 */
export async function resolveModelDir(arg?: string, options: Pick<DownloadModelOptions, 'onProgress'> = {}): Promise<string> {
  const name = (arg ?? 'default') as ShippedModel;
  if (name in SHIPPED_MODELS) {
    const dir = shippedModelDir(name);
    if (!existsSync(join(dir, 'config.json'))) {
      throw new UserError(
        `the shipped model "${name}" is missing at ${dir}; rebuild it with the command in its model card or pass --model DIR`,
      );
    }
    return dir;
  }
  return resolveModel(arg!, options);
}
