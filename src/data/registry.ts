import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors';

/**
 * The paper's six classification datasets: where they live on the Hugging Face hub, which columns hold
 * the text and the label, the label names (in the hub's id order), and which splits the experiments
 * train and evaluate on. Beside them, samples shipped in the repository (data/datasets-sample/), so that
 * the main job runs on a machine with neither the data nor the network.
 *
 * Hub file paths are those of each repository's main branch as of 2024-2025 (SST-2's are verified against
 * the hub's own files in ../shared/data/hub; the others are from the repositories' file listings and may
 * move — a 404 names the URL so the entry can be fixed here).
 */

/** Fetched from the hub and converted to the local layout (healing download-dataset, or on first use). */
export interface HubSource {
  kind: 'hub';
  /** Format of the hub files: parquet (hyparquet) or CSV with a header row. */
  format: 'parquet' | 'csv';
  /** Labelled splits and their files, paths inside the hub repository. Unlabelled splits are not listed. */
  files: Record<string, string[]>;
  /** Column(s) holding the text; several are joined with one space. */
  textFields: string[];
  labelField: string;
}

/** Already in the local layout inside the repository: never fetched, never looked for in the data directory. */
export interface EmbeddedSource {
  kind: 'embedded';
  /** Absolute path of its folder (<dir>/<split>.jsonl + info.json + README.md). */
  dir: string;
  /** The registry dataset it was drawn from. */
  sampleOf: string;
}

export interface DatasetEntry {
  name: string;
  /** The hub repository the data comes from (for an embedded sample, the one its source was published as). */
  hubId: string;
  task: string;
  source: HubSource | EmbeddedSource;
  labelNames: string[];
  trainSplit: string;
  evalSplit: string;
  notes?: string;
}

/** Where the repository keeps its embedded samples. */
export const SAMPLES_DIR = fileURLToPath(new URL('../../data/datasets-sample/', import.meta.url));

const hubEntries: DatasetEntry[] = [
  {
    name: 'sst2',
    hubId: 'stanfordnlp/sst2',
    task: 'binary sentiment of movie-review phrases',
    source: {
      kind: 'hub',
      format: 'parquet',
      files: {
        train: ['data/train-00000-of-00001.parquet'],
        validation: ['data/validation-00000-of-00001.parquet'],
      },
      textFields: ['sentence'],
      labelField: 'label',
    },
    labelNames: ['negative', 'positive'],
    trainSplit: 'train',
    evalSplit: 'validation',
    notes: 'The test split is unlabelled (label -1) and is not downloaded.',
  },
  {
    name: 'imdb',
    hubId: 'stanfordnlp/imdb',
    task: 'binary sentiment of full movie reviews',
    source: {
      kind: 'hub',
      format: 'parquet',
      files: {
        train: ['plain_text/train-00000-of-00001.parquet'],
        test: ['plain_text/test-00000-of-00001.parquet'],
      },
      textFields: ['text'],
      labelField: 'label',
    },
    labelNames: ['neg', 'pos'],
    trainSplit: 'train',
    evalSplit: 'test',
    notes: 'The unsupervised split is unlabelled and is not downloaded.',
  },
  {
    name: 'ag_news',
    hubId: 'fancyzhx/ag_news',
    task: 'four-way news topic',
    source: {
      kind: 'hub',
      format: 'parquet',
      files: {
        train: ['data/train-00000-of-00001.parquet'],
        test: ['data/test-00000-of-00001.parquet'],
      },
      textFields: ['text'],
      labelField: 'label',
    },
    labelNames: ['World', 'Sports', 'Business', 'Sci/Tech'],
    trainSplit: 'train',
    evalSplit: 'test',
  },
  {
    name: 'emotion',
    hubId: 'dair-ai/emotion',
    task: 'six-way emotion of English tweets',
    source: {
      kind: 'hub',
      format: 'parquet',
      files: {
        train: ['split/train-00000-of-00001.parquet'],
        validation: ['split/validation-00000-of-00001.parquet'],
        test: ['split/test-00000-of-00001.parquet'],
      },
      textFields: ['text'],
      labelField: 'label',
    },
    labelNames: ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise'],
    trainSplit: 'train',
    evalSplit: 'validation',
  },
  {
    name: 'dbpedia_14',
    hubId: 'fancyzhx/dbpedia_14',
    task: '14-way Wikipedia article category',
    source: {
      kind: 'hub',
      format: 'parquet',
      files: {
        train: ['dbpedia_14/train-00000-of-00001.parquet'],
        test: ['dbpedia_14/test-00000-of-00001.parquet'],
      },
      // Content only, like ../shared/data/datasets/dbpedia_14: the title often names the category outright.
      textFields: ['content'],
      labelField: 'label',
    },
    labelNames: [
      'Company',
      'EducationalInstitution',
      'Artist',
      'Athlete',
      'OfficeHolder',
      'MeanOfTransportation',
      'Building',
      'NaturalPlace',
      'Village',
      'Animal',
      'Plant',
      'Album',
      'Film',
      'WrittenWork',
    ],
    trainSplit: 'train',
    evalSplit: 'test',
    notes: "text = the hub's 'content' field (the title is not prepended).",
  },
  {
    name: 'twitter_financial_news_topic',
    hubId: 'zeroshot/twitter-financial-news-topic',
    task: '20-way topic of finance tweets',
    source: {
      kind: 'hub',
      format: 'csv',
      files: {
        train: ['topic_train.csv'],
        validation: ['topic_valid.csv'],
      },
      textFields: ['text'],
      labelField: 'label',
    },
    labelNames: [
      'Analyst Update',
      'Fed | Central Banks',
      'Company | Product News',
      'Treasuries | Corporate Debt',
      'Dividend',
      'Earnings',
      'Energy | Oil',
      'Financials',
      'Currencies',
      'General News | Opinion',
      'Gold | Metals | Materials',
      'IPO',
      'Legal | Regulation',
      'M&A | Investments',
      'Macro',
      'Markets',
      'Politics',
      'Personnel Change',
      'Stock Commentary',
      'Stock Movement',
    ],
    trainSplit: 'train',
    evalSplit: 'validation',
  },
];

