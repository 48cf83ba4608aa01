import { canonicalJson } from '../../experiment/hash';
import { datasetLabel, type ResultRow } from '../../experiment/spec';
import type { BagOfWordsRow } from '../bag-of-words';
import { records, resultsFrame, type FlatRow } from '../frames';
import { mean, pairedTest, pct, summarise } from '../stats';
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
  /** A bag of words fitted on the same examples and seeds, cut to what the model sees (when recorded). */
  bagOfWords?: Reference;
  /** The same bag of words on whole texts (recorded for IMDB, whose reviews the model sees only the start of). */
  bagOfWordsFullText?: Reference;
  /** The same architecture fine-tuned from random weights (`fromScratch`), same examples, recipe and seeds. */
  fromScratch?: Reference;
}

/** A reference point next to the clean model: its mean over the seeds both have, and clean minus it, paired by seed. */
export interface Reference {
  seeds: number[];
  accuracy: number;
  /** Clean minus reference, mean over the shared seeds (accuracy, not points). */
  cleanMinus: number;
  /** 95 % interval of that difference (paired t); NaN with fewer than two shared seeds. */
  lo: number;
  hi: number;
}

/** What {@link cleanBaselines} takes besides the finding options. */
export interface BaselineOptions extends FindingOptions {
  /**
   * Bag-of-words rows (`healing baseline`, data/results/bag-of-words.jsonl): those on the clean runs'
   * dataset, subset sizes and seeds, cut at their max length by this model's tokenizer, join the table.
   */
  bagOfWords?: readonly BagOfWordsRow[];
  /**
   * The fingerprint of the model's tokenizer (loadTruncatingTokenizer): rows cut by another tokenizer are left
   * out. Without it, the tokenizer with the most rows for the dataset is used.
   */
  tokenizerFingerprint?: string;
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
export function cleanBaselines(rows: readonly ResultRow[], options: BaselineOptions = {}): Finding<BaselineDetail> {
  const { minEffect } = decisionRules(options);
  // From-scratch runs are a reference here (withReferences), not rows the selection should note as left out.
  const selection = selectRows(rows.filter((r) => !r.spec.fromScratch), options);
  const details = withReferences(baselineDetails(selection.rows, minEffect), selection, rows, options);
  const tested = details.filter((d) => d.learned !== 'not enough data');
  const yes = tested.filter((d) => d.learned === 'yes').length;
  const no = tested.filter((d) => d.learned === 'no').length;
  const verdict = vote(tested.length, yes, no);
  const summary =
    tested.length === 0
      ? `No dataset has two or more clean seeds (${details.length} dataset(s) with one): no interval to compare with the majority class.`
      : `Clean fine-tuning beats always predicting the majority class by more than ${pct(minEffect)} points (95 % interval over seeds) on ` +
        `${countPhrase(yes, tested.length, 'datasets')}; ` +
        tested.map((d) => `${d.dataset} ${pct(d.accuracy)} % vs ${pct(d.majority)} %`).join(', ') + '.' +
        referenceSentence(details, 'bagOfWords', 'a bag of words on the same examples (TF-IDF + logistic regression)') +
        referenceSentence(details, 'fromScratch', 'the same architecture fine-tuned from random weights');
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
      ...referenceColumns('bag of words', d.bagOfWords),
      ...(details.some((x) => x.bagOfWordsFullText) ? referenceColumns('bag of words, full text', d.bagOfWordsFullText) : {}),
      ...referenceColumns('from scratch', d.fromScratch),
    })),
    details,
    notes: [
      ...selection.notes,
      ...(no > 0 ? [new Note('unlearned', 'F1-F3 leave out the datasets marked "learned: no" (see their notes)')] : []),
    ],
  };
}

function referenceColumns(name: string, ref: Reference | undefined): Record<string, string | number> {
  if (!ref) return { [name]: 'not run', [`clean - ${name} (points)`]: '-' };
  const diff = `${(100 * ref.cleanMinus).toFixed(1)}` + (Number.isFinite(ref.lo) ? ` [${(100 * ref.lo).toFixed(1)}, ${(100 * ref.hi).toFixed(1)}]` : ' (one seed)');
  return { [name]: ref.accuracy, [`clean - ${name} (points)`]: diff };
}

