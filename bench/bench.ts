/**
 * `npm run bench`: training throughput of the reference small BERT on our engines, side by side with the
 * same model and step in PyTorch (bench/torch_reference.py), at 1 thread and at all cores; then the wasm
 * heap a training step needs per padded token, and a bert-base-shaped forward pass and training step with
 * gradient accumulation. Not a test: it prints figures; the last line is one JSON object with the
 * fastest engine's tokens/s and its ratio to PyTorch.
 *
 * The machine is shared and noisy, so absolute numbers drift between runs; only ratios measured
 * side by side mean anything. Hence each thread count alternates ours, torch, ours, torch and takes
 * medians, and every measurement is a fresh process (one engine per process; no warm caches carried).
 *
 *   npm run bench                                  # native,wasm at 1 and all cores, vs PyTorch
 *   npm run bench -- --steps 2 --repeats 1 --skip-base --skip-memory
 *   npm run bench -- --backends wasm,cpu --threads 1
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { bertConfig } from '../src/model/config';
import { initParams } from '../src/model/init';
import { encode } from '../src/model/encoder';
import { classifierLogits } from '../src/model/heads';
import { DropoutSeeds } from '../src/model/layers';
import { crossEntropy, disposeTrainable, makeTrainable, trainStep, type Trainable } from '../src/train/trainer';
import { createRng } from '../src/random';
import { isWasmOutOfMemory, WASM_MEMORY_HINT } from '../src/backend/memory';
import { pythonInterpreter } from '../src/io/python';

interface Shape {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
}

const REFERENCE: Shape = { vocab: 8000, hidden: 256, layers: 4, heads: 4, ffn: 1024 };
const BERT_BASE: Shape = { vocab: 30522, hidden: 768, layers: 12, heads: 12, ffn: 3072 };
/** The model `healing` fine-tunes by default; its per-token heap cost sets WASM_MAX_BATCH_TOKENS (src/backend/memory.ts). */
const DEFAULT_MODEL: Shape = { vocab: 8000, hidden: 256, layers: 6, heads: 4, ffn: 1024 };
const MODELS = { reference: REFERENCE, base: BERT_BASE, default128: DEFAULT_MODEL } as const;
type ModelName = keyof typeof MODELS;

/**
 * What each engine name means to the child, as environment: the wasm backend with and without the
 * native (OpenBLAS) addon, the pure-JS cpu backend, the TensorFlow C binding. Env vars rather than
 * initEngine's option, so the child takes the same path a user's `HEALING_BACKEND=... healing` does.
 */
const ENGINES = {
  native: { HEALING_BACKEND: 'wasm', HEALING_NATIVE: '1' },
  wasm: { HEALING_BACKEND: 'wasm', HEALING_NATIVE: '0' },
  cpu: { HEALING_BACKEND: 'cpu', HEALING_NATIVE: '0' },
  tensorflow: { HEALING_BACKEND: 'tensorflow', HEALING_NATIVE: '0' },
} as const;
type EngineName = keyof typeof ENGINES;

const TORCH_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch_reference.py');

/** Mirrors NativeStatus in src/backend/engine.ts, checked at run time: that field is optional and still settling. */
type NativeReport = { enabled: true; blas: string; threads: number; version: string } | { enabled: false; reason: string };

interface ChildResult {
  engine: string;
  model: string;
  ok: boolean;
  error?: string;
  /** Thread count the parent asked for (HEALING_THREADS and the BLAS/OpenMP variables). */
  threads?: number;
  repeat?: number;
  /** What initEngine chose and reported. */
  backend?: string;
  engine_threads?: number;
  native?: NativeReport;
  engine_reason?: string;
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
  // --model default128 only: the memory a training step needs, measured over its first step.
  heap_before_mb?: number;
  heap_after_mb?: number;
  heap_mb_per_token?: number;
  tensor_peak_mb?: number;
  tensor_mb_per_token?: number;
  rss_growth_mb?: number;
  rss_mb_per_token?: number;
}

interface TorchResult {
  engine: 'pytorch';
  ok: boolean;
  error?: string;
  torch?: string;
  threads?: number;
  repeat?: number;
  model?: string;
  tokens_per_second?: number;
  step_seconds?: number;
  forward_seconds?: number;
  peak_rss_mb?: number;
}

