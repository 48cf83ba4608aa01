import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../src/backend/engine';
import { UserError } from '../src/errors';
import { runExperiment } from '../src/experiment/run';
import { experimentExamples } from '../src/experiment/examples';
import { ExperimentSpecSchema, type ExperimentSpecInput } from '../src/experiment/spec';
import { BertTokenizer, loadTokenizer } from '../src/tokenizer/tokenizer';
import { textWithinTokens } from '../src/tokenizer/text-prefix';
import { shippedModelDir } from '../src/io/models';
import { createRng, shuffled } from '../src/random';
import {
  bagOfWordsBaseline,
  checkBagOfWordsPython,
  prepareBagOfWords,
  readBagOfWordsRows,
} from '../src/analysis/bag-of-words';
import { parseDatasetList, runBaselines, type BaselineOptions } from '../src/cli/baseline';
import { makeTinyModel, sentimentExamples, type Example } from './helpers/tiny-model';
import { tempDirs } from './helpers/tmpdirs';

await initEngine({ backend: 'wasm' });

const repo = fileURLToPath(new URL('..', import.meta.url));
const temp = tempDirs('bag-of-words');
const work = temp();
const tiny = await makeTinyModel(join(work, 'tiny'));

// Without scikit-learn the fits cannot run; .ci/run installs python3-sklearn, so CI never skips them.
let sklearnMissing: string | false = false;
try {
  await checkBagOfWordsPython();
} catch (error) {
  sklearnMissing = `no scikit-learn for the baseline's Python (apt-get install python3-sklearn): ${(error as Error).message}`;
}

/**
 * A data directory holding one registry dataset (sst2's layout: train and validation splits), so the
 * study's own loading and sampling read it.
 */
async function datasetDir(train: readonly Example[], evalExamples: readonly Example[]): Promise<string> {
  const dir = temp();
  const folder = join(dir, 'sst2');
  await mkdir(folder, { recursive: true });
  const counts = (examples: readonly Example[]) => {
    const out: Record<string, number> = {};
    for (const e of examples) out[String(e.label)] = (out[String(e.label)] ?? 0) + 1;
    return out;
  };
  const info = {
    name: 'sst2',
    label_names: ['negative', 'positive'],
    splits: {
      train: { rows: train.length, label_counts: counts(train) },
      validation: { rows: evalExamples.length, label_counts: counts(evalExamples) },
    },
  };
  await writeFile(join(folder, 'info.json'), JSON.stringify(info));
  const jsonl = (examples: readonly Example[]) => examples.map((e) => JSON.stringify(e)).join('\n') + '\n';
  await writeFile(join(folder, 'train.jsonl'), jsonl(train));
  await writeFile(join(folder, 'validation.jsonl'), jsonl(evalExamples));
  return dir;
}

/** Every text unique (an id in front), so equal lists of texts mean the same examples. */
function numbered(examples: readonly Example[], prefix: string): Example[] {
  return examples.map((e, i) => ({ text: `${prefix}${i} ${e.text}`, label: e.label }));
}

const spec = (input: ExperimentSpecInput) => ExperimentSpecSchema.parse(input);

test("the baseline's examples are exactly those runExperiment trains and evaluates on", async () => {
  const dir = await datasetDir(numbered(sentimentExamples(90, 11), 'train'), numbered(sentimentExamples(50, 12), 'eval'));
  const base = {
    model: tiny.dir,
    recipe: { learningRate: 3e-3, epochs: 1, batchSize: 8 },
    dataset: { name: 'sst2', trainSize: 30, evalSize: 20, maxLength: 16 },
  };
  // What the study run really uses: every text it tokenizes (train first, then eval; nothing else).
  const seen: string[] = [];
  const encode = BertTokenizer.prototype.encode;
  BertTokenizer.prototype.encode = function (this: BertTokenizer, text, pair, options) {
    seen.push(text);
    return encode.call(this, text, pair, options);
  };
  const perSeed = new Map<number, string[]>();
  try {
    for (const seed of [3, 4]) {
      seen.length = 0;
      await runExperiment(spec({ ...base, seed }), { dataDir: dir, progressBar: false });
      perSeed.set(seed, seen.slice());
    }
  } finally {
    BertTokenizer.prototype.encode = encode;
  }
  for (const seed of [3, 4]) {
    const s = spec({ ...base, seed });
    const examples = await experimentExamples(s, { dataDir: dir });
    assert.deepEqual(perSeed.get(seed), [...examples.train.texts, ...examples.eval.texts], `seed ${seed}: the same texts in the same order`);
    const prepared = await prepareBagOfWords(s, { dataDir: dir, fullText: true });
    assert.deepEqual(prepared.input.train, { texts: examples.train.texts, labels: examples.train.labels });
    assert.deepEqual(prepared.input.eval, { texts: examples.eval.texts, labels: examples.eval.labels });
    assert.equal(prepared.input.seed, seed);
    assert.equal(prepared.input.train.texts.length, 30);
    assert.equal(prepared.input.eval.texts.length, 20);
  }
  const [a, b] = [perSeed.get(3)!, perSeed.get(4)!];
  assert.notDeepEqual(a.slice(0, 30), b.slice(0, 30), 'the seed picks the training sample');
  assert.deepEqual(a.slice(30), b.slice(30), 'the evaluation sample is the same for every seed');
});

