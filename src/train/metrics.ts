/**
 * Classification metrics with scikit-learn's conventions, so numbers compare with the paper's and
 * with HF `evaluate`: f1_score(average=None / 'macro', labels=range(numLabels)).
 */
export interface ClassificationMetrics {
  accuracy: number;
  /** Unweighted mean of perClassF1 over ALL numLabels classes, including classes absent from the data. */
  macroF1: number;
  /** F1 per class id. A class with no true and no predicted examples gets 0 (sklearn's zero_division=0). */
  perClassF1: number[];
  /** confusion[trueLabel][predictedLabel] = count. */
  confusion: number[][];
  /** Number of true examples per class. */
  support: number[];
}

export function classificationMetrics(predictions: readonly number[], labels: readonly number[], numLabels: number): ClassificationMetrics {
  if (!Number.isInteger(numLabels) || numLabels < 1) throw new RangeError(`classificationMetrics: numLabels ${numLabels} must be a whole number >= 1`);
  if (predictions.length !== labels.length) {
    throw new RangeError(`classificationMetrics: ${predictions.length} predictions for ${labels.length} labels`);
  }
  if (labels.length === 0) throw new RangeError('classificationMetrics: no examples');
  const confusion = Array.from({ length: numLabels }, () => new Array<number>(numLabels).fill(0));
  const inRange = (x: number): boolean => Number.isInteger(x) && x >= 0 && x < numLabels;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    const p = predictions[i];
    if (!inRange(y)) throw new RangeError(`classificationMetrics: label ${y} at index ${i} is not in 0..${numLabels - 1}`);
    if (!inRange(p)) throw new RangeError(`classificationMetrics: prediction ${p} at index ${i} is not in 0..${numLabels - 1}`);
    confusion[y][p] += 1;
  }
  let correct = 0;
  const perClassF1: number[] = [];
  const support: number[] = [];
  for (let c = 0; c < numLabels; c++) {
    const tp = confusion[c][c];
    correct += tp;
    const actual = confusion[c].reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < numLabels; r++) predicted += confusion[r][c];
    support.push(actual);
    // F1 = 2tp / (2tp + fp + fn) = 2tp / (predicted + actual); 0 when the class never occurs at all.
    perClassF1.push(actual + predicted === 0 ? 0 : (2 * tp) / (actual + predicted));
  }
  return {
    accuracy: correct / labels.length,
    macroF1: perClassF1.reduce((a, b) => a + b, 0) / numLabels,
    perClassF1,
    confusion,
    support,
  };
}
