import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { bertConfig, parseConfig, type ModelConfig } from '../src/model/config';
import { parameterLayout, type HeadKind, type ParamMap } from '../src/model/names';
import { createRng } from '../src/random';
import { UserError } from '../src/errors';
import { loadCheckpoint } from '../src/io/checkpoint';
import { runCorrupt } from '../src/cli/corrupt';
import { initEngine } from '../src/backend/engine';
import { ExperimentSpecSchema, formatIssues } from '../src/experiment/spec';

// The backend production uses (HEALING_BACKEND picks another).
await initEngine();
import {
  corrupt,
  formatCorruptionSpec,
  parseCorruptionSpec,
  parseCorruptionString,
  parseLayers,
  selectedLayers,
  validateCorruptionSpec,
  type CorruptionSpec,
} from '../src/corruption';

// Big enough that intermediate.dense.weight ([256, 64]) gives tight variance estimates.
const bert = bertConfig({ vocabSize: 100, hiddenSize: 64, numLayers: 4, numHeads: 4, intermediateSize: 256, maxPositions: 32 });
const distil = parseConfig({
  model_type: 'distilbert',
  vocab_size: 100,
  dim: 32,
  n_layers: 3,
  n_heads: 4,
  hidden_dim: 64,
  max_position_embeddings: 32,
});

/** Every parameter filled with N(0.3, 0.5^2), so no bias is already 0 and no LayerNorm weight already 1. */
function randomParams(config: ModelConfig, head: HeadKind = 'classifier', seed = 7): ParamMap {
  const rng = createRng(seed);
  const params: ParamMap = new Map();
  for (const p of parameterLayout(config, head, 3)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = 0.3 + 0.5 * rng.normal();
    params.set(p.name, tf.tensor(values, p.shape));
  }
  return params;
}

