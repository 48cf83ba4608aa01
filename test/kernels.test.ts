import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { KERNEL_FIXES, withStockKernel } from '../src/backend/kernels';

/**
 * Every kernel we register is checked against the stock cpu kernel (or, where the stock kernel is wrong,
 * against an independent computation) on random inputs: values and gradients.
 */

type Backend = 'cpu' | 'wasm';
type Arrays = Float32Array[];

before(async () => {
  await initEngine({ backend: 'wasm' });
});

let seed = 1;
function rand(shape: number[]): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed++);
}

/** Runs fn on a backend with inputs copied there; returns the outputs as plain arrays. */
async function on(backend: Backend, inputs: tf.Tensor[], fn: (...xs: tf.Tensor[]) => tf.Tensor[]): Promise<Arrays> {
  const values = inputs.map((x) => ({ data: x.dataSync().slice(), shape: x.shape, dtype: x.dtype }));
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = values.map((v) => tf.tensor(v.data, v.shape, v.dtype));
    return fn(...xs).map((t) => Float32Array.from(t.dataSync()));
  });
}

/** |actual - expected| <= rtol * (|expected| + rms(expected)), element-wise. */
function assertClose(actual: Arrays, expected: Arrays, what: string, rtol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: number of outputs`);
  actual.forEach((a, o) => {
    const e = expected[o];
    assert.equal(a.length, e.length, `${what}: output ${o} size`);
    const rms = Math.sqrt(e.reduce((s, v) => s + v * v, 0) / Math.max(1, e.length));
    for (let i = 0; i < e.length; i++) {
      const tol = rtol * (Math.abs(e[i]) + rms) + 1e-7;
      if (!(Math.abs(a[i] - e[i]) <= tol)) {
        assert.fail(`${what}: output ${o}[${i}] = ${a[i]}, expected ${e[i]} (tolerance ${tol.toExponential(2)})`);
      }
    }
  });
}

/** Value of f, and gradients of sum(f(xs) * w) for a random w (so every gradient entry matters). */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, w: tf.Tensor) {
  return (...xs: tf.Tensor[]) => {
    const { value, grads } = tf.valueAndGrads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), w)))(xs);
    return [f(...xs), value, ...grads];
  };
}

describe('registration', () => {
  test('each fix is the registered kernel, and the stock one comes back inside withStockKernel', () => {
    for (const fix of KERNEL_FIXES) {
      const fixed = tf.getKernel(fix.kernelName, fix.backendName);
      assert.ok(fixed, `${fix.kernelName} on ${fix.backendName} is registered`);
      withStockKernel(fix.kernelName, fix.backendName, () => {
        assert.notEqual(tf.getKernel(fix.kernelName, fix.backendName), fixed);
      });
      assert.equal(tf.getKernel(fix.kernelName, fix.backendName), fixed);
    }
  });
});

describe('wasm BatchMatMul vs stock cpu', () => {
  const flags: Array<[boolean, boolean]> = [[false, false], [false, true], [true, false], [true, true]];
  // [outer dims of a, outer dims of b, m, k, n]
  const shapes: Array<[number[], number[], number, number, number]> = [
    [[], [], 7, 13, 5], // 2-D, odd sizes
    [[1], [1], 7, 13, 5], // batch 1
    [[3], [3], 7, 13, 5], // batch > 1: one XNNPACK call per slice
    [[1], [3], 7, 13, 5], // broadcast a
    [[3], [1], 7, 13, 5], // broadcast b (folded into one call)
    [[4, 3], [], 6, 9, 11], // rank 4 with a shared 2-D b
    [[], [2], 1, 13, 1], // rank 2 x rank 3, m = n = 1
    [[2, 2], [2, 2], 17, 32, 8], // attention-like
  ];
  for (const [outerA, outerB, m, k, n] of shapes) {
    for (const [ta, tb] of flags) {
      const name = `[${outerA}|${m}x${k}] x [${outerB}|${k}x${n}] transposeA=${ta} transposeB=${tb}`;
      test(name, async () => {
        const a = rand([...outerA, ...(ta ? [k, m] : [m, k])]);
        const b = rand([...outerB, ...(tb ? [n, k] : [k, n])]);
        const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
        const w = rand([...outer, m, n]);
        const fixed = await on('wasm', [a, b, w], (x, y, ww) => valueAndGrads((p, q) => tf.matMul(p, q, ta, tb), ww)(x, y));
        const stock = await on('cpu', [a, b, w], (x, y, ww) => valueAndGrads((p, q) => tf.matMul(p, q, ta, tb), ww)(x, y));
        assertClose(fixed, stock, name);
        tf.dispose([a, b, w]);
      });
    }
  }

  test('broadcast batch dims: values and gradients match explicitly broadcast operands', async () => {
    // Independent reference: broadcast the operands first, so the matMul has equal batch dims and the
    // reduction back to each input's shape is done by broadcastTo's own gradient. This checks both the
    // kernel and the gradient fix (core's gradient keeps the output's batch dims), and covers the
    // two-sided case that the stock cpu kernel gets wrong (it maps batch indices by modulo).
    const pairs: Array<[number[], number[]]> = [[[1], [3]], [[3], [1]], [[4, 3], []], [[], [2]], [[2, 1], [1, 3]]];
    for (const [outerA, outerB] of pairs) {
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
      for (const [ta, tb] of flags) {
        const a = rand([...outerA, ...(ta ? [13, 7] : [7, 13])]);
        const b = rand([...outerB, ...(tb ? [5, 13] : [13, 5])]);
        const w = rand([...outer, 7, 5]);
        const reference = await on('cpu', [a, b, w], (x, y, ww) =>
          valueAndGrads(
            (p, q) => tf.matMul(tf.broadcastTo(p, [...outer, ...p.shape.slice(-2)]), tf.broadcastTo(q, [...outer, ...q.shape.slice(-2)]), ta, tb),
            ww,
          )(x, y),
        );
        // The stock cpu kernel is only right for one-sided broadcasts.
        const twoSided = outerA.some((d, i) => d === 1 && outerB[i] > 1) && outerB.some((d, i) => d === 1 && outerA[i] > 1);
        for (const backend of twoSided ? (['wasm'] as const) : (['wasm', 'cpu'] as const)) {
          const direct = await on(backend, [a, b, w], (x, y, ww) => valueAndGrads((p, q) => tf.matMul(p, q, ta, tb), ww)(x, y));
          assertClose(direct, reference, `${backend} [${outerA}] x [${outerB}] transposeA=${ta} transposeB=${tb}`);
        }
        tf.dispose([a, b, w]);
      }
    }
  });

  test('no leaked tensors and no growth of the wasm heap over repeated batched calls', async () => {
    await tf.setBackend('wasm');
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    const a = rand([32, 64, 64]);
    const b = rand([32, 64, 64]);
    const step = () => tf.tidy(() => tf.matMul(a, b, true, true).dataSync());
    for (let i = 0; i < 5; i++) step();
    const tensors = tf.memory().numTensors;
    const bytes = heap();
    // Each call packs 32 weight slices (512 KB); 100 calls would grow the heap by ~50 MB if they leaked.
    for (let i = 0; i < 100; i++) step();
    assert.equal(tf.memory().numTensors, tensors);
    assert.ok(heap() - bytes < 16 * 2 ** 20, `wasm heap grew by ${heap() - bytes} bytes`);
    tf.dispose([a, b]);
  });
});

describe('UnsortedSegmentSum (cpu and wasm) vs stock cpu', () => {
  const cases: Array<[number[], number[], number, boolean]> = [
    // [x shape, segment ids (repeated and unused), numSegments, gradient too]
    [[6, 4], [0, 2, 2, 5, 0, 1], 8, true],
    [[5, 2, 3], [4, 0, 4, 4, 1], 6, true],
    [[1, 3], [0], 1, true],
    // Ids outside [0, numSegments) are dropped. (Only values: core's gradient gathers by the raw ids
    // and rejects them.)
    [[7], [3, 3, 3, 0, -1, 9, 2], 5, false],
  ];
  for (const [xShape, ids, numSegments, withGrad] of cases) {
    test(`x [${xShape}], ids [${ids}], ${numSegments} segments: values${withGrad ? ' and gradient' : ''}`, async () => {
      const x = rand(xShape);
      const segmentIds = tf.tensor1d(ids, 'int32');
      const w = rand([numSegments, ...xShape.slice(1)]);
      const run = (xx: tf.Tensor, ii: tf.Tensor, ww: tf.Tensor) => {
        const f = (p: tf.Tensor) => tf.unsortedSegmentSum(p, ii as tf.Tensor1D, numSegments);
        return withGrad ? valueAndGrads(f, ww)(xx) : [f(xx)];
      };
      const stock = await withStockKernel(tf.UnsortedSegmentSum, 'cpu', () => on('cpu', [x, segmentIds, w], run));
      assertClose(await on('cpu', [x, segmentIds, w], run), stock, 'cpu');
      assertClose(await on('wasm', [x, segmentIds, w], run), stock, 'wasm');
      tf.dispose([x, segmentIds, w]);
    });
  }

  test('rank-2 segment ids and int32 values match a direct loop', async () => {
    const x = tf.tensor3d([...Array(2 * 3 * 2).keys()].map((v) => v * 7 - 20), [2, 3, 2], 'int32');
    const ids = tf.tensor2d([[1, 0, 1], [3, 1, 0]], [2, 3], 'int32');
    const xs = x.arraySync() as number[][][];
    const idRows = ids.arraySync() as number[][];
    const expected = Array.from({ length: 4 }, () => [0, 0]);
    idRows.forEach((row, i) => row.forEach((s, j) => xs[i][j].forEach((v, c) => (expected[s][c] += v))));
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const out = tf.tidy(() => {
        const r = tf.unsortedSegmentSum(tf.tensor(x.dataSync(), x.shape, 'int32'), tf.tensor(ids.dataSync(), ids.shape, 'int32') as unknown as tf.Tensor1D, 4);
        return { dtype: r.dtype, values: r.arraySync() };
      });
      assert.equal(out.dtype, 'int32', backend);
      assert.deepEqual(out.values, expected, backend);
    }
    tf.dispose([x, ids]);
  });

  test('embedding-sized gather gradient (vocab 8000 x 256, 2048 tokens) is fast on cpu and wasm', async () => {
    // The stock cpu kernel needs one 2048x256 mask per vocabulary row here: minutes and gigabytes.
    const ids = tf.randomUniform([2048], 0, 8000, 'int32', 7);
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const start = performance.now();
      const norm = tf.tidy(() => {
        const table = tf.randomNormal([8000, 256], 0, 1, 'float32', 8);
        const i = tf.tensor1d(ids.dataSync(), 'int32');
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, i)))(table);
        return tf.sum(g).dataSync()[0];
      });
      assert.equal(norm, 2048 * 256, `${backend}: every gathered element contributes 1`);
      assert.ok(performance.now() - start < 20_000, `${backend} took ${performance.now() - start} ms`);
    }
    ids.dispose();
  });
});
