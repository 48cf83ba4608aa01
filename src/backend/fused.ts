import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './native/addon';
import { allocate, heapBuffer, NONE, offsetOf, optionalOffset } from './native/heap';

/**
 * Fused ops on the native kernels: each is one node on TF.js's tape (tf.customGrad) whose forward and
 * backward are a few native calls on the wasm heap, instead of dozens of TF.js kernels. The boundaries
 * follow Hugging Face's modules: BertEmbeddings, BertAttention (self-attention + output dense + dropout +
 * residual + LayerNorm), BertIntermediate + BertOutput (dense + GELU + dense + dropout + residual +
 * LayerNorm), plus LayerNorm and dense + GELU alone for the heads. src/model/layers.ts calls these when
 * the engine has native kernels and the unfused TF.js graphs otherwise; tests check one against the other.
 *
 * Dropout here draws its masks from a counter-based hash of (seed, element index), so the backward pass
 * regenerates them and the numbers differ from tf.dropout's: the engine's numerics version says so.
 */

type Save = (tensors: tf.Tensor[]) => void;
type Forward<A extends tf.Tensor[]> = (...args: [...A, Save]) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => tf.Tensor[];
};

/** tf.customGrad with the forward's inputs typed (TF.js types them as tensors-or-save-function). */
function fusedOp<A extends tf.Tensor[]>(forward: Forward<A>): (...inputs: A) => tf.Tensor {
  return tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...inputs: A) => tf.Tensor;
}

const rowsOf = (x: tf.Tensor) => x.size / x.shape[x.shape.length - 1];
const lastDim = (x: tf.Tensor) => x.shape[x.shape.length - 1];

/** A dropout seed for the hash: a non-negative integer below 2^53 (the addon reads a double). */
export type DropoutSeed = number;

export function layerNormFused(addon: NativeAddon, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const op = fusedOp((xIn: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: Save) => {
    const rows = rowsOf(xIn);
    const c = lastDim(xIn);
    const out = allocate(xIn.shape);
    const mean = allocate([rows]);
    const rstd = allocate([rows]);
    addon.layerNormForward(heapBuffer(), offsetOf(out), offsetOf(mean), offsetOf(rstd), offsetOf(xIn), offsetOf(g), offsetOf(b), rows, c, eps);
    save([xIn, g, mean, rstd]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sg, sm, sr] = saved;
        const dyT = Array.isArray(dy) ? dy[0] : dy;
        const dx = allocate(sx.shape);
        const dg = allocate([c]);
        const db = allocate([c]);
        addon.layerNormBackward(heapBuffer(), offsetOf(dx), offsetOf(dg), offsetOf(db), offsetOf(dyT), offsetOf(sx), offsetOf(sm), offsetOf(sr), offsetOf(sg), rows, c);
        return [dx, dg, db];
      },
    };
  });
  return op(x, gamma, beta);
}

/** GELU(x W^T + b): BertIntermediate, and the MLM head's transform. */
export function denseGeluFused(addon: NativeAddon, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const op = fusedOp((xIn: tf.Tensor, wIn: tf.Tensor, bIn: tf.Tensor, save: Save) => {
    const rows = rowsOf(xIn);
    const [outDim, inDim] = wIn.shape;
    const shape = [...xIn.shape.slice(0, -1), outDim];
    const pre = allocate(shape);
    const out = allocate(shape);
    const heap = heapBuffer();
    addon.linearForward(heap, offsetOf(pre), offsetOf(xIn), offsetOf(wIn), offsetOf(bIn), rows, inDim, outDim);
    addon.geluForward(heap, offsetOf(out), offsetOf(pre), pre.size);
    save([xIn, wIn, pre]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sw, sp] = saved;
        const dyT = Array.isArray(dy) ? dy[0] : dy;
        const dpre = allocate(sp.shape);
        const dx = allocate(sx.shape);
        const dw = allocate(sw.shape);
        const db = allocate([outDim]);
        const h = heapBuffer();
        addon.geluBackward(h, offsetOf(dpre), offsetOf(sp), offsetOf(dyT), sp.size);
        addon.linearBackward(h, offsetOf(dx), offsetOf(dw), offsetOf(db), offsetOf(dpre), offsetOf(sx), offsetOf(sw), rows, inDim, outDim, 0);
        dpre.dispose();
        return [dx, dw, db];
      },
    };
  });
  return op(x, w, b);
}

export interface AttentionBlockOptions {
  numHeads: number;
  eps: number;
  /** Dropout on the attention probabilities, and on the block's output before the residual. */
  attentionDropout: number;
  hiddenDropout: number;
  attentionSeed: DropoutSeed;
  hiddenSeed: DropoutSeed;
}

