import type { RowWithRecovery } from '../../experiment/recovery';
import { datasetLabel, type ResultRow } from '../../experiment/spec';
import { flattenRow } from '../frames';
import { mean, pairedTest, pct } from '../stats';
import { majorityShare } from './baselines';
import { decisionRules, interval, Note, pValue, vote, type FindingOptions, type Verdict } from './finding';
import { selectRows } from './selection';

/**
 * Beyond the paper (issue 11, item 5): two related results on the same model and data, judged from the
 * rows like F1-F3. Pure: rows in, plain data out.
 *
 * (a) Zhang et al. 2021, "Revisiting Few-sample BERT Fine-tuning": re-initialising the top K layers and
 *     the pooler can help with few examples. Per training size, mode and K: corrupted minus clean accuracy.
 * (b) Which component matters (after Kovaleva et al. 2021, LayerNorm outliers): only LayerNorm, only
 *     attention, only the feed-forward block of bottom:K vs top:K. Per dataset, component and side: the
 *     drop from clean.
 *
 * The rule, stated before any data (EFFECT_RULE): a cell compares the corrupted runs with the clean run of
 * the same setting and seed; the paired 95 % t interval over seeds of (corrupted - clean) accuracy decides:
 * above 0 = "helps", below 0 = "hurts", containing 0 = "no detectable effect"; fewer than two pairs =
 * "not enough data". Three seeds give 2 degrees of freedom (t = 4.30), so only large, consistent effects
 * reach "helps" or "hurts".
 */

export type Effect = 'helps' | 'hurts' | 'no detectable effect' | 'not enough data';

export const EFFECT_RULE =
  'Per cell, corrupted minus clean accuracy, paired by seed (the clean run of the same setting and seed), with its 95 % t interval: ' +
  '"helps" when the interval lies above 0, "hurts" when it lies below 0, "no detectable effect" when it contains 0, ' +
  '"not enough data" with fewer than two pairs.';

export interface EffectCell {
  /** Seeds with both a corrupted and a clean run. */
  pairs: number;
  /** Mean accuracy of the corrupted runs and of their clean partners over those seeds. */
  accuracy: number;
  clean: number;
  /** mean(corrupted - clean): negative = corruption hurts. */
  meanDiff: number;
  ci95: [number, number];
  p: number;
  effect: Effect;
  /** Corrupted runs without a clean partner (or without an accuracy: diverged). */
  unpaired: number;
}

/** The pre-stated rule (EFFECT_RULE) on one cell's pairs. */
export function judgeEffect(pairs: ReadonlyArray<{ accuracy: number; clean: number }>, unpaired = 0): EffectCell {
  const accuracy = mean(pairs.map((p) => p.accuracy));
  const clean = mean(pairs.map((p) => p.clean));
  if (pairs.length < 2) {
    return { pairs: pairs.length, accuracy, clean, meanDiff: accuracy - clean, ci95: [NaN, NaN], p: NaN, effect: 'not enough data', unpaired };
  }
  const t = pairedTest(pairs.map((p) => p.accuracy), pairs.map((p) => p.clean));
  const effect: Effect = t.ci95[0] > 0 ? 'helps' : t.ci95[1] < 0 ? 'hurts' : 'no detectable effect';
  return { pairs: t.n, accuracy, clean, meanDiff: t.meanDiff, ci95: t.ci95, p: t.p, effect, unpaired };
}

/** A row's corrupted accuracy against its clean partner's (set by withRecovery inside selectRows). */
function pairOf(row: RowWithRecovery): { accuracy: number; clean: number } | undefined {
  const accuracy = row.final.accuracy;
  const clean = row.cleanAccuracy;
  return accuracy != null && Number.isFinite(accuracy) && clean !== undefined && Number.isFinite(clean) ? { accuracy, clean } : undefined;
}

