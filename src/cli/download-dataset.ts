import type { Command } from 'commander';
import { describeSplit } from '../data/availability';
import { dataDir, dataDirDefaultText } from '../data/local';
import { downloadDataset } from '../data/parquet';
import { HUB_DATASET_NAMES } from '../data/registry';

/** `healing download-dataset <name>`: a registry dataset from the hub into <dataDir>/<name>/. */
export function register(program: Command): void {
  program
    .command('download-dataset')
    .description(
      `download one of the paper's datasets from the Hugging Face hub and write <data-dir>/<name>/<split>.jsonl + info.json ` +
        `(${HUB_DATASET_NAMES.join(', ')}); commands that need a dataset do the same on first use`,
    )
    .argument('<name>', `dataset name: ${HUB_DATASET_NAMES.join(', ')}`)
    .option('--data-dir <dir>', `where datasets live (default: ${dataDirDefaultText()})`)
    .option('--revision <rev>', 'branch, tag or commit of the hub dataset repository', 'main')
    .option('--splits <list>', 'comma-separated splits (default: every labelled split)')
    .action(async (name: string, options: { dataDir?: string; revision: string; splits?: string }) => {
      const splits = options.splits?.split(',').map((s) => s.trim()).filter(Boolean);
      const summary = await downloadDataset(name, { dataDir: dataDir(options.dataDir), revision: options.revision, splits });
      for (const s of summary.splits) process.stderr.write(`${describeSplit(name, s)}\n`);
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    });
}
