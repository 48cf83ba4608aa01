import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bottomVsTop,
  byDataset,
  cleanBaselines,
  majorityShare,
  epochGaps,
  limitsOfHealing,
  moreCorruptionHurtsMore,
  olsSlope,
  selectRows,
  spearman,
  staleRows,
} from '../src/analysis/findings';
import { syntheticResults } from '../src/analysis/synthetic';
import { pairedTest, summarise } from '../src/analysis/stats';
import type { ResultRow } from '../src/experiment/spec';
import type { BagOfWordsRow } from '../src/analysis/bag-of-words';

// Synthetic rows carry a planted truth: accuracy = clean - k * penalty(side) + seed noise (sd 0.005).
const seeds = [0, 1, 2, 3, 4];
const planted = syntheticResults({ datasets: ['sst2', 'emotion', 'ag_news'], ks: [1, 2, 3], seeds, bottomPenalty: 0.04, topPenalty: 0.01 });
const none = syntheticResults({ datasets: ['sst2', 'emotion', 'ag_news'], ks: [1, 2, 3], seeds, bottomPenalty: 0, topPenalty: 0 });
const equal = syntheticResults({ datasets: ['sst2', 'emotion', 'ag_news'], ks: [1, 2, 3], seeds, bottomPenalty: 0.03, topPenalty: 0.03 });
const reversed = syntheticResults({ datasets: ['sst2', 'emotion'], ks: [1, 2], seeds, bottomPenalty: 0.01, topPenalty: 0.05 });

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

test('spearman and olsSlope match independent values', () => {
  // No ties: rho = 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 24 / 120.
  close(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]), 0.8, 1e-12, 'rho without ties');
  // With ties: scipy.stats.spearmanr([1,2,2,3,4],[3,1,2,2,5]).
  close(spearman([1, 2, 2, 3, 4], [3, 1, 2, 2, 5]), 0.2894736842105264, 1e-12, 'rho with ties');
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])), 'a constant variable has no rank correlation');
  close(olsSlope([0, 1, 2, 3], [1, 3, 5, 7]), 2, 1e-12, 'exact line');
  assert.ok(Number.isNaN(olsSlope([2, 2], [1, 3])));
});

test('F1: a planted accuracy loss is found as recovery reliably below 1, with the recovery computed from the rows', () => {
  const f = limitsOfHealing(planted);
  assert.equal(f.verdict, 'supported');
  // 3 datasets x 2 sides x 3 ks corrupted settings, 5 seeds each.
  const groups = f.details.flatMap((d) => d.groups);
  assert.equal(groups.length, 18);
  const g = groups.find((x) => x.dataset === 'emotion' && x.corruption === 'bottom:2/all/reinit')!;
  // Independent: recovery per seed from the raw rows.
  const acc = (layers: string | null, seed: number) =>
    planted.find((r) => r.spec.dataset.name === 'emotion' && r.spec.seed === seed && (r.spec.corruption?.layers ?? null) === layers)!.final.accuracy!;
  const ratios = seeds.map((s) => acc('bottom:2', s) / acc(null, s));
  const s = summarise(ratios);
  close(g.meanRecovery, s.mean, 1e-12, 'mean recovery');
  close(g.hi, s.ci95[1], 1e-12, 'upper bound');
  close(g.meanRecovery, 1 - 0.08 / 0.9, 0.01, 'planted recovery');
  assert.ok(g.reliablyBelow);
  assert.equal(f.table.length, 18);
});

test('F1: no planted loss is "not supported" when measured precisely, never "supported" when noisy', () => {
  const precise = syntheticResults({ datasets: ['sst2', 'emotion'], ks: [1, 2], seeds, bottomPenalty: 0, topPenalty: 0, noise: 0.001 });
  const f = limitsOfHealing(precise);
  assert.equal(f.verdict, 'not supported');
  assert.ok(f.details.flatMap((d) => d.groups).every((g) => g.healed && g.lo >= 0.99));
  // Noisy seeds (0.5 points) leave wide intervals: that is not evidence of full healing either way.
  assert.notEqual(limitsOfHealing(none).verdict, 'supported');
});

/** Rows whose per-epoch accuracy moves: corrupted runs start `extra` worse after the first epoch. */
function withEpochGap(rows: ResultRow[], extra: number): ResultRow[] {
  return rows.map((r) => {
    if (r.spec.corruption === null) return r;
    return { ...r, epochs: r.epochs.map((e, i) => ({ ...e, eval: { ...e.eval, accuracy: e.eval.accuracy! - (i === 0 ? extra : 0) } })) };
  });
}

