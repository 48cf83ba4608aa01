import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors';
import { ensureDataset } from './availability';
import { readInfo } from './local';
import { DATASET_NAMES, datasetEntry, isRegistered } from './registry';

/**
 * Labelled text classification data in the one local layout (src/data/local.ts):
 *   <dataDir>/<name>/<split>.jsonl   one {"text": string, "label": int} per line, labels 0-based
 *   <dataDir>/<name>/info.json       label names and per-split row / label counts
 * Registry datasets are read from there (fetched on first use) or from their embedded folder; users' own
 * data is any JSONL file of the same shape.
 */

export interface LabeledData {
  texts: string[];
  labels: number[];
  labelNames: string[];
  /** Where the examples came from (a file path, plus any subsampling), for logs and results. */
  source: string;
}

export interface LoadJsonlOptions {
  /** Labels must be in [0, numLabels); inferred as max label + 1 when neither this nor labelNames is given. */
  numLabels?: number;
  labelNames?: string[];
}

/** HF's default names for unnamed classes (config.json id2label). */
export function defaultLabelNames(numLabels: number): string[] {
  return Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/**
 * Reads one JSONL file of {"text", "label"}. Every problem names the file and the 1-based line number.
 * Blank lines are skipped.
 */
export async function loadJsonl(file: string, options: LoadJsonlOptions = {}): Promise<LabeledData> {
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file}: ${(error as Error).message}`);
  }
  const names = options.labelNames;
  const limit = names?.length ?? options.numLabels;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new UserError(`label count must be a positive integer, got ${limit}`);
  }
  const texts: string[] = [];
  const labels: number[] = [];
  const lines = content.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const where = `${file}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new UserError(`${where}: malformed JSON (${(error as Error).message})`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new UserError(`${where}: expected an object {"text": ..., "label": ...}, got ${describeValue(row)}`);
    }
    const { text, label } = row as { text?: unknown; label?: unknown };
    if (typeof text !== 'string') {
      throw new UserError(`${where}: "text" is ${text === undefined ? 'missing' : `not a string (${describeValue(text)})`}`);
    }
    if (text.trim() === '') throw new UserError(`${where}: "text" is empty`);
    if (label === undefined || label === null) throw new UserError(`${where}: "label" is missing`);
    if (typeof label !== 'number' || !Number.isInteger(label)) {
      throw new UserError(`${where}: "label" must be an integer class id, got ${describeValue(label)}`);
    }
    if (label < 0 || (limit !== undefined && label >= limit)) {
      const range = limit === undefined ? 'labels must be >= 0' : `expected 0..${limit - 1}${names ? ` (${names.join(', ')})` : ''}`;
      throw new UserError(`${where}: label ${label} is out of range; ${range}`);
    }
    texts.push(text);
    labels.push(label);
  }
  if (texts.length === 0) throw new UserError(`${file} holds no examples`);
  let labelNames = names;
  if (!labelNames) {
    let max = 0;
    for (const l of labels) if (l > max) max = l;
    labelNames = defaultLabelNames(options.numLabels ?? Math.max(2, max + 1));
  }
  return { texts, labels, labelNames, source: file };
}

export interface LoadSplitOptions {
  dataDir?: string;
}

/**
 * One split of a registry dataset, checked against its info.json: from its embedded folder, or from the
 * data directory, fetched from the hub first when it is not there.
 */
