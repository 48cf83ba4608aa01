import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config';
import { parameterLayout, type ParamMap } from '../model/names';

/**
 * How far fine-tuning moved each part of the network: ||after - before|| / ||before|| over all of a
 * layer's parameters together. The paper's healing story predicts that corrupted layers move a lot
 * and the clean ones barely; this is the number that shows it.
 */
export interface LayerDrift {
  /** "embeddings", "layer 0" ... "layer N-1", "pooler", "head". */
  layer: string;
  /** Encoder layer index, undefined for embeddings, pooler and head. */
  index?: number;
  relativeChange: number;
  /** ||after - before|| and ||before||, so groups can be re-aggregated. */
  changeNorm: number;
  beforeNorm: number;
  tensors: number;
}

function groupOf(component: string, layer: number | undefined): string {
  if (layer !== undefined) return `layer ${layer}`;
  return component === 'embeddings' ? 'embeddings' : component === 'pooler' ? 'pooler' : 'head';
}

/**
 * Per-layer drift between two parameter sets of the same model. Parameters present in only one map
 * (a head added for fine-tuning) are skipped; a shape mismatch is an error naming the tensor.
 */
export function weightDrift(before: ParamMap, after: ParamMap, config: ModelConfig, numLabels = 2): LayerDrift[] {
  const sums = new Map<string, { index?: number; change2: number; before2: number; tensors: number }>();
  const layout = [...parameterLayout(config, 'classifier', numLabels), ...parameterLayout(config, 'mlm', numLabels)];
  const seen = new Set<string>();
  for (const info of layout) {
    if (seen.has(info.name)) continue;
    seen.add(info.name);
    const a = before.get(info.name);
    const b = after.get(info.name);
    if (!a || !b) continue;
    if (a.shape.join(',') !== b.shape.join(',')) {
      throw new RangeError(`weightDrift: ${info.name} has shape [${a.shape}] before and [${b.shape}] after`);
    }
    const [change2, before2] = tf.tidy(() => {
      const d = tf.sub(b, a);
      return [tf.sum(tf.mul(d, d)), tf.sum(tf.mul(a, a))];
    });
    const key = groupOf(info.component, info.layer);
    const g = sums.get(key) ?? { index: info.layer, change2: 0, before2: 0, tensors: 0 };
    g.change2 += change2.dataSync()[0];
    g.before2 += before2.dataSync()[0];
    g.tensors++;
    sums.set(key, g);
    tf.dispose([change2, before2]);
  }
  const order = (name: string, index?: number) => (name === 'embeddings' ? -1 : index ?? (name === 'pooler' ? 1e6 : 1e6 + 1));
  return [...sums.entries()]
    .map(([layer, g]) => ({
      layer,
      index: g.index,
      changeNorm: Math.sqrt(g.change2),
      beforeNorm: Math.sqrt(g.before2),
      relativeChange: g.before2 > 0 ? Math.sqrt(g.change2 / g.before2) : g.change2 > 0 ? Infinity : 0,
      tensors: g.tensors,
    }))
    .sort((x, y) => order(x.layer, x.index) - order(y.layer, y.index));
}
