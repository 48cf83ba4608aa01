import * as tf from '@tensorflow/tfjs';
import { bertConfig } from './src/model/config';
import { parameterLayout } from './src/model/names';
import { corrupt, parseCorruptionSpec } from './src/corruption';
const config = bertConfig({ vocabSize: 30522, hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072 });
const params = new Map(parameterLayout(config, 'classifier', 2).map((p) => [p.name, tf.zeros(p.shape)]));
for (const mode of ['reinit', 'noise', 'partial']) {
  const t0 = performance.now();
  const r = corrupt(params, config, parseCorruptionSpec({ layers: 'all', mode }), 1);
  console.log(mode, r.report.tensors.length, ((performance.now() - t0) / 1000).toFixed(2), 's');
  for (const t of r.params.values()) t.dispose();
}
