import * as tf from '@tensorflow/tfjs';
import type * as dfd from 'danfojs-node';
import { loadDataset } from '../data/dataset';
import { stratifiedSample } from '../data/sampling';
import { specHash } from '../experiment/hash';
import { runExperimentDetailed, type RunOutput } from '../experiment/run';
import { ExperimentSpecSchema, type ExperimentSpec, type ResultRow } from '../experiment/spec';
import { disposeParams } from '../model/names';
import { deriveSeed } from '../random';
import { linearCKA } from './cka';
import { weightDrift, type LayerDrift } from './drift';
import { records, type FlatRow } from './frames';
import type { Figure } from './figures';
import { hiddenStateNames, hiddenStatesFor, type Pooling } from './hidden';
import { layerProbes, majorityBaseline, type LayerProbeRow } from './probes';
import { mean, pct } from './stats';

/**
 * Layer anatomy, beyond the paper: which single layer matters most when it is lost, and what
 * fine-tuning does inside the network while it heals (how far each layer's representations end up
 * from the clean fine-tuned model's, how far each layer's weights move, and what each layer encodes
 * about the task, read off by linear probes).
 */

export interface RunSettings {
  /** 'default', 'tiny', a checkpoint directory or a hub id. */
  model: string;
  trainSize?: number;
  evalSize?: number;
  maxLength?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
}

/** The spec of one run; only settings that are given enter it, so defaults hash as presets' do. */
export function anatomySpec(settings: RunSettings, dataset: string, layers: string | null, seed: number): ExperimentSpec {
  const recipe: Record<string, number> = {};
  if (settings.epochs !== undefined) recipe.epochs = settings.epochs;
  if (settings.batchSize !== undefined) recipe.batchSize = settings.batchSize;
  if (settings.learningRate !== undefined) recipe.learningRate = settings.learningRate;
  return ExperimentSpecSchema.parse({
    model: settings.model,
    dataset: {
      name: dataset,
      ...(settings.trainSize !== undefined ? { trainSize: settings.trainSize } : {}),
      ...(settings.evalSize !== undefined ? { evalSize: settings.evalSize } : {}),
      ...(settings.maxLength !== undefined ? { maxLength: settings.maxLength } : {}),
    },
    corruption: layers === null ? null : { layers },
    recipe,
    seed,
  });
}

export interface SweepOptions extends RunSettings {
  datasets: readonly string[];
  /** Encoder depth of the model (from its config.json). */
  numLayers: number;
  /** Only these layers (default: all 0 .. numLayers-1). */
  layers?: readonly number[];
  seeds: readonly number[];
}

/**
 * The single-layer corruption sweep: per dataset and seed, the clean run and one run per layer with
 * only that layer re-initialised (layers "i"). Ordered dataset, corruption, seed, like the presets.
 */
export function singleLayerSweepSpecs(options: SweepOptions): ExperimentSpec[] {
  const layers = options.layers ?? Array.from({ length: options.numLayers }, (_, i) => i);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= options.numLayers) {
      throw new RangeError(`singleLayerSweepSpecs: layer ${l} is not in 0..${options.numLayers - 1}`);
    }
  }
  const corruptions: Array<string | null> = [null, ...layers.map(String)];
  return options.datasets.flatMap((dataset) =>
    corruptions.flatMap((layers) => options.seeds.map((seed) => anatomySpec(options, dataset, layers, seed))),
  );
}

/**
 * The rows of a store that belong to these specs (a store may hold other sizes and recipes too), by
 * their spec: a row's hash is the identity of what it ran (spec, weights, recipe, numerics), not the
 * spec's hash.
 */
export function rowsForSpecs(rows: readonly ResultRow[], specs: readonly ExperimentSpec[]): ResultRow[] {
  const wanted = new Set(specs.map(specHash));
  return rows.filter((r) => wanted.has(specHash(r.spec)));
}

/** A type alias (not an interface), so rows pass as plain records to showTable and frameOf. */
export type SingleLayerEffect = {
  dataset: string;
  layer: number;
  /** Runs (seeds) with a clean partner. */
  n: number;
  /** Mean accuracy after fine-tuning with this layer corrupted. */
  accuracy: number;
  /** Mean of clean minus corrupted accuracy over seeds (positive = corrupting the layer hurts). */
  gap: number;
  /** Mean accuracy of the clean partners. */
  cleanAccuracy: number;
};