test('textWithinTokens keeps exactly the first n WordPiece tokens, cutting mid-word where the model does', async () => {
  const tokenizer = await loadTokenizer(shippedModelDir('default'));
  const text =
    'An unforgettable, extraordinarily well-acted film\u00a0— its cinematography (by Émile Zola\'s grand-nephew?) ' +
    'was breathtaking;\tthe screenplay, however, felt overwrought and\nunderwhelming. 10/10 would re-watch!!! ' +
    'Antidisestablishmentarianism notwithstanding, naïve café-goers loved it.';
  const all = tokenizer.tokenize(text);
  assert.ok(all.length > 40, `a long text (${all.length} tokens)`);
  let midWord = 0;
  for (let k = 0; k <= all.length + 2; k++) {
    const cut = textWithinTokens(tokenizer, text, k);
    assert.ok(text.startsWith(cut.text), `k=${k}: a prefix of the text`);
    assert.deepEqual(tokenizer.tokenize(cut.text), all.slice(0, k), `k=${k}: the first ${k} tokens`);
    assert.equal(cut.exact, true);
    assert.equal(cut.truncated, k < all.length);
    if (k < all.length && all[k].startsWith('##')) {
      midWord++;
      assert.match(cut.text, /\w$/, `k=${k}: ends inside the word whose piece ${all[k]} is cut off`);
    }
  }
  assert.ok(midWord > 3, `the text has cuts inside words (${midWord})`);
  // The same as the encoder's truncation at max length 16: [CLS] + 14 tokens + [SEP].
  const cut = textWithinTokens(tokenizer, text, 14);
  assert.deepEqual(tokenizer.encode(cut.text, null, { maxLength: 16 }).tokens, tokenizer.encode(text, null, { maxLength: 16 }).tokens);
});

test('the truncated baseline input keeps only the first maxLength - 2 tokens of each text', async () => {
  const long = (examples: Example[]) => examples.map((e, i) => ({ text: `${e.text} ${'the movie was really very good and the plot was dull , '.repeat(1 + (i % 3))}`, label: e.label }));
  const dir = await datasetDir(long(sentimentExamples(40, 21)), long(sentimentExamples(20, 22)));
  const s = spec({ model: tiny.dir, dataset: { name: 'sst2', trainSize: 20, evalSize: 10, maxLength: 12 }, seed: 0 });
  const prepared = await prepareBagOfWords(s, { dataDir: dir });
  const full = await prepareBagOfWords(s, { dataDir: dir, fullText: true });
  assert.equal(prepared.truncation.kind, 'tokens');
  if (prepared.truncation.kind === 'tokens') {
    assert.deepEqual([prepared.truncation.maxLength, prepared.truncation.maxTokens, prepared.truncation.model], [12, 10, tiny.dir]);
  }
  for (const which of ['train', 'eval'] as const) {
    prepared.input[which].texts.forEach((text, i) => {
      const whole = full.input[which].texts[i];
      assert.deepEqual(tiny.tokenizer.tokenize(text), tiny.tokenizer.tokenize(whole).slice(0, 10));
    });
    assert.deepEqual(prepared.input[which].labels, full.input[which].labels);
  }
  assert.deepEqual(prepared.cut, { train: 20, eval: 10, inexact: 0 }, 'every text was longer than 10 tokens');
  assert.deepEqual(full.cut, { train: 0, eval: 0, inexact: 0 });
  assert.deepEqual(full.truncation, { kind: 'none' });
});

