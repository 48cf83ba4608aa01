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

/** What a note says was left out, so that readers pick notes by kind and dataset, never by their wording. */
export type NoteKind =
  | 'no rows'
  | 'other model'
  | 'stale'
  | 'other numerics'
  | 'from scratch'
  | 'other setting'
  | 'unlearned'
  | 'no partner'
  | 'other corruption'
  | 'all layers';

/** One note of a selection or finding: its kind, the dataset it is about (if one) and the sentence shown. */
export class Note {
  constructor(
    readonly kind: NoteKind,
    readonly text: string,
    readonly dataset?: string,
  ) {}

  // Notebooks print notes in template strings (`note: ${note}`), where a note should read as its sentence.
  toString(): string {
    return this.text;
  }
}

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
  notes: Note[];
}

export interface FindingOptions {
  /** Analyse this model's rows (spec.model); default: the model with the most rows. */
  model?: string;
  /**
   * The weights to analyse: the model's fingerprint as it is now (identity.modelFingerprint), so rows of
   * weights a name pointed at before are left out even while they are the majority; default: the
   * fingerprint most of the model's rows carry.
   */
  fingerprint?: string;
  /** Smallest accuracy effect worth a claim (default 0.01). */
  minEffect?: number;
  /** Significance level of the tests (default 0.05). */
  alpha?: number;
  /** Keep datasets whose clean model does not beat the majority class in F1-F3 (default: leave them out). */
  includeUnlearned?: boolean;
}

/** The thresholds of the decision rules above, with their defaults. */
export function decisionRules(options: FindingOptions): { minEffect: number; alpha: number } {
  return { minEffect: options.minEffect ?? 0.01, alpha: options.alpha ?? 0.05 };
}

/**
 * The verdict of a claim judged on several units (settings, lines, datasets): a majority of the tested
 * units for it supports it, a majority against it refutes it, and anything short of either is inconclusive.
 */
export function vote(tested: number, forClaim: number, againstClaim: number): Verdict {
  if (tested === 0) return 'not enough data';
  if (forClaim > tested / 2) return 'supported';
  if (againstClaim > tested / 2) return 'not supported';
  return 'inconclusive';
}

/** "Not enough data" because every dataset was left out as unlearned says so, not just "no runs". */
export function explainUnlearned<F extends Finding<unknown>>(finding: F): F {
  if (finding.verdict !== 'not enough data') return finding;
  const names = finding.notes.flatMap((n) => (n.kind === 'unlearned' && n.dataset !== undefined ? [n.dataset] : []));
  if (names.length === 0) return finding;
  return {
    ...finding,
    summary: `${finding.summary} Left out because their clean model does not beat the majority class: ${names.join(', ')}.`,
  };
}

/** One line per finding: "F2 supported: ...", what a notebook prints last. */
export function verdictLine(finding: Finding<unknown>): string {
  return `${finding.id} (${finding.claim}) Verdict: ${finding.verdict}. ${finding.summary}`;
}

export const fmt = (x: number, digits = 4): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
export const pValue = (p: number): string => (!Number.isFinite(p) ? 'n/a' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
export const interval = (lo: number, hi: number, digits = 4): string => `[${fmt(lo, digits)}, ${fmt(hi, digits)}]`;

export function countPhrase(count: number, total: number, what: string): string {
  return `${count} of ${total} ${what}`;
}