/**
 * Mean accuracy gap to the clean run per dataset and corrupted layer, from a results frame
 * (resultsFrame: the gap column pairs each run with its clean partner). Only single-layer runs count.
 */
export function singleLayerEffects(frame: dfd.DataFrame): SingleLayerEffect[] {
  const single = records<FlatRow>(frame).filter((r) => r.k === 1 && /^\d+$/.test(String(r.layers)));
  const groups = new Map<string, { dataset: string; layer: number; acc: number[]; gap: number[]; clean: number[] }>();
  for (const r of single) {
    const layer = Number(r.layers);
    const id = `${r.dataset}\u0000${layer}`;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { dataset: r.dataset, layer, acc: [], gap: [], clean: [] }));
    if (Number.isFinite(r.accuracy)) g.acc.push(r.accuracy);
    if (Number.isFinite(r.gap)) {
      g.gap.push(r.gap);
      g.clean.push(r.accuracy + r.gap);
    }
  }
  return [...groups.values()]
    .map((g) => ({ dataset: g.dataset, layer: g.layer, n: g.gap.length, accuracy: mean(g.acc), gap: mean(g.gap), cleanAccuracy: mean(g.clean) }))
    .sort((a, b) => (a.dataset < b.dataset ? -1 : a.dataset > b.dataset ? 1 : a.layer - b.layer));
}

/** Per dataset, the layer whose loss costs most accuracy (undefined where no layer has a gap yet). */
export function mostHarmfulLayers(effects: readonly SingleLayerEffect[]): Array<{ dataset: string; layer?: number; gap: number; layers: number }> {
  const datasets = [...new Set(effects.map((e) => e.dataset))];
  return datasets.map((dataset) => {
    const withGap = effects.filter((e) => e.dataset === dataset && Number.isFinite(e.gap));
    const worst = withGap.reduce<SingleLayerEffect | undefined>((best, e) => (!best || e.gap > best.gap ? e : best), undefined);
    return { dataset, layer: worst?.layer, gap: worst?.gap ?? NaN, layers: withGap.length };
  });
}

export interface HealedVsCleanOptions extends RunSettings {
  dataset: string;
  /** The corruption's layers, e.g. "bottom:2" (all components re-initialised). */
  corruption: string;
  seed?: number;
  dataDir?: string;
  pooling?: Pooling;
  /** Evaluation texts used for CKA (default 500; fewer is faster). */
  maxTexts?: number;
  /** Also train linear probes on each depth of the four models (default true). */
  probes?: boolean;
  probeSteps?: number;
}

/** A type alias (not an interface), so rows pass as plain records to showTable and frameOf. */
export type HealedLayerRow = {
  /** "embeddings", "layer 0" (bottom), ... */
  layerName: string;
  /** Encoder layer index; -1 for the embedding output. */
  layer: number;
  /** Whether this layer was re-initialised. */
  corrupted: boolean;
  /** CKA(pretrained, corrupted) before fine-tuning: the damage. */
  ckaBefore: number;
  /** CKA(clean fine-tuned, corrupted fine-tuned): how close healing brought the representation. */
  ckaAfter: number;
  /** Relative weight change during fine-tuning, clean run and corrupted run (NaN for the embedding output). */
  driftClean: number;
  driftCorrupted: number;
};

export type ModelStage = 'pretrained' | 'clean fine-tuned' | 'corrupted' | 'healed';

export interface HealedVsCleanResult {
  layers: HealedLayerRow[];
  /** weightDrift of each run (embeddings, layers, pooler, head). */
  drift: Array<LayerDrift & { run: 'clean' | 'corrupted' }>;
  /** Per stage and depth, probe accuracy on the evaluation examples (empty when probes is false). */
  probes: Array<LayerProbeRow & { stage: ModelStage }>;
  /** Accuracy of predicting the majority training label. */
  majorityBaseline: number;
  clean: ResultRow;
  corrupted: ResultRow;
  corruptedLayers: number[];
  texts: number;
}

function release(run: RunOutput): void {
  disposeParams(run.model.params);
  if (run.finetuned?.params) disposeParams(run.finetuned.params);
}

/**
 * Fine-tunes the clean and the corrupted model with the same seed and data, keeping the weights,
 * then compares them layer by layer: CKA of the healed model's representations with the clean
 * fine-tuned model's (and, before fine-tuning, of the corrupted with the pretrained), weight drift of
 * each run, and linear probes on every depth of all four models.
 */
