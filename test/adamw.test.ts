import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { clipByGlobalNorm, createAdamW, defaultDecay, type AdamWState } from '../src/train/adamw';
import { initEngine } from '../src/backend/engine';

// The backend production uses (HEALING_BACKEND picks another).
await initEngine();

type Values = Record<string, number[]>;

const shapes: Record<string, number[]> = {
  'dense.weight': [2, 3],
  'dense.bias': [2],
  'LayerNorm.weight': [3],
};
const initial: Values = {
  'dense.weight': [0.5, -1.2, 0.3, 2.0, -0.7, 0.05],
  'dense.bias': [0.1, -0.2],
  'LayerNorm.weight': [1.0, 0.9, 1.1],
};
const gradSteps: Values[] = [
  { 'dense.weight': [0.1, -0.3, 0.02, 1.5, -0.4, 0.0], 'dense.bias': [0.5, -0.05], 'LayerNorm.weight': [0.2, -0.1, 0.3] },
  { 'dense.weight': [-0.2, 0.1, 0.5, -1.0, 0.3, 0.001], 'dense.bias': [0.4, 0.2], 'LayerNorm.weight': [-0.1, 0.0, 0.25] },
  { 'dense.weight': [0.05, 0.05, -0.6, 0.2, 0.9, -0.3], 'dense.bias': [-0.3, 0.1], 'LayerNorm.weight': [0.3, 0.2, -0.2] },
];

function makeVariables(values: Values = initial): Map<string, tf.Variable> {
  return new Map(Object.entries(values).map(([name, v]) => [name, tf.variable(tf.tensor(v, shapes[name]), true)]));
}

function grads(values: Values): Map<string, tf.Tensor> {
  return new Map(Object.entries(values).map(([name, v]) => [name, tf.tensor(v, shapes[name])]));
}

function read(variables: Map<string, tf.Variable>): Values {
  return Object.fromEntries([...variables].map(([name, v]) => [name, Array.from(v.dataSync())]));
}

function disposeAll(map: Map<string, tf.Tensor>): void {
  for (const t of map.values()) t.dispose();
}

/** torch.optim.AdamW written out in float64, one parameter entry at a time. */
function referenceAdamW(
  steps: Values[],
  lrs: number[],
  opts: { beta1: number; beta2: number; eps: number; wd: number; decays: (name: string) => boolean },
): Values {
  const p: Values = structuredClone(initial);
  const m: Values = Object.fromEntries(Object.entries(p).map(([n, v]) => [n, v.map(() => 0)]));
  const v: Values = structuredClone(m);
  steps.forEach((g, index) => {
    const t = index + 1;
    const lr = lrs[index];
    for (const name of Object.keys(p)) {
      for (let i = 0; i < p[name].length; i++) {
        if (opts.decays(name)) p[name][i] *= 1 - lr * opts.wd;
        m[name][i] = opts.beta1 * m[name][i] + (1 - opts.beta1) * g[name][i];
        v[name][i] = opts.beta2 * v[name][i] + (1 - opts.beta2) * g[name][i] * g[name][i];
        const mHat = m[name][i] / (1 - opts.beta1 ** t);
        const vHat = v[name][i] / (1 - opts.beta2 ** t);
        p[name][i] -= (lr * mHat) / (Math.sqrt(vHat) + opts.eps);
      }
    }
  });
  return p;
}

