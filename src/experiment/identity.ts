import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initEngine, TFJS_NUMERICS } from '../backend/engine';
import { UserError } from '../errors';
import { resolveModelDir } from '../io/models';
import { ConfigError, parseConfig, type ModelConfig } from '../model/config';
import { RecipeSchema, resolveRecipe, type ResolvedRecipe } from '../train/recipe';
import { canonicalJson } from './hash';
import { ExperimentSpecSchema, type ExperimentSpec, type ExperimentSpecInput, type ResultRow } from './spec';

/**
 * What a run ran, as far as its numbers depend on it: the spec, the weights behind the spec's model
 * name, the recipe with everything resolved (the learning rate a spec leaves open is chosen from the
 * model), and the engine's numerics version. A result's identity in the store is the hash of these
 * four, so a re-pretrained model, a changed learning-rate rule or an engine with other arithmetic
 * reruns a grid instead of being mistaken for what is recorded.
 *
 * Rows written before the identity existed (hash = specHash(spec), no `numerics`) keep their meaning:
 * their identity is computed from their own fields, with the numerics every recorded run had
 * ('tfjs-1', the stock TF.js engines) and the fingerprint and recipe they recorded.
 */
export interface RunIdentity {
  spec: ExperimentSpec;
  /** modelFingerprint() of the model directory the run loaded. */
  modelFingerprint: string;
  /** The recipe fine-tuning used: the spec's with the learning rate resolved. */
  recipe: ResolvedRecipe;
  /** EngineInfo.numerics of the engine that ran it. */
  numerics: string;
}

/** The fingerprint of a row that recorded none (runners before fingerprints): matches no model. */
export const UNRECORDED_FINGERPRINT = 'unrecorded';

/** The numerics of a row that recorded none: every run before numerics existed was on a stock engine. */
export const LEGACY_NUMERICS: string = TFJS_NUMERICS;

/**
 * Identity of the weights a run started from: a spec names a model ("default", a path, a repo id), but
 * what that name points at can change (a re-pretrained shipped model), so each row records this.
 */
export async function modelFingerprint(dir: string): Promise<string> {
  const hash = createHash('sha256');
  // pytorch_model.bin last: a safetensors checkpoint's fingerprint stays what it was before .bin files loaded.
  for (const file of ['config.json', 'model.safetensors', 'pytorch_model.bin']) {
    const path = join(dir, file);
    if (existsSync(path)) hash.update(await readFile(path));
  }
  return hash.digest('hex').slice(0, 16);
}

const RECIPE_KEYS = Object.keys(RecipeSchema.shape) as Array<keyof ResolvedRecipe>;

/**
 * The part of a recorded recipe that is the recipe: how the run was executed (a memory cap on batch
 * tokens, fields a newer runner adds) is recorded beside it but does not change what was trained.
 */
export function identityRecipe(recipe: Readonly<Record<string, unknown>>): ResolvedRecipe {
  const out: Record<string, unknown> = {};
  for (const key of RECIPE_KEYS) if (recipe[key] !== undefined) out[key] = recipe[key];
  return out as unknown as ResolvedRecipe;
}

function identityJson(identity: RunIdentity): string {
  return canonicalJson({
    spec: ExperimentSpecSchema.parse(identity.spec),
    modelFingerprint: identity.modelFingerprint,
    recipe: identityRecipe(identity.recipe as unknown as Record<string, unknown>),
    numerics: identity.numerics,
  });
}

/** A result's identity in the store: first 16 hex chars of sha256 of the identity's canonical JSON. */
export function identityHash(identity: RunIdentity): string {
  return createHash('sha256').update(identityJson(identity)).digest('hex').slice(0, 16);
}

/** What a stored row ran, from its own fields (rows without `numerics` ran on 'tfjs-1'). */
export function rowIdentity(row: ResultRow): RunIdentity {
  return {
    spec: row.spec,
    modelFingerprint: row.modelFingerprint ?? UNRECORDED_FINGERPRINT,
    recipe: identityRecipe(row.recipe),
    numerics: row.numerics ?? LEGACY_NUMERICS,
  };
}

