import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { UserError } from '../src/errors';
import { loadCheckpoint } from '../src/io/checkpoint';
import { readSafetensors } from '../src/io/safetensors';
import { disposeParams } from '../src/model/names';
import { createRng } from '../src/random';
import { PretrainArgsSchema, pretrain, pretrainPaths, readCurve, type PretrainArgs, type PretrainState } from '../src/train/pretrain';
import { exportPretrainedModel } from '../src/train/model-card';
import { sinusoidalPositions } from '../src/model/init';

// wasm for speed where only the outcome matters; cpu where two runs must agree to the bit.
await initEngine({ backend: 'wasm' });

const work = await mkdtemp(join(tmpdir(), 'healing-pretrain-'));
test.after(() => rm(work, { recursive: true, force: true }));

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];

/**
 * A corpus for the 'datasets' source: <dataDir>/sst2/train.jsonl, one document per line. With
 * `stride` 0 each document repeats one word (learnable from context alone: copy a neighbour);
 * otherwise it walks the word list.
 */
async function corpusDir(name: string, documents: number, stride: number): Promise<string> {
  const rng = createRng(documents * 31 + stride);
  const lines = Array.from({ length: documents }, () => {
    const offset = rng.int(WORDS.length);
    const text = Array.from({ length: 40 }, (_, i) => WORDS[(offset + i * stride) % WORDS.length]).join(' ');
    return JSON.stringify({ text, label: 0 });
  });
  const dir = join(work, name);
  await mkdir(join(dir, 'sst2'), { recursive: true });
  await writeFile(join(dir, 'sst2', 'train.jsonl'), lines.join('\n') + '\n');
  return dir;
}

function tinyArgs(dataDir: string, steps: number, overrides: Partial<PretrainArgs> = {}): PretrainArgs {
  return PretrainArgsSchema.parse({
    corpus: ['datasets'],
    dataDir,
    vocabSize: 128,
    layers: 2,
    hidden: 32,
    heads: 4,
    ffn: 64,
    maxLength: 16,
    batchSize: 8,
    tokens: steps * 8 * 16,
    learningRate: 1e-3,
    evalEvery: 2,
    checkpointEvery: 2,
    heldOutSequences: 8,
    ...overrides,
  });
}

const quiet = { log: () => {}, progressBar: false };

async function readState(out: string): Promise<PretrainState> {
  return JSON.parse(await readFile(pretrainPaths(out).state, 'utf8')) as PretrainState;
}

const withoutTimes = (curve: Awaited<ReturnType<typeof readCurve>>) => curve.map(({ seconds: _, ...rest }) => rest);

const dataDir = await corpusDir('corpus', 60, 1);
const args = tinyArgs(dataDir, 6);
const straight = join(work, 'straight');
let straightState: PretrainState | undefined;

test('a run interrupted after k steps (and mid-save) resumes to exactly the uninterrupted result', async () => {
  await tf.setBackend('cpu');
  straightState = await pretrain({ out: straight, args, backend: 'cpu', ...quiet });
  assert.equal(straightState.step, 6);
  assert.equal(straightState.finished, true);

  const resumed = join(work, 'resumed');
  const first = await pretrain({ out: resumed, args, backend: 'cpu', maxStepsThisRun: 3, ...quiet });
  assert.equal(first.step, 3);
  assert.equal(first.finished, false);
  // A kill between the two renames of a snapshot swap leaves only snapshot.old.
  const p = pretrainPaths(resumed);
  await rename(p.snapshot, `${p.snapshot}.old`);
  const second = await pretrain({ out: resumed, resume: true, backend: 'cpu', ...quiet });
  assert.equal(second.step, 6);
  assert.equal(second.finished, true);
  assert.equal(second.tokensSeen, straightState.tokensSeen);

  const a = await readSafetensors(join(pretrainPaths(straight).checkpoint, 'model.safetensors'));
  const b = await readSafetensors(join(p.checkpoint, 'model.safetensors'));
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
  for (const [name, t] of a.tensors) assert.deepEqual(b.tensors.get(name)!.data, t.data, name);
  const initial = join(work, 'initial-check');
  // The comparison is not vacuous: training moved the weights away from their initial values.
  const oneStep = await pretrain({ out: initial, args, backend: 'cpu', maxStepsThisRun: 1, ...quiet });
  assert.equal(oneStep.step, 1);
  const c = await readSafetensors(join(pretrainPaths(initial).checkpoint, 'model.safetensors'));
  assert.notDeepEqual(c.tensors.get('bert.encoder.layer.0.attention.self.query.weight')!.data, a.tensors.get('bert.encoder.layer.0.attention.self.query.weight')!.data);

  const curveA = await readCurve(straight);
  const curveB = await readCurve(resumed);
  assert.deepEqual(curveA.map((x) => x.step), [2, 4, 6]);
  assert.deepEqual(withoutTimes(curveB), withoutTimes(curveA));
});

