import { datasetLabel, type ResultRow } from '../../experiment/spec';
import { records, resultsFrame, type FlatRow } from '../frames';
import { mean, pct, summarise } from '../stats';
import { countPhrase, decisionRules, interval, Note, vote, type Finding, type FindingOptions } from './finding';
import { selectRows, type Selection } from './selection';

// Clean baselines: what every finding compares against.

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
  const { minEffect } = decisionRules(options);
  const selection = selectRows(rows, options);
  const details = baselineDetails(selection.rows, minEffect);
  const tested = details.filter((d) => d.learned !== 'not enough data');
  const yes = tested.filter((d) => d.learned === 'yes').length;
  const no = tested.filter((d) => d.learned === 'no').length;
  const verdict = vote(tested.length, yes, no);
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
      ...(no > 0 ? [new Note('unlearned', 'F1-F3 leave out the datasets marked "learned: no" (see their notes)')] : []),
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
    const base = { dataset, seeds: accs.length, macroF1: mean(f1s), majority, numLabels: own[0].numLabels };
    if (accs.length < 2) return { ...base, accuracy: accs[0] ?? NaN, lo: NaN, hi: NaN, learned: 'not enough data' as const };
    const s = summarise(accs);
    const learned = s.ci95[0] > majority + minEffect ? 'yes' : s.ci95[1] <= majority + minEffect ? 'no' : 'unclear';
    return { ...base, accuracy: s.mean, lo: s.ci95[0], hi: s.ci95[1], learned };
  });
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
        (d) => new Note(
          'unlearned',
          `${d.dataset} left out: the clean model does not beat the majority class there (${pct(d.accuracy)} %, 95 % CI ` +
            `${pct(d.lo)}-${pct(d.hi)}, vs ${pct(d.majority)} %), so there is nothing for corruption to take away or fine-tuning to restore`,
          d.dataset,
        ),
      ),
    ],
  };
}

/** What F1-F3 start from: their thresholds, the learned selection, its notes to add to, and its rows flattened. */
export interface FindingInputs {
  minEffect: number;
  alpha: number;
  selection: Selection;
  notes: Note[];
  flat: FlatRow[];
}

export function findingInputs(rows: readonly ResultRow[], options: FindingOptions): FindingInputs {
  const { minEffect, alpha } = decisionRules(options);
  const selection = learnedSelection(selectRows(rows, options), minEffect, options);
  return { minEffect, alpha, selection, notes: [...selection.notes], flat: records<FlatRow>(resultsFrame(selection.rows)) };
}