function values(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function sameValues(a: tf.Tensor, b: tf.Tensor): boolean {
  const x = values(a);
  const y = values(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Names whose values differ between input and output. */
function changedNames(input: ParamMap, output: ParamMap): string[] {
  return [...input.keys()].filter((name) => !sameValues(input.get(name)!, output.get(name)!));
}

function dispose(params: ParamMap): void {
  for (const t of params.values()) t.dispose();
}

function spec(layers: string, components?: string, mode?: string, extra: { ratio?: number; fraction?: number } = {}): CorruptionSpec {
  return parseCorruptionSpec({ layers, components, mode, ...extra });
}

function meanVar(xs: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  const mean = s / xs.length;
  let q = 0;
  for (let i = 0; i < xs.length; i++) q += (xs[i] - mean) ** 2;
  return { mean, variance: q / xs.length };
}

const layerNames = (config: ModelConfig, layers: number[], components = ['attention', 'ffn', 'layernorm']) =>
  parameterLayout(config, 'classifier', 3)
    .filter((p) => p.layer !== undefined && layers.includes(p.layer) && components.includes(p.component))
    .map((p) => p.name)
    .sort();

test('bottom:2 touches exactly the tensors of layers 0 and 1 and reports them', () => {
  const input = randomParams(bert);
  const { params, report } = corrupt(input, bert, spec('bottom:2'), 1);
  const expected = layerNames(bert, [0, 1]);
  assert.equal(expected.length, 2 * 16);
  assert.deepEqual(changedNames(input, params).sort(), expected);
  assert.deepEqual(report.tensors.map((t) => t.name).sort(), expected);
  assert.deepEqual(report.layers, [0, 1]);
  assert.equal(report.spec, 'bottom:2/all/reinit');
  assert.equal(report.seed, 1);
  assert.deepEqual([...params.keys()], [...input.keys()], 'output keeps the input order and names');
  // The report's statistics agree with an independent computation over the tensors.
  const q = report.tensors.find((t) => t.name === 'bert.encoder.layer.0.attention.self.query.weight')!;
  const before = meanVar(values(input.get(q.name)!));
  const after = meanVar(values(params.get(q.name)!));
  assert.ok(Math.abs(q.before.mean - before.mean) < 1e-9 && Math.abs(q.before.std - Math.sqrt(before.variance)) < 1e-9);
  assert.ok(Math.abs(q.after.std - Math.sqrt(after.variance)) < 1e-9);
  assert.equal(q.before.max, Math.max(...values(input.get(q.name)!)));
  assert.equal(q.after.min, Math.min(...values(params.get(q.name)!)));
  assert.deepEqual(q.shape, [64, 64]);
  assert.equal(q.component, 'attention');
  assert.equal(q.layer, 0);
  dispose(input);
  dispose(params);
});

test('top:K, explicit lists, fractions, all and none select the right layers', () => {
  assert.deepEqual(selectedLayers(parseLayers('top:1'), 4), [3]);
  assert.deepEqual(selectedLayers(parseLayers('top:3'), 4), [1, 2, 3]);
  assert.deepEqual(selectedLayers(parseLayers('bottom:0'), 4), []);
  assert.deepEqual(selectedLayers(parseLayers('3,0, 2,0'), 4), [0, 2, 3]);
  assert.deepEqual(selectedLayers(parseLayers('2'), 4), [2]);
  assert.deepEqual(selectedLayers(parseLayers('bottom:0.5'), 12), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(selectedLayers(parseLayers('top:0.25'), 12), [9, 10, 11]);
  assert.deepEqual(selectedLayers(parseLayers('top:0.5'), 3), [1, 2], 'half of 3 rounds to 2');
  assert.deepEqual(selectedLayers(parseLayers('bottom:0.01'), 6), [0], 'a positive fraction picks at least one layer');
  assert.deepEqual(selectedLayers(parseLayers('all'), 4), [0, 1, 2, 3]);
  assert.deepEqual(selectedLayers(parseLayers('none'), 4), []);

  const input = randomParams(bert);
  for (const [layers, expected] of [
    ['top:1', [3]],
    ['0,2', [0, 2]],
    ['bottom:0.5', [0, 1]],
  ] as const) {
    const { params, report } = corrupt(input, bert, spec(layers), 3);
    assert.deepEqual(changedNames(input, params).sort(), layerNames(bert, [...expected]), layers);
    assert.deepEqual(report.layers, expected);
    dispose(params);
  }
  // A no-op baseline: nothing changes, and it is not an error.
  const { params, report } = corrupt(input, bert, spec('bottom:0'), 3);
  assert.deepEqual(changedNames(input, params), []);
  assert.deepEqual(report.tensors, []);
  dispose(params);
  dispose(input);
});

test('component subsets touch only their part of the selected layers', () => {
  const input = randomParams(bert);
  for (const components of [['attention'], ['ffn'], ['layernorm'], ['attention', 'ffn']]) {
    const { params } = corrupt(input, bert, spec('top:2', components.join(',')), 5);
    assert.deepEqual(changedNames(input, params).sort(), layerNames(bert, [2, 3], components), components.join(','));
    dispose(params);
  }
  // The layer LayerNorms are exactly the two per layer (after attention, after the FFN).
  assert.deepEqual(layerNames(bert, [0], ['layernorm']), [
    'bert.encoder.layer.0.attention.output.LayerNorm.bias',
    'bert.encoder.layer.0.attention.output.LayerNorm.weight',
    'bert.encoder.layer.0.output.LayerNorm.bias',
    'bert.encoder.layer.0.output.LayerNorm.weight',
  ]);
  dispose(input);
});

test('embeddings and pooler are touched only when named; heads never', () => {
  const input = randomParams(bert);
  const all = corrupt(input, bert, spec('all'), 9);
  const changed = changedNames(input, all.params);
  assert.ok(changed.every((n) => n.startsWith('bert.encoder.layer.')), 'all layers + all components stays in the encoder');
  assert.equal(changed.length, 4 * 16);
  dispose(all.params);

  const emb = corrupt(input, bert, spec('none', 'embeddings'), 9);
  assert.deepEqual(changedNames(input, emb.params).sort(), [
    'bert.embeddings.LayerNorm.bias',
    'bert.embeddings.LayerNorm.weight',
    'bert.embeddings.position_embeddings.weight',
    'bert.embeddings.token_type_embeddings.weight',
    'bert.embeddings.word_embeddings.weight',
  ]);
  assert.deepEqual(emb.report.layers, []);
  dispose(emb.params);

  const pooled = corrupt(input, bert, spec('bottom:1', 'ffn,pooler'), 9);
  assert.deepEqual(changedNames(input, pooled.params).sort(), [
    ...layerNames(bert, [0], ['ffn']),
    'bert.pooler.dense.bias',
    'bert.pooler.dense.weight',
  ].sort());
  assert.ok(!changedNames(input, pooled.params).some((n) => n.startsWith('classifier')));
  dispose(pooled.params);
  dispose(input);

  // DistilBERT: pre_classifier plays the pooler; the classifier stays.
  const dInput = randomParams(distil);
  const d = corrupt(dInput, distil, spec('top:1', 'all,pooler'), 2);
  const dChanged = changedNames(dInput, d.params).sort();
  assert.deepEqual(
    dChanged,
    [
      ...parameterLayout(distil, 'classifier', 3)
        .filter((p) => p.layer === 2)
        .map((p) => p.name),
      'pre_classifier.bias',
      'pre_classifier.weight',
    ].sort(),
  );
  assert.ok(dChanged.some((n) => n === 'distilbert.transformer.layer.2.sa_layer_norm.weight'));
  dispose(d.params);
  dispose(dInput);

  // MLM heads are never touched either.
  const mlm = randomParams(bert, 'mlm');
  const m = corrupt(mlm, bert, spec('all', 'all,embeddings'), 2);
  assert.ok(changedNames(mlm, m.params).every((n) => !n.startsWith('cls.')));
  dispose(m.params);
  dispose(mlm);
});

test('reinit: LayerNorm weights 1, every bias 0, weights Kaiming-uniform over fan_in', () => {
  for (const config of [bert, distil]) {
    const input = randomParams(config);
    const { params, report } = corrupt(input, config, spec('bottom:1', 'all,embeddings'), 11);
    assert.ok(report.tensors.length > 0);
    for (const t of report.tensors) {
      const v = values(params.get(t.name)!);
      if (t.role === 'layernorm_weight') assert.ok(v.every((x) => x === 1), `${t.name} is all ones`);
      else if (t.role === 'bias' || t.role === 'layernorm_bias') assert.ok(v.every((x) => x === 0), `${t.name} is all zeros`);
      else {
        // torch.nn.init.kaiming_uniform_(w, a=0): bound = sqrt(2) * sqrt(3 / fan_in), fan_in = w.shape[1].
        const bound = Math.sqrt(6 / t.shape[1]);
        assert.ok(v.every((x) => Math.abs(x) <= bound), `${t.name} within ±${bound}`);
        assert.ok(Math.max(...v.map(Math.abs)) > 0.9 * bound, `${t.name} spreads out to its bound`);
      }
    }
    dispose(params);
    dispose(input);
  }
  // Variance on large tensors: U(-b, b) has variance b^2 / 3 = 2 / fan_in.
  const input = randomParams(bert);
  const { params } = corrupt(input, bert, spec('bottom:1', 'ffn'), 12);
  for (const [name, fanIn] of [
    ['bert.encoder.layer.0.intermediate.dense.weight', 64],
    ['bert.encoder.layer.0.output.dense.weight', 256],
  ] as const) {
    const { mean, variance } = meanVar(values(params.get(name)!));
    const expected = 2 / fanIn;
    // 16384 draws: the sample variance is within ~1 % (sd sqrt(0.8 / n)); 4 % leaves room.
    assert.ok(Math.abs(variance / expected - 1) < 0.04, `${name}: variance ${variance} vs ${expected}`);
    assert.ok(Math.abs(mean) < 4 * Math.sqrt(expected / 16384), `${name}: mean ${mean}`);
  }
  dispose(params);
  dispose(input);
});

test('reinit-hf: LayerNorm weights 1, every bias 0, weights N(0, 0.02) as Hugging Face\'s _init_weights', () => {
  const input = randomParams(bert);
  const { params, report } = corrupt(input, bert, spec('top:1', 'all,pooler', 'reinit-hf'), 13);
  assert.ok(report.tensors.some((t) => t.name.startsWith('bert.pooler.')), 'the pooler, as Zhang et al. re-initialise it');
  for (const t of report.tensors) {
    const v = values(params.get(t.name)!);
    if (t.role === 'layernorm_weight') assert.ok(v.every((x) => x === 1), `${t.name} is all ones`);
    else if (t.role === 'bias' || t.role === 'layernorm_bias') assert.ok(v.every((x) => x === 0), `${t.name} is all zeros`);
    else {
      const { mean, variance } = meanVar(v);
      // n >= 4096 draws: the sample sd is within ~2 % of 0.02 (sd of s^2/sigma^2 = sqrt(2/n)); 8 % leaves room.
      assert.ok(Math.abs(Math.sqrt(variance) / 0.02 - 1) < 0.08, `${t.name}: sd ${Math.sqrt(variance)} vs 0.02`);
      assert.ok(Math.abs(mean) < 4 * 0.02 / Math.sqrt(v.length), `${t.name}: mean ${mean}`);
    }
  }
  // Not the paper's mode: Kaiming-uniform over fan_in 64 has sd sqrt(2/64) = 0.18, nine times larger.
  const kaiming = corrupt(input, bert, spec('top:1', 'all', 'reinit'), 13).params;
  const name = 'bert.encoder.layer.3.intermediate.dense.weight';
  assert.ok(Math.sqrt(meanVar(values(kaiming.get(name)!)).variance) > 4 * Math.sqrt(meanVar(values(params.get(name)!)).variance));
  dispose(kaiming);
  dispose(params);
  dispose(input);
});

test('noise adds Gaussian noise with std = ratio x the tensor std', () => {
  const input = randomParams(bert);
  const ratio = 0.5;
  const { params, report } = corrupt(input, bert, spec('top:1', 'ffn', 'noise', { ratio }), 4);
  assert.equal(report.spec, 'top:1/ffn/noise:0.5');
  const name = 'bert.encoder.layer.3.intermediate.dense.weight';
  const before = values(input.get(name)!);
  const after = values(params.get(name)!);
  const diff = after.map((x, i) => x - before[i]);
  const d = meanVar(diff);
  const originalStd = Math.sqrt(meanVar(before).variance);
  assert.ok(Math.abs(Math.sqrt(d.variance) / (ratio * originalStd) - 1) < 0.03, `noise std ${Math.sqrt(d.variance)}`);
  assert.ok(Math.abs(d.mean) < 4 * (ratio * originalStd) / Math.sqrt(diff.length));
  dispose(params);
  dispose(input);
});

test('zero sets every selected tensor to 0', () => {
  const input = randomParams(bert);
  const { params, report } = corrupt(input, bert, spec('1', 'all', 'zero'), 4);
  assert.deepEqual(report.tensors.map((t) => t.name).sort(), layerNames(bert, [1]));
  for (const t of report.tensors) {
    assert.ok(values(params.get(t.name)!).every((x) => x === 0), t.name);
    assert.deepEqual(t.after, { mean: 0, std: 0, min: 0, max: 0 });
  }
  dispose(params);
  dispose(input);
});

test('partial re-initialises about the given fraction of entries, with reinit values', () => {
  const input = randomParams(bert);
  const fraction = 0.3;
  const { params } = corrupt(input, bert, spec('bottom:1', 'ffn,layernorm', 'partial', { fraction }), 8);
  const name = 'bert.encoder.layer.0.intermediate.dense.weight';
  const before = values(input.get(name)!);
  const after = values(params.get(name)!);
  const bound = Math.sqrt(6 / 64);
  let changed = 0;
  for (let i = 0; i < after.length; i++) {
    if (after[i] !== before[i]) {
      changed++;
      assert.ok(Math.abs(after[i]) <= bound);
    }
  }
  // Binomial(16384, 0.3): sd 0.0036 in the fraction.
  assert.ok(Math.abs(changed / after.length - fraction) < 0.015, `changed fraction ${changed / after.length}`);
  const ln = values(params.get('bert.encoder.layer.0.output.LayerNorm.weight')!);
  const lnBefore = values(input.get('bert.encoder.layer.0.output.LayerNorm.weight')!);
  assert.ok(ln.every((x, i) => x === 1 || x === lnBefore[i]), 'a LayerNorm entry is either reset to 1 or kept');
  dispose(params);
  dispose(input);
});

test('deterministic by seed, independent of map order and of what else is selected', () => {
  const input = randomParams(bert);
  for (const mode of ['reinit', 'reinit-hf', 'noise', 'partial'] as const) {
    const a = corrupt(input, bert, spec('bottom:1', 'all', mode), 42).params;
    const b = corrupt(input, bert, spec('bottom:1', 'all', mode), 42).params;
    const c = corrupt(input, bert, spec('bottom:1', 'all', mode), 43).params;
    const q = 'bert.encoder.layer.0.attention.self.query.weight';
    assert.ok([...a.keys()].every((n) => sameValues(a.get(n)!, b.get(n)!)), `${mode}: same seed, same numbers`);
    assert.ok(!sameValues(a.get(q)!, c.get(q)!), `${mode}: different seed, different numbers`);
    for (const m of [a, b, c]) dispose(m);
  }
  const reversed: ParamMap = new Map([...input.entries()].reverse());
  const x = corrupt(input, bert, spec('bottom:1'), 42).params;
  const y = corrupt(reversed, bert, spec('bottom:2'), 42).params;
  assert.ok(layerNames(bert, [0]).every((n) => sameValues(x.get(n)!, y.get(n)!)));
  dispose(x);
  dispose(y);
  dispose(input);
});

test('the input map and its tensors are left intact; the output owns its own tensors; no leak', () => {
  const input = randomParams(bert);
  const snapshot = new Map([...input].map(([n, t]) => [n, Float32Array.from(values(t))]));
  const keys = [...input.keys()];
  const tensorsBefore = tf.memory().numTensors;
  const { params } = corrupt(input, bert, spec('bottom:2', 'all,embeddings,pooler', 'noise'), 1);
  assert.deepEqual([...input.keys()], keys);
  for (const [name, t] of input) {
    assert.ok(!t.isDisposed, name);
    assert.ok(params.get(name) !== t, `${name}: the output holds a different tensor object`);
  }
  dispose(params);
  for (const [name, t] of input) assert.ok(values(t).every((v, i) => v === snapshot.get(name)![i]), `${name} unchanged`);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'disposing the output frees everything corrupt made');
  dispose(input);
});

test('formatCorruptionSpec and parseCorruptionString round-trip', () => {
  for (const text of [
    'bottom:2/all/reinit',
    'top:3/attention+ffn/zero',
    '0,3,5/layernorm/noise:0.25',
    'bottom:0.5/all+pooler/partial:0.1',
    'all/all/reinit',
    'none/embeddings/reinit',
  ]) {
    const parsed = parseCorruptionString(text);
    assert.equal(formatCorruptionSpec(parsed), text);
    assert.deepEqual(parseCorruptionString(formatCorruptionSpec(parsed)), parsed);
  }
  assert.equal(formatCorruptionSpec(spec('top:2', undefined, 'noise')), 'top:2/all/noise:1');
  assert.equal(formatCorruptionSpec(spec('top:2', undefined, 'partial')), 'top:2/all/partial:0.5');
  assert.deepEqual(spec('bottom:2', 'ffn'), { layers: { kind: 'bottom', count: 2 }, components: ['ffn'], mode: 'reinit' });
});

test('bad specs give one clear error naming the flag and value', () => {
  const userError = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof UserError && pattern.test(e.message), String(pattern));
  userError(() => parseLayers('bottom:9', 6), /^--layers bottom:9: the model has 6 layers$/);
  userError(() => parseLayers('0,7', 6), /--layers 0,7: layer 7 does not exist \(the model has 6 layers/);
  userError(() => parseLayers('middle:2'), /--layers middle:2: expected bottom:K/);
  userError(() => parseLayers('bottom:1.5'), /--layers bottom:1.5: 1.5 is neither a whole number/);
  userError(() => parseLayers('bottom:x'), /--layers bottom:x: expected bottom:K/);
  userError(() => parseLayers(''), /--layers : expected/);
  userError(() => spec('bottom:1', 'attn'), /--components attn: unknown component "attn"/);
  userError(() => spec('bottom:1', ''), /--components "": name at least one component/);
  userError(() => spec('bottom:1', 'all', 'scramble'), /--mode scramble: expected one of reinit, reinit-hf, noise, zero, partial/);
  userError(() => parseCorruptionSpec({ layers: 'bottom:1', ratio: '0.5' }), /--ratio applies only to --mode noise/);
  userError(() => parseCorruptionSpec({ layers: 'bottom:1', mode: 'partial', fraction: '2' }), /--fraction 2: expected a number in \(0, 1\]/);
  userError(() => parseCorruptionSpec({ layers: 'bottom:1', mode: 'noise', ratio: '-1' }), /--ratio -1: expected a number > 0/);
  userError(() => parseCorruptionString('bottom:1/all'), /expected LAYERS\/COMPONENTS\/MODE/);
  userError(() => validateCorruptionSpec({ layers: { kind: 'bottom', count: -1 }, components: ['all'], mode: 'reinit' }, 'grid.json'), /^grid\.json: layers/);
  userError(() => validateCorruptionSpec({ layers: { kind: 'top', count: 1 }, components: [], mode: 'reinit' }), /components/);
  // A spec valid in itself but too big for this model fails when applied, before any work.
  const input = randomParams(bert);
  const mlm = randomParams(bert, 'mlm');
  const before = tf.memory().numTensors;
  userError(() => corrupt(input, bert, spec('top:12'), 1), /corruption top:12\/all\/reinit: the model has 4 layers/);
  // The pooler of a model that has none (MLM head) cannot be corrupted.
  userError(() => corrupt(mlm, bert, spec('none', 'pooler'), 1), /selects no parameter/);
  assert.equal(tf.memory().numTensors, before);
  dispose(mlm);
  dispose(input);
});

test('a ratio of 0 and a fraction of 0 are refused, naming the field, as flags, objects and experiment specs alike', () => {
  // Either would corrupt nothing while the run is recorded as corrupted.
  const userError = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof UserError && pattern.test(e.message), String(pattern));
  userError(() => parseCorruptionSpec({ layers: 'bottom:1', mode: 'noise', ratio: '0' }), /^--ratio 0: expected a number > 0$/);
  userError(() => parseCorruptionSpec({ layers: 'bottom:1', mode: 'partial', fraction: 0 }), /^--fraction 0: expected a number in \(0, 1\]$/);
  userError(() => parseCorruptionString('bottom:1/all/noise:0'), /^--ratio 0: expected a number > 0$/);
  const layers = { kind: 'bottom', count: 1 };
  userError(() => validateCorruptionSpec({ layers, components: ['all'], mode: 'noise', ratio: 0 }), /^corruption spec: ratio: expected a number > 0$/);
  userError(() => validateCorruptionSpec({ layers, components: ['all'], mode: 'partial', fraction: 0 }), /^corruption spec: fraction: expected a number in \(0, 1\]$/);
  for (const [corruption, field] of [
    [{ layers: 'bottom:1', mode: 'noise', ratio: 0 }, 'corruption.ratio'],
    [{ layers: 'bottom:1', mode: 'partial', fraction: 0 }, 'corruption.fraction'],
  ] as const) {
    const parsed = ExperimentSpecSchema.safeParse({ dataset: { name: 'sst2' }, corruption });
    assert.ok(!parsed.success, `${field} 0 accepted`);
    const message = formatIssues(parsed.error);
    assert.ok(message.startsWith(`${field}: expected a number`), message);
  }
});

const FIXTURE = fileURLToPath(new URL('../../shared/fixtures/parity/bert-tiny-random', import.meta.url));
const fixtureDir = process.env.HEALING_SHARED_DIR ? join(process.env.HEALING_SHARED_DIR, 'fixtures/parity/bert-tiny-random') : FIXTURE;

test('healing corrupt: bottom:1 on the parity fixture changes layer 0 only, and the checkpoint reloads', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'healing-corrupt-'));
  try {
    const out = join(tmp, 'corrupted');
    const lines: string[] = [];
    const result = await runCorrupt({ model: fixtureDir, layers: 'bottom:1', seed: '5', out }, (text) => lines.push(...text.split('\n')));
    assert.equal(result.spec, 'bottom:1/all/reinit');
    assert.deepEqual(result.layers, [0]);
    assert.match(lines[0], /corruption bottom:1\/all\/reinit, seed 5: 16 tensors in layers \[0\]/);
    assert.ok(lines.some((l) => l.startsWith('bert.encoder.layer.0.attention.self.query.weight')));

    const original = await loadCheckpoint(fixtureDir);
    const reloaded = await loadCheckpoint(out);
    assert.deepEqual([...reloaded.params.keys()].sort(), [...original.params.keys()].sort());
    const changed = changedNames(original.params, reloaded.params).sort();
    assert.deepEqual(changed, layerNames(original.config, [0]));
    assert.equal(reloaded.params.get('bert.encoder.layer.0.output.LayerNorm.weight')!.dataSync().every((x) => x === 1), true);
    // What was saved is exactly what corrupt() computes in memory for the same seed.
    const again = corrupt(original.params, original.config, spec('bottom:1'), 5);
    assert.ok([...again.params.keys()].every((n) => sameValues(again.params.get(n)!, reloaded.params.get(n)!)));
    for (const m of [original.params, reloaded.params, again.params]) dispose(m);

    await assert.rejects(runCorrupt({ model: fixtureDir, layers: 'bottom:1', out }), /already exists and is not empty \(pass --force/);
    await assert.rejects(runCorrupt({ model: fixtureDir, layers: 'bottom:1', out: fixtureDir }), /is the --model directory/);
    await assert.rejects(runCorrupt({ model: fixtureDir, layers: 'bottom:4', out: join(tmp, 'x') }), /^UserError: --layers bottom:4: the model has 3 layers$/);

    // The real command line: table on stderr, JSON report last on stdout.
    const script = `import { Command } from 'commander'; import { register } from './src/cli/corrupt';
      const program = new Command('healing').exitOverride(); register(program);
      await program.parseAsync(process.argv.slice(1), { from: 'user' });`;
    const cli = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, 'corrupt', '--model', fixtureDir, '--layers', 'top:1', '--components', 'ffn', '--mode', 'noise', '--ratio', '0.5', '--seed', '3', '--out', out, '--force'],
      { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' },
    );
    assert.equal(cli.status, 0, cli.stderr);
    const report = JSON.parse(cli.stdout);
    assert.equal(report.spec, 'top:1/ffn/noise:0.5');
    assert.equal(report.seed, 3);
    assert.deepEqual(report.layers, [2]);
    assert.equal(report.tensors.length, 4);
    assert.match(cli.stderr, /std before/);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
