import * as tf from '@tensorflow/tfjs';

/** For each output batch index, the batch index of a and of b under numpy broadcasting of the outer dims. */
export function broadcastPairs(outerA: number[], outerB: number[], outerOut: number[]): Array<[number, number]> {
  const rank = outerOut.length;
  const padA = [...Array(rank - outerA.length).fill(1), ...outerA];
  const padB = [...Array(rank - outerB.length).fill(1), ...outerB];
  const total = tf.util.sizeFromShape(outerOut);
  const pairs: Array<[number, number]> = [];
  const coord = new Array(rank).fill(0);
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    for (let d = rank - 1; d >= 0; d--) {
      coord[d] = rest % outerOut[d];
      rest = Math.floor(rest / outerOut[d]);
    }
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < rank; d++) {
      ia = ia * padA[d] + (padA[d] === 1 ? 0 : coord[d]);
      ib = ib * padB[d] + (padB[d] === 1 ? 0 : coord[d]);
    }
    pairs.push([ia, ib]);
  }
  return pairs;
}
