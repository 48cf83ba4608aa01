import { UserError } from '../errors';
import { createRng, deriveSeed, shuffled } from '../random';
import type { LabeledData } from './dataset';

/**
 * Class quotas for a sample of `size` out of `counts`: each class gets floor(size * share), and the
 * examples left over go to the largest remainders (ties to the lower class id), so every quota is
 * within 1 of its exact share and they sum to `size`.
 */
export function stratifiedQuotas(counts: readonly number[], size: number): number[] {
  const n = counts.reduce((a, b) => a + b, 0);
  if (size >= n) return counts.slice();
  const exact = counts.map((c) => (size * c) / n);
  const quotas = exact.map(Math.floor);
  let left = size - quotas.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, label) => ({ label, remainder: e - Math.floor(e) }))
    .sort((a, b) => b.remainder - a.remainder || a.label - b.label);
  for (const { label } of order) {
    if (left === 0) break;
    if (quotas[label] < counts[label]) {
      quotas[label]++;
      left--;
    }
  }
  return quotas;
}

/**
 * The evaluation split that is not one: `evalSize` examples held out of the training split (a stratified
 * sample fixed by the dataset alone), with every training sample drawn from the rest
 * (src/experiment/examples.ts). For choosing a recipe without looking at the evaluation split the study reports.
 */
export const HELDOUT_SPLIT = 'train-heldout';

/**
 * Indices of a seeded stratified sample, in their original order. Each class draws its quota from its
 * own seeded shuffle, so the same seed picks the same examples however the classes interleave.
 */
export function stratifiedIndices(labels: readonly number[], size: number, seed: number): number[] {
  if (!Number.isInteger(size) || size < 1) throw new UserError(`sample size must be a positive integer, got ${size}`);
  if (size >= labels.length) return labels.map((_, i) => i);
  const byClass = new Map<number, number[]>();
  labels.forEach((label, i) => {
    const list = byClass.get(label);
    if (list) list.push(i);
    else byClass.set(label, [i]);
  });
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const quotas = stratifiedQuotas(classes.map((c) => byClass.get(c)!.length), size);
  const picked: number[] = [];
  classes.forEach((label, k) => {
    const rng = createRng(deriveSeed(seed, `stratified/${label}`));
    picked.push(...shuffled(byClass.get(label)!, rng).slice(0, quotas[k]));
  });
  return picked.sort((a, b) => a - b);
}

/** A seeded stratified subsample of `size` examples; the data unchanged when size >= its length. */
export function stratifiedSample(data: LabeledData, size: number, seed: number): LabeledData {
  if (size >= data.labels.length) return data;
  const indices = stratifiedIndices(data.labels, size, seed);
  return {
    texts: indices.map((i) => data.texts[i]),
    labels: indices.map((i) => data.labels[i]),
    labelNames: data.labelNames,
    source: `${data.source} (stratified sample of ${size}, seed ${seed})`,
  };
}
