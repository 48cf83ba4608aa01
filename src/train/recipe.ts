import { z } from 'zod';
import type { ModelConfig } from '../model/config';

/**
 * The fine-tuning recipe, in one place: its defaults and the learning-rate rule. They are our choice
 * (the paper's recipe is unpublished); the README's section "The fine-tuning recipe" describes it.
 *
 * Two forms: a RecipeSpec is what an experiment spec says (every default filled in, the learning rate
 * possibly left open); a ResolvedRecipe is what fine-tuning runs with, nothing left open.
 *
 * What a change here does to experiment identity (src/experiment/identity.ts):
 * - specs are stored and hashed with their defaults filled in, so changing a default changes the
 *   identity of every spec that leaves that field out: `healing run` reruns them instead of skipping
 *   them, and the rows recorded before keep their own identity (still valid, as what they ran);
 * - the resolved recipe is part of a result's identity, so changing the learning-rate rule reruns
 *   every spec that leaves the learning rate to it, on the models whose rate changed;
 * - a new field with a default reruns every spec too: recorded recipes lack it.
 * `healing run --dry-run` names the part that changed ("recipe learningRate 0.0001 -> 0.00005").
 *
 * Loads no TF.js: the grid's parent parses specs and computes identities with it.
 */

const positiveInt = z.number().int().positive();

/**
 * Six epochs, not the BERT paper's 3: with 2,000 training examples a run is ~375 optimizer steps, and
 * the recipe search on held-out training examples (data/results/recipe-search-small-v3.jsonl, README
 * "The fine-tuning recipe") found 6 epochs better than 3 at every learning rate on SST-2 and Emotion
 * (Emotion 81.7 vs 68.0 % at 4e-4). Few-sample BERT fine-tuning is known to need more steps than the
 * 3-epoch convention (Mosbach et al. 2021; Zhang et al. 2021).
 */
const RECIPE_EPOCHS = 6;

export const RecipeSchema = z.strictObject({
  /** Peak learning rate. Absent = chosen from the model size at run time (defaultLearningRate). */
  learningRate: z.number().positive().optional(),
  /** Passes over the training examples (RECIPE_EPOCHS). */
  epochs: positiveInt.default(RECIPE_EPOCHS),
  /** Examples per optimizer step. */
  batchSize: positiveInt.default(32),
  /** Micro-batches per step: batchSize / gradientAccumulation examples go through the model at once. */
  gradientAccumulation: positiveInt.default(1),
  /** Share of the steps with linear warmup, before linear decay to 0. */
  warmupRatio: z.number().min(0).max(1).default(0.1),
  /** AdamW's decoupled weight decay (none on biases and LayerNorm). */
  weightDecay: z.number().min(0).default(0.01),
  /** Global gradient-norm clipping. */
  maxGradNorm: z.number().min(0).default(1.0),
  evalBatchSize: positiveInt.default(64),
});

/** The recipe a result records: the spec's, with the learning rate resolved. */
export const ResolvedRecipeSchema = RecipeSchema.extend({ learningRate: z.number().positive() });

/** A recipe as an experiment spec holds it (defaults filled in; the learning rate may be open). */
export type RecipeSpec = z.output<typeof RecipeSchema>;
/** What fine-tuning runs with. */
export type ResolvedRecipe = z.output<typeof ResolvedRecipeSchema>;

/** Every default, for --help. */
export const RECIPE_DEFAULTS: RecipeSpec = RecipeSchema.parse({});

const SMALL_MODEL_HIDDEN = 512;
const SMALL_MODEL_LEARNING_RATE = 4e-4;
const LARGE_MODEL_LEARNING_RATE = 2e-5;

/** The learning-rate rule in words, for --help. */
export const LEARNING_RATE_RULE =
  `${SMALL_MODEL_LEARNING_RATE.toExponential()} up to hidden ${SMALL_MODEL_HIDDEN}, else ${LARGE_MODEL_LEARNING_RATE.toExponential()}`;

/**
 * Our default peak learning rate: 2e-5 is the BERT paper's choice for base-size models. For hidden
 * sizes up to 512, 4e-4: the recipe search on the shipped 6 x 256 model (1e-4 ... 8e-4 x 3 / 6 epochs,
 * scored on examples held out of the training split) peaked there on the mean of SST-2, AG News and
 * Emotion; BERT miniatures tolerate such rates (Turc et al. 2019 searched up to 3e-4).
 */
export function defaultLearningRate(config: ModelConfig): number {
  return config.hiddenSize <= SMALL_MODEL_HIDDEN ? SMALL_MODEL_LEARNING_RATE : LARGE_MODEL_LEARNING_RATE;
}

/** The recipe a spec's run fine-tunes with on this model (an ExperimentSpec is a valid `spec`). */
export function resolveRecipe(spec: { recipe: RecipeSpec }, config: ModelConfig): ResolvedRecipe {
  return { ...spec.recipe, learningRate: spec.recipe.learningRate ?? defaultLearningRate(config) };
}

/** The default recipe in one phrase, for the report's comparison with the paper. */
export const RECIPE_SUMMARY =
  `AdamW (weight decay ${RECIPE_DEFAULTS.weightDecay}), peak learning rate ${LEARNING_RATE_RULE} (by hidden size), ` +
  `${RECIPE_DEFAULTS.epochs} epochs, batch ${RECIPE_DEFAULTS.batchSize}, ${RECIPE_DEFAULTS.warmupRatio * 100} % warmup then linear decay, ` +
  `gradient clipping ${RECIPE_DEFAULTS.maxGradNorm.toFixed(1)}`;
