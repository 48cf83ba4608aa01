import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import type { BertTokenizer } from '../tokenizer/tokenizer';
import type { ModelConfig } from './config';
import { encode } from './encoder';
import { mlmLogits } from './heads';
import type { ParamMap } from './names';

export interface MaskPrediction {
  /** Token position of the [MASK] in the encoded input. */
  position: number;
  predictions: Array<{ token: string; id: number; probability: number }>;
}

/** What the masked-LM head predicts at each [MASK]: a direct look at what a model knows. */
export function fillMask(config: ModelConfig, params: ParamMap, tokenizer: BertTokenizer, text: string, top = 5): MaskPrediction[] {
  const encoding = tokenizer.encode(text, undefined, { maxLength: config.maxPositions });
  const positions = encoding.inputIds.flatMap((id, i) => (id === tokenizer.maskId ? [i] : []));
  if (positions.length === 0) throw new UserError(`no [MASK] token in "${text}"`);
  return tf.tidy(() => {
    const inputIds = tf.tensor2d([encoding.inputIds], undefined, 'int32');
    const { lastHiddenState } = encode(config, params, { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D });
    const hidden = tf.gather(lastHiddenState.squeeze([0]), tf.tensor1d(positions, 'int32')) as tf.Tensor2D;
    const probs = tf.softmax(mlmLogits(config, params, hidden));
    // A --top beyond the vocabulary means "all of it", not a topk error.
    const { values, indices } = tf.topk(probs, Math.min(top, config.vocabSize));
    const v = values.arraySync();
    const ix = indices.arraySync();
    return positions.map((position, row) => ({
      position,
      predictions: ix[row].map((id, k) => ({ token: tokenizer.idToToken(id) ?? String(id), id, probability: v[row][k] })),
    }));
  });
}