/** "Against X: clean above on a of n datasets (...), below on b." when any dataset has the reference. */
function referenceSentence(details: readonly BaselineDetail[], key: 'bagOfWords' | 'fromScratch', what: string): string {
  const withRef = details.filter((d) => d[key] && Number.isFinite(d[key]!.lo));
  if (withRef.length === 0) return '';
  const above = withRef.filter((d) => d[key]!.lo > 0).length;
  const below = withRef.filter((d) => d[key]!.hi < 0).length;
  const each = withRef.map((d) => `${d.dataset} ${d[key]!.cleanMinus >= 0 ? '+' : ''}${(100 * d[key]!.cleanMinus).toFixed(1)}`).join(', ');
  return ` Against ${what}, paired by seed: clean is above (95 % interval above 0) on ${countPhrase(above, withRef.length, 'datasets')} and below on ${below} (${each} points).`;
}

/** A reference's accuracy per seed against the clean run of the same seed. */
function reference(clean: ReadonlyMap<number, number>, other: ReadonlyMap<number, number>): Reference | undefined {
  const seeds = [...clean.keys()].filter((s) => other.has(s)).sort((a, b) => a - b);
  if (seeds.length === 0) return undefined;
  const a = seeds.map((s) => clean.get(s)!);
  const b = seeds.map((s) => other.get(s)!);
  const cleanMinus = mean(a) - mean(b);
  const [lo, hi] = seeds.length >= 2 ? pairedTest(a, b).ci95 : [NaN, NaN];
  return { seeds, accuracy: mean(b), cleanMinus, lo, hi };
}

/** The most frequent value (the first seen on a tie): which tokenizer's rows to use when none is named. */
function mostCommon(values: readonly string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | undefined;
  for (const [v, n] of counts) if (best === undefined || n > counts.get(best)!) best = v;
  return best;
}

const accuracyBySeed = (rows: readonly { seed: number; accuracy: number | null | undefined }[]): Map<number, number> =>
  new Map(rows.filter((r) => r.accuracy != null && Number.isFinite(r.accuracy)).map((r) => [r.seed, r.accuracy as number]));

/**
 * The bag of words and the from-scratch runs of each dataset's clean setting. From-scratch rows are
 * not in the selection (they are no corruption), so they come from all rows: same model name and
 * weights fingerprint (a from-scratch row records the checkpoint it took its shape from), same
 * dataset spec and recipe.
 */
function withReferences(details: BaselineDetail[], selection: Selection, rows: readonly ResultRow[], options: BaselineOptions): BaselineDetail[] {
  const clean = selection.rows.filter((r) => r.spec.corruption === null && !r.spec.fromScratch);
  const setting = (r: ResultRow) => canonicalJson({ dataset: r.spec.dataset, recipe: r.spec.recipe });
  const fingerprint = (r: ResultRow) => (r as { modelFingerprint?: string }).modelFingerprint;
  return details.map((d) => {
    const own = clean.filter((r) => datasetLabel(r.spec.dataset) === d.dataset);
    if (own.length === 0) return d;
    const spec = own[0].spec;
    const cleanBySeed = accuracyBySeed(own.map((r) => ({ seed: r.spec.seed, accuracy: r.final.accuracy })));
    const scratch = rows.filter(
      (r) => r.spec.fromScratch && r.spec.corruption === null && r.spec.model === spec.model && fingerprint(r) === fingerprint(own[0]) && setting(r) === setting(own[0]),
    );
    const bow = (options.bagOfWords ?? []).filter(
      (b) => b.dataset === d.dataset && b.trainSize === (spec.dataset.trainSize ?? null) && b.evalSize === (spec.dataset.evalSize ?? null),
    );
    const cutByModel = bow.filter((b) => b.truncation.kind === 'tokens' && b.truncation.maxLength === spec.dataset.maxLength && b.truncation.model === spec.model);
    const tokenizer = options.tokenizerFingerprint ?? mostCommon(cutByModel.map((b) => (b.truncation.kind === 'tokens' ? b.truncation.tokenizer : '')));
    const cut = cutByModel.filter((b) => b.truncation.kind === 'tokens' && b.truncation.tokenizer === tokenizer);
    const whole = bow.filter((b) => b.truncation.kind === 'none');
    const out: BaselineDetail = { ...d };
    const scratchRef = reference(cleanBySeed, accuracyBySeed(scratch.map((r) => ({ seed: r.spec.seed, accuracy: r.final.accuracy }))));
    const cutRef = reference(cleanBySeed, accuracyBySeed(cut));
    const wholeRef = reference(cleanBySeed, accuracyBySeed(whole));
    if (scratchRef) out.fromScratch = scratchRef;
    if (cutRef) out.bagOfWords = cutRef;
    if (wholeRef) out.bagOfWordsFullText = wholeRef;
    return out;
  });
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