/** A sample shipped in the repository: the labels, splits and hub id of the dataset it was drawn from. */
function embeddedSample(name: string, sampleOf: string, task: string, notes: string): DatasetEntry {
  const full = hubEntries.find((e) => e.name === sampleOf);
  if (!full) throw new Error(`registry: ${name} samples ${sampleOf}, which is not registered`);
  return { ...full, name, task, notes, source: { kind: 'embedded', dir: join(SAMPLES_DIR, name), sampleOf } };
}

const entries: DatasetEntry[] = [
  ...hubEntries,
  // Its own name keeps its runs' hashes apart from the full dataset's. The selection command is in its README.md.
  embeddedSample(
    'sst2-sample',
    'sst2',
    'binary sentiment of movie-review phrases (the embedded sample of SST-2: 2,000 train / 872 validation)',
    "Shipped in data/datasets-sample/sst2-sample: 2,000 of SST-2's training sentences (stratified, seed 0) and all 872 validation sentences.",
  ),
];

export const DATASETS: ReadonlyMap<string, DatasetEntry> = new Map(entries.map((e) => [e.name, e]));

/** Every registered name, samples included. */
export const DATASET_NAMES: readonly string[] = entries.map((e) => e.name);

/** The paper's six: the datasets the hub serves (download-dataset, the pretraining corpus). */
export const HUB_DATASET_NAMES: readonly string[] = entries.filter((e) => e.source.kind === 'hub').map((e) => e.name);

export function isRegistered(name: string): boolean {
  return DATASETS.has(name);
}

/** The registry entry, or an error listing the known names. */
export function datasetEntry(name: string): DatasetEntry {
  const entry = DATASETS.get(name);
  if (!entry) {
    throw new UserError(
      `unknown dataset ${JSON.stringify(name)}; known datasets: ${DATASET_NAMES.join(', ')} ` +
        `(fetch one with \`healing download-dataset <name>\`, or pass your own JSONL files with --train FILE --eval FILE)`,
    );
  }
  return entry;
}

/** The hub files of a dataset the hub serves; an embedded sample has none and is refused by name. */
export function hubSource(entry: DatasetEntry): HubSource {
  if (entry.source.kind === 'hub') return entry.source;
  throw new UserError(
    `dataset ${entry.name} is embedded in the repository (${entry.source.dir}) and is never downloaded; ` +
      `the full dataset it samples is ${entry.source.sampleOf} (\`healing download-dataset ${entry.source.sampleOf}\`)`,
  );
}
