import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, configToJson, parseConfig, type ModelConfig } from '../model/config';
import { ARCHITECTURES, architecture, parameterLayout, type HeadKind, type ParamInfo, type ParamMap } from '../model/names';
import { initValues } from '../model/init';
import { jsonErrorText, UserError } from '../errors';
import {
  FLOAT_DTYPES,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsTensor,
  type WriteTensor,
} from './safetensors';
import { readPytorch, readPytorchHeader } from './pytorch-bin';

/**
 * Hugging Face checkpoint directories (config.json + model.safetensors + tokenizer files) in and
 * out of a ParamMap keyed by the canonical names of parameterLayout. Real hub checkpoints vary
 * (gamma/beta LayerNorms, missing `bert.` prefix, pretraining heads, no classifier), so loading
 * is a name map plus a report of every liberty taken.
 */

export interface LoadReport {
  /** Weight files read, in order. */
  files: string[];
  /** Distinct dtypes of the parameters taken from the files. */
  dtypes: SafetensorsDtype[];
  /** Keys stored under another name (gamma/beta, missing prefix, decoder bias alias). */
  renamed: Array<{ from: string; to: string }>;
  /** Keys in the files that the requested head does not use. */
  ignored: Array<{ name: string; reason: string }>;
  /** Head parameters that were absent (or replaced) and freshly initialised. */
  initialised: Array<{ name: string; reason: string }>;
}

export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  params: ParamMap;
  head: HeadKind;
  /** Classifier head only. */
  numLabels?: number;
  labels?: string[];
  /** Tokenizer files found in the directory (absolute paths), for saving alongside. */
  tokenizerFiles: string[];
  report: LoadReport;
}

export interface LoadOptions {
  /** Default: 'classifier' if the checkpoint has a classifier, else 'none'. */
  head?: HeadKind;
  /** Classifier size; a different-sized classifier in the file is then replaced by a fresh one. */
  numLabels?: number;
  labels?: string[];
  /** Seed for initialising absent head parameters (default 0). */
  seed?: number;
}

