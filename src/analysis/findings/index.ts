import { datasetLabel, type ExperimentSpec, type ResultRow } from '../../experiment/spec';
import type { Finding, FindingOptions, Verdict } from './finding';
import { selectRows } from './selection';
import { limitsOfHealing, type F1Finding } from './f1-limits-of-healing';
import { moreCorruptionHurtsMore, type F2Detail } from './f2-more-corruption-hurts-more';
import { bottomVsTop, type F3Finding } from './f3-bottom-vs-top';

// One import path for every finding: a notebook or the report should not need to know the files.
export { Note, verdictLine, type Finding, type FindingOptions, type NoteKind, type Verdict } from './finding';
export { selectRows, staleRows, type Selection, type StaleRows } from './selection';
export { cleanBaselines, majorityShare, type BaselineDetail, type BaselineOptions, type Reference } from './baselines';
export { epochGaps, limitsOfHealing, type EpochGapResult, type F1Detail, type F1Finding, type RecoveryGroup } from './f1-limits-of-healing';
export { moreCorruptionHurtsMore, type F2Detail, type TrendLine } from './f2-more-corruption-hurts-more';
export { bottomVsTop, type F3Detail, type F3Finding, type PairedResult } from './f3-bottom-vs-top';
// The statistics F2 rests on, importable from here as before they moved to stats.
export { olsSlope, spearman } from '../stats';

/** The three findings of one result set, in the paper's order. */
export function allFindings(rows: readonly ResultRow[], options: FindingOptions = {}): [F1Finding, Finding<F2Detail>, F3Finding] {
  return [limitsOfHealing(rows, options), moreCorruptionHurtsMore(rows, options), bottomVsTop(rows, options)];
}

/** One dataset's verdict on a finding (a row of {@link byDataset}; a type, not an interface, so `show` takes the rows). */
export type DatasetVerdict = {
  dataset: string;
  /** Runs the finding analysed on this dataset (after its selection: model, weights, setting). */
  runs: number;
  /** Runs of the study still missing on this dataset: a verdict on a part-finished dataset is not the study's (its summary opens with "Interim"). */
  missing: number;
  verdict: Verdict;
  summary: string;
};

/**
 * A finding judged on each dataset alone, beside the pooled verdict the finding gives on all rows: where a
 * claim holds on some datasets and not on others, the pooled verdict hides it. `missing` (a study's missing
 * specs, `missing` of what `study()` returns) marks datasets whose grid is not finished.
 */
export function byDataset<D>(
  rows: readonly ResultRow[],
  finding: (rows: readonly ResultRow[], options: FindingOptions) => Finding<D>,
  options: FindingOptions & { missing?: readonly ExperimentSpec[] } = {},
): DatasetVerdict[] {
  // A dataset with nothing recorded yet but runs missing is listed too: "not enough data", not absent.
  const datasets = [...new Set([...rows.map((r) => datasetLabel(r.spec.dataset)), ...(options.missing ?? []).map((s) => datasetLabel(s.dataset))])].sort();
  return datasets.map((dataset) => {
    const own = rows.filter((r) => datasetLabel(r.spec.dataset) === dataset);
    const result = finding(own, options);
    const runs = selectRows(own, options).rows.length;
    const missing = (options.missing ?? []).filter((s) => datasetLabel(s.dataset) === dataset).length;
    // The verdict column reads like the study's: say in the same row that it is a look at a part of it.
    const interim = runs > 0 && missing > 0 ? `Interim, ${missing} of ${runs + missing} runs still missing (not the study's verdict): ` : '';
    return { dataset, runs, missing, verdict: result.verdict, summary: interim + result.summary };
  });
}
