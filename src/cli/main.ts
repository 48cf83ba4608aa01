import { Command, CommanderError } from 'commander';
import { UserError } from '../errors';
import { VERSION } from '../version';
import { isWasmOutOfMemory, WASM_MEMORY_HINT } from '../backend/memory';

/**
 * The `healing` command. Each subcommand lives in its own file and exports `register(program)`;
 * this file only wires them and turns errors into one readable line (stack only with --verbose).
 */
type Registrar = (program: Command) => void;

const subcommands: Array<() => Promise<{ register: Registrar }>> = [
  () => import('./info'),
  () => import('./tokenize'),
  () => import('./forward'),
  () => import('./download'),
  () => import('./download-dataset'),
  () => import('./corrupt'),
  () => import('./finetune'),
  () => import('./evaluate'),
  () => import('./run'),
  () => import('./results'),
  () => import('./baseline'),
  () => import('./pretrain'),
  () => import('./fill-mask'),
  () => import('./report'),
  () => import('./reproduce'),
];

export async function main(argv: string[]): Promise<number> {
  const program = new Command('healing')
    .description('Corrupt BERT layers, fine-tune, and measure how much comes back (Han, Zhang, Simion, 2024).')
    .version(VERSION)
    .option('--verbose', 'print stack traces for errors')
    .showHelpAfterError()
    .exitOverride();
  for (const load of subcommands) (await load()).register(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 1;
    const verbose = argv.includes('--verbose');
    let message = error instanceof Error ? error.message : String(error);
    if (isWasmOutOfMemory(error)) message = `${WASM_MEMORY_HINT} (${message.split('\n')[0]})`;
    process.stderr.write(`healing: ${message}\n`);
    if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    else if (!(error instanceof UserError)) process.stderr.write('(run with --verbose for the stack trace)\n');
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.env.HEALING_CLI_MAIN === '1') {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
