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

  test('embedding-sized gather gradient (vocab 8000 x 256, 2048 tokens) is fast on cpu and wasm and sums per row to the bincount of the ids', async () => {
    // The stock cpu kernel needs one 2048x256 mask per vocabulary row here: minutes and gigabytes.
    const ids = tf.randomUniform([2048], 0, 8000, 'int32', 7);
    const counts = new Array<number>(8000).fill(0);
    for (const id of ids.dataSync()) counts[id]++;
    assert.ok(counts.some((c) => c > 1), 'some ids repeat: their gradients must add up');
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const start = performance.now();
      const rowSums = tf.tidy(() => {
        const table = tf.randomNormal([8000, 256], 0, 1, 'float32', 8);
        const i = tf.tensor1d(ids.dataSync(), 'int32');
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, i)))(table);
        return Array.from(tf.sum(g, 1).dataSync());
      });
      assert.ok(performance.now() - start < 20_000, `${backend} took ${performance.now() - start} ms`);
      // Row r of the gradient is 1 per gathered element, once per occurrence of r: 256 x bincount(ids)[r].
      const rowsOff = rowSums.flatMap((sum, row) => (sum === 256 * counts[row] ? [] : [`row ${row}: ${sum}, expected 256 x ${counts[row]}`]));
      assert.deepEqual(rowsOff.slice(0, 5), [], `${backend}: ${rowsOff.length} rows differ from the bincount`);
    }
    ids.dispose();
  });
});

describe('wasm StridedSlice vs stock cpu', () => {
  // [begin, end, strides, beginMask, endMask, ellipsisMask, newAxisMask, shrinkAxisMask] on a [6, 8, 3] input
  const slices: Array<[number[], number[], number[], number, number, number, number, number]> = [
    [[1, 0, 0], [5, 8, 3], [2, 3, 1], 0, 0, 0, 0, 0],
    [[0, 0, 1], [0, 0, 3], [1, 3, 2], 3, 3, 0, 0, 0],
    // (No shrinkAxisMask with strides: TF.js 4.22's slice planning gets it wrong and the cpu kernel throws.)
    [[0, 1, 0], [0, 8, 3], [1, 2, 1], 1, 1, 0, 0, 0],
    [[0, 0], [0, 3], [1, 2], 0, 0, 1, 0, 0], // x[..., 0:3:2]
    [[1, 0, 0], [3, 8, 3], [1, 1, 1], 0, 0, 0, 0, 0], // contiguous: the stock fast path
  ];
  for (const dtype of ['float32', 'int32', 'bool'] as const) {
    test(dtype, async () => {
      const x = tf.tidy(() => {
        const r = rand([6, 8, 3]);
        return dtype === 'float32' ? r : dtype === 'int32' ? tf.cast(tf.mul(r, 100), 'int32') : tf.greater(r, 0);
      });
      for (const s of slices) {
        const run = (xx: tf.Tensor) => [tf.cast(tf.stridedSlice(xx, ...s), 'float32')];
        const shape = async (backend: Backend) => {
          await tf.setBackend(backend);
          const input = tf.tensor(x.dataSync(), x.shape, x.dtype);
          const r = tf.stridedSlice(input, ...s);
          const described = [r.dtype, r.shape];
          tf.dispose([input, r]);
          return described;
        };
        const [wasmOut, cpuOut] = [await on('wasm', [x], run), await on('cpu', [x], run)];
        assert.deepEqual(await shape('wasm'), await shape('cpu'), `dtype and shape for ${JSON.stringify(s)}`);
        assertClose(wasmOut, cpuOut, `${dtype} ${JSON.stringify(s)}`, 0);
      }
      x.dispose();
    });
  }
});

