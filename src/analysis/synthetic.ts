import { specHash } from '../experiment/hash';
import { parseSpec, ResultRowSchema, type ExperimentSpecInput, type ResultRow } from '../experiment/spec';
import { createRng, deriveSeed } from '../random';

/**
 * Synthetic result rows with a planted effect, for tests and for notebooks that must run before any
 * real grid has: the analysis code is then checked against a truth we chose. Accuracy drops by
 * `bottomPenalty` per corrupted bottom layer and `topPenalty` per corrupted top layer, plus seed noise.
 * Rows are validated by the result store's own schema, so they are exactly what a store holds.
 */
export interface SyntheticOptions {
  datasets?: string[];
  ks?: number[];
  seeds?: number[];
  sides?: Array<'bottom' | 'top'>;
  /** Clean accuracy per dataset (default 0.9 for all). */
  cleanAccuracy?: Record<string, number>;
  bottomPenalty?: number;
  topPenalty?: number;
  noise?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  seed?: number;
}

export function syntheticResults(options: SyntheticOptions = {}): ResultRow[] {
  const datasets = options.datasets ?? ['sst2', 'mrpc'];
  const ks = options.ks ?? [1, 2, 3];
  const seeds = options.seeds ?? [0, 1, 2];
  const sides = options.sides ?? ['bottom', 'top'];
  const bottomPenalty = options.bottomPenalty ?? 0.04;
  const topPenalty = options.topPenalty ?? 0.01;
  const noise = options.noise ?? 0.005;
  const epochs = options.epochs ?? 3;
  const stepsPerEpoch = options.stepsPerEpoch ?? 20;
  const rows: ResultRow[] = [];
  for (const dataset of datasets) {
    for (const seed of seeds) {
      const clean = options.cleanAccuracy?.[dataset] ?? 0.9;
      const variants: Array<{ corruption: ExperimentSpecInput['corruption']; drop: number }> = [{ corruption: null, drop: 0 }];
      for (const side of sides) {
        for (const k of ks) {
          variants.push({ corruption: { layers: `${side}:${k}` }, drop: k * (side === 'bottom' ? bottomPenalty : topPenalty) });
        }
      }
      for (const v of variants) {
        const input: ExperimentSpecInput = {
          model: 'synthetic',
          dataset: { name: dataset, trainSize: 256, evalSize: 128 },
          corruption: v.corruption,
          seed,
        };
        const spec = parseSpec(input);
        const rng = createRng(deriveSeed(options.seed ?? 0, `${dataset}/${seed}/${spec.corruption?.layers ?? 'clean'}`));
        const accuracy = Math.min(1, Math.max(0, clean - v.drop + noise * rng.normal()));
        const macroF1 = Math.max(0, accuracy - 0.01 + 0.002 * rng.normal());
        const layers = layerList(spec.corruption?.layers);
        const lossCurve = Array.from({ length: epochs * stepsPerEpoch }, (_, step) => ({
          step,
          loss: 0.7 * Math.exp(-step / (stepsPerEpoch * (1 + v.drop * 10))) + 0.2 + 0.02 * rng.normal(),
        }));
        const row = {
          hash: specHash(input),
          spec,
          status: 'ok',
          label: `${dataset} ${spec.corruption?.layers ?? 'clean'} seed ${seed}`,
          numLabels: 2,
          labelNames: ['negative', 'positive'],
          recipe: { ...spec.recipe, learningRate: 5e-5, epochs },
          epochs: Array.from({ length: epochs }, (_, epoch) => ({
            epoch,
            trainLoss: lossCurve[(epoch + 1) * stepsPerEpoch - 1].loss,
            eval: { accuracy, macroF1, perClassF1: [macroF1, macroF1], confusion: [[60, 4], [5, 59]] },
          })),
          lossCurve,
          final: { accuracy, macroF1 },
          ...(layers ? { corruption: { layers, tensors: layers.length * 16 } } : {}),
          trainExamples: 256,
          evalExamples: 128,
          timings: { startedAt: '2025-01-01T00:00:00.000Z', finishedAt: '2025-01-01T00:01:00.000Z', seconds: 60, trainTokensPerSecond: 1000 },
          provenance: { backend: 'synthetic', packageVersion: '0.0.0', gitCommit: 'synthetic', node: process.version, host: 'synthetic' },
        };
        rows.push(ResultRowSchema.parse(row));
      }
    }
  }
  return rows;
}

/** Layer indices of "bottom:K" / "top:K" for a 12-layer model (synthetic rows only). */
function layerList(layers: string | undefined): number[] | undefined {
  if (!layers) return undefined;
  const [side, k] = layers.split(':');
  const n = Number(k);
  return Array.from({ length: n }, (_, i) => (side === 'bottom' ? i : 11 - i));
}