export interface Linear {
  weight: tf.Tensor;
  bias: tf.Tensor;
}

/**
 * BertAttention: LayerNorm(x + dropout(dense(attention(x)))), x [B, T, C]; `mask` is the additive
 * attention mask, [B, 1, 1, T] (or [B, T]).
 */
export function attentionBlockFused(
  addon: NativeAddon,
  x: tf.Tensor3D,
  mask: tf.Tensor,
  query: Linear,
  key: Linear,
  value: Linear,
  output: Linear,
  norm: { weight: tf.Tensor; bias: tf.Tensor },
  o: AttentionBlockOptions,
): tf.Tensor3D {
  const [b, t, c] = x.shape;
  const nh = o.numHeads;
  const d = c / nh;
  const rows = b * t;
  const scale = 1 / Math.sqrt(d);
  const op = fusedOp(
    (
      xIn: tf.Tensor, wq: tf.Tensor, bq: tf.Tensor, wk: tf.Tensor, bk: tf.Tensor, wv: tf.Tensor, bv: tf.Tensor,
      wo: tf.Tensor, bo: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: Save,
    ) => {
      const [q, k, v, ctx, attended, residual, out] = [0, 1, 2, 3, 4, 5, 6].map(() => allocate([b, t, c]));
      const probs = allocate([b, nh, t, t]);
      const mean = allocate([rows]);
      const rstd = allocate([rows]);
      const heap = heapBuffer();
      const X = offsetOf(xIn);
      addon.linearForward(heap, offsetOf(q), X, offsetOf(wq), offsetOf(bq), rows, c, c);
      addon.linearForward(heap, offsetOf(k), X, offsetOf(wk), offsetOf(bk), rows, c, c);
      addon.linearForward(heap, offsetOf(v), X, offsetOf(wv), offsetOf(bv), rows, c, c);
      addon.attentionForward(heap, offsetOf(ctx), offsetOf(probs), offsetOf(q), offsetOf(k), offsetOf(v), offsetOf(mask), b, t, nh, d, scale, o.attentionDropout, o.attentionSeed);
      addon.linearForward(heap, offsetOf(attended), offsetOf(ctx), offsetOf(wo), offsetOf(bo), rows, c, c);
      addon.dropoutAddForward(heap, offsetOf(residual), offsetOf(attended), X, rows * c, o.hiddenDropout, o.hiddenSeed);
      addon.layerNormForward(heap, offsetOf(out), offsetOf(mean), offsetOf(rstd), offsetOf(residual), offsetOf(gamma), offsetOf(beta), rows, c, o.eps);
      save([xIn, wq, wk, wv, wo, gamma, q, k, v, probs, ctx, residual, mean, rstd]);
      return {
        value: out,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [sx, swq, swk, swv, swo, sg, sq, sk, sv, sp, sctx, sres, sm, sr] = saved;
          const dyT = Array.isArray(dy) ? dy[0] : dy;
          const [dres, dattended, dctx, dq, dk, dv] = [0, 1, 2, 3, 4, 5].map(() => allocate([b, t, c]));
          const dW = [0, 1, 2, 3].map(() => allocate([c, c]));
          const dB = [0, 1, 2, 3].map(() => allocate([c]));
          const dgamma = allocate([c]);
          const dbeta = allocate([c]);
          const h = heapBuffer();
          addon.layerNormBackward(h, offsetOf(dres), offsetOf(dgamma), offsetOf(dbeta), offsetOf(dyT), offsetOf(sres), offsetOf(sm), offsetOf(sr), offsetOf(sg), rows, c);
          addon.dropoutBackward(h, offsetOf(dattended), offsetOf(dres), rows * c, o.hiddenDropout, o.hiddenSeed);
          addon.linearBackward(h, offsetOf(dctx), offsetOf(dW[3]), offsetOf(dB[3]), offsetOf(dattended), offsetOf(sctx), offsetOf(swo), rows, c, c, 0);
          addon.attentionBackward(h, offsetOf(dq), offsetOf(dk), offsetOf(dv), offsetOf(dctx), offsetOf(sq), offsetOf(sk), offsetOf(sv), offsetOf(sp), b, t, nh, d, scale, o.attentionDropout, o.attentionSeed);
          // dx = the residual's gradient plus what flows back through the three projections.
          const X = offsetOf(sx);
          addon.linearBackward(h, offsetOf(dres), offsetOf(dW[0]), offsetOf(dB[0]), offsetOf(dq), X, offsetOf(swq), rows, c, c, 1);
          addon.linearBackward(h, offsetOf(dres), offsetOf(dW[1]), offsetOf(dB[1]), offsetOf(dk), X, offsetOf(swk), rows, c, c, 1);
          addon.linearBackward(h, offsetOf(dres), offsetOf(dW[2]), offsetOf(dB[2]), offsetOf(dv), X, offsetOf(swv), rows, c, c, 1);
          for (const tmp of [dattended, dctx, dq, dk, dv]) tmp.dispose();
          return [dres, dW[0], dB[0], dW[1], dB[1], dW[2], dB[2], dW[3], dB[3], dgamma, dbeta];
        },
      };
    },
  );
  return op(x, query.weight, query.bias, key.weight, key.bias, value.weight, value.bias, output.weight, output.bias, norm.weight, norm.bias) as tf.Tensor3D;
}