/** Groups rows by a key and judges each group; groups keep their first-seen order. */
function cellsBy<K>(rows: readonly RowWithRecovery[], keyOf: (row: RowWithRecovery) => K | undefined): Array<{ key: K; cell: EffectCell }> {
  const groups = new Map<string, { key: K; pairs: Array<{ accuracy: number; clean: number }>; unpaired: number }>();
  for (const row of rows) {
    const key = keyOf(row);
    if (key === undefined) continue;
    const id = JSON.stringify(key);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { key, pairs: [], unpaired: 0 }));
    const pair = pairOf(row);
    if (pair) g.pairs.push(pair);
    else g.unpaired++;
  }
  return [...groups.values()].map((g) => ({ key: g.key, cell: judgeEffect(g.pairs, g.unpaired) }));
}

/** Share of the evaluation set in its largest class, from a clean run's last confusion matrix. */
function majorityOf(rows: readonly ResultRow[]): number {
  const clean = rows.find((r) => r.spec.corruption === null && r.epochs.at(-1)?.eval);
  return clean ? majorityShare(clean.epochs.at(-1)!.eval!.confusion) : NaN;
}

const ciText = (c: EffectCell): string => (c.pairs >= 2 ? interval(100 * c.ci95[0], 100 * c.ci95[1], 1) : '-');
const points = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${pct(x)}` : 'n/a');

export interface BeyondResult<Cell> {
  id: 'few-sample reinit' | 'components';
  title: string;
  /** The claim the verdict is about, and the rule it is judged by, both fixed before the data. */
  claim: string;
  rule: string;
  verdict: Verdict;
  /** One paragraph with the numbers the verdict rests on. */
  summary: string;
  table: Array<Record<string, string | number>>;
  cells: Cell[];
  notes: Note[];
}

// ---------------------------------------------------------------------------------------------
// (a) Few-sample re-initialisation

export interface FewSampleCell extends EffectCell {
  dataset: string;
  trainSize: number;
  mode: string;
  k: number;
}

/** Per mode, what the cells say as the training set grows. */
export interface FewSampleTrend {
  mode: string;
  /** Training sizes tested (with at least one judged cell), ascending. */
  sizes: number[];
  /** Per size: K values that hurt / help / show no detectable effect. */
  bySize: Array<{ trainSize: number; hurts: number[]; helps: number[]; none: number[] }>;
  /**
   * The smallest tested size from which on (at it and at every larger tested size) no K hurts;
   * undefined when the largest size still has a K that hurts, or nothing was judged.
   */
  stopsHurtingAt?: number;
  /** Sizes where at least one K helps. */
  helpsAt: number[];
}

export interface FewSampleResult extends BeyondResult<FewSampleCell> {
  trends: FewSampleTrend[];
}

/** Top-K re-initialisations (plus the pooler) and the clean runs they are compared with. */
function isFewSampleRow(row: ResultRow): boolean {
  const c = row.spec.corruption;
  if (row.spec.fromScratch) return false;
  if (c === null) return true;
  return /^top:\d+$/.test(c.layers.trim());
}

/** The modes Zhang et al.'s claim is about: Hugging Face's initialisation (theirs). */
export const ZHANG_MODE = 'reinit-hf';

/**
 * (a) Zhang et al. 2021 on our model: top-K re-initialisation at several training sizes. Each training
 * size is its own setting (selectRows per size), so clean runs pair only with corruptions of their size.
 * The verdict is about Zhang et al.'s claim: with their initialisation, re-initialising the top layers
 * helps at the smallest training size tested; a vote over K there ("helps" for, "hurts" against).
 */
export function fewSampleReinit(rows: readonly ResultRow[], options: FindingOptions & { mode?: string } = {}): FewSampleResult {
  const claimMode = options.mode ?? ZHANG_MODE;
  const candidates = rows.filter(isFewSampleRow);
  const notes: Note[] = [];
  if (candidates.length < rows.length) notes.push(new Note('other corruption', `${rows.length - candidates.length} row(s) that are not clean or top-K left out`));
  const sizes = [...new Set(candidates.map((r) => r.spec.dataset.trainSize ?? Infinity))].sort((a, b) => a - b);
  // One model for every size: the one with the most rows overall (selectRows' choice), unless named.
  const model = options.model ?? selectRows(candidates).model;
  const cells: FewSampleCell[] = [];
  const majority = new Map<number, number>();
  for (const size of sizes) {
    const selection = selectRows(candidates.filter((r) => (r.spec.dataset.trainSize ?? Infinity) === size), { model });
    notes.push(...selection.notes.map((n) => new Note(n.kind, `train size ${size}: ${n.text}`, n.dataset)));
    majority.set(size, majorityOf(selection.rows));
    for (const { key, cell } of cellsBy(selection.rows, (row) => {
      const f = flattenRow(row);
      return f.side === 'top' ? { dataset: f.dataset, mode: f.mode, k: f.k } : undefined;
    })) {
      cells.push({ ...key, trainSize: size, ...cell });
    }
  }
  cells.sort((a, b) => a.dataset.localeCompare(b.dataset) || a.mode.localeCompare(b.mode) || a.k - b.k || a.trainSize - b.trainSize);
  const modes = [...new Set(cells.map((c) => c.mode))].sort();
  const trends = modes.map((mode) => trendOf(mode, cells.filter((c) => c.mode === mode)));

  const smallest = cells.filter((c) => c.mode === claimMode && c.effect !== 'not enough data').map((c) => c.trainSize).sort((a, b) => a - b)[0];
  const atSmallest = cells.filter((c) => c.mode === claimMode && c.trainSize === smallest && c.effect !== 'not enough data');
  const helps = atSmallest.filter((c) => c.effect === 'helps').length;
  const hurts = atSmallest.filter((c) => c.effect === 'hurts').length;
  const verdict = vote(atSmallest.length, helps, hurts);
  const trendText = trends.map(describeTrend).join(' ');
  const summary =
    atSmallest.length === 0
      ? `No ${claimMode} cell with two or more paired seeds: nothing to judge. ${trendText}`.trim()
      : `At ${smallest} training examples, re-initialising the top K layers and the pooler with ${claimMode} helps for ${helps} and hurts for ${hurts} ` +
        `of ${atSmallest.length} K value(s) (${atSmallest.map((c) => `K=${c.k} ${points(c.meanDiff)} points`).join(', ')}). ${trendText}`;
  return {
    id: 'few-sample reinit',
    title: '(a) Re-initialising the top layers with few examples (Zhang et al. 2021)',
    claim: `Re-initialising the top K layers and the pooler with ${claimMode} (N(0, initializer_range)) helps fine-tuning at the smallest training size.`,
    rule: `${EFFECT_RULE} Verdict: at the smallest training size, "supported" when most K help, "not supported" when most hurt, else "inconclusive".`,
    verdict,
    summary,
    table: cells.map((c) => ({
      dataset: c.dataset,
      'train size': c.trainSize,
      mode: c.mode,
      K: c.k,
      seeds: c.pairs,
      clean: c.clean,
      'majority class': majority.get(c.trainSize) ?? NaN,
      corrupted: c.accuracy,
      'corrupted - clean (points)': Number.isFinite(c.meanDiff) ? 100 * c.meanDiff : NaN,
      '95% CI (points)': ciText(c),
      p: Number.isFinite(c.p) ? pValue(c.p) : '-',
      effect: c.effect,
    })),
    cells,
    notes,
    trends,
  };
}

/** What the cells of one mode say from the smallest training size to the largest. */
export function trendOf(mode: string, cells: readonly FewSampleCell[]): FewSampleTrend {
  const judged = cells.filter((c) => c.mode === mode && c.effect !== 'not enough data');
  const sizes = [...new Set(judged.map((c) => c.trainSize))].sort((a, b) => a - b);
  const bySize = sizes.map((trainSize) => {
    const at = judged.filter((c) => c.trainSize === trainSize);
    const ks = (effect: Effect) => at.filter((c) => c.effect === effect).map((c) => c.k).sort((a, b) => a - b);
    return { trainSize, hurts: ks('hurts'), helps: ks('helps'), none: ks('no detectable effect') };
  });
  let stopsHurtingAt: number | undefined;
  for (let i = bySize.length - 1; i >= 0 && bySize[i].hurts.length === 0; i--) stopsHurtingAt = bySize[i].trainSize;
  return { mode, sizes, bySize, stopsHurtingAt, helpsAt: bySize.filter((s) => s.helps.length > 0).map((s) => s.trainSize) };
}

/** One sentence per mode: where it stops hurting and where it helps. */
export function describeTrend(trend: FewSampleTrend): string {
  if (trend.sizes.length === 0) return `${trend.mode}: no cell with two or more paired seeds.`;
  const largest = trend.sizes.at(-1)!;
  const stops =
    trend.stopsHurtingAt === undefined
      ? `still hurts at ${largest} examples (K = ${trend.bySize.at(-1)!.hurts.join(', ')})`
      : trend.stopsHurtingAt === trend.sizes[0]
        ? `hurts at no tested size (${trend.sizes.join(', ')} examples)`
        : `stops hurting from ${trend.stopsHurtingAt} examples on`;
  const helps = trend.helpsAt.length ? `helps at ${trend.helpsAt.join(', ')} examples` : 'helps at no tested size';
  return `${trend.mode}: ${stops}; ${helps}.`;
}

// ---------------------------------------------------------------------------------------------
// (b) Which component matters

export interface ComponentCell extends EffectCell {
  dataset: string;
  /** "layernorm", "attention", "ffn", or "all" (the whole layers: the paper preset's run, for reference). */
  component: string;
  side: 'bottom' | 'top';
  k: number;
  /** clean - corrupted accuracy: positive = corruption hurts. */
  drop: number;
}

export interface ComponentSideGap {
  dataset: string;
  component: string;
  k: number;
  pairs: number;
  /** mean(top - bottom) accuracy, paired by seed: positive = corrupting the bottom hurts more. */
  meanDiff: number;
  ci95: [number, number];
  conclusion: 'bottom worse' | 'top worse' | 'no detectable difference' | 'not enough data';
}

export interface ComponentResult extends BeyondResult<ComponentCell> {
  sides: ComponentSideGap[];
}

/** The single components the study corrupts on their own, and the whole layer beside them. */
export const STUDY_COMPONENTS = ['layernorm', 'attention', 'ffn'] as const;

/**
 * (b) Which component matters: per dataset, component and side (bottom:K / top:K, one K), the drop from
 * the clean run of the same seed, judged by EFFECT_RULE; whole-layer runs ("all") of the same K are shown
 * beside them when present. The verdict is about Kovaleva et al.'s point, on our model: resetting
 * LayerNorm alone hurts; a vote over the LayerNorm cells (dataset x side), "hurts" for, "helps" against.
 * Bottom vs top per component: top - bottom accuracy paired by seed, 95 % t interval.
 */
export function componentStudy(rows: readonly ResultRow[], options: FindingOptions = {}): ComponentResult {
  const { alpha } = decisionRules(options);
  const selection = selectRows(rows, options);
  const notes = [...selection.notes];
  const sided = selection.rows.filter((r) => {
    const c = r.spec.corruption;
    return c !== null && /^(bottom|top):\d+$/.test(c.layers.trim()) && c.components.length === 1 && c.mode === 'reinit';
  });
  const kept = selection.rows.filter((r) => r.spec.corruption === null || sided.includes(r));
  if (kept.length < selection.rows.length) {
    notes.push(new Note('other corruption', `${selection.rows.length - kept.length} row(s) with other corruptions (several components, another mode, explicit layers) left out`));
  }
  const cells: ComponentCell[] = cellsBy(sided, (row) => {
    const f = flattenRow(row);
    return { dataset: f.dataset, component: f.components, side: f.side as 'bottom' | 'top', k: f.k };
  }).map(({ key, cell }) => ({ ...key, ...cell, drop: -cell.meanDiff }));
  const order = (c: string) => {
    const i = (STUDY_COMPONENTS as readonly string[]).indexOf(c);
    return i < 0 ? STUDY_COMPONENTS.length : i;
  };
  cells.sort((a, b) => a.dataset.localeCompare(b.dataset) || order(a.component) - order(b.component) || a.k - b.k || a.side.localeCompare(b.side));

  const sides = sideGaps(sided, alpha);
  const layernorm = cells.filter((c) => c.component === 'layernorm' && c.effect !== 'not enough data');
  const hurts = layernorm.filter((c) => c.effect === 'hurts').length;
  const helps = layernorm.filter((c) => c.effect === 'helps').length;
  const verdict = vote(layernorm.length, hurts, helps);
  const single = cells.filter((c) => c.component !== 'all' && c.effect !== 'not enough data');
  const perSide = (['bottom', 'top'] as const).map((side) => {
    const own = single.filter((c) => c.side === side);
    const matter = own.filter((c) => c.effect === 'hurts');
    const largest = [...own].sort((a, b) => b.drop - a.drop)[0];
    return own.length === 0
      ? ''
      : `${side}: ${matter.length} of ${own.length} component cell(s) hurt (${matter.map((c) => `${c.dataset} ${c.component}`).join(', ') || 'none'}); ` +
          `largest drop ${largest.dataset} ${largest.component} ${pct(largest.drop)} points.`;
  });
  const summary =
    single.length === 0
      ? 'No component cell with two or more paired seeds: nothing to judge.'
      : `Resetting LayerNorm alone hurts in ${hurts} and helps in ${helps} of ${layernorm.length} dataset x side cell(s). ${perSide.filter(Boolean).join(' ')}`;
  return {
    id: 'components',
    title: '(b) Which component matters',
    claim: 'Corrupting LayerNorm alone (weights 1, biases 0) hurts fine-tuned accuracy, as LayerNorm weights carry much of BERT\'s function (Kovaleva et al. 2021).',
    rule: `${EFFECT_RULE} Verdict: over the LayerNorm cells (dataset x side), "supported" when most hurt, "not supported" when most help, else "inconclusive". ` +
      `Bottom vs top per component: top - bottom accuracy paired by seed, significant at p < ${alpha}.`,
    verdict,
    summary,
    table: cells.map((c) => ({
      dataset: c.dataset,
      component: c.component === 'all' ? 'all (whole layers)' : c.component,
      corruption: `${c.side}:${c.k}`,
      seeds: c.pairs,
      clean: c.clean,
      corrupted: c.accuracy,
      'drop from clean (points)': Number.isFinite(c.drop) ? 100 * c.drop : NaN,
      '95% CI of corrupted - clean (points)': ciText(c),
      effect: c.effect,
    })),
    cells,
    notes,
    sides,
  };
}

/** top:K against bottom:K of the same dataset, component, K and seed. */
function sideGaps(rows: readonly RowWithRecovery[], alpha: number): ComponentSideGap[] {
  const arms = new Map<string, { dataset: string; component: string; k: number; bySeed: Map<number, { top?: number; bottom?: number }> }>();
  for (const row of rows) {
    const f = flattenRow(row);
    if (!Number.isFinite(f.accuracy)) continue;
    const id = JSON.stringify([f.dataset, f.components, f.k]);
    let arm = arms.get(id);
    if (!arm) arms.set(id, (arm = { dataset: datasetLabel(row.spec.dataset), component: f.components, k: f.k, bySeed: new Map() }));
    const seed = arm.bySeed.get(f.seed) ?? {};
    seed[f.side === 'top' ? 'top' : 'bottom'] = f.accuracy;
    arm.bySeed.set(f.seed, seed);
  }
  return [...arms.values()].map((arm) => {
    const pairs = [...arm.bySeed.values()].filter((s): s is { top: number; bottom: number } => s.top !== undefined && s.bottom !== undefined);
    const base = { dataset: arm.dataset, component: arm.component, k: arm.k, pairs: pairs.length };
    if (pairs.length < 2) return { ...base, meanDiff: NaN, ci95: [NaN, NaN] as [number, number], conclusion: 'not enough data' as const };
    const t = pairedTest(pairs.map((p) => p.top), pairs.map((p) => p.bottom));
    const conclusion = t.p < alpha ? (t.meanDiff > 0 ? 'bottom worse' : 'top worse') : 'no detectable difference';
    return { ...base, meanDiff: t.meanDiff, ci95: t.ci95, conclusion };
  });
}