const MB = 2 ** 20;

/** True peak RSS of this process so far (the kernel keeps the high-water mark; sampling would miss spikes). */
function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.length;
}

const toMb = (bytes: number | undefined) => (bytes === undefined ? undefined : Math.round(bytes / MB));

function nativeReport(value: unknown): NativeReport | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (v.enabled === true) return { enabled: true, blas: String(v.blas), threads: Number(v.threads), version: String(v.version) };
  if (v.enabled === false) return { enabled: false, reason: String(v.reason ?? 'no reason given') };
  return undefined;
}

function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return isWasmOutOfMemory(error) ? `${WASM_MEMORY_HINT} (${message})` : message;
}

interface Workload {
  trainable: Trainable;
  micro: number;
  weights: number[];
  lossOf: (i: number) => tf.Scalar;
  forward: () => void;
}

function workload(shape: Shape, batch: number, seqLen: number, micro: number): Workload {
  const config = bertConfig({
    vocabSize: shape.vocab,
    hiddenSize: shape.hidden,
    numLayers: shape.layers,
    numHeads: shape.heads,
    intermediateSize: shape.ffn,
    maxPositions: 512,
  });
  const params = initParams(config, 'classifier', 2, 0);
  const rng = createRng(1);
  const microSize = batch / micro;
  const ids = Array.from({ length: micro }, () => Int32Array.from({ length: microSize * seqLen }, () => 5 + rng.int(shape.vocab - 5)));
  const labels = Array.from({ length: micro }, () => Int32Array.from({ length: microSize }, () => rng.int(2)));
  const trainable = makeTrainable(params, { weightDecay: 0.01, learningRate: 1e-4 });
  for (const t of params.values()) t.dispose();
  const inputs = (i: number) => {
    const inputIds = tf.tensor2d(ids[i], [microSize, seqLen], 'int32');
    return { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D };
  };
  return {
    trainable,
    micro,
    weights: new Array(micro).fill(1 / micro),
    lossOf: (i) => {
      const dropout = new DropoutSeeds(i);
      const { lastHiddenState } = encode(config, trainable.variables, inputs(i), { training: true, dropout });
      const { logits } = classifierLogits(config, trainable.variables, lastHiddenState, dropout, true);
      return crossEntropy(logits, tf.tensor1d(labels[i], 'int32'));
    },
    forward: () =>
      tf.tidy(() => {
        encode(config, trainable.variables, inputs(0)).lastHiddenState.dataSync();
      }),
  };
}

const step = (w: Workload) => trainStep(w.trainable, w.micro, w.weights, w.lossOf, { learningRate: 1e-4, maxGradNorm: 1 });