test('resuming where there is no run is a clear error', async () => {
  const empty = join(work, 'empty');
  await assert.rejects(pretrain({ out: empty, resume: true, backend: 'cpu', ...quiet }), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.match(error.message, new RegExp(`--resume: ${empty} holds no pretraining snapshot`));
    return true;
  });
});

test('starting a new run over an existing one is refused and loses nothing', async () => {
  assert.ok(straightState, 'needs the finished run of the first test');
  const before = await readFile(pretrainPaths(straight).state, 'utf8');
  await assert.rejects(pretrain({ out: straight, args, backend: 'cpu', ...quiet }), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.match(error.message, /already holds a pretraining run.*--resume/);
    return true;
  });
  assert.equal(await readFile(pretrainPaths(straight).state, 'utf8'), before);
});

test('exportPretrainedModel writes an fp16 model and a model card with the run\'s numbers', async () => {
  assert.ok(straightState, 'needs the finished run of the first test');
  const out = join(work, 'exported');
  await exportPretrainedModel(straight, out);
  const state = await readState(straight);
  const curve = await readCurve(straight);
  const last = curve[curve.length - 1];
  const card = await readFile(join(out, 'README.md'), 'utf8');
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  assert.ok(card.includes(`${state.tokensSeen} (${state.step} steps of 8 x 16)`), 'tokens and steps');
  assert.ok(card.includes(`"${state.unigramBaseline.token}": accuracy ${pct(state.unigramBaseline.accuracy)}`), 'unigram baseline');
  assert.ok(card.includes(`accuracy ${pct(last.heldOutAccuracy!)}`), 'last held-out accuracy');
  assert.ok(card.includes(`loss ${last.heldOutLoss!.toFixed(3)}`), 'last held-out loss');
  assert.ok(card.includes(`${state.trainSequences} training, ${state.heldOutSequences} held out`));
  assert.ok(card.includes('2 layers, hidden 32, 4 heads, FFN 64'));
  assert.ok(card.includes(`datasets/sst2: 60 documents, ${60 * 40} words`), 'corpus statistics');
  assert.equal(card.split('\n').filter((l) => /^\| \d+ \| \d+ \|/.test(l)).length, curve.length, 'one table row per curve point');
  const saved = JSON.parse(await readFile(join(out, 'pretraining.json'), 'utf8'));
  assert.deepEqual(saved.state, state);
  assert.deepEqual(saved.curve, curve);

  const exported = await loadCheckpoint(out, { head: 'mlm' });
  const snapshot = await loadCheckpoint(pretrainPaths(straight).checkpoint, { head: 'mlm' });
  try {
    assert.deepEqual(exported.report.dtypes, ['F16']);
    for (const [name, t] of snapshot.params) {
      const d = tf.tidy(() => t.sub(exported.params.get(name)!).abs().max().dataSync()[0]);
      const scale = tf.tidy(() => t.abs().max().dataSync()[0]);
      assert.ok(d <= scale * 1e-3 + 1e-7, `${name}: fp16 differs by ${d}`);
    }
    assert.ok(existsSync(join(out, 'vocab.txt')) || existsSync(join(out, 'tokenizer.json')), 'the tokenizer travels with the model');
  } finally {
    disposeParams(exported.params);
    disposeParams(snapshot.params);
  }
});

test('exporting an unfinished run is refused', async () => {
  await tf.setBackend('cpu');
  const out = join(work, 'unfinished');
  await pretrain({ out, args, backend: 'cpu', maxStepsThisRun: 2, ...quiet });
  await assert.rejects(exportPretrainedModel(out, join(work, 'never')), (error: unknown) => error instanceof UserError && /step 2 of 6/.test(error.message));
  assert.equal(existsSync(join(work, 'never')), false);
});

test('on a learnable corpus the held-out MLM accuracy beats the unigram baseline', async () => {
  await tf.setBackend('wasm');
  // Each document repeats one word: a masked word is any of its neighbours, which the unigram baseline cannot see.
  const learnable = await corpusDir('learnable', 300, 0);
  const out = join(work, 'learnable-run');
  const state = await pretrain({
    out,
    // lr 3e-3: at 1e-2 the last point swung between 15 % and 95 % with the dropout draw (seeds 0-3, on both
    // the wasm and the native engine, whose dropout RNGs differ); at 3e-3 it reaches 95 % on both.
    args: tinyArgs(learnable, 200, { learningRate: 3e-3, evalEvery: 100, checkpointEvery: 200 }),
    backend: 'wasm',
    ...quiet,
  });
  const curve = await readCurve(out);
  const last = curve[curve.length - 1];
  assert.equal(last.step, 200);
  assert.ok(last.heldOutLoss! < curve[0].heldOutLoss!, 'held-out loss falls');
  assert.ok(
    last.heldOutAccuracy! > state.unigramBaseline.accuracy + 0.3,
    `held-out accuracy ${last.heldOutAccuracy} vs unigram baseline ${state.unigramBaseline.accuracy}`,
  );
});

