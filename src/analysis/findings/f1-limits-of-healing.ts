import type * as dfd from 'danfojs-node';
import type { RowWithRecovery } from '../../experiment/recovery';
import type { ResultRow } from '../../experiment/spec';
import { aggregateOverSeeds, frameOf, records, RESULT_COLUMNS, type FlatRow, type SeedAggregate } from '../frames';
import { mean, pairedTest, pct, summarise } from '../stats';
import { findingInputs } from './baselines';
import { countPhrase, decisionRules, explainUnlearned, fmt, interval, Note, pValue, vote, type Finding, type FindingOptions } from './finding';

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
  const { minEffect, alpha } = decisionRules(options);
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
  const per = perEpoch.map((g, epoch) => ({ epoch, n: g.length, gap: mean(g) }));
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
  const { minEffect, selection, notes, flat } = findingInputs(rows, options);
  const corrupted = flat.filter((r) => r.side !== 'clean' && r.side !== 'scratch');
  const unpaired = corrupted.filter((r) => !Number.isFinite(r.recovery)).length;
  if (unpaired) notes.push(new Note('no partner', `${unpaired} corrupted run(s) without a clean run of the same dataset, recipe and seed (or with a diverged one): no recovery`));
  const groups: RecoveryGroup[] = [];
  const aggRows = corrupted.length
    ? records<SeedAggregate & { dataset: string; corruption: string }>(aggregateOverSeeds(frameOfFlat(corrupted), ['dataset', 'corruption'], 'recovery'))
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
  const verdict = vote(tested.length, below, healed);

  const longer = epochGaps(selection.rows, options);
  const datasets = [...new Set(groups.map((g) => g.dataset))];
  const meanRecovery = mean(tested.map((g) => g.meanRecovery));
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
  return explainUnlearned({
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
  });
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
