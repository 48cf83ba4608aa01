import type { ResultRow } from '../../experiment/spec';
import type { Finding, FindingOptions } from './finding';
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