export interface FeedForwardBlockOptions {
  eps: number;
  hiddenDropout: number;
  hiddenSeed: DropoutSeed;
}

/** BertIntermediate + BertOutput: LayerNorm(h + dropout(dense(GELU(dense(h))))). */
export function feedForwardBlockFused(
  addon: NativeAddon,
  x: tf.Tensor3D,
  intermediate: Linear,
  output: Linear,
  norm: { weight: tf.Tensor; bias: tf.Tensor },
  o: FeedForwardBlockOptions,
): tf.Tensor3D {
  const [b, t, c] = x.shape;
  const f = intermediate.weight.shape[0];
  const rows = b * t;
  const op = fusedOp(
    (xIn: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: Save) => {
      const pre = allocate([b, t, f]);
      const act = allocate([b, t, f]);
      const ffn = allocate([b, t, c]);
      const residual = allocate([b, t, c]);
      const out = allocate([b, t, c]);
      const mean = allocate([rows]);
      const rstd = allocate([rows]);
      const heap = heapBuffer();
      const X = offsetOf(xIn);
      addon.linearForward(heap, offsetOf(pre), X, offsetOf(w1), offsetOf(b1), rows, c, f);
      addon.geluForward(heap, offsetOf(act), offsetOf(pre), rows * f);
      addon.linearForward(heap, offsetOf(ffn), offsetOf(act), offsetOf(w2), offsetOf(b2), rows, f, c);
      addon.dropoutAddForward(heap, offsetOf(residual), offsetOf(ffn), X, rows * c, o.hiddenDropout, o.hiddenSeed);
      addon.layerNormForward(heap, offsetOf(out), offsetOf(mean), offsetOf(rstd), offsetOf(residual), offsetOf(gamma), offsetOf(beta), rows, c, o.eps);
      // GELU's output is recomputed in the backward pass rather than kept: it is the largest activation.
      act.dispose();
      save([xIn, w1, w2, gamma, pre, residual, mean, rstd]);
      return {
        value: out,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [sx, sw1, sw2, sg, spre, sres, sm, sr] = saved;
          const dyT = Array.isArray(dy) ? dy[0] : dy;
          const dres = allocate([b, t, c]);
          const dffn = allocate([b, t, c]);
          const act2 = allocate([b, t, f]);
          const dact = allocate([b, t, f]);
          const dw1 = allocate([f, c]);
          const db1 = allocate([f]);
          const dw2 = allocate([c, f]);
          const db2 = allocate([c]);
          const dgamma = allocate([c]);
          const dbeta = allocate([c]);
          const h = heapBuffer();
          addon.layerNormBackward(h, offsetOf(dres), offsetOf(dgamma), offsetOf(dbeta), offsetOf(dyT), offsetOf(sres), offsetOf(sm), offsetOf(sr), offsetOf(sg), rows, c);
          addon.dropoutBackward(h, offsetOf(dffn), offsetOf(dres), rows * c, o.hiddenDropout, o.hiddenSeed);
          addon.geluForward(h, offsetOf(act2), offsetOf(spre), rows * f);
          addon.linearBackward(h, offsetOf(dact), offsetOf(dw2), offsetOf(db2), offsetOf(dffn), offsetOf(act2), offsetOf(sw2), rows, f, c, 0);
          // GELU's gradient in place: dact becomes d(pre).
          addon.geluBackward(h, offsetOf(dact), offsetOf(spre), offsetOf(dact), rows * f);
          addon.linearBackward(h, offsetOf(dres), offsetOf(dw1), offsetOf(db1), offsetOf(dact), offsetOf(sx), offsetOf(sw1), rows, c, f, 1);
          for (const tmp of [dffn, act2, dact]) tmp.dispose();
          return [dres, dw1, db1, dw2, db2, dgamma, dbeta];
        },
      };
    },
  );
  return op(x, intermediate.weight, intermediate.bias, output.weight, output.bias, norm.weight, norm.bias) as tf.Tensor3D;
}

