import { basename } from 'node:path';
import { z } from 'zod';
import { componentsSchema, DEFAULT_MODE, fractionSchema, modeSchema, ratioSchema } from '../corruption/spec';
import { RecipeSchema, ResolvedRecipeSchema } from '../train/recipe';

// Grid files read the recipe schema from here, with the other parts of a spec.
export { RecipeSchema };

/**
 * An experiment is data: which model, which dataset (and how much of it), which corruption, which
 * fine-tuning recipe, which seed. Objects are strict so a typo in a grid file ("learningrate") is an
 * error instead of a silently ignored field that would also change nothing about the hash.
 */

const positiveInt = z.number().int().positive();

export const DatasetSpecSchema = z
  .strictObject({
    /** A name from the dataset registry (src/data/registry.ts), e.g. "sst2". */
    name: z.string().min(1).optional(),
    /** User data: JSONL files of { text, label }. Either `name` or `train` + `eval`. */
    train: z.string().min(1).optional(),
    eval: z.string().min(1).optional(),
    /** Registry split to evaluate on; absent = the registry's default evaluation split. */
    evalSplit: z.string().min(1).optional(),
    /** Stratified subsample sizes; absent = the whole split. */
    trainSize: positiveInt.optional(),
    evalSize: positiveInt.optional(),
    maxLength: positiveInt.default(128),
    /** User data only: the label count when the files don't show every label (default: inferred). */
    numLabels: z.number().int().min(2).optional(),
  })
  .superRefine((d, ctx) => {
    const hasFiles = d.train !== undefined || d.eval !== undefined;
    if (d.name !== undefined && hasFiles) {
      ctx.addIssue({ code: 'custom', message: 'give either name (a registry dataset) or train + eval (JSONL files), not both' });
    } else if (d.name !== undefined && d.numLabels !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'numLabels applies to user data (train + eval files); a registry dataset knows its labels' });
    } else if (d.name === undefined && (d.train === undefined || d.eval === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs name (a registry dataset) or both train and eval (JSONL files)' });
    }
  });

/**
 * A corruption as an experiment states it: the text form of the layers, with defaults. Its
 * vocabulary and bounds are src/corruption/spec.ts's own schemas (that file loads no TF.js).
 */
export const CorruptionSpecSchema = z.strictObject({
  /**
   * Which encoder layers, in src/corruption/spec.ts's syntax: "bottom:K", "top:K", an explicit list "0,3",
   * or a fraction of the layers. Layer 0 is the bottom. Checked against the model's depth at run time,
   * because the spec doesn't know the model's number of layers.
   */
  layers: z.string().trim().min(1),
  components: componentsSchema.default(['all']),
  mode: modeSchema.default(DEFAULT_MODE),
  ratio: ratioSchema.optional(),
  fraction: fractionSchema.optional(),
});

export const ExperimentSpecSchema = z.strictObject({
  /** A local checkpoint directory, a hub repo id, or "default" (the project's shipped model). */
  model: z.string().min(1).default('default'),
  dataset: DatasetSpecSchema,
  /** null = the clean baseline. */
  corruption: CorruptionSpecSchema.nullable().default(null),
  /** Defaults and the learning-rate rule: src/train/recipe.ts. */
  recipe: RecipeSchema.prefault({}),
  seed: z.number().int().nonnegative().default(0),
  /** Train from randomly initialised weights (the "nothing to heal from" baseline). */
  fromScratch: z.boolean().default(false),
});

export type DatasetSpec = z.output<typeof DatasetSpecSchema>;
export type CorruptionSpecInput = z.input<typeof CorruptionSpecSchema>;
export type ExperimentCorruption = z.output<typeof CorruptionSpecSchema>;
/** A spec with every default filled in (what parse returns and what is hashed). */
export type ExperimentSpec = z.output<typeof ExperimentSpecSchema>;
/** What a user may write: defaults may be left out. */
export type ExperimentSpecInput = z.input<typeof ExperimentSpecSchema>;

// Metrics go through JSON, where NaN and Infinity become null; a diverged run keeps those nulls.
const metric = z.number().nullable();

const EvalMetricsSchema = z.looseObject({
  accuracy: metric,
  macroF1: metric,
  perClassF1: z.array(metric),
  confusion: z.array(z.array(z.number())),
});

