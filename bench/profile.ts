/**
 * `npx tsx bench/profile.ts [--steps N]`: where one training step of the reference model (vocab 8000,
 * hidden 256, 4 layers, 4 heads, FFN 1024, batch 32 x 64) spends its time, on the engine this process
 * gets (HEALING_NATIVE=0 for plain wasm): TF.js kernels by name (tf.profile), the native kernels' own
 * wall time, and what is left for JavaScript dispatch. Not a test; prints figures.
 */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { activeNative } from '../src/backend/native/state';
import { bertConfig } from '../src/model/config';
import { encode } from '../src/model/encoder';
import { classifierLogits } from '../src/model/heads';
import { initParams } from '../src/model/init';
import { DropoutSeeds } from '../src/model/layers';
import { createRng } from '../src/random';
import { crossEntropy, disposeTrainable, makeTrainable, trainStep } from '../src/train/trainer';

const opts = new Command('profile')
  .option('--steps <n>', 'profiled steps (after one warm-up)', '3')
  .option('--shape <which>', 'reference (batch 32 x 64) or base (bert-base-uncased shapes, 2 x 128 in 2 micro-batches)', 'reference')
  .parse(process.argv)
  .opts();
const steps = Number(opts.steps);
const base = opts.shape === 'base';
const info = await initEngine();
const config = base
  ? bertConfig({ vocabSize: 30522, hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 512 })
  : bertConfig({ vocabSize: 8000, hiddenSize: 256, numLayers: 4, numHeads: 4, intermediateSize: 1024, maxPositions: 512 });
const params = initParams(config, 'classifier', 2, 0);
const rng = createRng(1);
const [B, T] = base ? [1, 128] : [32, 64];
const micro = base ? 2 : 1;
const ids = Int32Array.from({ length: B * T }, () => 5 + rng.int(config.vocabSize - 5));
const labels = Int32Array.from({ length: B }, () => rng.int(2));
const trainable = makeTrainable(params, { weightDecay: 0.01, learningRate: 1e-4 });
for (const t of params.values()) t.dispose();
const lossOf = (i: number) => {
  const inputIds = tf.tensor2d(ids, [B, T], 'int32');
  const dropout = new DropoutSeeds(i);
  const { lastHiddenState } = encode(config, trainable.variables, { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D }, { training: true, dropout });
  return crossEntropy(classifierLogits(config, trainable.variables, lastHiddenState, dropout, true).logits, tf.tensor1d(labels, 'int32'));
};
const step = () => trainStep(trainable, micro, new Array(micro).fill(1 / micro), lossOf, { learningRate: 1e-4, maxGradNorm: 1 });
step();

const native = activeNative();
const start = performance.now();
for (let s = 0; s < steps; s++) step();
const wall = (performance.now() - start) / 1000 / steps;

native?.profileReset();
const profile = await tf.profile(() => {
  for (let s = 0; s < steps; s++) step();
});
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of profile.kernels) {
  const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  e.ms += Number(k.kernelTimeMs) || 0;
  e.calls += 1;
  byKernel.set(k.name, e);
}
// tf.profile lists each fused op's forward (tf.customGrad) as a kernel named 'forward'; its time is the
// native kernels', counted below, so it is left out of the TF.js sum.
const kernelMs = [...byKernel].filter(([name]) => name !== 'forward').reduce((s, [, e]) => s + e.ms, 0) / steps;
console.log(`engine: ${info.backend}, native kernels ${info.native?.enabled ? `on (${info.native.blas}, ${info.native.threads} threads)` : 'off'}`);
console.log(`step: ${(wall * 1000).toFixed(0)} ms (${Math.round((B * T * micro) / wall)} tokens/s, unprofiled); TF.js kernel calls per step: ${profile.kernels.length / steps}`);
console.log('\nTF.js kernels (ms per step, calls per step, share of the step):');
for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 16)) {
  console.log(`  ${name.padEnd(22)} ${(e.ms / steps).toFixed(1).padStart(7)} ms  x${String(e.calls / steps).padEnd(5)} ${((e.ms / steps / (wall * 1000)) * 100).toFixed(1)} %`);
}
let nativeMs = 0;
if (native) {
  // Fused ops run inside tf.customGrad, not as TF.js kernels: their time is the addon's own count.
  console.log('\nnative kernels inside the fused ops (ms per step, calls per step):');
  const entries = Object.entries(native.profile()).sort((a, b) => b[1].seconds - a[1].seconds);
  for (const [name, e] of entries) {
    nativeMs += (e.seconds * 1000) / steps;
    console.log(`  ${name.padEnd(22)} ${((e.seconds * 1000) / steps).toFixed(1).padStart(7)} ms  x${e.calls / steps}`);
  }
}
const stepMs = wall * 1000;
console.log(
  `\nof the ${stepMs.toFixed(0)} ms step: TF.js kernels ${kernelMs.toFixed(0)} ms (BatchMatMul's sgemm counted here and in native), ` +
    `native kernels ${nativeMs.toFixed(0)} ms, JavaScript dispatch and the rest ~${Math.max(0, stepMs - kernelMs - nativeMs).toFixed(0)} ms`,
);
disposeTrainable(trainable);
