/**
 * GFLOP/s of the wasm BatchMatMul, stock vs fixed, on BERT-like shapes (hidden 256, FFN 1024,
 * batch 32 x 64 tokens, 4 heads of 64 -> attention batch 128). Not a test: run it to reproduce the
 * numbers behind the kernel fix.
 *
 *   npx tsx bench/matmul.ts            (HEALING_BENCH_REPS=5 for more repetitions)
 */
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { withStockKernel } from '../src/backend/kernels';

interface Case {
  name: string;
  batch: number[];
  m: number;
  k: number;
  n: number;
}

const cases: Case[] = [
  { name: 'dense [2048,256]x[256,1024]', batch: [], m: 32 * 64, k: 256, n: 1024 },
  { name: 'attention [128,64,64]x[128,64,64]', batch: [128], m: 64, k: 64, n: 64 },
];

function timeIt(fn: () => tf.Tensor, reps: number): number {
  fn().dispose(); // warm-up: first call binds and packs
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const out = fn();
    out.dataSync();
    out.dispose();
  }
  return (performance.now() - start) / reps / 1000;
}

async function main(): Promise<void> {
  const info = await initEngine({ backend: 'wasm' });
  const reps = Number(process.env.HEALING_BENCH_REPS ?? 3);
  console.log(`backend ${info.backend} (${info.threads} thread), tfjs ${info.tfjsVersion}, ${reps} reps after 1 warm-up`);
  console.log(['shape', 'transposeA', 'transposeB', 'stock GFLOP/s', 'fixed GFLOP/s', 'speed-up'].join('\t'));
  for (const c of cases) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const aShape = [...c.batch, ...(ta ? [c.k, c.m] : [c.m, c.k])];
      const bShape = [...c.batch, ...(tb ? [c.n, c.k] : [c.k, c.n])];
      const a = tf.randomNormal(aShape, 0, 1, 'float32', 1);
      const b = tf.randomNormal(bShape, 0, 1, 'float32', 2);
      const flops = 2 * c.batch.reduce((x, y) => x * y, 1) * c.m * c.k * c.n;
      const run = () => tf.matMul(a, b, ta, tb);
      const stock = withStockKernel(tf.BatchMatMul, 'wasm', () => timeIt(run, reps));
      const fixed = timeIt(run, reps);
      const g = (s: number) => (flops / s / 1e9).toFixed(2);
      console.log([c.name, ta, tb, g(stock), g(fixed), `${(stock / fixed).toFixed(1)}x`].join('\t'));
      a.dispose();
      b.dispose();
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