test('F1: longer fine-tuning narrows a planted early gap, and a constant gap is "does not narrow"', () => {
  const narrowing = withEpochGap(planted, 0.1);
  const r = limitsOfHealing(narrowing).longerTraining;
  assert.equal(r.n, 3 * 6 * seeds.length);
  close(r.meanChange, -0.1, 1e-9, 'gap change');
  assert.equal(r.conclusion, 'narrows but stays');
  assert.equal(r.perEpoch.length, 3);
  assert.ok(r.perEpoch[0].gap > r.perEpoch[2].gap);
  // With no loss at the end, the gap closes.
  assert.equal(limitsOfHealing(withEpochGap(none, 0.1)).longerTraining.conclusion, 'closes');
  // Synthetic rows have the same accuracy after every epoch: the gap stays as it is.
  assert.equal(epochGaps(selectRows(planted).rows).conclusion, 'does not narrow');
});

test('F2: a planted per-layer loss is a falling trend with the planted slope; no loss is flat', () => {
  const f = moreCorruptionHurtsMore(planted);
  assert.equal(f.verdict, 'supported');
  assert.equal(f.details.length, 3);
  for (const d of f.details) {
    const bottom = d.lines.find((l) => l.side === 'bottom')!;
    const top = d.lines.find((l) => l.side === 'top')!;
    assert.deepEqual(bottom.ks, [0, 1, 2, 3]);
    assert.ok(bottom.lo <= -0.04 && -0.04 <= bottom.hi, `bottom slope interval ${bottom.lo}..${bottom.hi} holds the planted -0.04`);
    assert.ok(top.lo <= -0.01 && -0.01 <= top.hi, `top slope interval ${top.lo}..${top.hi} holds the planted -0.01`);
    assert.equal(bottom.trend, 'falls');
    assert.ok(bottom.spearman < -0.8);
  }
  const flat = moreCorruptionHurtsMore(none);
  assert.equal(flat.verdict, 'not supported');
  assert.ok(flat.details.flatMap((d) => d.lines).every((l) => l.trend !== 'falls' || l.hi > -0.01));
});

test('F3: bottom worse than top is found with the planted difference; pairs match a direct paired t-test', () => {
  const f = bottomVsTop(planted);
  assert.equal(f.verdict, 'supported');
  assert.equal(f.pooled.n, 3 * 3 * seeds.length);
  // Planted: top - bottom = k * (0.04 - 0.01), mean k = 2.
  assert.ok(f.pooled.ci95[0] <= 0.06 && 0.06 <= f.pooled.ci95[1], `CI ${f.pooled.ci95}`);
  // Independent: pair the raw rows by hand for one dataset.
  const acc = (layers: string, seed: number) =>
    planted.find((r) => r.spec.dataset.name === 'sst2' && r.spec.seed === seed && r.spec.corruption?.layers === layers)!.final.accuracy!;
  const top: number[] = [];
  const bottom: number[] = [];
  for (const k of [1, 2, 3]) for (const s of seeds) {
    top.push(acc(`top:${k}`, s));
    bottom.push(acc(`bottom:${k}`, s));
  }
  const direct = pairedTest(top, bottom);
  const sst2 = f.details.find((d) => d.dataset === 'sst2')!;
  close(sst2.meanDiff, direct.meanDiff, 1e-12, 'mean difference');
  close(sst2.p, direct.p, 1e-12, 'p');
  close(sst2.cohensDz, direct.cohensDz, 1e-9, 'dz');
  assert.equal(sst2.conclusion, 'bottom worse');
});

test('F3: equal penalties are not a bottom-vs-top effect; top worse is "not supported"', () => {
  assert.notEqual(bottomVsTop(equal).verdict, 'supported');
  const f = bottomVsTop(reversed);
  assert.equal(f.verdict, 'not supported');
  assert.equal(f.pooled.conclusion, 'top worse');
});

test('F3: K = all layers is left out (bottom:L and top:L corrupt the same layers)', () => {
  // syntheticResults realises layers for a 12-layer model.
  const rows = syntheticResults({ datasets: ['sst2'], ks: [1, 12], seeds: [0, 1, 2] });
  const f = bottomVsTop(rows);
  assert.equal(f.pooled.n, 3);
  assert.ok(f.notes.some((n) => /K = all layers/.test(n.text)), f.notes.join('; '));
});

