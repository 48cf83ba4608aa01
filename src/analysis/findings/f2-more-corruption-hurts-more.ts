import type { ResultRow } from '../../experiment/spec';
import type { FlatRow } from '../frames';
import { mean, olsSlope, pct, spearman, summarise } from '../stats';
import { findingInputs } from './baselines';
import { countPhrase, explainUnlearned, interval, Note, vote, type Finding, type FindingOptions } from './finding';
import { standardCorruption } from './selection';

// F2: more corruption hurts more

export interface TrendLine {
  dataset: string;
  side: 'bottom' | 'top';
  /** The k values on the line (0 = the clean run). */
  ks: number[];
  seeds: number;
  /** Mean over seeds of each seed's least-squares slope of accuracy on k (accuracy per corrupted layer). */
  slope: number;
  lo: number;
  hi: number;
  /** Spearman rank correlation of accuracy with k over every run on the line. */
  spearman: number;
  trend: 'falls' | 'flat or rises' | 'unclear' | 'not enough data';
}

export interface F2Detail {
  dataset: string;
  lines: TrendLine[];
}

/**
 * F2, more corruption hurts more: per dataset and side, accuracy after fine-tuning falls as more
 * layers are corrupted (k = 0 is the clean run). Each seed gives a slope; the interval is over seeds.
 */
export function moreCorruptionHurtsMore(rows: readonly ResultRow[], options: FindingOptions = {}): Finding<F2Detail> {
  const { minEffect, notes, flat: runs } = findingInputs(rows, options);
  const flat = runs.filter((r) => Number.isFinite(r.accuracy));
  const standard = standardCorruption(flat);
  const onLine = (r: FlatRow) => r.side === 'clean' || ((r.side === 'bottom' || r.side === 'top') && standard && r.components === standard.components && r.mode === standard.mode);
  const left = flat.filter((r) => !onLine(r)).length;
  if (left) notes.push(new Note('other corruption', `${left} run(s) with other corruptions (explicit layer lists, fractions, other components or modes) left out`));
  const datasets = [...new Set(flat.map((r) => r.dataset))].sort();
  const lines: TrendLine[] = [];
  for (const dataset of datasets) {
    for (const side of ['bottom', 'top'] as const) {
      const points = flat.filter((r) => r.dataset === dataset && onLine(r) && (r.side === side || r.side === 'clean'));
      if (!points.some((r) => r.side === side)) continue;
      const ks = [...new Set(points.map((r) => r.k))].sort((a, b) => a - b);
      const slopes: number[] = [];
      for (const seed of new Set(points.map((r) => r.seed))) {
        const own = points.filter((r) => r.seed === seed);
        const s = olsSlope(own.map((r) => r.k), own.map((r) => r.accuracy));
        if (Number.isFinite(s)) slopes.push(s);
      }
      const rho = spearman(points.map((r) => r.k), points.map((r) => r.accuracy));
      if (slopes.length < 2) {
        lines.push({ dataset, side, ks, seeds: slopes.length, slope: slopes[0] ?? NaN, lo: NaN, hi: NaN, spearman: rho, trend: 'not enough data' });
        continue;
      }
      const s = summarise(slopes);
      const trend = s.ci95[1] < 0 ? 'falls' : s.ci95[0] >= -minEffect ? 'flat or rises' : 'unclear';
      lines.push({ dataset, side, ks, seeds: s.n, slope: s.mean, lo: s.ci95[0], hi: s.ci95[1], spearman: rho, trend });
    }
  }
  const tested = lines.filter((l) => l.trend !== 'not enough data');
  const falls = tested.filter((l) => l.trend === 'falls').length;
  const flatOrRises = tested.filter((l) => l.trend === 'flat or rises').length;
  const verdict = vote(tested.length, falls, flatOrRises);
  const testedDatasets = new Set(tested.map((l) => l.dataset));
  const datasetsFalling = [...testedDatasets].filter((d) => tested.filter((l) => l.dataset === d).every((l) => l.trend === 'falls'));
  const summary =
    lines.length === 0
      ? 'No bottom-K or top-K runs with their clean runs: nothing to fit a trend to.'
      : tested.length === 0
      ? `No dataset has two or more seeds with two or more values of k on a side: no slope can be given an interval (${lines.length} line(s) with a single seed).`
      : `Accuracy falls with the number of corrupted layers (slope's 95 % interval over seeds below 0) on ` +
        `${countPhrase(falls, tested.length, 'dataset x side lines')}, and is flat or rising (interval within ${pct(minEffect)} points per layer of 0, or above) on ${flatOrRises}. ` +
        `Datasets where both sides fall: ${datasetsFalling.length ? datasetsFalling.join(', ') : 'none'} (of ${testedDatasets.size}). ` +
        `Mean slope: bottom ${pct(mean(tested.filter((l) => l.side === 'bottom').map((l) => l.slope)))} points per layer, ` +
        `top ${pct(mean(tested.filter((l) => l.side === 'top').map((l) => l.slope)))}.`;
  return explainUnlearned({
    id: 'F2',
    title: 'F2 · More corruption hurts more',
    claim: 'The more encoder layers are corrupted, the lower the accuracy after fine-tuning.',
    verdict,
    summary,
    table: lines.map((l) => ({
      dataset: l.dataset,
      side: l.side,
      k: l.ks.join(','),
      seeds: l.seeds,
      'slope (acc / layer)': l.slope,
      '95% CI': l.seeds >= 2 ? interval(l.lo, l.hi) : 'one seed',
      'Spearman rho': l.spearman,
      trend: l.trend,
    })),
    details: datasets.filter((d) => lines.some((l) => l.dataset === d)).map((dataset) => ({ dataset, lines: lines.filter((l) => l.dataset === dataset) })),
    notes,
  });
}
