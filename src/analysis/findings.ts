import type * as dfd from 'danfojs-node';
import { numericsOf } from '../backend/numerics';
import { canonicalJson } from '../experiment/hash';
import { withRecovery, type RowWithRecovery } from '../experiment/recovery';
import { datasetLabel, type ResultRow } from '../experiment/spec';
import { aggregateOverSeeds, frameOf, records, RESULT_COLUMNS, resultsFrame, type FlatRow, type SeedAggregate } from './frames';
import { pairedTest, summarise } from './stats';

/**
 * The paper's three findings as functions of the result store: each returns a verdict computed from
 * the rows (never typed in), the numbers behind it and a table, so a notebook, the report and a test
 * all read the same judgement. Pure: rows in, plain data out.
 *
 * Decision rules, in one place so they can be argued with:
 *  - "reliably" means the 95 % t interval over seeds excludes the boundary;
 *  - the smallest effect worth a claim is `minEffect` accuracy (default 0.01, one point): an interval
 *    that sits entirely within one point of "no effect" counts against the claim, an interval that
 *    straddles both is inconclusive;
 *  - a group needs at least two seeds to say anything.
 */

export type Verdict = 'supported' | 'not supported' | 'inconclusive' | 'not enough data';

export interface Finding<Detail> {
  id: 'baselines' | 'F1' | 'F2' | 'F3';
  title: string;
  claim: string;
  verdict: Verdict;
  /** One paragraph with the numbers the verdict rests on. */
  summary: string;
  /** The finding's table (one row per dataset and condition), for showTable and the report. */
  table: Array<Record<string, string | number>>;
  details: Detail[];
  /** What was left out of the analysis and why (stale rows, other models, other settings). */
  notes: string[];
}