test('every finding says "not enough data" with one seed or no rows, instead of failing', () => {
  const oneSeed = syntheticResults({ datasets: ['sst2'], ks: [1], seeds: [0] });
  for (const rows of [oneSeed, []]) {
    assert.equal(limitsOfHealing(rows).verdict, 'not enough data');
    assert.equal(moreCorruptionHurtsMore(rows).verdict, 'not enough data');
    assert.equal(bottomVsTop(rows).verdict, 'not enough data');
  }
});

test('stale rows (other weights under the same model name) and other settings are surfaced and left out', () => {
  const rows = planted.map((r, i) => ({ ...r, modelFingerprint: i < 5 ? 'oldweights000000' : 'newweights000000' }) as ResultRow);
  const stale = staleRows(rows);
  assert.equal(stale.length, 1);
  assert.equal(stale[0].fingerprint, 'newweights000000');
  assert.equal(stale[0].stale.length, 5);
  const selection = selectRows(rows);
  assert.equal(selection.rows.length, rows.length - 5);
  assert.ok(selection.notes.some((n) => /5 stale row/.test(n.text)));

  // A quick-sized run of the same dataset is another experiment, not another seed.
  const quick = syntheticResults({ datasets: ['sst2'], ks: [1], seeds: [0] }).map((r) => ({
    ...r,
    hash: r.hash.replace(/^./, 'f'),
    spec: { ...r.spec, dataset: { ...r.spec.dataset, trainSize: 64 } },
  }));
  const mixed = selectRows([...planted, ...quick]);
  assert.equal(mixed.rows.length, planted.length);
  assert.ok(mixed.notes.some((n) => /sst2: 3 row\(s\) with other subset sizes/.test(n.text)), mixed.notes.join('; '));
});

test('rows of another engine\'s numerics (a spec rerun on the native engine) are left out, with a note', () => {
  // The first 4 rows rerun on the native engine: same specs, another arithmetic.
  const rerun = planted.slice(0, 4).map((r) => ({ ...r, hash: r.hash.replace(/^./, 'e'), numerics: 'native-1' }) as ResultRow);
  const selection = selectRows([...planted, ...rerun]);
  assert.equal(selection.rows.length, planted.length);
  assert.ok(selection.rows.every((r) => (r as { numerics?: string }).numerics === undefined), 'the majority (old rows: tfjs-1) is kept');
  assert.ok(selection.notes.some((n) => /4 row\(s\) of numerics native-1 left out/.test(n.text)), selection.notes.join('; '));
  // Once the native rows are the majority, they are the ones analysed.
  const native = planted.map((r) => ({ ...r, numerics: 'native-1' }) as ResultRow);
  const flipped = selectRows([...native, ...planted.slice(0, 4)]);
  assert.equal(flipped.rows.length, planted.length);
  assert.ok(flipped.rows.every((r) => (r as { numerics?: string }).numerics === 'native-1'));
});

test('clean baselines: accuracy against the majority class read from the confusion matrix', () => {
  assert.equal(majorityShare([[60, 4], [5, 59]]), 64 / 128);
  assert.equal(majorityShare([[3, 0, 0], [1, 0, 0], [1, 0, 0]]), 3 / 5);
  const good = cleanBaselines(planted);
  assert.equal(good.verdict, 'supported');
  const sst2 = good.details.find((d) => d.dataset === 'sst2')!;
  const accs = seeds.map((s) => planted.find((r) => r.spec.dataset.name === 'sst2' && r.spec.seed === s && r.spec.corruption === null)!.final.accuracy!);
  close(sst2.accuracy, summarise(accs).mean, 1e-12, 'mean clean accuracy');
  assert.equal(sst2.majority, 0.5);
  // A "clean" model at chance learns nothing.
  const chance = syntheticResults({ datasets: ['sst2', 'emotion'], ks: [1], seeds, cleanAccuracy: { sst2: 0.5, emotion: 0.5 } });
  assert.equal(cleanBaselines(chance).verdict, 'not supported');
  assert.equal(cleanBaselines(syntheticResults({ seeds: [0] })).verdict, 'not enough data');
});

test('F1-F3 leave out a dataset whose clean model stays at the majority class, and say so', () => {
  // sst2 learns (0.9 vs majority 0.5) with bottom worse than top; mrpc stays below the majority class.
  const rows = syntheticResults({ datasets: ['sst2', 'mrpc'], seeds, cleanAccuracy: { mrpc: 0.45 } });
  const baselines = cleanBaselines(rows);
  assert.equal(baselines.details.find((d) => d.dataset === 'mrpc')!.learned, 'no');
  assert.equal(baselines.details.find((d) => d.dataset === 'sst2')!.learned, 'yes');
  for (const finding of [limitsOfHealing(rows), moreCorruptionHurtsMore(rows), bottomVsTop(rows)]) {
    assert.ok(finding.notes.some((n) => n.text.startsWith('mrpc left out')), `${finding.id} notes the left-out dataset`);
    assert.ok(!JSON.stringify(finding.table).includes('mrpc'), `${finding.id} has no mrpc row`);
    assert.ok(JSON.stringify(finding.table).includes('sst2'), `${finding.id} keeps sst2`);
  }
  // On request they stay in.
  const all = bottomVsTop(rows, { includeUnlearned: true });
  assert.ok(JSON.stringify(all.table).includes('mrpc'));
  assert.ok(!all.notes.some((n) => n.text.startsWith('mrpc left out')));
});

