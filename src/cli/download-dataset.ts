import type { Command } from 'commander';
import { dataDir } from '../data/dataset';
import { downloadDataset } from '../data/parquet';
import { DATASET_NAMES } from '../data/registry';

/** `healing download-dataset <name>`: a registry dataset from the hub into <dataDir>/<name>/. */
export function register(program: Command): void {
  program
    .command('download-dataset')
    .description(`download one of the paper's datasets from the Hugging Face hub and write <data-dir>/<name>/<split>.jsonl + info.json (${DATASET_NAMES.join(', ')})`)
    .argument('<name>', `dataset name: ${DATASET_NAMES.join(', ')}`)
    .option('--data-dir <dir>', 'where datasets live (default: HEALING_DATA_DIR or ./data/datasets)')
    .option('--revision <rev>', 'branch, tag or commit of the hub dataset repository', 'main')
    .option('--splits <list>', 'comma-separated splits (default: every labelled split)')
    .action(async (name: string, options: { dataDir?: string; revision: string; splits?: string }) => {
      const splits = options.splits?.split(',').map((s) => s.trim()).filter(Boolean);
      const summary = await downloadDataset(name, { dataDir: dataDir(options.dataDir), revision: options.revision, splits });
      for (const s of summary.splits) {
        const note = s.skipped ? 'skipped (no labelled rows)' : `${s.rows} rows -> ${s.file}`;
        const drops = s.dropped.unlabelled + s.dropped.emptyText;
        process.stderr.write(`${name}/${s.split}: ${note}${drops ? ` (dropped ${s.dropped.unlabelled} unlabelled, ${s.dropped.emptyText} empty)` : ''}\n`);
      }
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    });
}
