import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));

/**
 * `healing <command> ...` through the real CLI code of that one subcommand (src/cli/<command>.ts),
 * in its own process group so it can be killed whole (`process.kill(-child.pid, 'SIGKILL')`).
 */
export function startCommand(command: 'run' | 'results', args: string[], env: Record<string, string | undefined>): ChildProcess {
  const script = `
    const { Command } = await import('commander');
    const { register } = await import('./src/cli/${command}.ts');
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(process.argv.slice(1), { from: 'user' });`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, command, ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function startRun(args: string[], env: Record<string, string | undefined>): ChildProcess {
  return startCommand('run', args, env);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function exited(child: ChildProcess): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** The JSON summary a command prints last on stdout. */
export function lastJson(exit: Exit): any {
  return JSON.parse(exit.stdout.trim().split('\n').at(-1)!);
}
