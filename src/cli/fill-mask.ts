import type { Command } from 'commander';
import { initEngine } from '../backend/engine';
import { loadCheckpoint, checkTokenizerFits } from '../io/checkpoint';
import { resolveModelDir } from '../io/models';
import { disposeParams } from '../model/names';
import { loadTokenizer } from '../tokenizer/tokenizer';
import { fillMask } from '../model/fill-mask';
import { corrupt, parseCorruptionSpec } from '../corruption';
import { int, printJson } from './options';

export function register(program: Command): void {
  program
    .command('fill-mask')
    .description('top predictions of the masked-LM head for each [MASK] in the text')
    .argument('<text...>', 'text with one or more [MASK] tokens')
    .option('--model <dir>', 'checkpoint with an MLM head (default: the shipped model)', 'default')
    .option('--top <k>', 'predictions per mask', '5')
    .option('--corrupt <layers>', 'corrupt these layers first (e.g. bottom:2) to see what the damage does')
    .option('--seed <n>', 'corruption seed', '0')
    .action(async (words: string[], o) => {
      await initEngine();
      const dir = await resolveModelDir(o.model);
      const tokenizer = await loadTokenizer(dir);
      const checkpoint = await loadCheckpoint(dir, { head: 'mlm' });
      checkTokenizerFits(tokenizer, checkpoint.config, dir);
      let params = checkpoint.params;
      if (o.corrupt) {
        const corrupted = corrupt(params, checkpoint.config, parseCorruptionSpec({ layers: o.corrupt }, checkpoint.config.numLayers), int(o.seed, '--seed'));
        disposeParams(params);
        params = corrupted.params;
      }
      const text = words.join(' ');
      const masks = fillMask(checkpoint.config, params, tokenizer, text, int(o.top, '--top', 1));
      disposeParams(params);
      for (const m of masks) {
        process.stderr.write(`[MASK] #${m.position}: ${m.predictions.map((p) => `${p.token} (${(p.probability * 100).toFixed(1)} %)`).join(', ')}\n`);
      }
      printJson({ text, masks });
    });
}
