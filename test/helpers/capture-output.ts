/**
 * Runs a command in this process and returns what it wrote: the stdout chunks that start with `prefix`
 * (its own JSON line; the test runner talks to its parent over stdout too, so the rest passes through)
 * and all of stderr (kept off the test output).
 */
export async function captureOutput(prefix: string, run: () => Promise<unknown>): Promise<{ stdout: string; stderr: string }> {
  const printed: string[] = [];
  const logged: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    typeof chunk === 'string' && chunk.startsWith(prefix)
      ? (printed.push(chunk), true)
      : (write as (...args: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown) => (logged.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    await run();
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  return { stdout: printed.join(''), stderr: logged.join('') };
}
