/**
 * Builds data/datasets-sample/sst2-sample from a normalised SST-2 folder (../shared/data/datasets/sst2,
 * or what `healing download-dataset sst2` writes):
 *
 *   npx tsx scripts/make-sst2-sample.ts ../shared/data/datasets/sst2 data/datasets-sample/sst2-sample
 *
 * train.jsonl: 2,000 training lines chosen by the project's seeded stratified sampler
 * (stratifiedIndices(labels, 2000, seed 0), src/data/sampling.ts: each class keeps its share within one
 * example), copied byte for byte in their original order. validation.jsonl: every validation line, as is.
 * info.json: the counts. README.md (provenance) is written by hand and left alone.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readInfo } from '../src/data/local';
import { stratifiedIndices } from '../src/data/sampling';

export const SAMPLE_TRAIN_SIZE = 2000;
export const SAMPLE_SEED = 0;

function jsonlLines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
}

function labelCounts(lines: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const label = String((JSON.parse(line) as { label: number }).label);
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => Number(a) - Number(b)));
}

/** The sample's files as text: what the script writes and what the test compares with the shipped copy. */
export async function sst2SampleFiles(sourceDir: string): Promise<Record<'train.jsonl' | 'validation.jsonl' | 'info.json', string>> {
  const source = await readInfo(join(sourceDir, 'info.json'));
  const train = jsonlLines(join(sourceDir, 'train.jsonl'));
  const validation = jsonlLines(join(sourceDir, 'validation.jsonl'));
  const labels = train.map((line) => (JSON.parse(line) as { label: number }).label);
  const picked = stratifiedIndices(labels, SAMPLE_TRAIN_SIZE, SAMPLE_SEED).map((i) => train[i]);
  const info = {
    name: 'sst2-sample',
    hub_id: source.hub_id,
    task: source.task,
    label_names: source.label_names,
    splits: {
      train: { rows: picked.length, label_counts: labelCounts(picked), official: false },
      validation: { rows: validation.length, label_counts: labelCounts(validation) },
    },
    source:
      `${SAMPLE_TRAIN_SIZE} of the ${train.length} SST-2 training sentences (stratified, seed ${SAMPLE_SEED}) and all ` +
      `${validation.length} validation sentences of the normalised GLUE SST-2 copy; see README.md`,
    notes: source.notes,
  };
  return {
    'train.jsonl': `${picked.join('\n')}\n`,
    'validation.jsonl': `${validation.join('\n')}\n`,
    'info.json': `${JSON.stringify(info, null, 2)}\n`,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [sourceDir, destDir] = process.argv.slice(2);
  if (!sourceDir || !destDir) {
    process.stderr.write('usage: npx tsx scripts/make-sst2-sample.ts <sst2 folder> <destination folder>\n');
    process.exit(1);
  }
  for (const [name, text] of Object.entries(await sst2SampleFiles(sourceDir))) writeFileSync(join(destDir, name), text);
}