describe('ops a BERT training step needs: wasm vs cpu, values and gradients', () => {
  const ints = (shape: number[], max: number) => tf.randomUniform(shape, 0, max, 'int32', seed++);
  const pos = (x: tf.Tensor) => tf.add(tf.abs(x), 0.1);
  // [name, inputs, function, differentiate w.r.t. the float inputs]
  const ops: Array<[string, () => tf.Tensor[], (...xs: tf.Tensor[]) => tf.Tensor, boolean]> = [
    ['gather', () => [rand([11, 6]), ints([3, 4], 11)], (t, i) => tf.gather(t, i), true],
    ['add (broadcast)', () => [rand([4, 1, 6]), rand([3, 6])], (x, y) => tf.add(x, y), true],
    ['sub (broadcast)', () => [rand([4, 3, 6]), rand([6])], (x, y) => tf.sub(x, y), true],
    ['mul (broadcast)', () => [rand([4, 3, 1]), rand([3, 6])], (x, y) => tf.mul(x, y), true],
    ['div (broadcast)', () => [rand([4, 3, 6]), rand([3, 1])], (x, y) => tf.div(x, pos(y)), true],
    ['gelu (erf)', () => [rand([5, 7])], (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))), true],
    ['tanh', () => [rand([5, 7])], (x) => tf.tanh(x), true],
    ['relu', () => [rand([5, 7])], (x) => tf.relu(x), true],
    ['exp', () => [rand([5, 7])], (x) => tf.exp(x), true],
    ['log', () => [rand([5, 7])], (x) => tf.log(pos(x)), true],
    ['softmax', () => [rand([3, 4, 9])], (x) => tf.softmax(x), true],
    ['logSoftmax', () => [rand([3, 9])], (x) => tf.logSoftmax(x), true],
    ['sum over axes', () => [rand([3, 4, 5])], (x) => tf.sum(x, [0, 2], true), true],
    ['mean over axes', () => [rand([3, 4, 5])], (x) => tf.mean(x, -1), true],
    ['max over axes', () => [rand([3, 4, 5])], (x) => tf.max(x, 1), true],
    ['sqrt', () => [rand([5, 7])], (x) => tf.sqrt(pos(x)), true],
    ['rsqrt', () => [rand([5, 7])], (x) => tf.rsqrt(pos(x)), true],
    ['square', () => [rand([5, 7])], (x) => tf.square(x), true],
    ['transpose', () => [rand([2, 3, 4, 5])], (x) => tf.transpose(x, [0, 2, 1, 3]), true],
    ['reshape', () => [rand([2, 3, 4])], (x) => tf.reshape(x, [6, 4]), true],
    ['oneHot', () => [ints([7], 5)], (i) => tf.oneHot(i, 5), false],
    ['stridedSlice', () => [rand([6, 8])], (x) => tf.stridedSlice(x, [1, 0], [5, 8], [2, 3]), true],
    ['slice', () => [rand([4, 6, 3])], (x) => tf.slice(x, [0, 0, 0], [4, 1, 3]), true],
    ['concat', () => [rand([2, 3]), rand([2, 4])], (x, y) => tf.concat([x, y], 1), true],
    ['cast', () => [rand([5, 7])], (x) => tf.cast(tf.cast(tf.mul(x, 3), 'int32'), 'float32'), false],
    ['greater/less/equal', () => [rand([5, 7]), rand([5, 7])], (x, y) => {
      const [a, b] = [tf.round(x), tf.round(y)];
      return tf.stack([tf.greater(a, b), tf.less(a, b), tf.equal(a, b)].map((t) => tf.cast(t, 'float32')));
    }, false],
    ['where', () => [rand([5, 7]), rand([5, 7])], (x, y) => tf.where(tf.greater(x, 0), x, tf.mul(y, 2)), true],
    ['argMax', () => [rand([5, 7])], (x) => tf.argMax(x, 1), false],
    ['clipByValue', () => [rand([5, 7])], (x) => tf.clipByValue(x, -0.5, 0.7), true],
    ['dropout (randomUniform)', () => [rand([5, 7])], (x) => {
      const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', 42), 0.1);
      return tf.where(keep, tf.div(x, 0.9), tf.zerosLike(x));
    }, true],
    ['maximum', () => [rand([5, 7]), rand([7])], (x, y) => tf.maximum(x, y), true],
    ['neg', () => [rand([5, 7])], (x) => tf.neg(x), true],
    ['pow', () => [rand([5, 7]), rand([5, 7])], (x, y) => tf.pow(pos(x), y), true],
    ['abs', () => [rand([5, 7])], (x) => tf.abs(x), true],
    ['AdamW update', () => [rand([5, 7]), rand([5, 7]), rand([5, 7]), rand([5, 7])], (p, g, m, v) => {
      const m1 = tf.add(tf.mul(m, 0.9), tf.mul(g, 0.1));
      const v1 = tf.add(tf.mul(pos(v), 0.999), tf.mul(tf.square(g), 0.001));
      const step = tf.div(m1, tf.add(tf.sqrt(v1), 1e-8));
      return tf.sub(p, tf.mul(tf.add(step, tf.mul(p, 0.01)), 1e-3));
    }, false],
  ];

  for (const [name, make, f, withGrad] of ops) {
    test(name, async () => {
      const inputs = make();
      const floats = inputs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);
      const w = rand(tf.tidy(() => f(...inputs).shape));
      const run = (...xs: tf.Tensor[]) => {
        const ww = xs.pop()!;
        if (!withGrad) return [f(...xs)];
        const g = tf.grads((...fs: tf.Tensor[]) => {
          const all = [...xs];
          floats.forEach((at, j) => (all[at] = fs[j]));
          return tf.sum(tf.mul(f(...all), ww));
        });
        return [f(...xs), ...g(floats.map((i) => xs[i]))];
      };
      assertClose(await on('wasm', [...inputs, w], run), await on('cpu', [...inputs, w], run), name);
      tf.dispose([...inputs, w]);
    });
  }

  test('stridedSlice gradient matches the same selection done with gather', async () => {
    const x = rand([6, 8]);
    const w = rand([2, 3]);
    const viaStrided = (xx: tf.Tensor, ww: tf.Tensor) =>
      valueAndGrads((p) => tf.stridedSlice(p, [1, 0], [5, 8], [2, 3]), ww)(xx);
    const viaGather = (xx: tf.Tensor, ww: tf.Tensor) =>
      valueAndGrads((p) => tf.gather(tf.gather(p, [1, 3], 0), [0, 3, 6], 1), ww)(xx);
    const reference = await on('cpu', [x, w], viaGather);
    for (const backend of ['wasm', 'cpu'] as const) assertClose(await on(backend, [x, w], viaStrided), reference, backend);
    tf.dispose([x, w]);
  });

  test('broadcast gradients of maximum, minimum, squaredDifference match explicitly broadcast operands', async () => {
    const fns: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = [
      ['maximum', tf.maximum], ['minimum', tf.minimum], ['squaredDifference', tf.squaredDifference],
    ];
    for (const [name, f] of fns) {
      const a = rand([4, 1, 6]);
      const b = rand([3, 1]);
      const w = rand([4, 3, 6]);
      const direct = (x: tf.Tensor, y: tf.Tensor, ww: tf.Tensor) => valueAndGrads(f, ww)(x, y);
      const explicit = (x: tf.Tensor, y: tf.Tensor, ww: tf.Tensor) =>
        valueAndGrads((p, q) => f(tf.broadcastTo(p, [4, 3, 6]), tf.broadcastTo(q, [4, 3, 6])), ww)(x, y);
      const reference = await on('cpu', [a, b, w], explicit);
      for (const backend of ['wasm', 'cpu'] as const) assertClose(await on(backend, [a, b, w], direct), reference, `${name} ${backend}`);
      tf.dispose([a, b, w]);
    }
  });

  test('a small BERT layer: loss and every parameter gradient agree', async () => {
    const [vocab, hidden, heads, ffn, batch, seq, labels] = [50, 16, 2, 32, 3, 5, 4];
    const dh = hidden / heads;
    const shapes: Record<string, number[]> = {
      word: [vocab, hidden], position: [seq, hidden], lnGamma: [hidden], lnBeta: [hidden],
      q: [hidden, hidden], k: [hidden, hidden], v: [hidden, hidden], o: [hidden, hidden],
      ffnIn: [hidden, ffn], ffnBias: [ffn], ffnOut: [ffn, hidden], cls: [hidden, labels],
    };
    const names = Object.keys(shapes);
    const params = names.map((n) => tf.mul(rand(shapes[n]), 0.3));
    const ids = ints([batch, seq], vocab);
    const target = ints([batch], labels);
    const mask = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]);

    const layerNorm = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-12))), g), b);
    };
    const loss = (p: Record<string, tf.Tensor>, i: tf.Tensor, y: tf.Tensor, m: tf.Tensor) => {
      let x = tf.add(tf.gather(p.word, i), p.position); // [batch, seq, hidden]
      x = layerNorm(x, p.lnGamma, p.lnBeta);
      const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [batch, seq, heads, dh]), [0, 2, 1, 3]);
      const [q, k, v] = [p.q, p.k, p.v].map((wt) => split(tf.matMul(x, wt))); // 3-D x 2-D: broadcast
      const bias = tf.reshape(tf.mul(tf.sub(1, m), -1e4), [batch, 1, 1, seq]);
      const scores = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh)), bias);
      const context = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [batch, seq, hidden]);
      x = tf.add(x, tf.matMul(context, p.o));
      const h = tf.add(tf.matMul(x, p.ffnIn), p.ffnBias);
      const gelu = tf.mul(tf.mul(h, 0.5), tf.add(1, tf.erf(tf.div(h, Math.SQRT2))));
      x = tf.add(x, tf.matMul(gelu, p.ffnOut));
      const pooled = tf.tanh(tf.reshape(tf.slice(x, [0, 0, 0], [batch, 1, hidden]), [batch, hidden]));
      const logits = tf.matMul(pooled, p.cls);
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(y, labels), tf.logSoftmax(logits)), -1)));
    };
    const run = (...xs: tf.Tensor[]) => {
      const [i, y, m] = xs.slice(names.length);
      const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) =>
        loss(Object.fromEntries(names.map((n, j) => [n, ps[j]])), i, y, m),
      )(xs.slice(0, names.length));
      return [value, ...grads];
    };
    const inputs = [...params, ids, target, mask];
    assertClose(await on('wasm', inputs, run), await on('cpu', inputs, run), 'BERT layer', 1e-3);
    tf.dispose(inputs);
  });
});
