import type { Command } from 'commander';
import { downloadModel } from '../io/hub';

/** `healing download <repo-id>`: a checkpoint's files from the Hugging Face hub into the cache. */
export function register(program: Command): void {
  program
    .command('download')
    .description('download a model checkpoint (config.json, model.safetensors or else pytorch_model.bin, tokenizer files) from the Hugging Face hub into the cache (HF_ENDPOINT, HF_HOME, HF_TOKEN)')
    .argument('<repo-id>', 'hub repository id, e.g. google-bert/bert-base-uncased')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--files <list>', 'comma-separated files to fetch instead of the checkpoint defaults (all required)')
    .option('--force', 'ask the hub again even when the files are cached')
    .action(async (repoId: string, options: { revision: string; files?: string; force?: boolean }) => {
      const files = options.files?.split(',').map((f) => f.trim()).filter(Boolean);
      const path = await downloadModel(repoId, { revision: options.revision, files, force: options.force });
      process.stdout.write(`${JSON.stringify({ path })}\n`);
    });
}