export interface EmbeddingsOptions {
  eps: number;
  hiddenDropout: number;
  hiddenSeed: DropoutSeed;
}

/**
 * BertEmbeddings: dropout(LayerNorm(word[ids] + position[0..T) + type[typeIds])). `typeTable` is absent
 * for DistilBERT. Ids must be int32 [B, T].
 */
export function embeddingsFused(
  addon: NativeAddon,
  inputIds: tf.Tensor2D,
  tokenTypeIds: tf.Tensor2D | undefined,
  wordTable: tf.Tensor,
  positionTable: tf.Tensor,
  typeTable: tf.Tensor | undefined,
  norm: { weight: tf.Tensor; bias: tf.Tensor },
  o: EmbeddingsOptions,
): tf.Tensor3D {
  const [b, t] = inputIds.shape;
  const [vocab, c] = wordTable.shape;
  const positions = positionTable.shape[0];
  const types = typeTable ? typeTable.shape[0] : 0;
  const rows = b * t;
  const ids = inputIds.dtype === 'int32' ? inputIds : inputIds.toInt();
  const typeIds = typeTable && tokenTypeIds ? (tokenTypeIds.dtype === 'int32' ? tokenTypeIds : tokenTypeIds.toInt()) : undefined;
  const forward = (word: tf.Tensor, pos: tf.Tensor, type: tf.Tensor | undefined, gamma: tf.Tensor, beta: tf.Tensor, save: Save) => {
    const summed = allocate([b, t, c]);
    const normed = allocate([b, t, c]);
    const out = allocate([b, t, c]);
    const mean = allocate([rows]);
    const rstd = allocate([rows]);
    const heap = heapBuffer();
    addon.embeddingsForward(heap, offsetOf(summed), offsetOf(ids), optionalOffset(typeIds), offsetOf(word), offsetOf(pos), optionalOffset(type), b, t, c, vocab, positions, types);
    addon.layerNormForward(heap, offsetOf(normed), offsetOf(mean), offsetOf(rstd), offsetOf(summed), offsetOf(gamma), offsetOf(beta), rows, c, o.eps);
    addon.dropoutAddForward(heap, offsetOf(out), offsetOf(normed), NONE, rows * c, o.hiddenDropout, o.hiddenSeed);
    save([ids, ...(typeIds ? [typeIds] : []), summed, gamma, mean, rstd]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const sIds = saved[0];
        const sType = typeIds ? saved[1] : undefined;
        const [ssum, sg, sm, sr] = saved.slice(typeIds ? 2 : 1);
        const dyT = Array.isArray(dy) ? dy[0] : dy;
        const dnormed = allocate([b, t, c]);
        const dsum = allocate([b, t, c]);
        const dword = allocate([vocab, c]);
        const dpos = allocate([positions, c]);
        const dtype = type ? allocate([types, c]) : undefined;
        const dgamma = allocate([c]);
        const dbeta = allocate([c]);
        const h = heapBuffer();
        addon.dropoutBackward(h, offsetOf(dnormed), offsetOf(dyT), rows * c, o.hiddenDropout, o.hiddenSeed);
        addon.layerNormBackward(h, offsetOf(dsum), offsetOf(dgamma), offsetOf(dbeta), offsetOf(dnormed), offsetOf(ssum), offsetOf(sm), offsetOf(sr), offsetOf(sg), rows, c);
        addon.embeddingsBackward(h, offsetOf(dword), offsetOf(dpos), optionalOffset(dtype), offsetOf(dsum), offsetOf(sIds), optionalOffset(sType), b, t, c, vocab, positions, types);
        dnormed.dispose();
        dsum.dispose();
        return [dword, dpos, ...(dtype ? [dtype] : []), dgamma, dbeta];
      },
    };
  };
  if (typeTable) {
    const op = fusedOp((word: tf.Tensor, pos: tf.Tensor, type: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: Save) =>
      forward(word, pos, type, gamma, beta, save),
    );
    return op(wordTable, positionTable, typeTable, norm.weight, norm.bias) as tf.Tensor3D;
  }
  const op = fusedOp((word: tf.Tensor, pos: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: Save) =>
    forward(word, pos, undefined, gamma, beta, save),
  );
  return op(wordTable, positionTable, norm.weight, norm.bias) as tf.Tensor3D;
}
