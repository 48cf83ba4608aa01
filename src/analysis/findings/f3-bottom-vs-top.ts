import type { ResultRow } from '../../experiment/spec';
import type { FlatRow } from '../frames';
import { pairedTest, pct } from '../stats';
import { findingInputs } from './baselines';
import { countPhrase, explainUnlearned, fmt, interval, Note, pValue, type Finding, type FindingOptions, type Verdict } from './finding';
import { standardCorruption } from './selection';

// F3: bottom vs top

export interface PairedResult {
  /** Pairs (k, seed) of bottom:K and top:K runs with K below the model's depth. */
  n: number;
  /** mean(top - bottom) accuracy: positive = corrupting the bottom hurts more. */
  meanDiff: number;
  ci95: [number, number];
  p: number;
  cohensDz: number;
  conclusion: 'bottom worse' | 'top worse' | 'no real difference' | 'inconclusive' | 'not enough data';
}

export interface F3Detail extends PairedResult {
  dataset: string;
  ks: number[];
}

export interface F3Finding extends Finding<F3Detail> {
  pooled: PairedResult;
  /** Every pair the test used (e.g. for a signed-rank check that no single seed carries the result). */
  pairs: Array<{ dataset: string; k: number; seed: number; top: number; bottom: number }>;
}

/** top:K against bottom:K runs of the same dataset, K and seed (diverged runs have no accuracy and no partner). */
function pairSides(rows: FlatRow[]): Array<{ key: { dataset: string; k: number; seed: number }; a: number; b: number }> {
  const arms = new Map<string, { key: { dataset: string; k: number; seed: number }; a?: number; b?: number }>();
  for (const r of rows) {
    if (!Number.isFinite(r.accuracy)) continue;
    const id = JSON.stringify([r.dataset, r.k, r.seed]);
    const entry = arms.get(id) ?? { key: { dataset: r.dataset, k: r.k, seed: r.seed } };
    entry[r.side === 'top' ? 'a' : 'b'] = r.accuracy;
    arms.set(id, entry);
  }
  return [...arms.values()].flatMap((e) => (e.a !== undefined && e.b !== undefined ? [{ key: e.key, a: e.a, b: e.b }] : []));
}

function judgePairs(top: number[], bottom: number[], alpha: number, minEffect: number): PairedResult {
  if (top.length < 2) return { n: top.length, meanDiff: NaN, ci95: [NaN, NaN], p: NaN, cohensDz: NaN, conclusion: 'not enough data' };
  const t = pairedTest(top, bottom);
  let conclusion: PairedResult['conclusion'];
  if (t.p < alpha) conclusion = t.meanDiff > 0 ? 'bottom worse' : 'top worse';
  else if (t.ci95[1] < minEffect && t.ci95[0] > -minEffect) conclusion = 'no real difference';
  else conclusion = 'inconclusive';
  return { n: t.n, meanDiff: t.meanDiff, ci95: t.ci95, p: t.p, cohensDz: t.cohensDz, conclusion };
}

/**
 * F3, bottom vs top: corrupting the bottom K layers hurts more than corrupting the top K. Pairs share
 * dataset, K and seed; K = L (every layer) is left out because bottom:L and top:L are the same run.
 */
export function bottomVsTop(rows: readonly ResultRow[], options: FindingOptions = {}): F3Finding {
  const { alpha, minEffect, notes, flat } = findingInputs(rows, options);
  const standard = standardCorruption(flat);
  const sided = flat.filter((r) => (r.side === 'bottom' || r.side === 'top') && standard && r.components === standard.components && r.mode === standard.mode);
  // bottom:K and top:K touch the same layers exactly when K is the whole depth.
  const layersOf = new Map<string, string>();
  for (const r of sided) layersOf.set(`${r.dataset}|${r.side}|${r.k}|${r.seed}`, r.layers);
  const sameLayers = (r: FlatRow) => {
    const other = layersOf.get(`${r.dataset}|${r.side === 'bottom' ? 'top' : 'bottom'}|${r.k}|${r.seed}`);
    return other !== undefined && [...r.layers.split(',')].sort().join() === [...other.split(',')].sort().join();
  };
  const comparable = sided.filter((r) => !sameLayers(r));
  const allLayers = sided.length - comparable.length;
  if (allLayers) notes.push(new Note('all layers', `${allLayers} run(s) with K = all layers left out (bottom:L and top:L corrupt the same layers)`));
  const comparison = pairSides(comparable);
  const unmatched = comparable.length - 2 * comparison.length;
  if (unmatched > 0) notes.push(new Note('no partner', `${unmatched} bottom/top run(s) without a partner of the other side at the same K and seed (or diverged)`));
  const datasets = [...new Set(comparison.map((p) => String(p.key.dataset)))].sort();
  const details: F3Detail[] = datasets.map((dataset) => {
    const pairs = comparison.filter((p) => p.key.dataset === dataset);
    const ks = [...new Set(pairs.map((p) => Number(p.key.k)))].sort((a, b) => a - b);
    return { dataset, ks, ...judgePairs(pairs.map((p) => p.a), pairs.map((p) => p.b), alpha, minEffect) };
  });
  const pooled = judgePairs(comparison.map((p) => p.a), comparison.map((p) => p.b), alpha, minEffect);
  const verdicts: Record<PairedResult['conclusion'], Verdict> = {
    'bottom worse': 'supported',
    'top worse': 'not supported',
    'no real difference': 'not supported',
    inconclusive: 'inconclusive',
    'not enough data': 'not enough data',
  };
  const verdict = verdicts[pooled.conclusion];
  const bottomWorse = details.filter((d) => d.conclusion === 'bottom worse').length;
  const testedDetails = details.filter((d) => d.conclusion !== 'not enough data').length;
  const summary =
    pooled.conclusion === 'not enough data'
      ? `Fewer than two bottom:K / top:K pairs (same dataset, K < L and seed): nothing to test.`
      : `Pooled over ${datasets.length} dataset(s) and ${pooled.n} pairs (same dataset, K and seed, K < L), top-K minus bottom-K accuracy is ` +
        `${pct(pooled.meanDiff)} points (95 % CI ${interval(100 * pooled.ci95[0], 100 * pooled.ci95[1], 1)}), paired t p = ${pValue(pooled.p)}, ` +
        `Cohen's dz = ${fmt(pooled.cohensDz, 2)}: ${pooled.conclusion}. Per dataset, bottom is significantly worse on ${countPhrase(bottomWorse, testedDetails, 'datasets with two or more pairs')}.`;
  const row = (name: string, r: PairedResult, ks: string) => ({
    dataset: name,
    k: ks,
    pairs: r.n,
    'top - bottom accuracy': r.meanDiff,
    '95% CI': r.n >= 2 ? interval(r.ci95[0], r.ci95[1]) : '-',
    p: Number.isFinite(r.p) ? pValue(r.p) : '-',
    "Cohen's dz": r.cohensDz,
    conclusion: r.conclusion,
  });
  return explainUnlearned({
    id: 'F3',
    title: 'F3 · Bottom vs top',
    claim: 'Corrupting the bottom layers (next to the embeddings) hurts more than corrupting the same number of top layers.',
    verdict,
    summary,
    table: [...details.map((d) => row(d.dataset, d, d.ks.join(','))), ...(details.length > 1 ? [row('all (pooled)', pooled, '')] : [])],
    details,
    notes,
    pooled,
    pairs: comparison.map((p) => ({ ...p.key, top: p.a, bottom: p.b })),
  });
}
