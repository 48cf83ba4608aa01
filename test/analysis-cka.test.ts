import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ckaPerLayer, linearCKA } from '../src/analysis/cka';

await tf.setBackend('cpu');


test('CKA(X, X) = 1 and CKA is symmetric', () => {
  const x = tf.randomNormal([64, 16], 0, 1, 'float32', 1) as tf.Tensor2D;
  const y = tf.randomNormal([64, 8], 0, 1, 'float32', 2) as tf.Tensor2D;
  assert.ok(Math.abs(linearCKA(x, x) - 1) < 1e-5);
  assert.ok(Math.abs(linearCKA(x, y) - linearCKA(y, x)) < 1e-6);
  tf.dispose([x, y]);
});

test('CKA is invariant to an orthogonal transform and isotropic scaling, but not to arbitrary linear maps', () => {
  const x = tf.randomNormal([100, 12], 0, 1, 'float32', 3) as tf.Tensor2D;
  const y = tf.add(tf.matMul(x, tf.randomNormal([12, 10], 0, 1, 'float32', 4)), tf.randomNormal([100, 10], 0, 0.5, 'float32', 5)) as tf.Tensor2D;
  // An orthogonal matrix from the QR decomposition of a random matrix.
  const [q, r] = tf.linalg.qr(tf.randomNormal([10, 10], 0, 1, 'float32', 6));
  const rotated = tf.mul(tf.matMul(y, q), 3.7) as tf.Tensor2D;
  const base = linearCKA(x, y);
  assert.ok(base > 0.2 && base < 0.99, `${base}`);
  assert.ok(Math.abs(linearCKA(x, rotated) - base) < 1e-4);
  // Anisotropic scaling of the features does change it: the invariance is specific.
  const stretched = tf.mul(y, tf.linspace(0.1, 10, 10)) as tf.Tensor2D;
  assert.ok(Math.abs(linearCKA(x, stretched) - base) > 1e-2);
  tf.dispose([x, y, q, r, rotated, stretched]);
});

test('CKA with independent noise is small, matches an independent float64 computation, and leaks no tensors', () => {
  const before = tf.memory().numTensors;
  const n = 500;
  const x = tf.randomNormal([n, 6], 0, 1, 'float32', 7) as tf.Tensor2D;
  const y = tf.randomNormal([n, 5], 0, 1, 'float32', 8) as tf.Tensor2D;
  const cka = linearCKA(x, y);
  // For independent Gaussians CKA ~ sqrt(p q) / n-ish: far below 0.1 here.
  assert.ok(cka < 0.1, `${cka}`);
  // The same formula in plain float64 JS, from the raw numbers.
  const X = x.arraySync();
  const Y = y.arraySync();
  const centre = (m: number[][]) => {
    const mu = m[0].map((_, j) => m.reduce((s, row) => s + row[j], 0) / m.length);
    return m.map((row) => row.map((v, j) => v - mu[j]));
  };
  const xc = centre(X);
  const yc = centre(Y);
  const gram = (a: number[][], b: number[][]) => a[0].map((_, i) => b[0].map((__, j) => a.reduce((s, row, k) => s + row[i] * b[k][j], 0)));
  const fro2 = (m: number[][]) => m.flat().reduce((s, v) => s + v * v, 0);
  const expected = fro2(gram(yc, xc)) / Math.sqrt(fro2(gram(xc, xc)) * fro2(gram(yc, yc)));
  assert.ok(Math.abs(cka - expected) < 1e-4, `${cka} vs ${expected}`);
  assert.deepEqual(ckaPerLayer([x, x], [x, y]).map((v) => Math.round(v * 1e4) / 1e4), [1, Math.round(expected * 1e4) / 1e4]);
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before);
});

test('CKA refuses mismatched example counts', () => {
  const x = tf.zeros([4, 2]) as tf.Tensor2D;
  const y = tf.zeros([5, 2]) as tf.Tensor2D;
  assert.throws(() => linearCKA(x, y), /same examples/);
  tf.dispose([x, y]);
});
