import { UserError } from '../errors';
import { loadDataset, type LabeledData, type TrainEvalData } from '../data/dataset';
import { HELDOUT_SPLIT, stratifiedIndices, stratifiedSample } from '../data/sampling';
import { deriveSeed } from '../random';
import type { ExperimentSpec } from './spec';

/**
 * The examples an experiment trains and is scored on, as runExperimentDetailed (./run.ts) picks them:
 * the training subset is a stratified sample seeded by deriveSeed(seed, 'train-sample'), the evaluation
 * subset one seeded by 0 (the dataset's alone, so every run of a comparison is scored on the same
 * examples). Loads no TF.js, so a baseline that is not a BERT (src/analysis/bag-of-words.ts) can use
 * the very same examples; test/bag-of-words.test.ts checks them against what runExperiment tokenizes.
 */

export interface ExperimentExamples {
  train: LabeledData;
  eval: LabeledData;
  labelNames: string[];
  /** Sizes the data could not give in full (an eval size beyond the split: all of it is used). */
  warnings: string[];
}

type DatasetPart = Pick<ExperimentSpec, 'dataset'>;

export { HELDOUT_SPLIT };

function subset(data: LabeledData, indices: number[], source: string): LabeledData {
  return { texts: indices.map((i) => data.texts[i]), labels: indices.map((i) => data.labels[i]), labelNames: data.labelNames, source };
}

/** The held-out part of the training split, and the training pool without it. */
function holdOut(train: LabeledData, size: number, name: string): { pool: LabeledData; heldOut: LabeledData } {
  if (size >= train.labels.length) {
    throw new UserError(`eval size ${size}: ${name} has only ${train.labels.length} training examples to hold ${size} out of`);
  }
  const held = stratifiedIndices(train.labels, size, deriveSeed(0, HELDOUT_SPLIT));
  const isHeld = new Set(held);
  const rest = train.labels.map((_, i) => i).filter((i) => !isHeld.has(i));
  return {
    pool: subset(train, rest, `${train.source} (without the ${size} held out)`),
    heldOut: subset(train, held, `${train.source} (${size} held out for validation)`),
  };
}

/** The splits a spec's dataset names, whole (load once, sample per seed). */
export function loadExperimentData(spec: DatasetPart, options: { dataDir?: string } = {}): Promise<TrainEvalData> {
  return loadDataset({
    name: spec.dataset.name,
    train: spec.dataset.train,
    eval: spec.dataset.eval,
    evalSplit: spec.dataset.evalSplit === HELDOUT_SPLIT ? undefined : spec.dataset.evalSplit,
    numLabels: spec.dataset.numLabels,
    dataDir: options.dataDir,
  });
}

/** The subsets of loaded data a spec trains and evaluates on. */
export function sampleExperiment(spec: DatasetPart & Pick<ExperimentSpec, 'seed'>, data: TrainEvalData): ExperimentExamples {
  const { trainSize, evalSize } = spec.dataset;
  const source = spec.dataset.name ?? spec.dataset.train;
  if (spec.dataset.evalSplit === HELDOUT_SPLIT) {
    if (!evalSize) throw new UserError(`evalSplit "${HELDOUT_SPLIT}" needs an evalSize: how many training examples to hold out`);
    const { pool, heldOut } = holdOut(data.train, evalSize, String(source));
    return sampleExperiment({ ...spec, dataset: { ...spec.dataset, evalSplit: undefined, evalSize: undefined } }, { ...data, train: pool, eval: heldOut });
  }
  // A training subset larger than the data would be recorded (and hashed) as an experiment that never ran.
  if (trainSize && trainSize > data.train.labels.length) {
    throw new UserError(`train size ${trainSize}: ${source} has only ${data.train.labels.length} training examples`);
  }
  const warnings: string[] = [];
  if (evalSize && evalSize > data.eval.labels.length) {
    warnings.push(
      `eval size ${evalSize}: ${spec.dataset.name ?? spec.dataset.eval} has ${data.eval.labels.length} evaluation examples; using all of them`,
    );
  }
  return {
    train: trainSize ? stratifiedSample(data.train, trainSize, deriveSeed(spec.seed, 'train-sample')) : data.train,
    eval: evalSize ? stratifiedSample(data.eval, evalSize, 0) : data.eval,
    labelNames: data.labelNames,
    warnings,
  };
}

export async function experimentExamples(
  spec: DatasetPart & Pick<ExperimentSpec, 'seed'>,
  options: { dataDir?: string } = {},
): Promise<ExperimentExamples> {
  return sampleExperiment(spec, await loadExperimentData(spec, options));
}
