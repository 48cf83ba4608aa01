import { UserError } from '../errors';

/** Option parsing shared by subcommands: numbers with the flag named in the error. */
export function int(value: string | number, flag: string, min = 0): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${flag} ${value}: expected an integer >= ${min}`);
  return n;
}

export function num(value: string | number, flag: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n)) throw new UserError(`${flag} ${value}: expected a number`);
  return n;
}

/** Every command prints one JSON object last on stdout, for scripts and notebooks. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}