/** The identity hash of a stored row: what the store dedupes by and the grid skips by. */
export function rowHash(row: ResultRow): string {
  return identityHash(rowIdentity(row));
}

/** Which parts of two identities differ, in words, e.g. ["numerics tfjs-1 -> native-1"]. */
export function identityChanges(before: RunIdentity, after: RunIdentity): string[] {
  const changes: string[] = [];
  if (canonicalJson(ExperimentSpecSchema.parse(before.spec)) !== canonicalJson(ExperimentSpecSchema.parse(after.spec))) changes.push('spec');
  if (before.modelFingerprint !== after.modelFingerprint) {
    changes.push(`model fingerprint ${before.modelFingerprint} -> ${after.modelFingerprint}`);
  }
  const a = identityRecipe(before.recipe as unknown as Record<string, unknown>);
  const b = identityRecipe(after.recipe as unknown as Record<string, unknown>);
  const recipe = RECIPE_KEYS.filter((k) => a[k] !== b[k]).map((k) => `${k} ${a[k]} -> ${b[k]}`);
  if (recipe.length) changes.push(`recipe ${recipe.join(', ')}`);
  if (before.numerics !== after.numerics) changes.push(`numerics ${before.numerics} -> ${after.numerics}`);
  return changes;
}

/** The numerics of this process's engine (started if it is not yet). */
export async function engineNumerics(): Promise<string> {
  const info = await initEngine();
  const numerics = (info as { numerics?: unknown }).numerics;
  if (typeof numerics !== 'string' || numerics === '') {
    throw new Error(`the ${info.backend} engine reports no numerics version (EngineInfo.numerics in src/backend/engine.ts)`);
  }
  return numerics;
}

/** A spec's identity as it would run now. */
export type IdentityResolver = (spec: ExperimentSpecInput) => Promise<RunIdentity>;

export interface IdentityResolverOptions {
  /**
   * Numerics of the engine the runs will use, or how to get it (default: engineNumerics(), this
   * process's engine; grid workers inherit this process's environment, so they choose the same one).
   */
  numerics?: string | (() => Promise<string>);
}

/**
 * Computes identities without running anything: the model name is resolved to its directory, the
 * directory fingerprinted and its config read once per resolver (a grid's specs share a few models),
 * the engine's numerics asked once. Errors a worker would hit too (a missing model, a bad config)
 * are UserErrors, so a grid can fail those specs without starting them.
 */
export function createIdentityResolver(options: IdentityResolverOptions = {}): IdentityResolver {
  const dirs = new Map<string, Promise<string>>();
  const models = new Map<string, Promise<{ fingerprint: string; config: ModelConfig }>>();
  let numerics: Promise<string> | undefined;
  const modelInfo = (dir: string) => {
    let info = models.get(dir);
    if (!info) {
      info = (async () => {
        const file = join(dir, 'config.json');
        let config: ModelConfig;
        try {
          config = parseConfig(JSON.parse(await readFile(file, 'utf8')), file);
        } catch (error) {
          if (error instanceof ConfigError || error instanceof SyntaxError) throw new UserError(error.message);
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${file}: no such file (not a model directory?)`);
          throw error;
        }
        return { fingerprint: await modelFingerprint(dir), config };
      })();
      models.set(dir, info);
    }
    return info;
  };
  return async (input) => {
    const spec = ExperimentSpecSchema.parse(input);
    let dir = dirs.get(spec.model);
    if (!dir) {
      dir = resolveModelDir(spec.model);
      dirs.set(spec.model, dir);
    }
    const { fingerprint, config } = await modelInfo(await dir);
    const opt = options.numerics;
    numerics ??= typeof opt === 'string' ? Promise.resolve(opt) : (opt ?? engineNumerics)();
    return { spec, modelFingerprint: fingerprint, recipe: resolveRecipe(spec, config), numerics: await numerics };
  };
}