/**
 * One finished run, one JSONL line in the result store. `hash` names the row: the identity hash of
 * what it ran (src/experiment/identity.ts), or specHash(spec) in rows written before identities (the
 * store computes their identity from their fields). Loose objects: a newer runner may add fields
 * (extra analyses) and older readers keep them instead of rejecting the line.
 */
export const ResultRowSchema = z.looseObject({
  hash: z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 hex characters'),
  spec: ExperimentSpecSchema,
  status: z.enum(['ok', 'diverged']),
  label: z.string(),
  numLabels: positiveInt,
  labelNames: z.array(z.string()),
  recipe: ResolvedRecipeSchema.loose(),
  epochs: z.array(
    z.looseObject({
      epoch: z.number().int().nonnegative(),
      trainLoss: metric,
      eval: EvalMetricsSchema,
    }),
  ),
  lossCurve: z.array(z.looseObject({ step: z.number().int().nonnegative(), loss: metric })),
  final: z.looseObject({ accuracy: metric, macroF1: metric }),
  divergedAt: z.looseObject({ epoch: z.number().int().nonnegative(), step: z.number().int().nonnegative() }).optional(),
  corruption: z.looseObject({ layers: z.array(z.number().int().nonnegative()), tensors: z.number().int().nonnegative() }).optional(),
  trainExamples: z.number().int().nonnegative(),
  evalExamples: z.number().int().nonnegative(),
  timings: z.looseObject({
    startedAt: z.string(),
    finishedAt: z.string(),
    seconds: z.number().nonnegative(),
    trainTokensPerSecond: metric,
  }),
  /**
   * The engine's numerics version (EngineInfo.numerics), part of the row's identity (src/experiment/
   * identity.ts). Absent in rows written before it existed: those ran on 'tfjs-1'.
   */
  numerics: z.string().min(1).optional(),
  /** modelFingerprint() of the model directory the run loaded; part of the identity. */
  modelFingerprint: z.string().min(1).optional(),
  provenance: z.looseObject({
    backend: z.string(),
    packageVersion: z.string(),
    gitCommit: z.string(),
    node: z.string(),
    host: z.string(),
    /** The engine's thread count (EngineInfo.threads), when it reports one. */
    threads: z.number().int().positive().optional(),
    /** The native kernels: on with BLAS, threads and version, or off and why (EngineInfo.native). */
    native: z
      .union([
        z.looseObject({ enabled: z.literal(true), blas: z.string(), threads: z.number().int().positive(), version: z.string() }),
        z.looseObject({ enabled: z.literal(false), reason: z.string() }),
      ])
      .optional(),
  }),
});

export type ResultRow = z.output<typeof ResultRowSchema>;

/** zod issues as "a.b[2].c: message; ...", the JSON path a user can find in their file. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = [...issue.path];
      // An unknown key is most useful when the path points at the key itself.
      if (issue.code === 'unrecognized_keys' && issue.keys.length === 1) path.push(issue.keys[0]);
      return `${jsonPath(path) || '(root)'}: ${issue.message}`;
    })
    .join('; ');
}

export function jsonPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** "sst2", or the train file's name for user data. */
export function datasetLabel(dataset: DatasetSpec): string {
  if (dataset.name) return dataset.name;
  return basename(dataset.train ?? 'data').replace(/\.jsonl$/i, '');
}

/** "clean", "scratch", or "bottom:2/all/reinit" (the short form of src/corruption/spec.ts, without the mode's parameter). */
export function corruptionLabel(spec: Pick<ExperimentSpec, 'corruption' | 'fromScratch'>): string {
  if (spec.fromScratch) return 'scratch';
  const c = spec.corruption;
  if (!c) return 'clean';
  return `${c.layers}/${c.components.join('+')}/${c.mode}`;
}

/** A short human label for tables and logs, e.g. "sst2 bottom:2/all/reinit seed 1". */
export function specLabel(spec: ExperimentSpec): string {
  return `${datasetLabel(spec.dataset)} ${corruptionLabel(spec)} seed ${spec.seed}`;
}

/** Parses and fills defaults; throws a ZodError (callers add the file name). */
export function parseSpec(input: unknown): ExperimentSpec {
  return ExperimentSpecSchema.parse(input);
}