test('a compact run (bf16 moments, no packed ids) resumes: the ids regenerate and the moments are close', async () => {
  await tf.setBackend('cpu');
  const data = await corpusDir('compact', 60, 1);
  const compactArgs = tinyArgs(data, 4, { compactState: true, maskProbability: 0.25, pretrainDropout: 0 });
  const out = join(work, 'compact-run');
  await pretrain({ out, args: compactArgs, backend: 'cpu', maxStepsThisRun: 2, ...quiet });
  const p = pretrainPaths(out);
  const moments = await readSafetensors(p.optimizer);
  assert.ok([...moments.tensors.values()].every((t) => t.dtype === 'BF16'), 'optimizer moments are bfloat16');
  const weights = await readSafetensors(join(p.checkpoint, 'model.safetensors'));
  assert.ok([...weights.tensors.values()].every((t) => t.dtype === 'F32'), 'weights stay fp32');
  // What a committed run directory lacks: the packed ids (regenerated from the corpus and the run's tokenizer).
  const ids = await readFile(p.train);
  await rm(p.train);
  await rm(p.heldOut);
  const resumed = await pretrain({ out, resume: true, backend: 'cpu', ...quiet });
  assert.equal(resumed.step, 4);
  assert.ok(resumed.finished);
  assert.deepEqual(await readFile(p.train), ids, 'the same packed ids');
  const curve = await readCurve(out);
  assert.ok(curve.every((c) => Number.isFinite(c.heldOutLoss)), 'the resumed run evaluates');
  assert.equal(resumed.args.maskProbability, 0.25);
  assert.equal(resumed.args.pretrainDropout, 0);

  // A corpus that changed since the run started cannot silently stand in for it.
  await rm(p.train);
  await writeFile(join(data, 'sst2', 'train.jsonl'), (await readFile(join(data, 'sst2', 'train.jsonl'), 'utf8')).repeat(2));
  const state = JSON.parse(await readFile(p.state, 'utf8')) as PretrainState;
  await writeFile(p.state, JSON.stringify({ ...state, finished: false, totalSteps: 6 }));
  await assert.rejects(pretrain({ out, resume: true, backend: 'cpu', ...quiet }), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.match(error.message, /the data changed, so this run cannot resume/);
    return true;
  });
});

test('a new run starts its position embeddings from the sinusoidal table; a run from before --position-init resumes with the normal one', async () => {
  await tf.setBackend('cpu');
  const data = await corpusDir('positions', 60, 1);
  const positions = 'bert.embeddings.position_embeddings.weight';
  const fresh = join(work, 'positions-fresh');
  const freshState = await pretrain({ out: fresh, args: tinyArgs(data, 4), backend: 'cpu', maxStepsThisRun: 1, ...quiet });
  assert.equal(freshState.args.positionInit, 'sinusoidal');
  const after1 = await readSafetensors(join(pretrainPaths(fresh).checkpoint, 'model.safetensors'));
  const table = sinusoidalPositions(512, 32);
  const moved = (after1.tensors.get(positions)!.data as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - table[i])), 0);
  // One AdamW step moves a weight by about the learning rate (1e-3 peak, less in warmup); the normal table is ~0.02 away.
  assert.ok(moved <= 1.5e-3, `position embeddings moved ${moved} from the sinusoidal table in one step`);

  const straightNormal = join(work, 'positions-normal');
  const normalArgs = tinyArgs(data, 4, { positionInit: 'normal' });
  await pretrain({ out: straightNormal, args: normalArgs, backend: 'cpu', ...quiet });
  const legacy = join(work, 'positions-legacy');
  await pretrain({ out: legacy, args: normalArgs, backend: 'cpu', maxStepsThisRun: 2, ...quiet });
  const p = pretrainPaths(legacy);
  const saved = JSON.parse(await readFile(p.state, 'utf8')) as PretrainState;
  const { positionInit, ...olderArgs } = saved.args;
  assert.equal(positionInit, 'normal');
  await writeFile(p.state, JSON.stringify({ ...saved, args: olderArgs }));
  const resumed = await pretrain({ out: legacy, resume: true, backend: 'cpu', ...quiet });
  assert.equal(resumed.args.positionInit, 'normal');
  const a = await readSafetensors(join(pretrainPaths(straightNormal).checkpoint, 'model.safetensors'));
  const b = await readSafetensors(join(p.checkpoint, 'model.safetensors'));
  for (const [name, t] of a.tensors) assert.deepEqual(b.tensors.get(name)!.data, t.data, name);
});
