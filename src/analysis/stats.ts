import { lgamma, std as mathStd } from 'mathjs';
import { createRng } from '../random';

/**
 * Statistics over seeds. The paper's claims are differences of a few accuracy points between runs
 * that differ only in where the corruption sits, so every comparison is paired by seed and reported
 * with an interval, not as two bare means.
 */

export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1); 0 for a single value. */
  std: number;
  /** 95 % Student-t interval of the mean. */
  ci95: [number, number];
  /** Why the interval is degenerate, when it is. */
  note?: string;
}

function finite(values: readonly number[], what: string): number[] {
  if (values.length === 0) throw new RangeError(`${what}: no values`);
  for (const v of values) if (!Number.isFinite(v)) throw new RangeError(`${what}: non-finite value ${v}`);
  return values.slice();
}

/**
 * Arithmetic mean; NaN for no values, and a non-finite value carries through, so that an empty group
 * reads "n/a" in a table instead of failing the whole analysis (summarise and pairedTest check first).
 */
export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : NaN;
}

/** A share as percentage points with one decimal, without the unit ("12.3"); "n/a" when not finite. */
export const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}` : 'n/a');

/** Sample standard deviation (Bessel-corrected); 0 for one value. */
export function sampleStd(values: readonly number[]): number {
  const v = finite(values, 'std');
  return v.length < 2 ? 0 : Number(mathStd(v, 'unbiased'));
}

export function summarise(values: readonly number[]): Summary {
  const v = finite(values, 'summarise');
  const n = v.length;
  const m = mean(v);
  if (n === 1) return { n, mean: m, std: 0, ci95: [m, m], note: 'one value: no spread to estimate, the interval is the value itself' };
  const s = sampleStd(v);
  const half = tQuantile(0.975, n - 1) * (s / Math.sqrt(n));
  return { n, mean: m, std: s, ci95: [m - half, m + half] };
}

/**
 * Percentile bootstrap interval of the mean. With 3-5 seeds the t interval leans on normality the
 * data can't show; the bootstrap leans on the sample instead, and the two disagreeing is itself a
 * warning that the seeds are too few.
 */
export function bootstrapCI(
  values: readonly number[],
  options: { resamples?: number; seed: number; level?: number },
): [number, number] {
  const v = finite(values, 'bootstrapCI');
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const rng = createRng(options.seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < v.length; i++) sum += v[rng.int(v.length)];
    means[r] = sum / v.length;
  }
  means.sort();
  const alpha = (1 - level) / 2;
  return [quantileSorted(means, alpha), quantileSorted(means, 1 - alpha)];
}

/** Linear interpolation between order statistics (numpy's default, "type 7"). */
function quantileSorted(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface PairedTest {
  n: number;
  /** mean(a - b) */
  meanDiff: number;
  sdDiff: number;
  t: number;
  df: number;
  /** Two-sided p-value, Student t with n - 1 degrees of freedom. */
  p: number;
  /** Cohen's d_z: mean difference over the standard deviation of the differences. */
  cohensDz: number;
  /** 95 % interval of the mean difference. */
  ci95: [number, number];
}

/** Paired t-test of a against b (e.g. bottom vs top corruption, paired by seed and dataset). */
export function pairedTest(a: readonly number[], b: readonly number[]): PairedTest {
  if (a.length !== b.length) throw new RangeError(`pairedTest: ${a.length} values against ${b.length}; pairs need equal lengths`);
  if (a.length < 2) throw new RangeError(`pairedTest: needs at least 2 pairs, got ${a.length}`);
  const diffs = finite(a, 'pairedTest a').map((x, i) => x - finite(b, 'pairedTest b')[i]);
  const n = diffs.length;
  const df = n - 1;
  const meanDiff = mean(diffs);
  const sdDiff = sampleStd(diffs);
  const se = sdDiff / Math.sqrt(n);
  let t: number;
  if (se > 0) t = meanDiff / se;
  // Identical differences: no noise, so the test is decided by whether they are zero.
  else t = meanDiff === 0 ? 0 : Math.sign(meanDiff) * Infinity;
  const p = Number.isFinite(t) ? 2 * studentTCdf(-Math.abs(t), df) : 0;
  const half = tQuantile(0.975, df) * se;
  const cohensDz = sdDiff > 0 ? meanDiff / sdDiff : t;
  return { n, meanDiff, sdDiff, t, df, p, cohensDz, ci95: [meanDiff - half, meanDiff + half] };
}

/** Least-squares slope of y on x; NaN with fewer than two distinct x. */
export function olsSlope(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n < 2) return NaN;
  const mx = mean(x);
  const my = mean(y);
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i] - mx) ** 2;
    sxy += (x[i] - mx) * (y[i] - my);
  }
  return sxx > 0 ? sxy / sxx : NaN;
}

/** Mid-ranks (ties share the mean of their positions), 1-based. */
function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1].v === order[start].v) end++;
    for (let j = start; j <= end; j++) out[order[j].i] = (start + end) / 2 + 1;
    start = end + 1;
  }
  return out;
}

/** Spearman's rho: Pearson correlation of the mid-ranks; NaN when either variable is constant. */
export function spearman(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new RangeError(`spearman: ${x.length} values against ${y.length}`);
  if (x.length < 2) return NaN;
  const rx = ranks(x);
  const ry = ranks(y);
  const n = rx.length;
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/**
 * Regularised incomplete beta I_x(a, b), by the continued fraction of Numerical Recipes (betacf,
 * modified Lentz), using the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) where the fraction converges slowly.
 */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`incompleteBeta: a and b must be positive (got ${a}, ${b})`);
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const eps = 1e-15;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < eps) return h;
  }
  throw new Error(`incompleteBeta: continued fraction did not converge (x=${x}, a=${a}, b=${b})`);
}

/** P(T <= t) for Student's t with df degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`studentTCdf: df must be positive (got ${df})`);
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t < 0 ? tail : 1 - tail;
}

/** The t value with P(T <= t) = p, by bisection on the CDF (monotone, so this cannot miss). */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`tQuantile: p must be in (0, 1) (got ${p})`);
  if (p === 0.5) return 0;
  let lo = -1;
  let hi = 1;
  while (studentTCdf(lo, df) > p) lo *= 2;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, Math.abs(lo)); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface WilcoxonResult {
  n: number;
  /** Sum of the ranks of the positive differences. */
  wPlus: number;
  /**
   * Two-sided p-value: exact (all 2^n sign patterns) for n <= 20 without ties, else the normal
   * approximation without continuity or tie correction.
   */
  p: number;
  exact: boolean;
}

/**
 * Wilcoxon signed-rank test of a against b: the check that a paired t result does not hinge on
 * one outlying seed. Zero differences are dropped (Wilcoxon's convention); ties get mid-ranks.
 */
export function wilcoxonSignedRank(a: readonly number[], b: readonly number[]): WilcoxonResult {
  if (a.length !== b.length) throw new RangeError(`wilcoxonSignedRank: ${a.length} values against ${b.length}`);
  const diffs = a.map((x, i) => x - b[i]).filter((d) => d !== 0);
  const n = diffs.length;
  if (n === 0) return { n, wPlus: 0, p: 1, exact: true };
  const abs = diffs.map(Math.abs);
  const rank = ranks(abs);
  const ties = new Set(abs).size < n;
  const wPlus = diffs.reduce((s, d, i) => (d > 0 ? s + rank[i] : s), 0);
  const total = (n * (n + 1)) / 2;
  if (n <= 20 && !ties) {
    // Distribution of W+ under H0: each rank's sign is a fair coin.
    const counts = new Float64Array(total + 1);
    counts[0] = 1;
    for (let r = 1; r <= n; r++) for (let s = total; s >= r; s--) counts[s] += counts[s - r];
    const all = 2 ** n;
    const lower = Math.min(wPlus, total - wPlus);
    let tail = 0;
    for (let s = 0; s <= lower; s++) tail += counts[s];
    return { n, wPlus, p: Math.min(1, (2 * tail) / all), exact: true };
  }
  const mu = total / 2;
  const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24);
  const z = (wPlus - mu) / sigma;
  return { n, wPlus, p: Math.min(1, 2 * normalCdf(-Math.abs(z))), exact: false };
}

function normalCdf(z: number): number {
  // Abramowitz-Stegun 7.1.26 (error < 1.5e-7): plenty for a p-value, and no dependency for one function.
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}