test('when every dataset is left out as unlearned, the summary says why there is no data', () => {
  const rows = syntheticResults({ datasets: ['mrpc'], seeds, cleanAccuracy: { mrpc: 0.45 } });
  for (const finding of [limitsOfHealing(rows), moreCorruptionHurtsMore(rows), bottomVsTop(rows)]) {
    assert.equal(finding.verdict, 'not enough data');
    assert.match(finding.summary, /Left out because their clean model does not beat the majority class: mrpc\./);
  }
});

test('selectRows: the model\'s current fingerprint wins over the majority of its rows (a re-pretrained default)', () => {
  const rows = syntheticResults();
  const cut = Math.floor((rows.length * 2) / 3);
  const marked = rows.map((r, i) => ({ ...r, modelFingerprint: i < cut ? 'aaaaaaaaaaaaaaaa' : 'bbbbbbbbbbbbbbbb' }));
  const byMajority = selectRows(marked);
  assert.ok(byMajority.rows.every((r) => (r as { modelFingerprint?: string }).modelFingerprint === 'aaaaaaaaaaaaaaaa'));
  const byCurrent = selectRows(marked, { fingerprint: 'bbbbbbbbbbbbbbbb' });
  assert.ok(byCurrent.rows.length > 0 && byCurrent.rows.length < byMajority.rows.length);
  assert.ok(byCurrent.rows.every((r) => (r as { modelFingerprint?: string }).modelFingerprint === 'bbbbbbbbbbbbbbbb'));
  assert.ok(byCurrent.notes.some((n) => /other weights than the model has now/.test(n.text)));
  assert.equal(staleRows(marked, { [marked[0].spec.model]: 'bbbbbbbbbbbbbbbb' })[0].stale.length, cut);
});