export interface FindingOptions {
  /** Analyse this model's rows (spec.model); default: the model with the most rows. */
  model?: string;
  /** Smallest accuracy effect worth a claim (default 0.01). */
  minEffect?: number;
  /** Significance level of the tests (default 0.05). */
  alpha?: number;
  /** Keep datasets whose clean model does not beat the majority class in F1-F3 (default: leave them out). */
  includeUnlearned?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Row selection

/** Rows whose model fingerprint differs from the majority for the same model name. */
export interface StaleRows {
  model: string;
  /** The fingerprint most rows of this model carry. */
  fingerprint: string;
  stale: Array<{ hash: string; label: string; fingerprint: string }>;
}

const fingerprintOf = (row: ResultRow): string | undefined => {
  const f = (row as { modelFingerprint?: unknown }).modelFingerprint;
  return typeof f === 'string' ? f : undefined;
};

function majority<T>(values: readonly T[]): T | undefined {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: T | undefined;
  let bestCount = 0;
  for (const [v, c] of counts) if (c > bestCount) [best, bestCount] = [v, c];
  return best;
}

/**
 * Stale results: a model name ("default") that pointed at other weights when some rows were made
 * (the shipped model was re-pretrained). Rows without a fingerprint (older runners) are not judged.
 */
export function staleRows(rows: readonly ResultRow[]): StaleRows[] {
  const byModel = new Map<string, ResultRow[]>();
  for (const row of rows) {
    if (!fingerprintOf(row)) continue;
    const list = byModel.get(row.spec.model) ?? [];
    list.push(row);
    byModel.set(row.spec.model, list);
  }
  const out: StaleRows[] = [];
  for (const [model, list] of byModel) {
    const fingerprint = majority(list.map((r) => fingerprintOf(r)!))!;
    const stale = list
      .filter((r) => fingerprintOf(r) !== fingerprint)
      .map((r) => ({ hash: r.hash, label: r.label, fingerprint: fingerprintOf(r)! }));
    if (stale.length) out.push({ model, fingerprint, stale });
  }
  return out;
}

/** What a run was trained on and how, apart from corruption and seed: runs compare only within one. */
function settingKey(row: ResultRow): string {
  const { dataset, recipe, fromScratch } = row.spec;
  return canonicalJson({ dataset, recipe, fromScratch });
}

export interface Selection {
  model: string | undefined;
  rows: RowWithRecovery[];
  notes: string[];
}

/**
 * The rows a finding may compare: one model, its majority weights, and per dataset one setting
 * (subset sizes, max length, recipe). Mixing a quick run with a paper run of the same dataset would
 * average two different experiments, so the setting with the most runs wins and the rest are named.
 */
export function selectRows(rows: readonly ResultRow[], options: { model?: string } = {}): Selection {
  const notes: string[] = [];
  const models = [...new Set(rows.map((r) => r.spec.model))];
  const model = options.model ?? majority(rows.map((r) => r.spec.model));
  if (model === undefined) return { model, rows: [], notes: ['no result rows'] };
  if (models.length > 1) {
    const others = models.filter((m) => m !== model);
    notes.push(`analysing model "${model}"; ${rows.filter((r) => r.spec.model !== model).length} row(s) of ${others.map((m) => `"${m}"`).join(', ')} left out`);
  }
  let chosen = rows.filter((r) => r.spec.model === model);
  const stale = staleRows(chosen);
  if (stale.length) {
    const staleHashes = new Set(stale.flatMap((s) => s.stale.map((x) => x.hash)));
    notes.push(
      `${staleHashes.size} stale row(s) of "${model}" left out: made with other weights than the majority (fingerprint ${stale[0].fingerprint})`,
    );
    chosen = chosen.filter((r) => !staleHashes.has(r.hash));
  }
  // One engine's arithmetic: a spec rerun on the native engine (numerics native-1) next to its stock TF.js
  // row (tfjs-1) is the same experiment twice, not two seeds. The numerics with the most rows wins.
  const numerics = majority(chosen.map(numericsOf));
  const otherNumerics = chosen.filter((r) => numericsOf(r) !== numerics);
  if (otherNumerics.length) {
    const names = [...new Set(otherNumerics.map(numericsOf))].join(', ');
    notes.push(`analysing numerics ${numerics}; ${otherNumerics.length} row(s) of numerics ${names} left out (another engine's arithmetic)`);
    chosen = chosen.filter((r) => numericsOf(r) === numerics);
  }
  const before = chosen.length;
  chosen = chosen.filter((r) => !r.spec.fromScratch);
  if (chosen.length < before) notes.push(`${before - chosen.length} from-scratch row(s) left out (not a corruption)`);
  const byDataset = new Map<string, ResultRow[]>();
  for (const r of chosen) {
    const name = datasetLabel(r.spec.dataset);
    byDataset.set(name, [...(byDataset.get(name) ?? []), r]);
  }
  const kept: ResultRow[] = [];
  for (const [name, list] of byDataset) {
    const setting = majority(list.map(settingKey))!;
    const same = list.filter((r) => settingKey(r) === setting);
    if (same.length < list.length) notes.push(`${name}: ${list.length - same.length} row(s) with other subset sizes or recipe left out`);
    kept.push(...same);
  }
  // Recovery pairs each row with the clean run of its setting and seed, inside the selection.
  return { model, rows: withRecovery(kept), notes };
}

// ---------------------------------------------------------------------------------------------
// Helpers

const fmt = (x: number, digits = 4): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}` : 'n/a');
const pValue = (p: number): string => (!Number.isFinite(p) ? 'n/a' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
const interval = (lo: number, hi: number, digits = 4): string => `[${fmt(lo, digits)}, ${fmt(hi, digits)}]`;

type Agg = SeedAggregate;

/** The corruption most bottom/top rows use (e.g. all/reinit): F2 and F3 compare only like with like. */
function standardCorruption(flat: FlatRow[]): { components: string; mode: string } | undefined {
  const sided = flat.filter((r) => r.side === 'bottom' || r.side === 'top');
  const key = majority(sided.map((r) => `${r.components}|${r.mode}`));
  if (!key) return undefined;
  const [components, mode] = key.split('|');
  return { components, mode };
}

function countPhrase(count: number, total: number, what: string): string {
  return `${count} of ${total} ${what}`;
}

// ---------------------------------------------------------------------------------------------
// F1: the limits of healing

export interface RecoveryGroup {
  dataset: string;
  corruption: string;
  n: number;
  meanRecovery: number;
  lo: number;
  hi: number;
  /** The interval lies below 1: the corrupted model reliably ends below the clean one. */
  reliablyBelow: boolean;
  /** The interval's lower bound is within minEffect of full recovery: reliably (nearly) healed. */
  healed: boolean;
}

export interface EpochGapResult {
  /** Corrupted runs (with their clean partner) that have at least two epochs. */
  n: number;
  /** Mean accuracy gap (clean - corrupted) after the first epoch. */
  gapFirst: number;
  /** Mean gap after the last epoch. */
  gapLast: number;
  /** Mean of (last - first) per run; negative = the gap narrows with longer fine-tuning. */
  meanChange: number;
  ci95: [number, number];
  p: number;
  /** Mean gap after each epoch (index 0 = the first), over runs that have that epoch. */
  perEpoch: Array<{ epoch: number; n: number; gap: number }>;
  conclusion: 'closes' | 'narrows but stays' | 'does not narrow' | 'inconclusive' | 'not enough data';
}

export interface F1Detail {
  dataset: string;
  groups: RecoveryGroup[];
}

export interface F1Finding extends Finding<F1Detail> {
  longerTraining: EpochGapResult;
}

/** Accuracy after epoch e of a run (the epochs array as recorded, e = 0 is the first). */
function epochAccuracies(row: ResultRow): number[] {
  return row.epochs.map((e) => (e.eval.accuracy == null ? NaN : e.eval.accuracy));
}

/** Does longer fine-tuning close the gap? Gap per epoch of each corrupted run against its clean partner. */
export function epochGaps(rows: readonly RowWithRecovery[], options: FindingOptions = {}): EpochGapResult {
  const minEffect = options.minEffect ?? 0.01;
  const alpha = options.alpha ?? 0.05;
  const byHash = new Map(rows.map((r) => [r.hash, r]));
  const first: number[] = [];
  const last: number[] = [];
  const perEpoch: number[][] = [];
  for (const row of rows) {
    if (!row.cleanHash || row.spec.corruption === null) continue;
    const clean = byHash.get(row.cleanHash);
    if (!clean) continue;
    const a = epochAccuracies(row);
    const c = epochAccuracies(clean);
    const epochs = Math.min(a.length, c.length);
    const gaps = Array.from({ length: epochs }, (_, e) => c[e] - a[e]);
    if (epochs < 2 || !gaps.every(Number.isFinite)) continue;
    first.push(gaps[0]);
    last.push(gaps[epochs - 1]);
    gaps.forEach((g, e) => (perEpoch[e] ??= []).push(g));
  }
  const per = perEpoch.map((g, epoch) => ({ epoch, n: g.length, gap: g.reduce((s, x) => s + x, 0) / g.length }));
  if (first.length < 2) {
    return { n: first.length, gapFirst: NaN, gapLast: NaN, meanChange: NaN, ci95: [NaN, NaN], p: NaN, perEpoch: per, conclusion: 'not enough data' };
  }
  const test = pairedTest(last, first);
  const lastSummary = summarise(last);
  const gapFirst = summarise(first).mean;
  let conclusion: EpochGapResult['conclusion'];
  if (test.meanDiff < 0 && test.p < alpha) conclusion = lastSummary.ci95[1] < minEffect ? 'closes' : 'narrows but stays';
  else if (test.ci95[0] > -minEffect) conclusion = 'does not narrow';
  else conclusion = 'inconclusive';
  return { n: test.n, gapFirst, gapLast: lastSummary.mean, meanChange: test.meanDiff, ci95: test.ci95, p: test.p, perEpoch: per, conclusion };
}

/**
 * F1, the limits of healing: after the same fine-tuning, a corrupted model does not reach the clean
 * model's accuracy. Recovery = corrupted / clean accuracy of the same dataset, recipe and seed.
 */
export function limitsOfHealing(rows: readonly ResultRow[], options: FindingOptions = {}): F1Finding {
  return explainUnlearned(limitsOfHealingUnexplained(rows, options));
}

function limitsOfHealingUnexplained(rows: readonly ResultRow[], options: FindingOptions): F1Finding {
  const minEffect = options.minEffect ?? 0.01;
  const selection = learnedSelection(selectRows(rows, options), minEffect, options);
  const notes = [...selection.notes];
  const flat = records<FlatRow>(resultsFrame(selection.rows));
  const corrupted = flat.filter((r) => r.side !== 'clean' && r.side !== 'scratch');
  const unpaired = corrupted.filter((r) => !Number.isFinite(r.recovery)).length;
  if (unpaired) notes.push(`${unpaired} corrupted run(s) without a clean run of the same dataset, recipe and seed (or with a diverged one): no recovery`);
  const groups: RecoveryGroup[] = [];
  const aggRows = corrupted.length
    ? records<Agg & { dataset: string; corruption: string }>(aggregateOverSeeds(frameOfFlat(corrupted), ['dataset', 'corruption'], 'recovery'))
    : [];
  for (const g of aggRows) {
    if (g.n === 0) continue;
    const testable = g.n >= 2;
    groups.push({
      dataset: g.dataset,
      corruption: g.corruption,
      n: g.n,
      meanRecovery: g.mean,
      lo: testable ? g.lo : NaN,
      hi: testable ? g.hi : NaN,
      reliablyBelow: testable && g.hi < 1,
      healed: testable && g.lo >= 1 - minEffect,
    });
  }
  groups.sort((a, b) => (a.dataset === b.dataset ? compareCorruption(a.corruption, b.corruption) : a.dataset < b.dataset ? -1 : 1));
  const tested = groups.filter((g) => g.n >= 2);
  const below = tested.filter((g) => g.reliablyBelow).length;
  const healed = tested.filter((g) => g.healed).length;
  let verdict: Verdict;
  if (tested.length === 0) verdict = 'not enough data';
  else if (below > tested.length / 2) verdict = 'supported';
  else if (healed > tested.length / 2) verdict = 'not supported';
  else verdict = 'inconclusive';

  const longer = epochGaps(selection.rows, options);
  const datasets = [...new Set(groups.map((g) => g.dataset))];
  const meanRecovery = tested.length ? tested.reduce((s, g) => s + g.meanRecovery, 0) / tested.length : NaN;
  const worst = tested.reduce<RecoveryGroup | undefined>((w, g) => (!w || g.meanRecovery < w.meanRecovery ? g : w), undefined);
  let summary: string;
  if (tested.length === 0) {
    summary = `No corrupted setting has two or more seeds with a clean partner (${groups.length} setting(s) with one seed): recovery cannot be given an interval.`;
  } else {
    summary =
      `Recovery is reliably below 1 (95 % interval over seeds under 1) in ${countPhrase(below, tested.length, 'corrupted settings')} ` +
      `on ${datasets.length} dataset(s); within ${pct(minEffect)} % of full recovery in ${healed}. ` +
      `Mean recovery over settings ${fmt(meanRecovery)}` +
      (worst ? `; lowest ${fmt(worst.meanRecovery)} (${worst.dataset}, ${worst.corruption}).` : '.');
  }
  summary += ' ' + longerTrainingSentence(longer);
  return {
    id: 'F1',
    title: 'F1 · The limits of healing',
    claim: 'Fine-tuning does not fully heal a corrupted BERT: its accuracy stays below the clean model\'s (recovery < 1), and longer fine-tuning does not close the gap.',
    verdict,
    summary,
    table: groups.map((g) => ({
      dataset: g.dataset,
      corruption: g.corruption,
      seeds: g.n,
      'mean recovery': g.meanRecovery,
      '95% CI': g.n >= 2 ? interval(g.lo, g.hi) : 'one seed',
      'reliably < 1': g.n >= 2 ? (g.reliablyBelow ? 'yes' : 'no') : '-',
    })),
    details: datasets.map((dataset) => ({ dataset, groups: groups.filter((g) => g.dataset === dataset) })),
    notes,
    longerTraining: longer,
  };
}

function longerTrainingSentence(r: EpochGapResult): string {
  if (r.conclusion === 'not enough data') return 'Longer fine-tuning: not enough data (needs corrupted runs with two or more epochs and their clean partners).';
  const change = `the clean-minus-corrupted gap goes from ${pct(r.gapFirst)} points after the first epoch to ${pct(r.gapLast)} after the last ` +
    `(mean change ${pct(r.meanChange)} points, 95 % CI ${interval(100 * r.ci95[0], 100 * r.ci95[1], 1)}, paired t p = ${pValue(r.p)}, n = ${r.n} runs)`;
  const verdicts: Record<EpochGapResult['conclusion'], string> = {
    closes: 'it closes',
    'narrows but stays': 'it narrows but does not close',
    'does not narrow': 'it does not narrow',
    inconclusive: 'too noisy to say whether it narrows',
    'not enough data': '',
  };
  return `Longer fine-tuning: ${change}: ${verdicts[r.conclusion]}.`;
}

/** clean < bottom:1 < bottom:2 < ... < top:1 ... in tables: by side, then k numerically. */
function compareCorruption(a: string, b: string): number {
  const parse = (s: string) => {
    const m = /^(\w+):(\d+)/.exec(s);
    return m ? [m[1], Number(m[2]), s] as const : [s, 0, s] as const;
  };
  const [sa, ka, ra] = parse(a);
  const [sb, kb, rb] = parse(b);
  if (sa !== sb) return sa < sb ? -1 : 1;
  if (ka !== kb) return ka - kb;
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

// Filtered flat rows back into a frame, for aggregateOverSeeds.
function frameOfFlat(flat: FlatRow[]): dfd.DataFrame {
  return frameOf(flat, RESULT_COLUMNS as string[]);
}

// ---------------------------------------------------------------------------------------------
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

/** Least-squares slope of y on x; NaN with fewer than two distinct x. */
export function olsSlope(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n < 2) return NaN;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i] - mx) ** 2;
    sxy += (x[i] - mx) * (y[i] - my);
  }
  return sxx > 0 ? sxy / sxx : NaN;
}

/** Mid-ranks (ties share the mean of their positions), 1-based. */
function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1].v === order[start].v) end++;
    for (let j = start; j <= end; j++) out[order[j].i] = (start + end) / 2 + 1;
    start = end + 1;
  }
  return out;
}

/** Spearman's rho: Pearson correlation of the mid-ranks; NaN when either variable is constant. */
export function spearman(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new RangeError(`spearman: ${x.length} values against ${y.length}`);
  if (x.length < 2) return NaN;
  const rx = ranks(x);
  const ry = ranks(y);
  const n = rx.length;
  const mx = rx.reduce((s, v) => s + v, 0) / n;
  const my = ry.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/**
 * F2, more corruption hurts more: per dataset and side, accuracy after fine-tuning falls as more
 * layers are corrupted (k = 0 is the clean run). Each seed gives a slope; the interval is over seeds.
 */
export function moreCorruptionHurtsMore(rows: readonly ResultRow[], options: FindingOptions = {}): Finding<F2Detail> {
  return explainUnlearned(moreCorruptionHurtsMoreUnexplained(rows, options));
}

function moreCorruptionHurtsMoreUnexplained(rows: readonly ResultRow[], options: FindingOptions): Finding<F2Detail> {
  const minEffect = options.minEffect ?? 0.01;
  const selection = learnedSelection(selectRows(rows, options), minEffect, options);
  const notes = [...selection.notes];
  const flat = records<FlatRow>(resultsFrame(selection.rows)).filter((r) => Number.isFinite(r.accuracy));
  const standard = standardCorruption(flat);
  const onLine = (r: FlatRow) => r.side === 'clean' || ((r.side === 'bottom' || r.side === 'top') && standard && r.components === standard.components && r.mode === standard.mode);
  const left = flat.filter((r) => !onLine(r)).length;
  if (left) notes.push(`${left} run(s) with other corruptions (explicit layer lists, fractions, other components or modes) left out`);
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
  let verdict: Verdict;
  if (tested.length === 0) verdict = 'not enough data';
  else if (falls > tested.length / 2) verdict = 'supported';
  else if (flatOrRises > tested.length / 2) verdict = 'not supported';
  else verdict = 'inconclusive';
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
        `Mean slope: bottom ${pct(meanOf(tested.filter((l) => l.side === 'bottom').map((l) => l.slope)))} points per layer, ` +
        `top ${pct(meanOf(tested.filter((l) => l.side === 'top').map((l) => l.slope)))}.`;
  return {
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
  };
}

const meanOf = (xs: number[]): number => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);

// ---------------------------------------------------------------------------------------------
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
  return explainUnlearned(bottomVsTopUnexplained(rows, options));
}

function bottomVsTopUnexplained(rows: readonly ResultRow[], options: FindingOptions): F3Finding {
  const alpha = options.alpha ?? 0.05;
  const minEffect = options.minEffect ?? 0.01;
  const selection = learnedSelection(selectRows(rows, options), minEffect, options);
  const notes = [...selection.notes];
  const flat = records<FlatRow>(resultsFrame(selection.rows));
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
  if (allLayers) notes.push(`${allLayers} run(s) with K = all layers left out (bottom:L and top:L corrupt the same layers)`);
  const comparison = pairSides(comparable);
  const unmatched = comparable.length - 2 * comparison.length;
  if (unmatched > 0) notes.push(`${unmatched} bottom/top run(s) without a partner of the other side at the same K and seed (or diverged)`);
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
  return {
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
  };
}

// ---------------------------------------------------------------------------------------------
// Clean baselines: what every finding compares against

export interface BaselineDetail {
  dataset: string;
  seeds: number;
  accuracy: number;
  lo: number;
  hi: number;
  macroF1: number;
  /** Share of the evaluation set in its largest class: the accuracy of always predicting it. */
  majority: number;
  numLabels: number;
  learned: 'yes' | 'no' | 'unclear' | 'not enough data';
}

/** Share of the largest true class in a confusion matrix (confusion[true][predicted]). */
export function majorityShare(confusion: readonly (readonly number[])[]): number {
  const sizes = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const total = sizes.reduce((a, b) => a + b, 0);
  return total > 0 ? Math.max(...sizes) / total : NaN;
}

/**
 * The clean runs per dataset: accuracy over seeds against the majority-class baseline. A finding
 * about healing means little on a dataset the clean model does not learn in the first place.
 */
export function cleanBaselines(rows: readonly ResultRow[], options: FindingOptions = {}): Finding<BaselineDetail> {
  const minEffect = options.minEffect ?? 0.01;
  const selection = selectRows(rows, options);
  const details = baselineDetails(selection.rows, minEffect);
  const tested = details.filter((d) => d.learned !== 'not enough data');
  const yes = tested.filter((d) => d.learned === 'yes').length;
  const no = tested.filter((d) => d.learned === 'no').length;
  let verdict: Verdict;
  if (tested.length === 0) verdict = 'not enough data';
  else if (yes > tested.length / 2) verdict = 'supported';
  else if (no > tested.length / 2) verdict = 'not supported';
  else verdict = 'inconclusive';
  const summary =
    tested.length === 0
      ? `No dataset has two or more clean seeds (${details.length} dataset(s) with one): no interval to compare with the majority class.`
      : `Clean fine-tuning beats always predicting the majority class by more than ${pct(minEffect)} points (95 % interval over seeds) on ` +
        `${countPhrase(yes, tested.length, 'datasets')}; ` +
        tested.map((d) => `${d.dataset} ${pct(d.accuracy)} % vs ${pct(d.majority)} %`).join(', ') + '.';
  return {
    id: 'baselines',
    title: 'Clean baselines',
    claim: 'Fine-tuning the clean pretrained model learns each task: accuracy clearly above always predicting the majority class.',
    verdict,
    summary,
    table: details.map((d) => ({
      dataset: d.dataset,
      labels: d.numLabels,
      seeds: d.seeds,
      accuracy: d.accuracy,
      '95% CI': d.seeds >= 2 ? interval(d.lo, d.hi) : 'one seed',
      'macro F1': d.macroF1,
      'majority class': d.majority,
      learned: d.learned,
    })),
    details,
    notes: [
      ...selection.notes,
      ...(no > 0 ? ['F1-F3 leave out the datasets marked "learned: no" (see their notes)'] : []),
    ],
  };
}

function baselineDetails(rows: readonly ResultRow[], minEffect: number): BaselineDetail[] {
  const clean = rows.filter((r) => r.spec.corruption === null && !r.spec.fromScratch);
  const datasets = [...new Set(clean.map((r) => datasetLabel(r.spec.dataset)))].sort();
  return datasets.map((dataset) => {
    const own = clean.filter((r) => datasetLabel(r.spec.dataset) === dataset);
    const accs = own.map((r) => r.final.accuracy).filter((a): a is number => a != null && Number.isFinite(a));
    const f1s = own.map((r) => r.final.macroF1).filter((a): a is number => a != null && Number.isFinite(a));
    const lastEval = own[0].epochs.at(-1)?.eval;
    const majority = lastEval ? majorityShare(lastEval.confusion) : NaN;
    const base = { dataset, seeds: accs.length, macroF1: meanOf(f1s), majority, numLabels: own[0].numLabels };
    if (accs.length < 2) return { ...base, accuracy: accs[0] ?? NaN, lo: NaN, hi: NaN, learned: 'not enough data' as const };
    const s = summarise(accs);
    const learned = s.ci95[0] > majority + minEffect ? 'yes' : s.ci95[1] <= majority + minEffect ? 'no' : 'unclear';
    return { ...base, accuracy: s.mean, lo: s.ci95[0], hi: s.ci95[1], learned };
  });
}

const UNLEARNED_NOTE = / left out: the clean model does not beat the majority class/;

/** "Not enough data" because every dataset was left out as unlearned says so, not just "no runs". */
function explainUnlearned<F extends Finding<unknown>>(finding: F): F {
  if (finding.verdict !== 'not enough data') return finding;
  const names = finding.notes.filter((n) => UNLEARNED_NOTE.test(n)).map((n) => n.split(' ')[0]);
  if (names.length === 0) return finding;
  return {
    ...finding,
    summary: `${finding.summary} Left out because their clean model does not beat the majority class: ${names.join(', ')}.`,
  };
}

/**
 * F1-F3 ask how much of what fine-tuning reaches comes back after corruption; on a dataset where the
 * clean model stays at the majority class there is nothing to come back, and its rows would only add
 * noise (flat lines that count against F2, "full recovery" of chance accuracy for F1). Such datasets
 * ("learned: no" in the baselines) are left out, with a note; undecided ones stay in.
 */
function learnedSelection(selection: Selection, minEffect: number, options: FindingOptions): Selection {
  if (options.includeUnlearned) return selection;
  const unlearned = baselineDetails(selection.rows, minEffect).filter((d) => d.learned === 'no');
  if (unlearned.length === 0) return selection;
  const names = new Set(unlearned.map((d) => d.dataset));
  return {
    ...selection,
    rows: selection.rows.filter((r) => !names.has(datasetLabel(r.spec.dataset))),
    notes: [
      ...selection.notes,
      ...unlearned.map(
        (d) => `${d.dataset} left out: the clean model does not beat the majority class there (${pct(d.accuracy)} %, 95 % CI ` +
          `${pct(d.lo)}-${pct(d.hi)}, vs ${pct(d.majority)} %), so there is nothing for corruption to take away or fine-tuning to restore`,
      ),
    ],
  };
}

/** The three findings of one result set, in the paper's order. */
export function allFindings(rows: readonly ResultRow[], options: FindingOptions = {}): [F1Finding, Finding<F2Detail>, F3Finding] {
  return [limitsOfHealing(rows, options), moreCorruptionHurtsMore(rows, options), bottomVsTop(rows, options)];
}

/** One line per finding: "F2 supported: ...", what a notebook prints last. */
export function verdictLine(finding: Finding<unknown>): string {
  return `${finding.id} (${finding.claim}) Verdict: ${finding.verdict}. ${finding.summary}`;
}