async function child(engine: string, model: ModelName, steps: number, batch: number, seqLen: number, micro: number, threads: number): Promise<ChildResult> {
  const result: ChildResult = { engine, model, ok: true, threads, batch, seqLen, microBatches: micro };
  try {
    // No option: the backend comes from HEALING_BACKEND / HEALING_NATIVE, as the parent set them.
    const info = await initEngine();
    result.backend = info.backend;
    result.engine_threads = info.threads;
    result.native = nativeReport((info as unknown as Record<string, unknown>).native);
    result.engine_reason = info.reason;
    const w = workload(MODELS[model], batch, seqLen, micro);
    if (model === 'default128') {
      // No warm-up and no forward first: the wasm heap never shrinks, so its growth over the first
      // training step is that step's peak need, which is what the per-token batch cap is about.
      tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false); // else tf.profile reads back every kernel output
      const heapBefore = wasmHeapBytes();
      const rssBefore = peakRssBytes();
      const bytesBefore = tf.memory().numBytes;
      const start = performance.now();
      const profile = await tf.profile(() => {
        step(w);
      });
      result.step_seconds = (performance.now() - start) / 1000;
      const tokens = batch * seqLen;
      const heapAfter = wasmHeapBytes();
      result.heap_before_mb = toMb(heapBefore);
      result.heap_after_mb = toMb(heapAfter);
      if (heapBefore !== undefined && heapAfter !== undefined) result.heap_mb_per_token = round3((heapAfter - heapBefore) / MB / tokens);
      result.tensor_peak_mb = toMb(profile.peakBytes);
      result.tensor_mb_per_token = round3((profile.peakBytes - bytesBefore) / MB / tokens);
      result.rss_growth_mb = toMb(peakRssBytes() - rssBefore);
      result.rss_mb_per_token = round3((peakRssBytes() - rssBefore) / MB / tokens);
    } else {
      const forwardStart = performance.now();
      w.forward();
      result.forward_seconds = (performance.now() - forwardStart) / 1000;
      // One warm-up step: first calls compile kernels, grow the wasm heap and create the AdamW moments.
      step(w);
      const tensorsBefore = tf.memory().numTensors;
      const start = performance.now();
      for (let s = 0; s < steps; s++) step(w);
      const seconds = (performance.now() - start) / 1000;
      result.steps = steps;
      result.step_seconds = seconds / steps;
      result.tokens_per_second = Math.round((steps * batch * seqLen) / seconds);
      result.num_tensors_flat = tf.memory().numTensors === tensorsBefore;
    }
    result.tensor_mb = toMb(tf.memory().numBytes);
    result.wasm_heap_mb = toMb(wasmHeapBytes());
    disposeTrainable(w.trainable);
  } catch (error) {
    result.ok = false;
    result.error = errorText(error);
  }
  result.peak_rss_mb = toMb(peakRssBytes());
  return result;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Same variables for our children and for PyTorch, so both get the same N: HEALING_THREADS for our
 * kernels, the BLAS/OpenMP ones for whichever BLAS each links. PASSIVE stops idle OpenMP workers from
 * spinning on cores the other process (or the next measurement) needs.
 */
function threadEnv(threads: number): Record<string, string> {
  const n = String(threads);
  return { OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n, HEALING_THREADS: n };
}

function runChild(engine: EngineName, threads: number, args: { model: ModelName; steps: number; batch: number; seq: number; micro: number }): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const argv = ['--engine', engine, '--model', args.model, '--steps', String(args.steps), '--batch', String(args.batch), '--seq', String(args.seq), '--micro', String(args.micro), '--child-threads', String(threads)];
  const out = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', ...argv], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    env: { ...process.env, ...threadEnv(threads), ...ENGINES[engine] },
  });
  const line = (out.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (line) return JSON.parse(line) as ChildResult;
  const reason = out.error ? out.error.message : out.signal ? `killed by ${out.signal}` : `exit ${out.status}`;
  const tail = (out.stderr || '').trim().split('\n').slice(-3).join(' | ');
  return { engine, model: args.model, threads, ok: false, error: `${reason}: ${tail}` };
}

function torchAvailable(python: string): { ok: true; version: string } | { ok: false; reason: string } {
  const out = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (out.status === 0) return { ok: true, version: out.stdout.trim() };
  const why = out.error ? out.error.message : (out.stderr || '').trim().split('\n').pop();
  return { ok: false, reason: `${python} cannot import torch (${why})` };
}

function runTorch(python: string, threads: number, shape: 'reference' | 'base', steps: number): TorchResult {
  const out = spawnSync(python, [TORCH_SCRIPT, '--threads', String(threads), '--steps', String(steps), '--shape', shape], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    env: { ...process.env, ...threadEnv(threads) },
  });
  const line = (out.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (line) return { ...(JSON.parse(line) as Omit<TorchResult, 'ok'>), ok: true };
  const reason = out.error ? out.error.message : out.signal ? `killed by ${out.signal}` : `exit ${out.status}`;
  const tail = (out.stderr || '').trim().split('\n').slice(-3).join(' | ');
  return { engine: 'pytorch', ok: false, threads, model: shape, error: `${reason}: ${tail}` };
}

/** Median, rounded: tokens/s beyond the unit is noise on this machine. */
function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return Math.round(s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2);
}

const ratioOf = (ours: number | undefined, torch: number | undefined) => (ours && torch ? Math.round((ours / torch) * 1000) / 1000 : null);

/** Whether a result row really ran the native kernels (a `native` row whose addon failed to load is plain wasm). */
const nativeOn = (r: ChildResult) => r.native?.enabled === true;

function label(engine: string, r: ChildResult | undefined): string {
  if (engine === 'native' && r && !nativeOn(r)) return 'native(off)';
  return engine;
}

