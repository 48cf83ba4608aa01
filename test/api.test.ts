// The public API as a notebook or another project sees it: this file imports project code only from the
// entry point (src/index.ts), so anything it needs that the entry point lacks is a gap in the API
// (test helpers, such as the stand-in hub server, are not project code).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beyond, evaluate, figures, findings, fineTune, loadModel, results, show, stats, study, STUDY_RESULTS_FILE, type DownloadProgress, type Example, type Model, type StudyOptions, type StudyProgress } from '../src/index';
import { startHubServer } from './helpers/hub-server';

const TEXT = 'the movie was [MASK] and the acting was great .';
const temp = mkdtempSync(join(tmpdir(), 'healing-api-'));
after(() => rmSync(temp, { recursive: true, force: true }));

// Real sentences from the shipped SST-2 sample: 16 to train on, 8 to score.
const sample = readFileSync(new URL('../data/datasets-sample/sst2-sample/train.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Example);
const train = [...sample.filter((e) => e.label === 0).slice(0, 8), ...sample.filter((e) => e.label === 1).slice(0, 8)];
const evalSet = [...sample.filter((e) => e.label === 0).slice(8, 12), ...sample.filter((e) => e.label === 1).slice(8, 12)];

let tensorsBefore = 0;
let bert: Model;

before(async () => {
  // Counted before the engine starts: loadModel starting it must not leave tensors behind either.
  tensorsBefore = tf.memory().numTensors;
  bert = await loadModel('tiny');
});

test('loadModel: the shipped tiny model, with its masked-LM head chosen by default', () => {
  assert.equal(bert.head, 'mlm');
  assert.ok(bert.config.numLayers >= 2, `numLayers ${bert.config.numLayers}`);
  assert.equal(bert.tokenizer.vocabSize, bert.config.vocabSize);
  assert.ok(bert.params.size > 0);
});

test('loadModel(hub id, { onProgress }): events per downloaded file, each ending at its full size; a cached load makes none', async () => {
  // The shipped tiny model served by a stand-in for the hub (test/helpers/hub-server.ts), into a fresh cache.
  const hubRoot = join(temp, 'hub');
  const repo = 'test-org/healing-bert-tiny';
  cpSync(fileURLToPath(new URL('../data/models/healing-bert-tiny/', import.meta.url)), join(hubRoot, repo), { recursive: true });
  const server = await startHubServer({ root: hubRoot });
  const keys = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN'] as const;
  const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  for (const k of keys) delete process.env[k];
  process.env.HF_ENDPOINT = server.endpoint;
  process.env.HF_HOME = join(temp, 'hf-home');
  try {
    const events: DownloadProgress[] = [];
    const hubModel = await loadModel(repo, { onProgress: (p) => events.push({ ...p }) });
    try {
      assert.deepEqual(hubModel.config, bert.config);
    } finally {
      hubModel.dispose();
    }
    const files = [...new Set(events.map((e) => e.filename))].sort();
    assert.deepEqual(files, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
    for (const file of files) {
      const size = statSync(join(hubRoot, repo, file)).size;
      const seen = events.filter((e) => e.filename === file);
      assert.ok(seen.every((e) => e.total === size), `${file}: total ${seen.map((e) => e.total)} vs ${size}`);
      assert.equal(seen[0].downloaded, 0, file);
      assert.equal(seen.at(-1)!.downloaded, size, `${file} ends at its full size`);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i].downloaded >= seen[i - 1].downloaded, `${file}: monotone`);
    }
    assert.ok(events.filter((e) => e.filename === 'model.safetensors').length > 2, 'the weights report as their bytes arrive');

    events.length = 0;
    server.requests.length = 0;
    (await loadModel(repo, { onProgress: (p) => events.push(p) })).dispose();
    assert.deepEqual(events, [], 'served from the cache: no download, no event');
    assert.deepEqual(server.requests, []);
  } finally {
    for (const k of keys) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await server.close();
  }
});

test('encode: [CLS] ... [SEP], padded to the longest text', () => {
  const batch = bert.encode(['a film', 'a much longer film about nothing']);
  assert.equal(batch.inputIds.length, 2);
  assert.equal(batch.inputIds[0].length, batch.inputIds[1].length);
  assert.equal(batch.inputIds[0][0], bert.tokenizer.clsId);
  const shortLength = batch.attentionMask[0].reduce((a, b) => a + b, 0);
  assert.equal(batch.inputIds[0][shortLength - 1], bert.tokenizer.sepId);
  assert.ok(shortLength < batch.inputIds[0].length, 'the shorter text is padded');
  assert.equal(batch.inputIds[0][shortLength], bert.tokenizer.padId);
});

test('hiddenStates: the embeddings and every layer, unpadded', () => {
  const [states] = bert.hiddenStates(['a film']);
  assert.equal(states.length, bert.config.numLayers + 1);
  assert.equal(states[0].length, 4); // [CLS] a film [SEP]
  assert.equal(states[0][0].length, bert.config.hiddenSize);
});

test('fillMask: k tokens per [MASK], most likely first', () => {
  const [mask] = bert.fillMask(TEXT, 5);
  assert.equal(mask.predictions.length, 5);
  const p = mask.predictions.map((x) => x.probability);
  assert.ok(p.every((x) => x > 0 && x <= 1), `probabilities ${p}`);
  assert.deepEqual(p, [...p].sort((a, b) => b - a));
  assert.throws(() => bert.fillMask('no mask here'), /no \[MASK\]/);
});

test('corrupt: a new model and a report; the original is untouched', () => {
  const name = [...bert.params.keys()].find((n) => n.includes('layer.0.attention.self.query.weight'))!;
  assert.ok(name, 'layer 0 query weight');
  const original = Float32Array.from(bert.params.get(name)!.dataSync());
  const cleanTop = bert.fillMask(TEXT, 5)[0].predictions;
  const { model: broken, report } = bert.corrupt('bottom:2', { mode: 'reinit', seed: 1 });
  try {
    assert.deepEqual(report.layers, [0, 1]);
    assert.equal(report.spec, 'bottom:2/all/reinit');
    assert.ok(report.tensors.some((t) => t.name === name));
    assert.ok(report.tensors.every((t) => t.layer === 0 || t.layer === 1));
    assert.notDeepEqual(Float32Array.from(broken.params.get(name)!.dataSync()), original, 'the copy changed');
    assert.deepEqual(Float32Array.from(bert.params.get(name)!.dataSync()), original, 'the original did not');
    assert.notDeepEqual(broken.fillMask(TEXT, 5)[0].predictions, cleanTop);
    assert.deepEqual(bert.fillMask(TEXT, 5)[0].predictions, cleanTop);
    const { model: attentionOnly, report: partial } = bert.corrupt('top:1', { components: ['attention'], seed: 1 });
    attentionOnly.dispose();
    assert.ok(partial.tensors.every((t) => t.component === 'attention' && t.layer === bert.config.numLayers - 1));
  } finally {
    broken.dispose();
  }
  assert.ok(broken.disposed);
  assert.throws(() => broken.params, /disposed/);
});

test('fineTune on 16 examples for one epoch, then evaluate: the same metrics, the input model unchanged', async () => {
  const name = [...bert.params.keys()].find((n) => n.includes('layer.0.output.dense.weight'))!;
  const original = Float32Array.from(bert.params.get(name)!.dataSync());
  const steps: number[] = [];
  const tuned = await fineTune(bert, { train, eval: evalSet }, { epochs: 1, batchSize: 8 }, { onProgress: (p) => p.phase === 'train' && steps.push(p.step), progressBar: false });
  try {
    assert.equal(tuned.status, 'ok');
    assert.deepEqual(steps, [1, 2]);
    assert.equal(tuned.history.length, 1);
    assert.equal(tuned.lossCurve.length, 2);
    assert.ok(tuned.lossCurve.every((p) => Number.isFinite(p.loss) && p.loss > 0));
    assert.equal(tuned.recipe.epochs, 1);
    assert.ok(tuned.recipe.learningRate > 0, 'the learning rate is resolved from the model size');
    assert.equal(tuned.model.head, 'classifier');
    assert.deepEqual(tuned.labelNames, ['LABEL_0', 'LABEL_1']);
    const confusionTotal = tuned.metrics.confusion.flat().reduce((a, b) => a + b, 0);
    assert.equal(confusionTotal, evalSet.length);
    assert.ok(tuned.metrics.accuracy >= 0 && tuned.metrics.accuracy <= 1);
    assert.notDeepEqual(Float32Array.from(tuned.model.params.get(name)!.dataSync()), original, 'training moved the weights');
    assert.deepEqual(Float32Array.from(bert.params.get(name)!.dataSync()), original, 'the input model kept its own');

    const scored = await evaluate(tuned.model, evalSet);
    assert.equal(scored.examples, evalSet.length);
    assert.equal(scored.accuracy, tuned.metrics.accuracy);
    assert.deepEqual(scored.confusion, tuned.metrics.confusion);
    await assert.rejects(evaluate(bert, evalSet), /needs a classifier/);

    // save: a non-empty target is refused (and left as it was) unless overwrite is asked for.
    const out = join(temp, 'tuned');
    const keep = join(out, 'notes.txt');
    assert.equal(await tuned.model.save(out), out, "a new directory is written");
    writeFileSync(keep, 'mine');
    await assert.rejects(tuned.model.save(out), /not empty.*overwrite: true/);
    assert.equal(readFileSync(keep, 'utf8'), 'mine');
    assert.equal(await tuned.model.save(out, { overwrite: true }), out);
    assert.ok(!existsSync(keep), 'overwrite replaced the directory');
    const reloaded = await loadModel(out);
    try {
      assert.equal(reloaded.head, 'classifier');
      assert.deepEqual(reloaded.labels, ['LABEL_0', 'LABEL_1']);
      assert.deepEqual((await evaluate(reloaded, evalSet)).confusion, scored.confusion);
      // The directory a model came from is never replaced, overwrite or not.
      await assert.rejects(reloaded.save(out, { overwrite: true }), /is the model directory/);
    } finally {
      reloaded.dispose();
    }
  } finally {
    tuned.model.dispose();
  }
});

test('fineTune stops on an AbortSignal and frees what it made', async () => {
  const count = tf.memory().numTensors;
  const controller = new AbortController();
  await assert.rejects(
    fineTune(bert, { train, eval: evalSet }, { epochs: 2, batchSize: 8 }, { signal: controller.signal, onProgress: () => controller.abort(new Error('enough')), progressBar: false }),
    /enough/,
  );
  assert.equal(tf.memory().numTensors, count);
  await assert.rejects(fineTune(bert, { train, eval: evalSet }, {}, { signal: AbortSignal.abort() }), /abort/i);
});

test('results -> rows and a danfojs frame; findings; figures and stats', () => {
  const store = join(temp, 'results.jsonl');
  const recorded = readFileSync(new URL('../data/results/results.jsonl', import.meta.url), 'utf8').trim().split('\n').slice(0, 12);
  writeFileSync(store, `${recorded.join('\n')}\n{"torn`);
  const { rows, frame, warning } = results(store);
  assert.equal(rows.length, 12);
  assert.deepEqual(frame.shape, [12, frame.columns.length]);
  assert.ok(frame.columns.includes('accuracy') && frame.columns.includes('recovery'), frame.columns.join(', '));
  assert.match(warning ?? '', /1/);
  const [f1, f2, f3] = findings(rows);
  for (const f of [f1, f2, f3]) assert.equal(typeof f.verdict, 'string');
  assert.equal(figures.accuracyVsK(frame).data.length > 0, true);
  assert.equal(stats.mean([1, 2, 3]), 2);
});

test('beyond: the studies of notebook 09 (few-sample re-initialisation, components) from the entry point', () => {
  const calls = { beyondParameters: beyond.beyondParameters, loadBeyond: beyond.loadBeyond, fewSampleReinit: beyond.fewSampleReinit, componentStudy: beyond.componentStudy, fewSampleFigure: beyond.fewSampleFigure, componentFigure: beyond.componentFigure };
  for (const [name, f] of Object.entries(calls)) assert.equal(typeof f, 'function', `beyond.${name}`);
  assert.match(beyond.EFFECT_RULE, /95 % t interval/);
  const P: beyond.BeyondParameters = beyond.beyondParameters({ quick: true });
  assert.deepEqual([P.model, P.fewSample.modes], ['tiny', ['reinit-hf', 'reinit']]);
  const a: beyond.FewSampleResult = beyond.fewSampleReinit([]);
  const b: beyond.ComponentResult = beyond.componentStudy([]);
  assert.deepEqual([a.verdict, b.verdict], ['not enough data', 'not enough data']);
  assert.deepEqual([beyond.fewSampleFigure(a.cells).data, beyond.componentFigure(b.cells).data], [[], []]);
});

test('show: a figure draws, a frame or records make a table (outside tslab: one line, or console.table)', (t) => {
  const logged: unknown[] = [];
  const tables: unknown[] = [];
  t.mock.method(console, 'log', (line: unknown) => logged.push(line));
  t.mock.method(console, 'table', (rows: unknown) => tables.push(rows));
  const { frame } = results(new URL('../data/results/results.jsonl', import.meta.url).pathname);
  show(figures.accuracyVsK(frame));
  show(frame, { maxRows: 3 });
  show([{ a: 1 }, { a: 2 }]);
  assert.equal(logged.length, 1);
  assert.match(String(logged[0]), /^\[figure\] .*trace/);
  assert.equal(tables.length, 2);
  assert.equal((tables[0] as unknown[]).length, 3);
  assert.deepEqual(tables[1], [{ a: 1 }, { a: 2 }]);
});

test('study: two tiny runs through the resumable grid; a second call runs nothing; no tensors here', { timeout: 900_000 }, async () => {
  const count = tf.memory().numTensors;
  const file = join(temp, 'study', 'runs.jsonl');
  const options: StudyOptions = {
    model: 'tiny',
    datasets: ['sst2-sample'],
    corruptions: [null, 'bottom:1'],
    seeds: [0],
    trainSize: 16,
    evalSize: 8,
    maxLength: 32,
    recipe: { epochs: 1, batchSize: 8 },
    workers: 1,
    results: file,
  };
  const events: StudyProgress[] = [];
  const first = await study({ ...options, onProgress: (e) => events.push(e) });
  assert.equal(first.results, file);
  assert.deepEqual([first.total, first.recorded, first.ran, first.failed, first.missing.length], [2, 0, 2, 0, 0]);
  assert.deepEqual(first.rows.map((r) => r.spec.corruption?.layers ?? null), [null, 'bottom:1']);
  assert.ok(first.rows.every((r) => r.spec.recipe.epochs === 1 && r.spec.recipe.batchSize === 8 && r.spec.dataset.trainSize === 16));
  assert.ok(first.rows.every((r) => r.final.accuracy !== null && r.final.accuracy >= 0 && r.final.accuracy <= 1));
  assert.deepEqual(events.filter((e) => e.type === 'result').map((e) => [e.done, e.total]), [[1, 2], [2, 2]]);
  assert.ok(events.some((e) => e.type === 'progress' && e.step !== undefined && e.totalSteps === 2));
  assert.equal(first.frame.shape[0], 2);
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2);

  events.length = 0;
  const second = await study({ ...options, onProgress: (e) => events.push(e) });
  assert.deepEqual([second.total, second.recorded, second.ran, second.missing.length], [2, 2, 0, 0]);
  assert.deepEqual(second.rows, first.rows);
  assert.deepEqual(events, [], 'nothing ran');
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2, 'nothing appended');
  assert.equal(tf.memory().numTensors, count);
});

test('study: the results file defaults to the working directory, and is refused inside node_modules', async (t) => {
  t.mock.method(console, 'log', () => {});
  const cwd = process.cwd();
  const here = join(temp, 'project');
  const inside = join(here, 'node_modules', 'healing-bert');
  mkdirSync(inside, { recursive: true });
  try {
    process.chdir(here);
    const dry = await study({ model: 'tiny', datasets: ['sst2-sample'], corruptions: [null], seeds: [0], runMissing: false });
    assert.equal(dry.results, join(here, STUDY_RESULTS_FILE));
    assert.deepEqual([dry.total, dry.ran, dry.missing.length], [1, 0, 1]);
    assert.match(dry.message, /missing/);
    process.chdir(inside);
    await assert.rejects(study({ model: 'tiny', datasets: ['sst2-sample'], corruptions: [null], seeds: [0], runMissing: false }), /node_modules.*results:/);
  } finally {
    process.chdir(cwd);
  }
});

test('no tensors leak from the one-line calls', () => {
  bert.dispose();
  assert.equal(tf.memory().numTensors, tensorsBefore);
});