export async function loadSplit(name: string, split: string, options: LoadSplitOptions = {}): Promise<LabeledData> {
  const entry = datasetEntry(name);
  const folder = await ensureDataset(entry.name, { dataDir: options.dataDir, splits: [split] });
  const infoFile = join(folder, 'info.json');
  const info = await readInfo(infoFile);
  const splitInfo = info.splits[split];
  if (!splitInfo) {
    throw new UserError(`${infoFile}: dataset ${name} has no split ${JSON.stringify(split)}; splits: ${Object.keys(info.splits).join(', ')}`);
  }
  // An embedded sample comes back from git, a fetched dataset from the hub.
  const repair =
    entry.source.kind === 'embedded'
      ? `restore it with \`git checkout -- ${folder}\``
      : `fetch it again with \`healing download-dataset ${name}${options.dataDir ? ` --data-dir ${options.dataDir}` : ''}\``;
  const file = join(folder, `${split}.jsonl`);
  if (!existsSync(file)) throw new UserError(`${file} is missing although ${infoFile} lists it; ${repair}`);
  const data = await loadJsonl(file, { labelNames: info.label_names });
  if (data.texts.length !== splitInfo.rows) {
    throw new UserError(`${file} has ${data.texts.length} examples but ${infoFile} says ${splitInfo.rows} (an interrupted copy?); ${repair}`);
  }
  return data;
}

export interface LoadDatasetOptions {
  /** A registry name; or else train + eval JSONL paths. */
  name?: string;
  train?: string;
  eval?: string;
  /** Registry splits (default: the registry's train and evaluation splits). */
  trainSplit?: string;
  evalSplit?: string;
  /** For user files: the label count (inferred from both files when absent). */
  numLabels?: number;
  labelNames?: string[];
  dataDir?: string;
}

export interface TrainEvalData {
  name: string;
  train: LabeledData;
  eval: LabeledData;
  labelNames: string[];
}

/** A train and an evaluation split: from the registry by name, or the user's own JSONL files. */
export async function loadDataset(options: LoadDatasetOptions): Promise<TrainEvalData> {
  const hasFiles = options.train !== undefined || options.eval !== undefined;
  if (options.name !== undefined) {
    if (hasFiles) throw new UserError('give either a dataset name or --train/--eval files, not both');
    if (!isRegistered(options.name) && existsSync(options.name)) {
      throw new UserError(`${options.name} is a path; pass your own data as --train FILE --eval FILE (known datasets: ${DATASET_NAMES.join(', ')})`);
    }
    const entry = datasetEntry(options.name);
    const trainSplit = options.trainSplit ?? entry.trainSplit;
    const evalSplit = options.evalSplit ?? entry.evalSplit;
    // Once for both splits, so that a fetch on first use fetches (and logs) once.
    await ensureDataset(entry.name, { dataDir: options.dataDir, splits: [trainSplit, evalSplit] });
    const [train, evalData] = await Promise.all([loadSplit(entry.name, trainSplit, options), loadSplit(entry.name, evalSplit, options)]);
    return { name: entry.name, train, eval: evalData, labelNames: train.labelNames };
  }
  if (options.train === undefined || options.eval === undefined) {
    throw new UserError('need a dataset name, or both --train FILE and --eval FILE');
  }
  const given = { numLabels: options.numLabels, labelNames: options.labelNames };
  const [train, evalData] = await Promise.all([loadJsonl(options.train, given), loadJsonl(options.eval, given)]);
  let labelNames = options.labelNames;
  if (!labelNames) {
    // One label space for both files: an evaluation file may lack the rarest class, or the train file may.
    const count = options.numLabels ?? Math.max(train.labelNames.length, evalData.labelNames.length);
    if (options.numLabels === undefined) {
      // Inferred as max label + 1: one stray label 7 in binary data would silently make 8 classes.
      const seen = new Set([...train.labels, ...evalData.labels]);
      const absent = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
      if (absent.length > 0) {
        const top = count - 1;
        const where = train.labels.includes(top) ? options.train : options.eval;
        throw new UserError(
          `${where}: label ${top} makes ${count} classes, but label${absent.length === 1 ? '' : 's'} ${absent.join(', ')} never occur in ` +
            `${options.train} or ${options.eval}; fix the stray label, or pass --num-labels ${count} if the classes are really ${count}`,
        );
      }
    }
    labelNames = defaultLabelNames(count);
  }
  return {
    name: options.train,
    train: { ...train, labelNames },
    eval: { ...evalData, labelNames },
    labelNames,
  };
}
