import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootstrapCI,
  incompleteBeta,
  pairedTest,
  studentTCdf,
  summarise,
  tQuantile,
  wilcoxonSignedRank,
} from '../src/analysis/stats';

// Reference values computed independently with SciPy 1.10 (Debian python3-scipy):
// scipy.special.betainc, scipy.stats.t.cdf / t.ppf / t.interval, scipy.stats.ttest_rel, scipy.stats.wilcoxon.

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

test('regularised incomplete beta matches scipy.special.betainc', () => {
  close(incompleteBeta(0.3, 2, 5), 0.579825, 1e-12, 'I_0.3(2,5)');
  close(incompleteBeta(0.9, 0.5, 0.5), 0.7951672353008662, 1e-12, 'I_0.9(.5,.5)');
  close(incompleteBeta(0.01, 10, 3), 6.480550000000002e-19, 1e-28, 'I_0.01(10,3)');
  close(incompleteBeta(0.999, 50, 0.5), 0.7523690199653768, 1e-11, 'I_0.999(50,.5)');
  assert.equal(incompleteBeta(0, 2, 3), 0);
  assert.equal(incompleteBeta(1, 2, 3), 1);
});

test('Student t CDF: the published table value t=2.776, df=4 gives a two-sided p of 0.05', () => {
  close(2 * studentTCdf(-2.776, 4), 0.05, 5e-4, 'two-sided p');
  close(studentTCdf(2.776, 4), 0.9749886108400118, 1e-12, 'cdf');
  close(studentTCdf(1.5, 10), 0.9177463367772799, 1e-12, 'cdf(1.5, 10)');
  close(studentTCdf(-3.2, 2), 0.04267043961997643, 1e-12, 'cdf(-3.2, 2)');
  close(studentTCdf(12.7062, 1), 0.9749999907196448, 1e-12, 'cdf(12.7062, 1)');
  close(studentTCdf(0.5, 100), 0.6909132170845567, 1e-12, 'cdf(0.5, 100)');
  assert.equal(studentTCdf(0, 7), 0.5);
});

test('t quantiles match the tables (df=4: 2.776, df=1: 12.706, df=30 at 99.5 %: 2.750)', () => {
  close(tQuantile(0.975, 4), 2.7764451051977987, 1e-9, 't_.975,4');
  close(tQuantile(0.975, 1), 12.706204736432095, 1e-8, 't_.975,1');
  close(tQuantile(0.995, 30), 2.7499956535670305, 1e-9, 't_.995,30');
  close(tQuantile(0.025, 4), -2.7764451051977987, 1e-9, 'symmetry');
});

test('summarise gives the t interval of the mean', () => {
  const s = summarise([0.81, 0.84, 0.79, 0.86]);
  assert.equal(s.n, 4);
  close(s.mean, 0.825, 1e-12, 'mean');
  close(s.std, 0.031091263510296018, 1e-12, 'std');
  close(s.ci95[0], 0.7755268616575195, 1e-9, 'lo');
  close(s.ci95[1], 0.8744731383424804, 1e-9, 'hi');
  assert.equal(s.note, undefined);
});

test('summarise of one value is the value with a note, and empty or NaN input is refused', () => {
  const s = summarise([0.7]);
  assert.deepEqual([s.n, s.mean, s.std, s.ci95], [1, 0.7, 0, [0.7, 0.7]]);
  assert.match(s.note ?? '', /one value/);
  assert.throws(() => summarise([]), /no values/);
  assert.throws(() => summarise([1, NaN]), /non-finite/);
});

test('pairedTest matches scipy.stats.ttest_rel and the t interval of the differences', () => {
  const a = [0.91, 0.88, 0.93, 0.9, 0.87];
  const b = [0.85, 0.86, 0.9, 0.84, 0.86];
  const r = pairedTest(a, b);
  assert.equal(r.n, 5);
  assert.equal(r.df, 4);
  close(r.t, 3.496629104486151, 1e-9, 't');
  close(r.p, 0.024972303267543502, 1e-9, 'p');
  close(r.ci95[0], 0.007414748090129729, 1e-9, 'lo');
  close(r.ci95[1], 0.06458525190987033, 1e-9, 'hi');
  // d_z = t / sqrt(n) by definition.
  close(r.cohensDz, r.t / Math.sqrt(5), 1e-12, 'd_z');
  // Swapping the arms flips the sign and keeps p.
  const s = pairedTest(b, a);
  close(s.t, -r.t, 1e-12, 'swap t');
  close(s.p, r.p, 1e-12, 'swap p');
});

test('pairedTest edge cases: constant differences and bad input', () => {
  const same = pairedTest([1, 2, 3], [1, 2, 3]);
  assert.equal(same.t, 0);
  assert.equal(same.p, 1);
  const shifted = pairedTest([2, 3, 4], [1, 2, 3]);
  assert.equal(shifted.t, Infinity);
  assert.equal(shifted.p, 0);
  assert.throws(() => pairedTest([1, 2], [1]), /equal lengths/);
  assert.throws(() => pairedTest([1], [2]), /at least 2/);
});

test('bootstrapCI is seeded, brackets the mean, and is close to the t interval for many normal values', () => {
  const values = [0.81, 0.84, 0.79, 0.86, 0.83];
  const a = bootstrapCI(values, { seed: 7 });
  assert.deepEqual(bootstrapCI(values, { seed: 7 }), a);
  assert.notDeepEqual(bootstrapCI(values, { seed: 8 }), a);
  const m = values.reduce((x, y) => x + y) / values.length;
  assert.ok(a[0] < m && m < a[1] && a[0] >= 0.79 && a[1] <= 0.86, `${a}`);
  // Large sample: the bootstrap and t intervals converge (both ~ mean +- 1.96 sd/sqrt(n)).
  let state = 1;
  const normal = Array.from({ length: 400 }, () => {
    state = (state * 48271) % 2147483647;
    const u = state / 2147483647;
    state = (state * 48271) % 2147483647;
    const v = state / 2147483647;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  });
  const boot = bootstrapCI(normal, { seed: 1, resamples: 4000 });
  const t = summarise(normal).ci95;
  const width = t[1] - t[0];
  close(boot[0], t[0], 0.1 * width, 'lo');
  close(boot[1], t[1], 0.1 * width, 'hi');
});

test('wilcoxonSignedRank matches scipy.stats.wilcoxon (exact and normal approximation)', () => {
  const diffs = [0.2, -0.5, 1.1, 1.2, 0.25, 1.4, -0.15, 1.3];
  const zeros = diffs.map(() => 0);
  const exact = wilcoxonSignedRank(diffs, zeros);
  assert.equal(exact.exact, true);
  assert.equal(exact.wPlus, 36 - 5); // scipy reports min(W+, W-) = 5 out of n(n+1)/2 = 36
  close(exact.p, 0.078125, 1e-12, 'exact p');
  const x = [2.3409, -2.2557, 0.7181, -0.2678, -0.1526, 0.0844, -1.72, 0.0681, -0.5652, 3.623, 0.5258, -0.0526, 0.0187,
    -0.368, -0.7552, -0.0908, 0.7819, 0.0614, 1.2578, 0.1002, 0.3243, 1.8458, 0.8451, -0.2052, 0.1172];
  const approx = wilcoxonSignedRank(x, x.map(() => 0));
  assert.equal(approx.exact, false);
  assert.equal(Math.min(approx.wPlus, 325 - approx.wPlus), 127);
  close(approx.p, 0.33947890807294845, 1e-6, 'approx p');
});