export async function healedVsClean(options: HealedVsCleanOptions): Promise<HealedVsCleanResult> {
  const seed = options.seed ?? 0;
  const cleanSpec = anatomySpec(options, options.dataset, null, seed);
  const corruptedSpec = anatomySpec(options, options.dataset, options.corruption, seed);
  const runOptions = { keepParams: true, progressBar: false, dataDir: options.dataDir };
  const clean = await runExperimentDetailed(cleanSpec, runOptions);
  let corrupted: RunOutput | undefined;
  try {
    corrupted = await runExperimentDetailed(corruptedSpec, runOptions);
    const config = clean.model.config;
    if (!clean.finetuned?.params || !corrupted.finetuned?.params) throw new Error('healedVsClean: fine-tuning returned no weights');

    // The same examples the runs were trained and scored on (runExperimentDetailed's sampling).
    const data = await loadDataset({ name: options.dataset, dataDir: options.dataDir });
    const train = cleanSpec.dataset.trainSize ? stratifiedSample(data.train, cleanSpec.dataset.trainSize, deriveSeed(seed, 'train-sample')) : data.train;
    const evalData = cleanSpec.dataset.evalSize ? stratifiedSample(data.eval, cleanSpec.dataset.evalSize, 0) : data.eval;
    const maxTexts = options.maxTexts ?? 500;
    const evalTexts = evalData.texts.slice(0, maxTexts);
    const evalLabels = evalData.labels.slice(0, maxTexts);
    const hiddenOptions = { maxLength: cleanSpec.dataset.maxLength, pooling: options.pooling ?? 'mean' };
    const tokenizer = clean.model.tokenizer;
    const stages: Array<[ModelStage, typeof clean.model.params]> = [
      ['pretrained', clean.model.params],
      ['clean fine-tuned', clean.finetuned.params],
      ['corrupted', corrupted.model.params],
      ['healed', corrupted.finetuned.params],
    ];
    const states = new Map(stages.map(([stage, params]) => [stage, hiddenStatesFor(config, params, tokenizer, evalTexts, hiddenOptions)]));
    const names = hiddenStateNames(config.numLayers);
    const corruptedLayers = corrupted.model.corruption?.layers ?? [];
    const driftClean = weightDrift(clean.model.params, clean.finetuned.params, config, clean.row.numLabels);
    const driftCorrupted = weightDrift(corrupted.model.params, corrupted.finetuned.params, config, corrupted.row.numLabels);
    const driftOf = (drift: LayerDrift[], layer: number) => drift.find((d) => d.index === layer && d.layer === `layer ${layer}`)?.relativeChange ?? NaN;
    let layers: HealedLayerRow[];
    try {
      layers = names.map((layerName, depth) => {
        const layer = depth - 1;
        return {
          layerName,
          layer,
          corrupted: corruptedLayers.includes(layer),
          ckaBefore: linearCKA(states.get('pretrained')![depth], states.get('corrupted')![depth]),
          ckaAfter: linearCKA(states.get('clean fine-tuned')![depth], states.get('healed')![depth]),
          driftClean: layer < 0 ? NaN : driftOf(driftClean, layer),
          driftCorrupted: layer < 0 ? NaN : driftOf(driftCorrupted, layer),
        };
      });
    } finally {
      for (const s of states.values()) tf.dispose(s);
    }

    const probes: HealedVsCleanResult['probes'] = [];
    if (options.probes ?? true) {
      const probeTrain = train.texts.slice(0, maxTexts);
      const probeTrainLabels = train.labels.slice(0, maxTexts);
      for (const [stage, params] of stages) {
        const trainStates = hiddenStatesFor(config, params, tokenizer, probeTrain, hiddenOptions);
        const evalStates = hiddenStatesFor(config, params, tokenizer, evalTexts, hiddenOptions);
        try {
          const rows = layerProbes(trainStates, probeTrainLabels, evalStates, evalLabels, {
            numClasses: data.labelNames.length,
            steps: options.probeSteps,
          });
          probes.push(...rows.map((r) => ({ ...r, stage })));
        } finally {
          tf.dispose([...trainStates, ...evalStates]);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return {
      layers,
      drift: [...driftClean.map((d) => ({ ...d, run: 'clean' as const })), ...driftCorrupted.map((d) => ({ ...d, run: 'corrupted' as const }))],
      probes,
      majorityBaseline: majorityBaseline(train.labels, evalLabels),
      clean: clean.row,
      corrupted: corrupted.row,
      corruptedLayers,
      texts: evalTexts.length,
    };
  } finally {
    release(clean);
    if (corrupted) release(corrupted);
  }
}

export interface AnatomyFindings {
  /** Per dataset, the layer whose corruption costs most accuracy after fine-tuning. */
  harmful: ReturnType<typeof mostHarmfulLayers>;
  /** Mean CKA (healed vs clean fine-tuned) over the corrupted layers and over the untouched encoder layers. */
  ckaAfterCorrupted: number;
  ckaAfterUntouched: number;
  /** Share of the corrupted layers' CKA deficit (1 - CKA before fine-tuning) that fine-tuning closed. */
  deficitClosed: number;
  /** 'yes' when the corrupted layers' mean CKA after healing stays below `farBelow`. */
  staysFar: 'yes' | 'no' | 'not enough data';
  /** Mean relative weight change of the corrupted layers in the corrupted run / in the clean run. */
  driftRatio: number;
  text: string[];
}

/**
 * The anatomy notebook's verdict, from the sweep's effects and one healedVsClean comparison. A clean
 * run no better than always predicting the majority label (`baselines`, per dataset; the healed
 * comparison supplies its own) learned nothing to heal towards, so that part says 'not enough data'.
 */
export function anatomyFindings(
  effects: readonly SingleLayerEffect[],
  healed: (Pick<HealedVsCleanResult, 'layers' | 'majorityBaseline'> & { clean: Pick<ResultRow, 'final' | 'spec'> }) | undefined,
  options: { farBelow?: number; baselines?: Record<string, number>; learnedMargin?: number } = {},
): AnatomyFindings {
  const farBelow = options.farBelow ?? 0.9;
  const margin = options.learnedMargin ?? 0.02;
  const baselines: Record<string, number> = { ...options.baselines };
  const healedDataset = healed?.clean.spec.dataset.name;
  if (healed && healedDataset && baselines[healedDataset] === undefined) baselines[healedDataset] = healed.majorityBaseline;
  const pts = (x: number) => `${(100 * x).toFixed(1)} points`;
  const learned = (accuracy: number, baseline: number | undefined) => baseline === undefined || accuracy > baseline + margin;
  const text: string[] = [];

  const harmful = mostHarmfulLayers(effects);
  if (harmful.every((h) => h.layer === undefined)) text.push('Single-layer sweep: not enough data (no corrupted run with a clean partner).');
  for (const h of harmful) {
    const rows = effects.filter((e) => e.dataset === h.dataset && Number.isFinite(e.gap));
    if (h.layer === undefined) {
      text.push(`${h.dataset}: not enough data.`);
      continue;
    }
    const clean = mean(rows.map((e) => e.cleanAccuracy));
    if (!learned(clean, baselines[h.dataset])) {
      text.push(`${h.dataset}: not enough data: the clean model reaches ${pct(clean)} %, no better than always predicting the majority label (${pct(baselines[h.dataset])} %); fine-tuning this short learns nothing to heal towards.`);
      h.layer = undefined;
      continue;
    }
    const n = Math.min(...rows.map((e) => e.n));
    text.push(
      h.gap > 0
        ? `${h.dataset}: corrupting layer ${h.layer} costs most, ${pts(h.gap)} of accuracy after fine-tuning (clean ${pct(clean)} %; ${h.layers} layers swept, ${n} seed(s) each).`
        : `${h.dataset}: no single corrupted layer costs accuracy after fine-tuning (largest gap ${pts(h.gap)}; clean ${pct(clean)} %, ${n} seed(s)).`,
    );
  }

  const encoderLayers = healed?.layers.filter((l) => l.layer >= 0) ?? [];
  const corrupted = encoderLayers.filter((l) => l.corrupted);
  const untouched = encoderLayers.filter((l) => !l.corrupted);
  const ckaAfterCorrupted = mean(corrupted.map((l) => l.ckaAfter));
  const ckaAfterUntouched = mean(untouched.map((l) => l.ckaAfter));
  const before = mean(corrupted.map((l) => l.ckaBefore));
  const deficitClosed = before < 1 ? (ckaAfterCorrupted - before) / (1 - before) : NaN;
  const driftRatio = mean(corrupted.map((l) => l.driftCorrupted)) / mean(corrupted.map((l) => l.driftClean));
  const cleanAccuracy = healed?.clean.final.accuracy ?? NaN;
  let staysFar: AnatomyFindings['staysFar'] = 'not enough data';
  if (corrupted.length === 0 || !Number.isFinite(ckaAfterCorrupted)) {
    text.push('Healed vs clean: not enough data (no corrupted layer compared).');
  } else if (!learned(cleanAccuracy, healed?.majorityBaseline)) {
    text.push(`Healed vs clean: not enough data: the clean fine-tuned model reaches ${pct(cleanAccuracy)} %, no better than the majority baseline (${pct(healed!.majorityBaseline)} %), so there is no healed state to compare (CKA after fine-tuning ${ckaAfterCorrupted.toFixed(3)}).`);
  } else {
    staysFar = ckaAfterCorrupted < farBelow ? 'yes' : 'no';
    text.push(
      `Healed representations of the corrupted layers ${staysFar === 'yes' ? 'stay far from' : 'come close to'} the clean fine-tuned model's: ` +
        `mean linear CKA ${ckaAfterCorrupted.toFixed(3)} (threshold ${farBelow}; untouched layers ${Number.isFinite(ckaAfterUntouched) ? ckaAfterUntouched.toFixed(3) : 'none'}), ` +
        `from ${before.toFixed(3)} before fine-tuning: ${Number.isFinite(deficitClosed) ? `${(100 * deficitClosed).toFixed(0)} %` : 'none'} of the deficit closed.`,
    );
    text.push(
      Number.isFinite(driftRatio)
        ? `The corrupted layers' weights moved ${driftRatio.toFixed(2)}x as much (relative to their starting norm) during fine-tuning as the same layers did in the clean run.`
        : 'Weight drift of the corrupted layers: not enough data.',
    );
  }
  return { harmful, ckaAfterCorrupted, ckaAfterUntouched, deficitClosed, staysFar, driftRatio, text };
}

/** Linear-probe accuracy on the evaluation examples per depth, one line per model stage, with the majority baseline. */
export function probeFigure(result: Pick<HealedVsCleanResult, 'probes' | 'majorityBaseline'>): Figure {
  const stages = [...new Set(result.probes.map((p) => p.stage))];
  const depths = [...new Set(result.probes.map((p) => p.layer))].sort((a, b) => a - b);
  const label = (layer: number) => (layer < 0 ? 'embeddings' : String(layer));
  const data: Figure['data'] = stages.map((stage) => {
    const rows = result.probes.filter((p) => p.stage === stage).sort((a, b) => a.layer - b.layer);
    return { type: 'scatter', mode: 'lines+markers', name: stage, x: rows.map((r) => label(r.layer)), y: rows.map((r) => r.evalAccuracy) };
  });
  data.push({ type: 'scatter', mode: 'lines', name: 'majority baseline', x: depths.map(label), y: depths.map(() => result.majorityBaseline), line: { dash: 'dot', color: 'gray' } });
  return {
    data,
    layout: {
      title: { text: 'Linear probe accuracy per layer (frozen representations)' },
      xaxis: { title: { text: 'Layer (0 = bottom)' }, type: 'category' },
      yaxis: { title: { text: 'Probe accuracy (evaluation examples)' } },
      template: 'plotly_white',
      legend: { orientation: 'h', y: -0.2 },
    },
  };
}

/** Weight drift per layer of the clean and the corrupted run side by side. */
export function driftFigure(result: Pick<HealedVsCleanResult, 'drift' | 'corruptedLayers'>): Figure {
  const runs = ['clean', 'corrupted'] as const;
  return {
    data: runs.map((run) => {
      const rows = result.drift.filter((d) => d.run === run);
      return { type: 'bar', name: run === 'clean' ? 'clean run' : `corrupted run (layers ${result.corruptedLayers.join(', ')} re-initialised)`, x: rows.map((d) => d.layer), y: rows.map((d) => d.relativeChange) };
    }),
    layout: {
      title: { text: 'Weight drift during fine-tuning' },
      xaxis: { title: { text: 'Layer' } },
      yaxis: { title: { text: '||after - before|| / ||before||' }, type: 'log' },
      barmode: 'group',
      template: 'plotly_white',
      legend: { orientation: 'h', y: -0.2 },
    },
  };
}