function describe(r: ChildResult): string {
  const name = `${label(r.engine, r).padEnd(11)} ${r.model.padEnd(10)} ${String(r.threads ?? '').padStart(2)} thr`;
  if (!r.ok) return `${name} FAILED: ${r.error}`;
  if (r.model === 'default128') {
    return (
      `${name} batch ${r.batch}x${r.seqLen}  step ${r.step_seconds?.toFixed(2)} s  wasm heap ${r.heap_before_mb ?? '-'} -> ${r.heap_after_mb ?? '-'} MB ` +
      `(${r.heap_mb_per_token ?? '-'} MB/token)  tensors peak ${r.tensor_peak_mb} MB (${r.tensor_mb_per_token} MB/token)  ` +
      `RSS +${r.rss_growth_mb} MB (${r.rss_mb_per_token} MB/token)  peak RSS ${r.peak_rss_mb} MB`
    );
  }
  return (
    `${name} batch ${r.batch}x${r.seqLen} (${r.microBatches} micro) ` +
    `${String(r.tokens_per_second).padStart(6)} tokens/s  step ${r.step_seconds?.toFixed(2)} s  forward ${r.forward_seconds?.toFixed(2)} s  ` +
    `peak RSS ${r.peak_rss_mb} MB  tensors ${r.tensor_mb} MB${r.wasm_heap_mb ? `  wasm heap ${r.wasm_heap_mb} MB` : ''}  leak-free ${r.num_tensors_flat}`
  );
}

function describeTorch(t: TorchResult): string {
  const name = `${'pytorch'.padEnd(11)} ${(t.model ?? '').padEnd(10)} ${String(t.threads ?? '').padStart(2)} thr`;
  if (!t.ok) return `${name} FAILED: ${t.error}`;
  return `${name} torch ${t.torch}  ${String(t.tokens_per_second).padStart(6)} tokens/s  step ${t.step_seconds?.toFixed(2)} s  forward ${t.forward_seconds?.toFixed(2)} s  peak RSS ${t.peak_rss_mb} MB`;
}

function describeEngine(engine: EngineName, r: ChildResult): string {
  const n = r.native;
  const nativeText = n ? (n.enabled ? `native on (${n.blas} ${n.version}, ${n.threads} threads)` : `native off: ${n.reason}`) : 'native: not reported';
  return `engine ${engine}: backend ${r.backend ?? '?'}, ${r.engine_threads ?? '?'} wasm/engine thread(s), ${nativeText}`;
}

function parseList<T extends string>(value: string, allowed: readonly T[], flag: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new Error(`${flag}: unknown '${item}'; use some of: ${allowed.join(', ')}`);
  }
  return [...new Set(items)] as T[];
}

function parseThreads(value: string, cores: number): number[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => (s === 'cores' || s === 'all' ? cores : Number(s)));
  for (const n of list) if (!Number.isInteger(n) || n < 1) throw new Error(`--threads: '${value}' is not a list of positive integers`);
  return [...new Set(list)];
}

const cores = availableParallelism();
const program = new Command('bench')
  .option('--child', 'internal: run one measurement and print JSON')
  .option('--engine <name>', 'internal: engine for --child')
  .option('--model <which>', 'internal: reference | base | default128', 'reference')
  .option('--child-threads <n>', 'internal: thread count the parent set')
  .option('--batch <n>', 'internal')
  .option('--seq <n>', 'internal')
  .option('--micro <n>', 'internal')
  .option('--backends <list>', `engines to compare: ${Object.keys(ENGINES).join(', ')} (cpu is ~30x slower)`, 'native,wasm')
  .option('--threads <list>', 'thread counts to measure at ("cores" = all)', `1,${cores}`)
  .option('--repeats <n>', 'alternating ours/PyTorch runs per thread count (medians are reported)', '2')
  .option('--steps <n>', 'timed steps per run (after one warm-up step)', '8')
  .option('--cpu-steps <n>', 'timed steps on the slow pure-JS cpu backend', '1')
  .option('--python <path>', 'interpreter with torch for the PyTorch baseline ($HEALING_PYTHON when set)', pythonInterpreter())
  .option('--skip-torch', 'no PyTorch baseline (ratios null)')
  .option('--skip-base', 'skip the bert-base-shaped runs')
  .option('--skip-memory', 'skip the per-token memory measurement (default model, batch 16x128)')
  .parse(process.argv);
