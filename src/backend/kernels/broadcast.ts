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

/** A BatchMatMul's sizes: op(a) is [..., m, k], op(b) [..., kb, n] (k must equal kb), and the broadcast batch. */
export interface MatMulDims {
  m: number;
  k: number;
  kb: number;
  n: number;
  outerA: number[];
  outerB: number[];
  outerOut: number[];
  batchA: number;
  batchB: number;
  batchOut: number;
}

export function matMulDims(a: { shape: number[] }, b: { shape: number[] }, transposeA: boolean, transposeB: boolean): MatMulDims {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outerOut = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  return {
    m: transposeA ? a.shape[ra - 1] : a.shape[ra - 2],
    k: transposeA ? a.shape[ra - 2] : a.shape[ra - 1],
    kb: transposeB ? b.shape[rb - 1] : b.shape[rb - 2],
    n: transposeB ? b.shape[rb - 2] : b.shape[rb - 1],
    outerA,
    outerB,
    outerOut,
    batchA: tf.util.sizeFromShape(outerA),
    batchB: tf.util.sizeFromShape(outerB),
    batchOut: tf.util.sizeFromShape(outerOut),
  };
}
