import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initEngine, NATIVE_NUMERICS, TFJS_NUMERICS, type EngineInfo } from '../src/backend/engine';
import { denseGeluFused, layerNormFused } from '../src/backend/fused';
import { allocate, heapBuffer, offsetOf } from '../src/backend/native/heap';
import type { NativeAddon } from '../src/backend/native/addon';
import { activeNative, fusedNative, withoutFusedOps } from '../src/backend/native/state';
import { bertConfig } from '../src/model/config';
import { encode } from '../src/model/encoder';
import { classifierLogits } from '../src/model/heads';
import { initParams } from '../src/model/init';
import { additiveMask, attentionBlock, DropoutSeeds, feedForwardBlock, type LayerNames } from '../src/model/layers';
import type { ParamMap } from '../src/model/names';
import { createAdamW } from '../src/train/adamw';
import { crossEntropy, disposeTrainable, makeTrainable, trainStep } from '../src/train/trainer';
import { createRng } from '../src/random';

/**
 * The native engine (native/, OpenBLAS or Accelerate under the wasm backend): each kernel against the
 * stock cpu kernel, each fused op's value and gradients against the unfused TF.js graph it replaces,
 * dropout masks that the backward pass regenerates, the fused AdamW against the TF.js one, determinism
 * and tensor bookkeeping over training steps. Skipped, with the reason, where the addon is not built
 * or HEALING_NATIVE=0 (then the rest of the suite runs on the plain wasm engine).
 */

// At load, not in before(): which tests skip is decided when they are declared.
const engine: EngineInfo = await initEngine({ backend: 'wasm' });
const native: NativeAddon | undefined = activeNative();
const skip = () => (native ? false : `native kernels are off: ${engine.native && !engine.native.enabled ? engine.native.reason : 'not loaded'}`);

let seed = 100;
const rand = (shape: number[], scale = 1) => tf.tidy(() => tf.randomNormal(shape, 0, scale, 'float32', seed++));

/** |actual - expected| <= rtol * (|expected| + rms(expected)) + atol, element-wise. */
function assertClose(actual: tf.Tensor, expected: tf.Tensor, what: string, rtol = 1e-4, atol = 1e-6): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = actual.dataSync();
  const e = expected.dataSync();
  let ss = 0;
  for (let i = 0; i < e.length; i++) ss += e[i] * e[i];
  const rms = Math.sqrt(ss / Math.max(1, e.length));
  for (let i = 0; i < e.length; i++) {
    const tol = rtol * (Math.abs(e[i]) + rms) + atol;
    if (!(Math.abs(a[i] - e[i]) <= tol)) assert.fail(`${what}[${i}] = ${a[i]}, expected ${e[i]} (tolerance ${tol.toExponential(2)})`);
  }
}