test('a separable dataset is learned; with shuffled labels accuracy falls to chance', { skip: sklearnMissing }, async () => {
  const train = sentimentExamples(300, 31);
  const evalExamples = sentimentExamples(200, 32);
  const s = spec({ dataset: { name: 'sst2', trainSize: 200, evalSize: 200 }, seed: 1 });
  const { row } = await bagOfWordsBaseline(s, { dataDir: await datasetDir(train, evalExamples), fullText: true });
  assert.ok(row.accuracy >= 0.95, `separable: accuracy ${row.accuracy}`);
  assert.ok(row.macroF1 >= 0.95, `separable: macro-F1 ${row.macroF1}`);
  assert.equal(row.trainExamples, 200);
  assert.equal(row.evalExamples, 200);
  assert.ok(row.cGrid.includes(row.C), 'C comes from the grid');
  assert.equal(row.provenance.sklearnVersion.length > 0, true);

  // The same texts with labels drawn independently of them: nothing to learn.
  const rng = createRng(5);
  const relabel = (examples: Example[]) => {
    const labels = shuffled(examples.map((e) => e.label), rng);
    return examples.map((e, i) => ({ text: e.text, label: labels[i] }));
  };
  const noise = await bagOfWordsBaseline(s, { dataDir: await datasetDir(relabel(train), relabel(evalExamples)), fullText: true });
  assert.ok(Math.abs(noise.row.accuracy - 0.5) < 0.12, `shuffled labels: accuracy ${noise.row.accuracy} should be near 0.5`);
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function healing(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repo, 'bin', 'healing.js'), ...args],
      { cwd: repo, env: { ...process.env, HEALING_PROGRESS: '0', ...env }, timeout: 300_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}


test('healing baseline appends one row per setting and a rerun skips the recorded ones', { skip: sklearnMissing }, async () => {
  const dir = await datasetDir(sentimentExamples(120, 41), sentimentExamples(60, 42));
  const results = join(temp(), 'sub', 'bag-of-words.jsonl');
  const options = (seeds: string, fullText?: boolean): BaselineOptions => ({
    dataset: 'sst2',
    trainSize: '60',
    evalSize: '40',
    seeds,
    maxLength: '8',
    fullText,
    model: tiny.dir,
    results,
    dataDir: dir,
  });
  const counts = (o: { ran: number; skipped: number }) => [o.ran, o.skipped];
  assert.deepEqual(counts(await runBaselines(options('0,1', true))), [2, 0]);
  assert.deepEqual(counts(await runBaselines(options('0,1', true))), [0, 2]);
  assert.equal(readFileSync(results, 'utf8').trim().split('\n').length, 2, 'nothing appended on the rerun');
  // Truncated texts are another setting; one more seed adds one row, the recorded two are skipped.
  assert.deepEqual(counts(await runBaselines(options('0,1'))), [2, 0]);
  const more = await runBaselines(options('0,1,2'));
  assert.deepEqual(counts(more), [1, 2]);
  const { rows, torn, invalid } = readBagOfWordsRows(results);
  assert.deepEqual([rows.length, torn, invalid.length], [5, 0, 0]);
  assert.deepEqual(rows.map((r) => [r.seed, r.truncation.kind]), [[0, 'none'], [1, 'none'], [0, 'tokens'], [1, 'tokens'], [2, 'tokens']]);
  assert.equal(new Set(rows.map((r) => r.key)).size, 5);
  assert.deepEqual(more.summary.map((s) => [s.truncation, s.seeds]), [['tokens:8', [0, 1, 2]]]);
});

test('healing baseline refuses a --results directory and an unknown dataset before any work', async () => {
  const dir = temp();
  // The command as users run it (one child process: this also checks that main.ts registers it).
  const asDir = await healing(['baseline', '--dataset', 'sst2', '--results', dir]);
  assert.equal(asDir.code, 1, asDir.stderr);
  assert.match(asDir.stderr, /^healing: --results .*: is a directory, not a file$/m);
  const base = { trainSize: '10', evalSize: '10', seeds: '0', maxLength: '128', model: 'default', fullText: true };
  await assert.rejects(runBaselines({ ...base, dataset: 'sst2,sst3', results: join(dir, 'x.jsonl') }), /unknown dataset "sst3"; known datasets: sst2, imdb/);
  assert.deepEqual(parseDatasetList('all'), ['sst2', 'emotion', 'ag_news', 'imdb', 'dbpedia_14', 'twitter_financial_news_topic']);
  assert.deepEqual(parseDatasetList(' imdb, sst2,imdb '), ['imdb', 'sst2']);
  await assert.rejects(
    prepareBagOfWords(spec({ dataset: { name: 'nope' }, seed: 0 }), { dataDir: dir, fullText: true }),
    (error: unknown) => error instanceof UserError && /unknown dataset "nope"/.test(error.message),
  );
});

test('a missing interpreter, a missing scikit-learn and a failing script are named clearly', async () => {
  const dir = await datasetDir(sentimentExamples(40, 51), sentimentExamples(20, 52));
  const s = spec({ dataset: { name: 'sst2' }, seed: 0 });
  const saved = { python: process.env.HEALING_PYTHON, path: process.env.PYTHONPATH };
  const restore = () => {
    for (const [key, value] of [['HEALING_PYTHON', saved.python], ['PYTHONPATH', saved.path]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  try {
    process.env.HEALING_PYTHON = join(dir, 'no-such-python3');
    await assert.rejects(bagOfWordsBaseline(s, { dataDir: dir, fullText: true }), (error: unknown) => {
      assert.ok(error instanceof UserError, String(error));
      assert.match(error.message, /Python interpreter .*no-such-python3: not found/);
      assert.match(error.message, /apt-get install python3-sklearn/);
      assert.match(error.message, /HEALING_PYTHON/);
      return true;
    });
    restore();
    if (sklearnMissing) return;
    // A scikit-learn that fails to import, found first on the path: what a Python without it reports.
    const fake = join(temp(), 'site');
    await mkdir(join(fake, 'sklearn'), { recursive: true });
    await writeFile(join(fake, 'sklearn', '__init__.py'), 'raise ImportError("no sklearn here")\n');
    process.env.PYTHONPATH = fake;
    await assert.rejects(checkBagOfWordsPython(), (error: unknown) => {
      assert.ok(error instanceof UserError, String(error));
      assert.match(error.message, /scikit-learn is missing from .*python3.*apt-get install python3-sklearn/);
      return true;
    });
    restore();
    // One class only: the script refuses, and its last stderr line is the message.
    const oneClass = await datasetDir(
      sentimentExamples(20, 53).map((e) => ({ ...e, label: 0 })),
      sentimentExamples(10, 54),
    );
    await assert.rejects(bagOfWordsBaseline(s, { dataDir: oneClass, fullText: true }), (error: unknown) => {
      assert.ok(error instanceof UserError, String(error));
      assert.match(error.message, /bag_of_words\.py failed .*exit code 2.*: input: the training examples hold a single class/);
      return true;
    });
  } finally {
    restore();
  }
});

test('the API: bagOfWords(P) fits into bag-of-words.jsonl beside the notebook\'s results and then only reads', { skip: sklearnMissing }, async () => {
  const { bagOfWords } = await import('../src');
  const { notebookParameters } = await import('../src/analysis/study');
  const { loadTruncatingTokenizer } = await import('../src/analysis/bag-of-words');
  const dir = await datasetDir(sentimentExamples(120, 51), sentimentExamples(60, 52));
  const resultsFile = join(temp(), 'study', 'results.jsonl');
  const P = notebookParameters({ quick: true, model: tiny.dir, datasets: ['sst2'], seeds: [0, 1], trainSize: 60, evalSize: 40, maxLength: 8, resultsFile });
  const before = process.env.HEALING_DATA_DIR;
  process.env.HEALING_DATA_DIR = dir;
  try {
    const first = await bagOfWords(P);
    assert.equal(first.results, join(dirname(resultsFile), 'bag-of-words.jsonl'));
    assert.deepEqual([first.ran, first.recorded, first.missing.length], [2, 0, 0]);
    assert.deepEqual(first.rows.map((r) => [r.seed, r.truncation.kind, r.trainSize, r.evalSize]), [[0, 'tokens', 60, 40], [1, 'tokens', 60, 40]]);
    assert.equal(first.tokenizerFingerprint, (await loadTruncatingTokenizer(tiny.dir)).fingerprint);
    assert.deepEqual(first.summary.map((s) => s.seeds), [[0, 1]]);
    // A third seed with runMissing off: the two recorded are read, the new one is listed as missing.
    const second = await bagOfWords({ ...P, seeds: [0, 1, 2], runMissing: false });
    assert.deepEqual([second.ran, second.recorded, second.missing.map((s) => s.seed)], [0, 2, [2]]);
    assert.deepEqual(second.rows, first.rows);
  } finally {
    if (before === undefined) delete process.env.HEALING_DATA_DIR;
    else process.env.HEALING_DATA_DIR = before;
  }
});