test('clean baselines: the bag of words and the from-scratch runs stand beside the clean model, paired by seed', () => {
  const rows = syntheticResults({ datasets: ['sst2'], ks: [1], seeds });
  const clean = rows.filter((r) => r.spec.corruption === null);
  const cleanAcc = new Map(clean.map((r) => [r.spec.seed, r.final.accuracy!]));
  // From scratch: 20 + seed points below on seeds 0-3; seed 4's run used another recipe, so it is no reference.
  const scratch: ResultRow[] = clean.map((r) => ({
    ...r,
    hash: `${r.hash.slice(0, 15)}f`,
    spec: { ...r.spec, fromScratch: true, recipe: r.spec.seed === 4 ? { ...r.spec.recipe, epochs: 99 } : r.spec.recipe },
    final: { ...r.final, accuracy: r.final.accuracy! - 0.2 - 0.01 * r.spec.seed },
  }));
  const spec = clean[0].spec;
  const ours = 'a'.repeat(16);
  const bow = (seed: number, accuracy: number, truncation: BagOfWordsRow['truncation']) =>
    ({ dataset: 'sst2', trainSize: spec.dataset.trainSize, evalSize: spec.dataset.evalSize, seed, truncation, accuracy }) as unknown as BagOfWordsRow;
  const cut = (tokenizer: string, maxLength = spec.dataset.maxLength) => ({ kind: 'tokens' as const, maxLength, maxTokens: maxLength - 2, model: spec.model, tokenizer });
  const bagOfWords = [
    bow(0, 0.8, cut(ours)),
    bow(1, 0.82, cut(ours)),
    bow(2, 0.81, cut(ours)),
    bow(0, 0.99, cut('b'.repeat(16))), // another tokenizer under the same model name
    bow(1, 0.99, cut(ours, 64)), // another max length
    bow(0, 0.88, { kind: 'none' }),
    bow(1, 0.86, { kind: 'none' }),
  ];
  const finding = cleanBaselines([...rows, ...scratch], { bagOfWords, tokenizerFingerprint: ours });
  const d = finding.details[0];

  assert.deepEqual(d.fromScratch!.seeds, [0, 1, 2, 3]);
  close(d.fromScratch!.cleanMinus, 0.215, 1e-9, 'clean minus scratch');
  const diffs = [0, 1, 2, 3].map((s) => 0.2 + 0.01 * s);
  const [lo, hi] = pairedTest([0, 1, 2, 3].map((s) => cleanAcc.get(s)!), [0, 1, 2, 3].map((s) => cleanAcc.get(s)! - diffs[s])).ci95;
  close(d.fromScratch!.lo, lo, 1e-12, 'scratch interval low');
  close(d.fromScratch!.hi, hi, 1e-12, 'scratch interval high');
  assert.ok(d.fromScratch!.lo > 0.19 && d.fromScratch!.hi < 0.24, `interval around 0.215: [${lo}, ${hi}]`);

  assert.deepEqual(d.bagOfWords!.seeds, [0, 1, 2]);
  close(d.bagOfWords!.accuracy, 0.81, 1e-12, 'bag of words: only our tokenizer at the study max length');
  close(d.bagOfWords!.cleanMinus, [0, 1, 2].reduce((s, k) => s + cleanAcc.get(k)!, 0) / 3 - 0.81, 1e-12, 'clean minus bag of words');
  assert.deepEqual(d.bagOfWordsFullText!.seeds, [0, 1]);
  close(d.bagOfWordsFullText!.accuracy, 0.87, 1e-12, 'full text');

  const row = finding.table[0] as Record<string, unknown>;
  assert.equal(row['bag of words'], d.bagOfWords!.accuracy);
  assert.match(String(row['clean - from scratch (points)']), /^21\.5 \[\d+\.\d, \d+\.\d\]$/);
  assert.ok('bag of words, full text' in row);
  assert.match(finding.summary, /Against a bag of words .* above \(95 % interval above 0\) on 1 of 1 dataset/);
  assert.match(finding.summary, /from random weights, paired by seed: clean is above .*\(sst2 \+21\.5 points\)/);
  assert.ok(!finding.notes.some((n) => /from-scratch/.test(n.text)), 'the references are not noted as left out');

  // Without references the columns say so; without a tokenizer fingerprint the tokenizer with the most rows counts.
  const bare = cleanBaselines(rows).table[0] as Record<string, unknown>;
  assert.equal(bare['bag of words'], 'not run');
  assert.equal(bare['from scratch'], 'not run');
  assert.ok(!('bag of words, full text' in bare));
  assert.deepEqual(cleanBaselines(rows, { bagOfWords }).details[0].bagOfWords!.seeds, [0, 1, 2]);
  close(cleanBaselines(rows, { bagOfWords }).details[0].bagOfWords!.accuracy, 0.81, 1e-12, 'the majority tokenizer');
  assert.equal(cleanBaselines(rows, { bagOfWords, tokenizerFingerprint: 'c'.repeat(16) }).details[0].bagOfWords, undefined);
});

test('byDataset: each dataset judged alone, with the runs still missing on it', () => {
  // sst2: bottom much worse than top; emotion: no difference at all.
  const sst2 = syntheticResults({ datasets: ['sst2'], ks: [1, 2, 3], seeds, bottomPenalty: 0.04, topPenalty: 0.01 });
  const emotion = syntheticResults({ datasets: ['emotion'], ks: [1, 2, 3], seeds, bottomPenalty: 0.02, topPenalty: 0.02, seed: 7 });
  const rows = [...sst2, ...emotion];
  const notYet = syntheticResults({ datasets: ['ag_news'], ks: [1], seeds: [0] }).map((r) => r.spec);
  const missing = [sst2[0].spec, sst2[1].spec, ...notYet];
  const verdicts = byDataset(rows, bottomVsTop, { missing });
  assert.deepEqual(verdicts.map((v) => [v.dataset, v.verdict, v.runs, v.missing]), [
    ['ag_news', 'not enough data', 0, notYet.length],
    ['emotion', bottomVsTop(emotion).verdict, emotion.length, 0],
    ['sst2', 'supported', sst2.length, 2],
  ]);
  assert.notEqual(verdicts[1].verdict, 'supported', 'equal penalties: bottom is not worse on emotion');
  assert.equal(verdicts[2].summary, `Interim, 2 of ${sst2.length + 2} runs still missing (not the study's verdict): ${bottomVsTop(sst2).summary}`);
  assert.equal(verdicts[1].summary, bottomVsTop(emotion).summary, 'a complete dataset: the finding\'s own summary');
  assert.ok(!verdicts[0].summary.startsWith('Interim'), 'nothing recorded: "not enough data" says it already');
});