/** Value and gradients (w.r.t. every input) of sum(f(xs) * w) for a fixed random w. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]): tf.Tensor[] {
  return tf.tidy(() => {
    const out = f(...xs);
    const w = tf.randomNormal(out.shape, 0, 1, 'float32', 7);
    const { grads } = tf.valueAndGrads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), w)))(xs);
    return [out, ...grads];
  });
}

function compareFusedWithGraph(what: string, fused: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], names: string[], rtol = 1e-4): void {
  const got = valueAndGrads(fused, xs);
  const want = withoutFusedOps(() => valueAndGrads(fused, xs));
  ['value', ...names].forEach((name, i) => assertClose(got[i], want[i], `${what}: ${name}`, rtol));
  tf.dispose([...got, ...want]);
}

describe('native BatchMatMul vs the stock cpu kernel', () => {
  const flags: Array<[boolean, boolean]> = [[false, false], [false, true], [true, false], [true, true]];
  // [outer a, outer b, m, k, n]: odd sizes, broadcast batch dims, a vector-like and a long inner dimension
  const shapes: Array<[number[], number[], number, number, number]> = [
    [[], [], 1, 1, 1],
    [[], [], 3, 17, 255],
    [[2], [2], 17, 3, 1],
    [[5], [1], 1, 255, 3],
    [[1], [4], 255, 17, 3],
    [[2, 1], [1, 3], 3, 5, 7],
  ];
  for (const [outerA, outerB, m, k, n] of shapes) {
    for (const [ta, tb] of flags) {
      const name = `[${outerA}|${m}x${k}] x [${outerB}|${k}x${n}] transposeA=${ta} transposeB=${tb}`;
      test(name, { skip: skip() }, async () => {
        const a = rand([...outerA, ...(ta ? [k, m] : [m, k])]);
        const b = rand([...outerB, ...(tb ? [n, k] : [k, n])]);
        const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
        // Reference: operands broadcast explicitly, on the cpu backend (its own kernel and gradients).
        const f = (p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, ta, tb);
        const reference = (p: tf.Tensor, q: tf.Tensor) =>
          tf.matMul(tf.broadcastTo(p, [...outer, ...p.shape.slice(-2)]), tf.broadcastTo(q, [...outer, ...q.shape.slice(-2)]), ta, tb);
        const values = [a, b].map((x) => ({ data: x.dataSync().slice(), shape: x.shape }));
        const got = valueAndGrads(f, [a, b]).map((t) => ({ data: t.dataSync().slice(), shape: t.shape }));
        await tf.setBackend('cpu');
        const want = tf.tidy(() => {
          const xs = values.map((v) => tf.tensor(v.data, v.shape));
          return valueAndGrads(reference, xs).map((t) => ({ data: t.dataSync().slice(), shape: t.shape }));
        });
        await tf.setBackend('wasm');
        got.forEach((g, i) => assertClose(tf.tensor(g.data, g.shape), tf.tensor(want[i].data, want[i].shape), `${name} output ${i}`));
        tf.dispose([a, b]);
      });
    }
  }

  test('zero-size operands give zero-size or all-zero products', { skip: skip() }, () => {
    const empty = tf.tidy(() => tf.matMul(tf.zeros([0, 4]), tf.ones([4, 3])));
    assert.deepEqual(empty.shape, [0, 3]);
    const zeroInner = tf.tidy(() => tf.matMul(tf.zeros([2, 0]), tf.zeros([0, 3])));
    assert.deepEqual(Array.from(zeroInner.dataSync()), [0, 0, 0, 0, 0, 0]);
    tf.dispose([empty, zeroInner]);
  });
});

describe('fused ops vs the unfused TF.js graph (values and gradients)', () => {
  test('LayerNorm, odd widths and rows', { skip: skip() }, () => {
    // Width 1 is degenerate (zero variance: rstd = 1/sqrt(eps) amplifies rounding), so the narrowest is 3.
    for (const [rows, c] of [[1, 3], [3, 17], [5, 255]] as const) {
      const xs = [rand([rows, c], 3), rand([c]), rand([c])];
      xs[0] = tf.tidy(() => xs[0].add(2));
      compareFusedWithGraph(`LayerNorm [${rows},${c}]`, (x, g, b) => withFused(() => layerNormFused(native!, x, g, b, 1e-12), () => graphLayerNorm(x, g, b, 1e-12)), xs, ['dx', 'dgamma', 'dbeta']);
      tf.dispose(xs);
    }
  });

  test('dense + GELU', { skip: skip() }, () => {
    const xs = [rand([2, 3, 17]), rand([33, 17], 0.3), rand([33])];
    compareFusedWithGraph('denseGelu', (x, w, b) => withFused(() => denseGeluFused(native!, x, w, b), () => graphDenseGelu(x, w, b)), xs, ['dx', 'dw', 'db']);
    tf.dispose(xs);
  });

  const c = 12;
  const names: LayerNames = {
    attention: { query: 'q', key: 'k', value: 'v', output: 'o' },
    attentionNorm: 'ln1',
    ffnIn: 'f1',
    ffnOut: 'f2',
    outputNorm: 'ln2',
  };
  const block = { numHeads: 3, layerNormEps: 1e-12, hiddenDropout: 0.1, attentionDropout: 0.1 };
  const layerParams = (): ParamMap => {
    const p: ParamMap = new Map();
    for (const n of ['q', 'k', 'v', 'o']) p.set(`${n}.weight`, rand([c, c], 0.4)).set(`${n}.bias`, rand([c], 0.1));
    for (const n of ['ln1', 'ln2']) p.set(`${n}.weight`, tf.tidy(() => rand([c], 0.1).add(1))).set(`${n}.bias`, rand([c], 0.1));
    p.set('f1.weight', rand([20, c], 0.4)).set('f1.bias', rand([20], 0.1)).set('f2.weight', rand([c, 20], 0.4)).set('f2.bias', rand([c], 0.1));
    return p;
  };
  const attentionKeys = ['q.weight', 'q.bias', 'k.weight', 'k.bias', 'v.weight', 'v.bias', 'o.weight', 'o.bias', 'ln1.weight', 'ln1.bias'];
  const ffnKeys = ['f1.weight', 'f1.bias', 'f2.weight', 'f2.bias', 'ln2.weight', 'ln2.bias'];
  // Padding in the second sequence: masked keys must get no weight on either path.
  const mask = () => tf.tidy(() => additiveMask(tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], [2, 5], 'int32')));
  const asMap = (keys: string[], ws: tf.Tensor[], base: ParamMap): ParamMap => {
    const out = new Map(base);
    keys.forEach((k, i) => out.set(k, ws[i]));
    return out;
  };

  test('BertAttention block (self-attention, dense, residual, LayerNorm; eval mode)', { skip: skip() }, () => {
    const params = layerParams();
    const m = mask();
    const x = rand([2, 5, c]);
    const f = (xIn: tf.Tensor, ...ws: tf.Tensor[]) => attentionBlock(asMap(attentionKeys, ws, params), names, xIn as tf.Tensor3D, m, block, new DropoutSeeds(1), false);
    compareFusedWithGraph('attention block', f, [x, ...attentionKeys.map((k) => params.get(k)!)], ['dx', ...attentionKeys]);
    tf.dispose([x, m, ...params.values()]);
  });

  test('feed-forward block (dense, GELU, dense, residual, LayerNorm; eval mode)', { skip: skip() }, () => {
    const params = layerParams();
    const x = rand([2, 5, c]);
    const f = (xIn: tf.Tensor, ...ws: tf.Tensor[]) => feedForwardBlock(asMap(ffnKeys, ws, params), names, xIn as tf.Tensor3D, block, new DropoutSeeds(1), false);
    compareFusedWithGraph('feed-forward block', f, [x, ...ffnKeys.map((k) => params.get(k)!)], ['dx', ...ffnKeys]);
    tf.dispose([x, ...params.values()]);
  });

  test('embeddings (word + position + token type, LayerNorm), BERT and DistilBERT', { skip: skip() }, () => {
    for (const modelType of ['bert', 'distilbert'] as const) {
      const config = bertConfig({ vocabSize: 23, hiddenSize: c, numLayers: 1, numHeads: 3, intermediateSize: 20, maxPositions: 9 });
      const cfg = { ...config, modelType, typeVocabSize: modelType === 'bert' ? 2 : 0 };
      const params = initParams(cfg, 'none', 2, 3);
      const prefix = modelType;
      const keys = [...params.keys()].filter((k) => k.startsWith(`${prefix}.embeddings.`));
      const inputIds = tf.tensor2d([[2, 5, 22, 0, 5], [1, 1, 7, 3, 0]], [2, 5], 'int32');
      const tokenTypeIds = tf.tensor2d([[0, 0, 1, 1, 1], [0, 1, 0, 1, 0]], [2, 5], 'int32');
      const f = (...ws: tf.Tensor[]) => {
        const p = asMap(keys, ws, params);
        return encode(cfg, p, { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D, tokenTypeIds }).hiddenStates[0];
      };
      compareFusedWithGraph(`${modelType} embeddings`, f, keys.map((k) => params.get(k)!), keys);
      tf.dispose([inputIds, tokenTypeIds, ...params.values()]);
    }
  });

  test('dropout: the backward pass uses the forward pass\'s masks (finite differences), masks differ by seed', { skip: skip() }, () => {
    const params = layerParams();
    const m = mask();
    const x = rand([2, 5, c]);
    const trainBlock = (xIn: tf.Tensor, s: number) =>
      feedForwardBlock(params, names, attentionBlock(params, names, xIn as tf.Tensor3D, m, block, new DropoutSeeds(s), true), block, new DropoutSeeds(s + 50), true);
    const w = rand([2, 5, c]);
    const loss = (xIn: tf.Tensor, s: number) => tf.sum(tf.mul(trainBlock(xIn, s), w));
    const grad = tf.tidy(() => tf.grad((xIn: tf.Tensor) => loss(xIn, 3))(x));
    const u = rand([2, 5, c]);
    const eps = 1e-2;
    const fd = tf.tidy(() => (loss(x.add(u.mul(eps)), 3).dataSync()[0] - loss(x.sub(u.mul(eps)), 3).dataSync()[0]) / (2 * eps));
    const analytic = tf.tidy(() => tf.sum(grad.mul(u)).dataSync()[0]);
    assert.ok(Math.abs(fd - analytic) <= 2e-2 * Math.max(1, Math.abs(analytic)), `directional derivative: finite differences ${fd}, backward pass ${analytic}`);
    const same = tf.tidy(() => tf.sub(trainBlock(x, 3), trainBlock(x, 3)).abs().max().dataSync()[0]);
    const other = tf.tidy(() => tf.sub(trainBlock(x, 3), trainBlock(x, 4)).abs().max().dataSync()[0]);
    assert.equal(same, 0, 'same seed, same output');
    assert.ok(other > 0, 'another seed, another output');
    tf.dispose([x, w, u, grad, m, ...params.values()]);
  });

  test('dropout keeps 1 - p of the entries, scaled by 1 / (1 - p)', { skip: skip() }, () => {
    const n = 200_000;
    const x = tf.ones([n]);
    const y = allocate([n]);
    native!.dropoutAddForward(heapBuffer(), offsetOf(y), offsetOf(x), -1, n, 0.1, 12345);
    const values = y.dataSync();
    let kept = 0;
    for (const v of values) {
      if (v === 0) continue;
      kept++;
      assert.ok(Math.abs(v - 1 / 0.9) < 1e-6, `kept entries are scaled by 1/(1-p), got ${v}`);
    }
    assert.ok(Math.abs(kept / n - 0.9) < 0.005, `kept share ${kept / n}, expected 0.9`);
    tf.dispose([x, y]);
  });
});

describe('training on the native engine', () => {
  const config = bertConfig({ vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 32, maxPositions: 16 });
  const rng = createRng(5);
  const ids = Int32Array.from({ length: 4 * 8 }, () => 1 + rng.int(49));
  const labels = Int32Array.from({ length: 4 }, () => rng.int(2));

  function train(steps: number, fused: boolean): { weights: Map<string, Float32Array>; losses: number[]; tensorsFlat: boolean } {
    const run = () => {
      const params = initParams(config, 'classifier', 2, 11);
      const trainable = makeTrainable(params, { weightDecay: 0.01, learningRate: 1e-3 });
      for (const t of params.values()) t.dispose();
      const lossOf = (i: number) => {
        const inputIds = tf.tensor2d(ids, [4, 8], 'int32');
        const dropout = new DropoutSeeds(1000 + i);
        const { lastHiddenState } = encode(config, trainable.variables, { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D }, { training: true, dropout });
        const { logits } = classifierLogits(config, trainable.variables, lastHiddenState, dropout, true);
        return crossEntropy(logits, tf.tensor1d(labels, 'int32'));
      };
      const losses: number[] = [];
      let counts: number[] = [];
      for (let s = 0; s < steps; s++) {
        losses.push(trainStep(trainable, 1, [1], () => lossOf(s), { learningRate: 1e-3, maxGradNorm: 0.5 }).loss);
        counts.push(tf.memory().numTensors);
      }
      counts = counts.slice(1);
      const weights = new Map([...trainable.variables].map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
      disposeTrainable(trainable);
      return { weights, losses, tensorsFlat: counts.every((n) => n === counts[0]) };
    };
    return fused ? run() : withoutFusedOps(run);
  }

  test('the same seed twice gives identical weights after 5 steps; the tensor count stays flat', { skip: skip() }, () => {
    const a = train(5, true);
    const b = train(5, true);
    assert.deepEqual(a.losses, b.losses);
    for (const [name, w] of a.weights) assert.deepEqual(w, b.weights.get(name), name);
    assert.ok(a.tensorsFlat, 'tf.memory().numTensors is flat across steps');
    assert.ok(a.losses.every(Number.isFinite));
  });

  test('fused and unfused training agree without dropout (AdamW, clipping, every fused op)', { skip: skip() }, () => {
    const saved = { h: config.hiddenDropout, a: config.attentionDropout };
    Object.assign(config, { hiddenDropout: 0, attentionDropout: 0 });
    try {
      const fused = train(3, true);
      const graph = train(3, false);
      fused.losses.forEach((l, i) => assert.ok(Math.abs(l - graph.losses[i]) < 1e-4, `step ${i}: loss ${l} vs ${graph.losses[i]}`));
      for (const [name, w] of fused.weights) {
        assertClose(tf.tensor(w), tf.tensor(graph.weights.get(name)!), name, 1e-3, 1e-5);
      }
    } finally {
      Object.assign(config, { hiddenDropout: saved.h, attentionDropout: saved.a });
    }
  });

  test('fused AdamW matches the TF.js AdamW, and never writes through a variable\'s shared data', { skip: skip() }, () => {
    const p0 = rand([3, 5]);
    const bias0 = rand([5]);
    const grads = [0, 1, 2].map(() => new Map([['w', rand([3, 5])], ['layer.bias', rand([5])]]));
    const run = () => {
      const vars = new Map([['w', tf.variable(p0, true)], ['layer.bias', tf.variable(bias0, true)]]);
      const opt = createAdamW(vars, { learningRate: 1e-2, weightDecay: 0.1 });
      for (const g of grads) opt.step(g, 1e-2, 0.5);
      const out = [...vars.values()].map((v) => v.dataSync().slice());
      const state = opt.state();
      opt.dispose();
      for (const v of vars.values()) v.dispose();
      return { out, state };
    };
    const before = p0.dataSync().slice();
    const fused = run();
    assert.deepEqual(p0.dataSync(), before, 'the tensor a variable was made from is unchanged');
    const graph = withoutFusedOps(run);
    fused.out.forEach((w, i) => assertClose(tf.tensor(w), tf.tensor(graph.out[i]), `parameter ${i}`, 1e-5, 1e-7));
    assert.equal(fused.state.step, 3);
    assertClose(tf.tensor(fused.state.v.w), tf.tensor(graph.state.v.w), 'second moment', 1e-5, 1e-9);
    tf.dispose([p0, bias0, ...grads.flatMap((g) => [...g.values()])]);
  });
});

describe('engine status', () => {
  test('the engine says whether native kernels are on, with their numerics', () => {
    assert.equal(engine.backend, 'wasm');
    assert.ok(engine.native, 'wasm reports the native kernels status');
    if (engine.native.enabled) {
      assert.equal(engine.numerics, NATIVE_NUMERICS);
      assert.match(engine.native.blas, /OpenBLAS|Accelerate|BLAS/);
      assert.match(engine.reason, /native kernels/);
    } else {
      assert.equal(engine.numerics, TFJS_NUMERICS);
      assert.match(engine.native.reason, /HEALING_NATIVE|libopenblas|Xcode|failed/);
    }
  });

  test('HEALING_NATIVE=0 runs plain wasm and says so; a bad HEALING_THREADS is a clear error', () => {
    const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
    const off = spawnSync(process.execPath, ['--import', 'tsx', cli, 'info', '--json'], { encoding: 'utf8', env: { ...process.env, HEALING_NATIVE: '0', HEALING_BACKEND: 'wasm' } });
    assert.equal(off.status, 0, off.stderr);
    const info = JSON.parse(off.stdout) as { native: { enabled: boolean; reason?: string }; numerics: string };
    assert.equal(info.native.enabled, false);
    assert.match(info.native.reason ?? '', /HEALING_NATIVE=0/);
    assert.equal(info.numerics, TFJS_NUMERICS);
    const bad = spawnSync(process.execPath, ['--import', 'tsx', cli, 'info'], { encoding: 'utf8', env: { ...process.env, HEALING_NATIVE: '1', HEALING_THREADS: 'many', HEALING_BACKEND: 'wasm' } });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /HEALING_THREADS must be a positive integer.*"many"/);
  });
});

// The unfused references, written out so the comparison does not depend on the dispatch under test.
function graphLayerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const axis = x.rank - 1;
  const mean = x.mean(axis, true);
  const centred = x.sub(mean);
  return centred.mul(centred.square().mean(axis, true).add(eps).rsqrt()).mul(g).add(b);
}

function graphDenseGelu(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const y = tf.matMul(x.reshape([-1, x.shape[x.rank - 1]]) as tf.Tensor2D, w as tf.Tensor2D, false, true).add(b);
  const z = y.reshape([...x.shape.slice(0, -1), w.shape[0]]);
  return z.mul(0.5).mul(tf.erf(z.mul(Math.SQRT1_2)).add(1));
}

/** The fused op on the native path, its graph inside withoutFusedOps (how compareFusedWithGraph switches). */
function withFused(fused: () => tf.Tensor, graph: () => tf.Tensor): tf.Tensor {
  return fusedNative() ? fused() : graph();
}