function assertClose(actual: Values, expected: Values, tol: number, what: string): void {
  for (const name of Object.keys(expected)) {
    expected[name].forEach((e, i) => {
      const a = actual[name][i];
      assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}: ${name}[${i}] = ${a}, expected ${e}`);
    });
  }
}

const decaysOnlyWeights = (name: string) => name === 'dense.weight';

test('one and two steps match a hand computation of torch AdamW', () => {
  for (const count of [1, 2]) {
    const variables = makeVariables();
    const opt = createAdamW(variables, { weightDecay: 0.1 });
    const lrs = [0.05, 0.02];
    for (let s = 0; s < count; s++) {
      const g = grads(gradSteps[s]);
      opt.step(g, lrs[s]);
      disposeAll(g);
    }
    assert.equal(opt.iterations, count);
    const expected = referenceAdamW(gradSteps.slice(0, count), lrs, { beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.1, decays: decaysOnlyWeights });
    assertClose(read(variables), expected, 2e-6, `${count} step(s)`);
    opt.dispose();
    disposeAll(variables);
  }
});

test('custom betas/epsilon and the default learning rate are used', () => {
  const variables = makeVariables();
  const opt = createAdamW(variables, { learningRate: 0.03, beta1: 0.8, beta2: 0.95, epsilon: 1e-3, weightDecay: 0.2 });
  for (const s of [0, 1]) {
    const g = grads(gradSteps[s]);
    opt.step(g);
    disposeAll(g);
  }
  const expected = referenceAdamW(gradSteps.slice(0, 2), [0.03, 0.03], { beta1: 0.8, beta2: 0.95, eps: 1e-3, wd: 0.2, decays: decaysOnlyWeights });
  assertClose(read(variables), expected, 2e-6, 'custom hyperparameters');
  opt.dispose();
  disposeAll(variables);
  const none = createAdamW(makeVariables());
  assert.throws(() => none.step(new Map()), /learning rate undefined/);
});

test('no weight decay on biases and LayerNorm weights', () => {
  assert.equal(defaultDecay('bert.encoder.layer.0.attention.self.query.weight'), true);
  assert.equal(defaultDecay('bert.embeddings.word_embeddings.weight'), true);
  assert.equal(defaultDecay('bert.encoder.layer.0.attention.self.query.bias'), false);
  assert.equal(defaultDecay('bert.encoder.layer.0.output.LayerNorm.weight'), false);
  assert.equal(defaultDecay('distilbert.transformer.layer.0.sa_layer_norm.weight'), false);
  assert.equal(defaultDecay('vocab_layer_norm.weight'), false);
  // With zero gradients Adam's update is 0/(0+eps) = 0, so only the decoupled decay moves anything.
  const variables = makeVariables();
  const opt = createAdamW(variables, { weightDecay: 0.5 });
  const zero = grads(Object.fromEntries(Object.entries(initial).map(([n, v]) => [n, v.map(() => 0)])));
  opt.step(zero, 0.1);
  const after = read(variables);
  assertClose(after, { 'dense.weight': initial['dense.weight'].map((x) => x * (1 - 0.1 * 0.5)) }, 1e-7, 'decayed weight');
  assert.deepEqual(after['dense.bias'], Array.from(new Float32Array(initial['dense.bias'])));
  assert.deepEqual(after['LayerNorm.weight'], Array.from(new Float32Array(initial['LayerNorm.weight'])));
  // A custom rule replaces the default.
  const v2 = makeVariables();
  const all = createAdamW(v2, { weightDecay: 0.5, decay: () => true });
  all.step(zero, 0.1);
  assertClose(read(v2), { 'dense.bias': initial['dense.bias'].map((x) => x * 0.95) }, 1e-7, 'custom decay rule');
  disposeAll(zero);
  for (const [o, v] of [[opt, variables], [all, v2]] as const) {
    o.dispose();
    disposeAll(v);
  }
});

test('state round trip: a restored optimizer takes exactly the same next step', () => {
  const a = makeVariables();
  const optA = createAdamW(a, { weightDecay: 0.01 });
  for (const s of [0, 1]) {
    const g = grads(gradSteps[s]);
    optA.step(g, 0.01);
    disposeAll(g);
  }
  const saved = optA.state();
  assert.equal(saved.step, 2);
  assert.deepEqual(Object.keys(saved.m).sort(), Object.keys(initial).sort());
  // Through JSON, as a checkpoint writer might store it.
  const json = JSON.stringify({ step: saved.step, m: mapValues(saved.m, Array.from), v: mapValues(saved.v, Array.from) });
  const parsed = JSON.parse(json) as { step: number; m: Values; v: Values };
  const restored: AdamWState = { step: parsed.step, m: mapValues(parsed.m, (x) => new Float32Array(x)), v: mapValues(parsed.v, (x) => new Float32Array(x)) };

  const b = makeVariables(read(a));
  const optB = createAdamW(b, { weightDecay: 0.01 });
  optB.load(restored);
  assert.equal(optB.iterations, 2);
  const g = grads(gradSteps[2]);
  optA.step(g, 0.01);
  optB.step(g, 0.01);
  assert.deepEqual(read(b), read(a));
  // Without the state, the same step differs (the test would notice a load that did nothing).
  const c = makeVariables(read(a));
  const optC = createAdamW(c, { weightDecay: 0.01 });
  optC.step(g, 0.01);
  optA.step(g, 0.01);
  assert.notDeepEqual(read(c), read(a));
  disposeAll(g);
  assert.throws(() => optB.load({ step: 1, m: { 'dense.bias': new Float32Array(5) }, v: {} }), /m for dense.bias has 5 values, parameter has 2/);
  assert.throws(() => optB.load({ step: 1, m: { nope: new Float32Array(1) }, v: {} }), /unknown parameter nope/);
  for (const [o, v] of [[optA, a], [optB, b], [optC, c]] as const) {
    o.dispose();
    disposeAll(v);
  }
});

function mapValues<A, B>(record: Record<string, A>, f: (a: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, f(v)]));
}

test('no tensor leak over 5 steps with clipping', () => {
  const variables = makeVariables();
  const opt = createAdamW(variables);
  const run = (s: number) => {
    const g = grads(gradSteps[s % 3]);
    const clipped = clipByGlobalNorm(g, 0.5);
    opt.step(clipped.grads, 0.01);
    disposeAll(g);
    disposeAll(clipped.grads);
  };
  run(0);
  const after1 = tf.memory().numTensors;
  for (let s = 1; s < 5; s++) run(s);
  assert.equal(tf.memory().numTensors, after1);
  opt.dispose();
  disposeAll(variables);
});

test('clipByGlobalNorm scales like torch clip_grad_norm_', () => {
  const g = new Map<string, tf.Tensor>([
    ['a', tf.tensor([3, 0])],
    ['b', tf.tensor([[0], [4]])],
  ]);
  const before = tf.memory().numTensors;
  const clipped = clipByGlobalNorm(g, 1);
  assert.ok(Math.abs(clipped.norm - 5) < 1e-6);
  const scale = 1 / (5 + 1e-6);
  assert.ok(Array.from(clipped.grads.get('a')!.dataSync()).every((x, i) => Math.abs(x - [3, 0][i] * scale) < 1e-6));
  assert.ok(Array.from(clipped.grads.get('b')!.dataSync()).every((x, i) => Math.abs(x - [0, 4][i] * scale) < 1e-6));
  assert.deepEqual(clipped.grads.get('b')!.shape, [2, 1]);
  const loose = clipByGlobalNorm(g, 10);
  assert.ok(Math.abs(loose.norm - 5) < 1e-6);
  assert.deepEqual(Array.from(loose.grads.get('a')!.dataSync()), [3, 0], 'below the limit, gradients are unchanged');
  disposeAll(clipped.grads);
  disposeAll(loose.grads);
  assert.equal(tf.memory().numTensors, before, 'only the returned tensors were created');
  assert.ok(!g.get('a')!.isDisposed, 'the input is not disposed');
  disposeAll(g);
});

const TORCH_SCRIPT = `
import json, sys, torch
data = json.load(sys.stdin)
params = {n: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64).reshape(data['shapes'][n])) for n, v in data['initial'].items()}
decay = [p for n, p in params.items() if n == 'dense.weight']
nodecay = [p for n, p in params.items() if n != 'dense.weight']
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': data['wd']}, {'params': nodecay, 'weight_decay': 0.0}], lr=data['lrs'][0])
for g, lr in zip(data['grads'], data['lrs']):
    for group in opt.param_groups: group['lr'] = lr
    for n, p in params.items(): p.grad = torch.tensor(g[n], dtype=torch.float64).reshape(data['shapes'][n])
    opt.step()
print(json.dumps({n: p.detach().reshape(-1).tolist() for n, p in params.items()}))
`;

test('three steps agree with torch.optim.AdamW', (t) => {
  const python = '/usr/bin/python3';
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.skip(`${python} cannot import torch; the hand-computed reference above stands in for it`);
    return;
  }
  const lrs = [0.05, 0.02, 0.01];
  const result = spawnSync(python, ['-c', TORCH_SCRIPT], {
    input: JSON.stringify({ initial, shapes, grads: gradSteps, lrs, wd: 0.1 }),
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  const expected = JSON.parse(result.stdout) as Values;
  const variables = makeVariables();
  const opt = createAdamW(variables, { weightDecay: 0.1 });
  gradSteps.forEach((step, i) => {
    const g = grads(step);
    opt.step(g, lrs[i]);
    disposeAll(g);
  });
  assertClose(read(variables), expected, 2e-6, 'torch');
  opt.dispose();
  disposeAll(variables);
});
