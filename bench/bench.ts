/**
 * `npm run bench`: training throughput of the reference small BERT on every available backend, in one
 * command so the numbers compare on a noisy machine, plus a bert-base-shaped forward pass and training
 * step with gradient accumulation. Not a test: it prints figures; the last line is one JSON object
 * with the fastest backend's tokens/s.
 *
 *   npm run bench                      # all backends, default step counts
 *   npm run bench -- --steps 5 --skip-base --backends wasm
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { initEngine, type BackendName } from '../src/backend/engine';
import { bertConfig } from '../src/model/config';
import { initParams } from '../src/model/init';
import { encode } from '../src/model/encoder';
import { classifierLogits } from '../src/model/heads';
import { DropoutSeeds } from '../src/model/layers';
import { crossEntropy, disposeTrainable, makeTrainable, trainStep } from '../src/train/trainer';
import { createRng } from '../src/random';
import { isWasmOutOfMemory, WASM_MEMORY_HINT } from '../src/backend/memory';

interface Shape {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
}

const REFERENCE: Shape = { vocab: 8000, hidden: 256, layers: 4, heads: 4, ffn: 1024 };
const BERT_BASE: Shape = { vocab: 30522, hidden: 768, layers: 12, heads: 12, ffn: 3072 };

interface ChildResult {
  backend: string;
  model: string;
  ok: boolean;
  error?: string;
  batch?: number;
  seqLen?: number;
  microBatches?: number;
  steps?: number;
  tokens_per_second?: number;
  forward_seconds?: number;
  step_seconds?: number;
  peak_rss_mb?: number;
  tensor_mb?: number;
  wasm_heap_mb?: number;
  num_tensors_flat?: boolean;
}

function peakTracker(): { sample(): void; peakMb(): number } {
  let peak = process.memoryUsage().rss;
  return {
    sample() {
      peak = Math.max(peak, process.memoryUsage().rss);
    },
    peakMb: () => Math.round(peak / 2 ** 20),
  };
}

function wasmHeapMb(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  const heap = backend.wasm?.HEAPU8;
  return heap ? Math.round(heap.length / 2 ** 20) : undefined;
}

async function child(backend: BackendName, which: 'reference' | 'base', steps: number, batch: number, seqLen: number, micro: number): Promise<ChildResult> {
  const info = await initEngine({ backend });
  const shape = which === 'reference' ? REFERENCE : BERT_BASE;
  const config = bertConfig({
    vocabSize: shape.vocab,
    hiddenSize: shape.hidden,
    numLayers: shape.layers,
    numHeads: shape.heads,
    intermediateSize: shape.ffn,
    maxPositions: 512,
  });
  const memory = peakTracker();
  const params = initParams(config, 'classifier', 2, 0);
  const rng = createRng(1);
  const microSize = batch / micro;
  const ids = Array.from({ length: micro }, () => Int32Array.from({ length: microSize * seqLen }, () => 5 + rng.int(shape.vocab - 5)));
  const labels = Array.from({ length: micro }, () => Int32Array.from({ length: microSize }, () => rng.int(2)));
  const result: ChildResult = { backend: info.backend, model: which, ok: true, batch, seqLen, microBatches: micro };
  try {
    const forwardStart = performance.now();
    tf.tidy(() => {
      const inputIds = tf.tensor2d(ids[0], [microSize, seqLen], 'int32');
      const { lastHiddenState } = encode(config, params, { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D });
      lastHiddenState.dataSync();
    });
    result.forward_seconds = (performance.now() - forwardStart) / 1000;
    memory.sample();
    const trainable = makeTrainable(params, { weightDecay: 0.01, learningRate: 1e-4 });
    for (const t of params.values()) t.dispose();
    const lossOf = (i: number) => {
      const inputIds = tf.tensor2d(ids[i], [microSize, seqLen], 'int32');
      const dropout = new DropoutSeeds(i);
      const { lastHiddenState } = encode(config, trainable.variables, { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D }, { training: true, dropout });
      const { logits } = classifierLogits(config, trainable.variables, lastHiddenState, dropout, true);
      return crossEntropy(logits, tf.tensor1d(labels[i], 'int32'));
    };
    const weights = new Array(micro).fill(1 / micro);
    // One warm-up step: first calls compile kernels and grow the wasm heap.
    trainStep(trainable, micro, weights, lossOf, { learningRate: 1e-4, maxGradNorm: 1 });
    memory.sample();
    const tensorsBefore = tf.memory().numTensors;
    const start = performance.now();
    for (let s = 0; s < steps; s++) {
      trainStep(trainable, micro, weights, lossOf, { learningRate: 1e-4, maxGradNorm: 1 });
      memory.sample();
    }
    const seconds = (performance.now() - start) / 1000;
    result.steps = steps;
    result.step_seconds = seconds / steps;
    result.tokens_per_second = Math.round((steps * batch * seqLen) / seconds);
    result.num_tensors_flat = tf.memory().numTensors === tensorsBefore;
    result.tensor_mb = Math.round(tf.memory().numBytes / 2 ** 20);
    result.wasm_heap_mb = wasmHeapMb();
    disposeTrainable(trainable);
  } catch (error) {
    result.ok = false;
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    result.error = isWasmOutOfMemory(error) ? `${WASM_MEMORY_HINT} (${message})` : message;
  }
  result.peak_rss_mb = memory.peakMb();
  return result;
}

function runChild(args: string[]): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const out = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = out.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (line) return JSON.parse(line) as ChildResult;
  const reason = out.signal ? `killed by ${out.signal}` : `exit ${out.status}`;
  const tail = (out.stderr || '').trim().split('\n').slice(-3).join(' | ');
  return { backend: args[1], model: args[3], ok: false, error: `${reason}: ${tail}` };
}

function describe(r: ChildResult): string {
  if (!r.ok) return `${r.backend.padEnd(10)} ${r.model.padEnd(9)} FAILED: ${r.error}`;
  return (
    `${r.backend.padEnd(10)} ${r.model.padEnd(9)} batch ${r.batch}x${r.seqLen} (${r.microBatches} micro) ` +
    `${String(r.tokens_per_second).padStart(6)} tokens/s  step ${r.step_seconds?.toFixed(2)} s  forward ${r.forward_seconds?.toFixed(2)} s  ` +
    `peak RSS ${r.peak_rss_mb} MB  tensors ${r.tensor_mb} MB${r.wasm_heap_mb ? `  wasm heap ${r.wasm_heap_mb} MB` : ''}  leak-free ${r.num_tensors_flat}`
  );
}

const program = new Command('bench')
  .option('--child', 'internal: run one measurement and print JSON')
  .option('--backend <name>', 'internal: backend for --child')
  .option('--model <which>', 'internal: reference | base', 'reference')
  .option('--backends <list>', 'backends to compare', 'wasm,cpu')
  .option('--steps <n>', 'timed steps on wasm/tensorflow (after one warm-up step)', '8')
  .option('--cpu-steps <n>', 'timed steps on the slow pure-JS cpu backend', '1')
  .option('--skip-base', 'skip the bert-base-shaped run')
  .option('--batch <n>', 'internal')
  .option('--seq <n>', 'internal')
  .option('--micro <n>', 'internal')
  .parse(process.argv);
const opts = program.opts();

if (opts.child) {
  const r = await child(opts.backend as BackendName, opts.model, Number(opts.steps), Number(opts.batch), Number(opts.seq), Number(opts.micro));
  console.log(JSON.stringify(r));
} else {
  const results: ChildResult[] = [];
  for (const backend of String(opts.backends).split(',')) {
    const steps = backend === 'cpu' ? opts.cpuSteps : opts.steps;
    process.stderr.write(`measuring ${backend} (reference model, ${steps} steps)...\n`);
    const r = runChild(['--backend', backend, '--model', 'reference', '--steps', String(steps), '--batch', '32', '--seq', '64', '--micro', '1']);
    console.log(describe(r));
    results.push(r);
  }
  const ok = results.filter((r) => r.ok && r.tokens_per_second);
  const fastest = ok.sort((a, b) => (b.tokens_per_second ?? 0) - (a.tokens_per_second ?? 0))[0];
  let base: ChildResult | undefined;
  if (!opts.skipBase && fastest) {
    // Micro-batches of one 128-token sequence; 4 of them (or 2 sequences each) exhaust the wasm heap with bert-base shapes
    // (params + AdamW moments alone are 1.3 GB).
    process.stderr.write(`measuring ${fastest.backend} with bert-base-uncased shapes (batch 2x128 in 2 micro-batches)...\n`);
    base = runChild(['--backend', fastest.backend, '--model', 'base', '--steps', '1', '--batch', '2', '--seq', '128', '--micro', '2']);
    console.log(describe(base));
  }
  console.log(
    JSON.stringify({
      backend: fastest?.backend ?? 'none',
      tokens_per_second: fastest?.tokens_per_second ?? 0,
      model: 'BERT vocab 8000, hidden 256, 4 layers, 4 heads, FFN 1024; batch 32x64; forward+backward+AdamW',
      results,
      bert_base: base,
    }),
  );
}