export const TOKENIZER_FILES = ['vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

async function pathKind(path: string): Promise<'file' | 'dir' | 'other' | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return undefined;
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`${path}: cannot read (${(error as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserError(`${path}: ${jsonErrorText(error, text)}`);
  }
}

async function readCheckpointConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, 'config.json');
  if ((await pathKind(path)) !== 'file') {
    throw new UserError(`${path}: not found (a Hugging Face checkpoint directory needs config.json)`);
  }
  const json = await readJson(path);
  try {
    return parseConfig(json, path);
  } catch (error) {
    if (error instanceof ConfigError) throw new UserError(error.message, { cause: error });
    throw error;
  }
}

/** The shards a Hugging Face index file (model.safetensors.index.json, pytorch_model.bin.index.json) lists. */
async function indexedShards(dir: string, indexPath: string): Promise<string[]> {
  const index = (await readJson(indexPath)) as { weight_map?: unknown };
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new UserError(`${indexPath}: weight_map is missing or not an object of file names`);
  }
  const shards = [...new Set(Object.values(map) as string[])];
  for (const shard of shards) {
    if (shard.includes('/') || shard.includes('\\')) throw new UserError(`${indexPath}: shard name ${JSON.stringify(shard)} is not a plain file name`);
  }
  return shards.map((s) => join(dir, s));
}

/**
 * The files holding the weights: safetensors first (one file or the shards an index lists), else PyTorch's
 * pytorch_model.bin, which older hub checkpoints (Google's BERT miniatures among them) have alone. The .bin is
 * read by a restricted unpickler that runs nothing (src/io/pytorch-bin.ts).
 */
async function weightFiles(dir: string): Promise<string[]> {
  for (const [single, index] of [['model.safetensors', 'model.safetensors.index.json'], ['pytorch_model.bin', 'pytorch_model.bin.index.json']]) {
    if ((await pathKind(join(dir, single))) === 'file') return [join(dir, single)];
    if ((await pathKind(join(dir, index))) === 'file') return indexedShards(dir, join(dir, index));
  }
  const others = [];
  for (const name of ['tf_model.h5', 'flax_model.msgpack']) {
    if (await pathKind(join(dir, name))) others.push(name);
  }
  const hint = others.length
    ? ` (found ${others.join(', ')}: only safetensors and pytorch_model.bin are read; convert it, e.g. with transformers' save_pretrained(safe_serialization=True))`
    : '';
  throw new UserError(`${join(dir, 'model.safetensors')}: not found, nor pytorch_model.bin${hint}`);
}

const isPytorchFile = (file: string): boolean => file.endsWith('.bin');

/** Names, dtypes and shapes of a weight file's tensors, without reading their data. */
async function readWeightsHeader(file: string): Promise<{ entries: Array<{ name: string; dtype: SafetensorsDtype; shape: number[] }> }> {
  return isPytorchFile(file) ? readPytorchHeader(file) : readSafetensorsHeader(file);
}

async function readWeights(file: string, names: (name: string) => boolean): Promise<Map<string, SafetensorsTensor>> {
  return (isPytorchFile(file) ? await readPytorch(file, { names }) : await readSafetensors(file, { names })).tensors;
}

interface StoredTensor {
  file: string;
  key: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Every name the architecture knows under any head; shapes don't matter here. */
function knownNames(config: ModelConfig): Set<string> {
  const names = new Set<string>();
  for (const head of ['classifier', 'mlm'] as const) for (const p of parameterLayout(config, head, 1)) names.add(p.name);
  return names;
}

/** Old TF-converted BERTs call LayerNorm parameters gamma/beta; some files drop the model prefix. */
function canonicalKey(key: string, config: ModelConfig, known: Set<string>): string {
  const name = key.replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');
  const prefixed = `${architecture(config).base}.${name}`;
  if (!known.has(name) && known.has(prefixed)) return prefixed;
  return name;
}

/** Only head parameters (and the pooler / pre_classifier that feeds the classifier) may be created. */
function initialisable(info: ParamInfo): boolean {
  return info.component === 'head' || info.component === 'pooler';
}

function resolveLabels(config: ModelConfig, options: LoadOptions): { numLabels: number; labels?: string[]; explicit: boolean } {
  if (options.numLabels !== undefined && (!Number.isInteger(options.numLabels) || options.numLabels < 1)) {
    throw new UserError(`numLabels must be a positive integer (got ${options.numLabels})`);
  }
  if (options.labels && options.numLabels !== undefined && options.labels.length !== options.numLabels) {
    throw new UserError(`numLabels ${options.numLabels} disagrees with ${options.labels.length} labels given (${options.labels.join(', ')})`);
  }
  const explicit = options.numLabels ?? options.labels?.length;
  const numLabels = explicit ?? config.labels?.length ?? 2;
  const labels = options.labels ?? (config.labels?.length === numLabels ? config.labels : undefined);
  return { numLabels, labels, explicit: explicit !== undefined };
}

/**
 * Loads a Hugging Face checkpoint directory. Every name of parameterLayout(config, head,
 * numLabels) is present afterwards with exactly its listed shape; head parameters the files lack
 * are initialised from `seed` (weights ~ N(0, 0.02), biases 0, LayerNorm 1/0) and reported.
 * All validation happens on the headers, before any tensor data is read or allocated.
 */
export async function loadCheckpoint(dir: string, options: LoadOptions = {}): Promise<Checkpoint> {
  const kind = await pathKind(dir);
  if (kind === undefined) throw new UserError(`${dir}: checkpoint directory not found`);
  if (kind !== 'dir') throw new UserError(`${dir}: not a directory (expected a Hugging Face checkpoint directory)`);
  const config = await readCheckpointConfig(dir);
  const configPath = join(dir, 'config.json');
  const files = await weightFiles(dir);
  const headers = [];
  for (const file of files) headers.push({ file, header: await readWeightsHeader(file) });
  // The depth is bounded by the file before any name or layout is built from the config: one declaring
  // 1e9 layers once aborted V8, and one declaring fewer layers than stored silently ran a smaller model.
  const layerIndices = new Set<number>();
  for (const { header } of headers) {
    for (const e of header.entries) {
      const m = /(?:^|\.)layer\.(\d+)\./.exec(e.name);
      if (m && FLOAT_DTYPES.has(e.dtype)) layerIndices.add(Number(m[1]));
    }
  }
  const storedLayers = layerIndices.size ? Math.max(...layerIndices) + 1 : 0;
  if (config.numLayers !== storedLayers) {
    const field = config.modelType === 'bert' ? 'num_hidden_layers' : 'n_layers';
    throw new UserError(`${configPath}: ${field} is ${config.numLayers} but ${files.join(', ')} hold${files.length === 1 ? 's' : ''} ${storedLayers} encoder layer${storedLayers === 1 ? '' : 's'}`);
  }
  const known = knownNames(config);
  const report: LoadReport = { files, dtypes: [], renamed: [], ignored: [], initialised: [] };

  // Map every stored key to its canonical name.
  const stored = new Map<string, StoredTensor>();
  const ignore = (t: StoredTensor, reason: string) => report.ignored.push({ name: t.key, reason });
  for (const { file, header } of headers) {
    for (const e of header.entries) {
      const t: StoredTensor = { file, key: e.name, dtype: e.dtype, shape: e.shape };
      if (!FLOAT_DTYPES.has(e.dtype) || e.name.endsWith('position_ids')) {
        // An integer tensor under a parameter's name is a quantized weight, not a buffer: say so, rather
        // than report the parameter as missing.
        if (!e.name.endsWith('position_ids') && known.has(canonicalKey(e.name, config, known))) {
          throw new UserError(
            `${file}: tensor "${e.name}" is ${e.dtype}: quantized weights are not supported (parameters must be F32, F16 or BF16)`,
          );
        }
        ignore(t, `${e.dtype} buffer, not a parameter`);
        continue;
      }
      const name = canonicalKey(e.name, config, known);
      const previous = stored.get(name);
      if (previous) {
        throw new UserError(`${file}: tensor "${e.name}" and "${previous.key}"${previous.file !== file ? ` (${previous.file})` : ''} are both ${name}`);
      }
      stored.set(name, t);
    }
  }

  const { classifier, mlm } = architecture(config);
  const classifierWeight = `${classifier.out}.weight`;
  const head: HeadKind = options.head ?? (stored.has(classifierWeight) ? 'classifier' : 'none');
  if (!['classifier', 'mlm', 'none'].includes(head)) throw new UserError(`head must be classifier, mlm or none (got ${JSON.stringify(head)})`);
  const { numLabels, labels, explicit } = head === 'classifier' ? resolveLabels(config, options) : { numLabels: undefined, labels: undefined, explicit: false };
  const layout = parameterLayout(config, head, numLabels);
  const byName = new Map(layout.map((p) => [p.name, p]));
  const wordEmbeddings = layout[0];

  // A classifier of another size is replaced when the caller asked for a size (new task), an error otherwise.
  const storedClassifier = stored.get(classifierWeight);
  let replaceClassifier: string | undefined;
  if (head === 'classifier' && storedClassifier && !sameShape(storedClassifier.shape, byName.get(classifierWeight)!.shape)) {
    if (!explicit) {
      throw new UserError(
        `${storedClassifier.file}: tensor "${storedClassifier.key}" has shape ${shapeText(storedClassifier.shape)} but ${configPath} ` +
          `implies ${shapeText(byName.get(classifierWeight)!.shape)} (${numLabels} labels); pass --num-labels (numLabels in code) to replace the classifier with a new one of that size`,
      );
    }
    replaceClassifier = `the file's classifier has ${storedClassifier.shape[0]} labels, ${numLabels} requested`;
  }

  const used = new Map<string, StoredTensor>();
  for (const [name, t] of stored) {
    const info = byName.get(name);
    if (name === mlm.tiedDecoder) {
      if (!sameShape(t.shape, wordEmbeddings.shape)) {
        throw new UserError(`${t.file}: tensor "${t.key}" has shape ${shapeText(t.shape)} but it is tied to ${wordEmbeddings.name} ${shapeText(wordEmbeddings.shape)}`);
      }
      ignore(t, `tied to ${wordEmbeddings.name}`);
    } else if (name === mlm.biasAlias) {
      // The same Parameter as the decoder bias; files may hold either name.
      if (head !== 'mlm') ignore(t, `not used by head '${head}'`);
      else if (stored.has(mlm.bias)) ignore(t, `alias of ${mlm.bias}, which is stored too`);
      else if (!sameShape(t.shape, byName.get(mlm.bias)!.shape)) {
        throw new UserError(`${t.file}: tensor "${t.key}" has shape ${shapeText(t.shape)} but ${configPath} implies ${shapeText(byName.get(mlm.bias)!.shape)}`);
      } else used.set(mlm.bias, t);
    } else if (!info) {
      ignore(t, known.has(name) ? `not used by head '${head}'` : `not a ${config.modelType} parameter`);
    } else if (replaceClassifier && name.startsWith(`${classifier.out}.`)) {
      ignore(t, replaceClassifier);
    } else if (!sameShape(t.shape, info.shape)) {
      throw new UserError(
        `${t.file}: tensor "${t.key}" has shape ${shapeText(t.shape)} but ${configPath} implies ${shapeText(info.shape)}` +
          (t.key !== name ? ` for ${name}` : ''),
      );
    } else {
      used.set(name, t);
    }
  }

  const missing = layout.filter((p) => !used.has(p.name) && !initialisable(p));
  if (missing.length) {
    const shown = missing.slice(0, 4).map((p) => p.name).join(', ');
    const more = missing.length > 4 ? ` and ${missing.length - 4} more` : '';
    throw new UserError(`${files.join(', ')}: missing tensor ${shown}${more} (required by ${configPath}: ${config.modelType}, ${config.numLayers} layers)`);
  }

  for (const [name, t] of used) if (t.key !== name) report.renamed.push({ from: t.key, to: name });
  const seed = options.seed ?? 0;
  const created = new Map<string, Float32Array>();
  for (const p of layout) {
    if (used.has(p.name)) continue;
    created.set(p.name, initValues(p, seed));
    const reason = replaceClassifier && p.name.startsWith(`${classifier.out}.`) ? replaceClassifier : 'absent from the checkpoint';
    report.initialised.push({ name: p.name, reason: `${reason}; initialised from seed ${seed}` });
  }

  // Only now read tensor data: just the tensors we use.
  const data = new Map<string, Float32Array>();
  const dtypes = new Set<SafetensorsDtype>();
  for (const file of files) {
    const keys = new Set([...used.values()].filter((t) => t.file === file).map((t) => t.key));
    if (!keys.size) continue;
    const tensors = await readWeights(file, (n) => keys.has(n));
    for (const [name, t] of used) {
      if (t.file !== file) continue;
      const read = tensors.get(t.key)!;
      // NaN or infinite weights only show up later as null logits: refused here, naming the tensor.
      let bad = 0;
      for (const x of read.data) if (!Number.isFinite(x)) bad++;
      if (bad) throw new UserError(`${file}: tensor "${t.key}" holds ${bad} NaN or infinite value${bad === 1 ? '' : 's'}: the checkpoint is damaged`);
      data.set(name, read.data);
      dtypes.add(read.dtype);
    }
  }
  report.dtypes = [...dtypes].sort();

  const params: ParamMap = new Map();
  for (const p of layout) params.set(p.name, tf.tensor(data.get(p.name) ?? created.get(p.name)!, p.shape, 'float32'));

  const tokenizerFiles: string[] = [];
  for (const name of TOKENIZER_FILES) {
    const path = resolve(dir, name);
    if ((await pathKind(path)) === 'file') tokenizerFiles.push(path);
  }
  return { dir, config, params, head, numLabels, labels, tokenizerFiles, report };
}

/** One line per kind of liberty the loader took, for the CLI and notebooks. */
export function describeLoadReport(report: LoadReport): string[] {
  const lines = [`read ${report.files.join(', ')} (${report.dtypes.join(', ') || 'no tensors'})`];
  if (report.renamed.length) {
    const sample = report.renamed.slice(0, 2).map((r) => `${r.from} -> ${r.to}`).join(', ');
    lines.push(`renamed ${report.renamed.length} key(s) (${sample}${report.renamed.length > 2 ? ', ...' : ''})`);
  }
  if (report.ignored.length) lines.push(`ignored ${report.ignored.length} key(s): ${report.ignored.map((i) => `${i.name} (${i.reason})`).join(', ')}`);
  for (const i of report.initialised) lines.push(`initialised ${i.name}: ${i.reason}`);
  return lines;
}

export interface CheckpointLike {
  config: ModelConfig;
  params: ParamMap;
  /** Default: inferred from the parameter names. */
  head?: HeadKind;
  labels?: string[];
  /** A directory to copy the standard tokenizer files from, or explicit file paths. */
  tokenizerFiles?: string | string[];
}

export interface SaveOptions {
  dtype?: 'F32' | 'F16';
}

function inferHead(params: ParamMap): HeadKind {
  if (Object.values(ARCHITECTURES).some((a) => params.has(`${a.classifier.out}.weight`))) return 'classifier';
  if (Object.values(ARCHITECTURES).some((a) => params.has(a.mlm.bias))) return 'mlm';
  return 'none';
}

async function tokenizerSources(spec: string | string[] | undefined): Promise<string[]> {
  if (spec === undefined) return [];
  if (typeof spec === 'string') {
    const found = [];
    for (const name of TOKENIZER_FILES) if ((await pathKind(join(spec, name))) === 'file') found.push(join(spec, name));
    return found;
  }
  return spec;
}

/**
 * Writes a Hugging Face checkpoint directory: config.json (labels and architectures set),
 * model.safetensors (HF names; for MLM also the tied decoder weight, as transformers expects it)
 * and tokenizer files. Everything is written into a temporary sibling directory that then replaces
 * `dir`, so a failure never leaves a half-written checkpoint or loses the previous one.
 */
export async function saveCheckpoint(dir: string, checkpoint: CheckpointLike, options: SaveOptions = {}): Promise<void> {
  const { config, params } = checkpoint;
  const head = checkpoint.head ?? inferHead(params);
  const target = resolve(dir);
  const weightsPath = join(target, 'model.safetensors');
  const numLabels = head === 'classifier' ? params.get(`${architecture(config).classifier.out}.weight`)?.shape[0] : undefined;
  const layout = parameterLayout(config, head, numLabels);
  const expected = new Set(layout.map((p) => p.name));
  for (const p of layout) {
    const t = params.get(p.name);
    if (!t) throw new UserError(`${weightsPath}: cannot save, parameter ${p.name} is missing`);
    if (t.dtype !== 'float32') throw new UserError(`${weightsPath}: cannot save, parameter ${p.name} is ${t.dtype}, not float32`);
    if (!sameShape(t.shape, p.shape)) {
      throw new UserError(`${weightsPath}: cannot save, parameter ${p.name} has shape ${shapeText(t.shape)} but the config implies ${shapeText(p.shape)}`);
    }
  }
  for (const name of params.keys()) {
    if (!expected.has(name)) throw new UserError(`${weightsPath}: cannot save, parameter ${name} is not part of a ${config.modelType} model with head '${head}'`);
  }
  let labels = checkpoint.labels;
  if (head === 'classifier') {
    const chosen = labels ?? (config.labels && config.labels.length === numLabels ? config.labels : Array.from({ length: numLabels! }, (_, i) => `LABEL_${i}`));
    if (chosen.length !== numLabels) {
      throw new UserError(`${join(target, 'config.json')}: ${chosen.length} labels (${chosen.join(', ')}) for a classifier with ${numLabels} outputs`);
    }
    labels = chosen;
  }
  const existing = await pathKind(target);
  if (existing && existing !== 'dir') throw new UserError(`${target}: exists and is not a directory`);

  const tensors = new Map<string, WriteTensor>();
  for (const p of layout) tensors.set(p.name, { shape: p.shape, data: (await params.get(p.name)!.data()) as Float32Array });
  // HF files store the tied decoder weight too, and transformers expects it there.
  if (head === 'mlm') tensors.set(architecture(config).mlm.tiedDecoder, tensors.get(layout[0].name)!);
  const json = { ...configToJson(config, labels), architectures: [architecture(config).classes[head]] };
  const sources = await tokenizerSources(checkpoint.tokenizerFiles);

  const parent = dirname(target);
  try {
    await mkdir(parent, { recursive: true });
  } catch (error) {
    throw cannotWrite(target, parent, error);
  }
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temp = join(parent, `.${basename(target)}.tmp-${tag}`);
  try {
    await mkdir(temp);
    await writeFile(join(temp, 'config.json'), `${JSON.stringify(json, null, 2)}\n`);
    await writeSafetensors(join(temp, 'model.safetensors'), tensors, { dtype: options.dtype ?? 'F32' });
    for (const source of sources) {
      try {
        await copyFile(source, join(temp, basename(source)));
      } catch (error) {
        throw new UserError(`${source}: cannot copy tokenizer file (${(error as Error).message})`);
      }
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error instanceof UserError ? error : cannotWrite(target, parent, error);
  }

  if (!existing) {
    try {
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      throw cannotWrite(target, parent, error);
    }
    return;
  }
  const old = join(parent, `.${basename(target)}.old-${tag}`);
  try {
    await rename(target, old);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw cannotWrite(target, parent, error);
  }
  try {
    await rename(temp, target);
  } catch (error) {
    await rename(old, target);
    await rm(temp, { recursive: true, force: true });
    throw new UserError(`${target}: cannot replace (${(error as Error).message})`);
  }
  await rm(old, { recursive: true, force: true });
}

/**
 * The checkpoint is written beside its target and renamed into place, so a raw fs error names a
 * temporary file the user never asked for: say the target and what the system refused instead.
 */
function cannotWrite(target: string, parent: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? `permission denied in ${parent}`
      : code === 'ENOSPC'
        ? `no space left on the device of ${parent}`
        : code === 'EROFS'
          ? `${parent} is on a read-only file system`
          : code === 'ENOTDIR' || code === 'EEXIST'
            ? `a part of ${parent} is a file, not a directory`
            : ((error as Error).message ?? String(error));
  return new UserError(`${target}: cannot save the checkpoint (${why}); nothing there was changed`);
}

/**
 * A tokenizer whose ids reach past the model's vocabulary would fail mid-run inside the embedding lookup
 * ("GatherV2: the index value 1419 is not in [0, 119]"): checked when the two are paired.
 */
export function checkTokenizerFits(tokenizer: { vocabSize: number }, config: ModelConfig, dir: string): void {
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new UserError(
      `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${config.vocabSize}: ids from ${config.vocabSize} on have no embedding (a tokenizer of another model?)`,
    );
  }
}