const opts = program.opts();

if (opts.child) {
  const model = opts.model as ModelName;
  if (!(model in MODELS)) throw new Error(`--model: unknown '${model}'`);
  const r = await child(String(opts.engine), model, Number(opts.steps), Number(opts.batch), Number(opts.seq), Number(opts.micro), Number(opts.childThreads));
  console.log(JSON.stringify(r));
} else {
  let engines: EngineName[] = [];
  let threadCounts: number[] = [];
  try {
    engines = parseList(String(opts.backends), Object.keys(ENGINES) as EngineName[], '--backends');
    threadCounts = parseThreads(String(opts.threads), cores);
  } catch (error) {
    program.error(`bench: ${(error as Error).message}`); // exits: a usage error needs no stack trace
  }
  const repeats = Math.max(1, Number(opts.repeats));
  const python = String(opts.python);
  const stepsOf = (engine: EngineName) => Number(engine === 'cpu' ? opts.cpuSteps : opts.steps);
  const log = (line: string) => process.stderr.write(line + '\n');

  const torch = opts.skipTorch ? ({ ok: false, reason: '--skip-torch' } as const) : torchAvailable(python);
  if (!torch.ok) console.log(`PyTorch baseline skipped: ${torch.reason}; ratios are null`);

  const results: ChildResult[] = [];
  const torchResults: TorchResult[] = [];
  const reported = new Set<EngineName>();
  for (const threads of threadCounts) {
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const engine of engines) {
        log(`measuring ${engine} (reference model, ${stepsOf(engine)} steps, ${threads} thread${threads === 1 ? '' : 's'}, run ${repeat + 1}/${repeats})...`);
        const r = { ...runChild(engine, threads, { model: 'reference', steps: stepsOf(engine), batch: 32, seq: 64, micro: 1 }), repeat };
        if (!reported.has(engine) && r.backend) {
          reported.add(engine);
          console.log(describeEngine(engine, r));
          if (engine === 'native' && !nativeOn(r)) console.log(`  -> the native row is NOT native (plain wasm): ${r.native?.enabled === false ? r.native.reason : 'the engine reported no native status'}`);
          if (engine === 'wasm' && nativeOn(r)) console.log('  -> warning: HEALING_NATIVE=0 was ignored; the wasm row ran native kernels');
        }
        console.log(describe(r));
        results.push(r);
      }
      if (torch.ok) {
        log(`measuring pytorch (reference model, ${opts.steps} steps, ${threads} thread${threads === 1 ? '' : 's'}, run ${repeat + 1}/${repeats})...`);
        const t = { ...runTorch(python, threads, 'reference', Number(opts.steps)), repeat };
        console.log(describeTorch(t));
        torchResults.push(t);
      }
    }
  }

  const rate = (rows: Array<{ ok: boolean; tokens_per_second?: number }>) => median(rows.filter((r) => r.ok && r.tokens_per_second).map((r) => r.tokens_per_second!));
  const byThreads = threadCounts.map((threads) => {
    const torchRate = rate(torchResults.filter((t) => t.threads === threads));
    const rows = engines.map((engine) => {
      const runs = results.filter((r) => r.engine === engine && r.threads === threads);
      const ours = rate(runs);
      return { engine, native: runs.some(nativeOn), tokens_per_second: ours ?? null, ratio: ratioOf(ours, torchRate), runs: runs.length };
    });
    // A `native` row without the addon measures plain wasm again; it is not a candidate for "fastest" unless nothing else ran.
    const candidates = rows.filter((r) => r.tokens_per_second !== null && (r.engine !== 'native' || r.native));
    const ranked = (candidates.length ? candidates : rows.filter((r) => r.tokens_per_second !== null)).sort((a, b) => b.tokens_per_second! - a.tokens_per_second!);
    const best = ranked[0];
    return { threads, engine: best?.engine ?? null, ours: best?.tokens_per_second ?? null, torch: torchRate ?? null, ratio: best?.ratio ?? null, engines: rows };
  });

  console.log('');
  console.log(`reference model, batch 32x64, forward+backward+AdamW; medians of ${repeats} run(s) each, ours and PyTorch alternating`);
  console.log(`${'threads'.padStart(7)}  ${'engine'.padEnd(11)} ${'tokens/s'.padStart(9)}  ${'PyTorch tokens/s'.padStart(16)}  ${'ratio'.padStart(6)}`);
  for (const t of byThreads) {
    for (const row of t.engines) {
      const name = row.engine === 'native' && !row.native ? 'native(off)' : row.engine;
      console.log(
        `${String(t.threads).padStart(7)}  ${name.padEnd(11)} ${String(row.tokens_per_second ?? '-').padStart(9)}  ${String(t.torch ?? '-').padStart(16)}  ${String(row.ratio ?? '-').padStart(6)}`,
      );
    }
  }
  const wasmThreads = results.find((r) => r.backend === 'wasm' && !nativeOn(r))?.engine_threads;
  if (engines.includes('wasm')) console.log(`note: the wasm engine runs ${wasmThreads ?? 1} thread(s) whatever N; only the native kernels and PyTorch use N`);
  console.log('');

  const top = byThreads.find((t) => t.threads === cores) ?? byThreads[byThreads.length - 1];
  const fastest = top?.engine as EngineName | null;
  const fastestThreads = top?.threads ?? cores;

  let memory: ChildResult[] | null = null;
  if (!opts.skipMemory) {
    memory = [];
    for (const engine of engines) {
      log(`measuring ${engine} memory (default model 6x256, one training step of 16x128 tokens, ${fastestThreads} threads)...`);
      const r = runChild(engine, fastestThreads, { model: 'default128', steps: 1, batch: 16, seq: 128, micro: 1 });
      console.log(describe(r));
      memory.push(r);
    }
  }

  let bertBase: { engine: string; threads: number; ours: ChildResult; torch: TorchResult | null; step_ratio: number | null; forward_ratio: number | null } | null = null;
  if (!opts.skipBase && fastest) {
    // Micro-batches of one 128-token sequence; 4 of them (or 2 sequences each) exhaust the wasm heap with bert-base shapes
    // (params + AdamW moments alone are 1.3 GB).
    log(`measuring ${fastest} with bert-base-uncased shapes (batch 2x128 in 2 micro-batches, ${fastestThreads} threads)...`);
    const ours = runChild(fastest, fastestThreads, { model: 'base', steps: 1, batch: 2, seq: 128, micro: 2 });
    console.log(describe(ours));
    let t: TorchResult | null = null;
    if (torch.ok) {
      log(`measuring pytorch with bert-base-uncased shapes (same layout, ${fastestThreads} threads)...`);
      t = runTorch(python, fastestThreads, 'base', 1);
      console.log(describeTorch(t));
    }
    // Ratios as speed (ours / torch), like tokens/s: time ratios inverted.
    const speed = (ourSeconds?: number, torchSeconds?: number) => (ourSeconds && torchSeconds ? Math.round((torchSeconds / ourSeconds) * 1000) / 1000 : null);
    bertBase = {
      engine: fastest,
      threads: fastestThreads,
      ours,
      torch: t,
      step_ratio: speed(ours.step_seconds, t?.step_seconds),
      forward_ratio: speed(ours.forward_seconds, t?.forward_seconds),
    };
    console.log(`bert-base speed vs PyTorch: training step ${bertBase.step_ratio ?? '-'}x, forward ${bertBase.forward_ratio ?? '-'}x`);
  }

  console.log(
    JSON.stringify({
      backend: fastest ?? 'none',
      native: results.some((r) => r.engine === fastest && r.threads === fastestThreads && nativeOn(r)),
      threads: fastestThreads,
      tokens_per_second: top?.ours ?? 0,
      torch_tokens_per_second: top?.torch ?? null,
      torch_ratio: top?.ratio ?? null,
      torch: torch.ok ? { version: torch.version, python } : { skipped: torch.reason },
      model: 'BERT vocab 8000, hidden 256, 4 layers, 4 heads, FFN 1024; batch 32x64; forward+backward+AdamW',
      by_threads: byThreads,
      results,
      torch_results: torchResults,
      bert_base: bertBase,
      memory,
    }),
  );
}
