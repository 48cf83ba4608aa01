import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { UserError } from '../errors';

/**
 * The one place that picks the Python the project's helper scripts run on. Debian's /usr/bin/python3
 * by default, because that is where apt puts scikit-learn and PyTorch (python3-sklearn,
 * python3-torch); the `python3` first on PATH is often another installation (pyenv, conda) without
 * them. HEALING_PYTHON overrides it.
 */
export const DEFAULT_PYTHON = '/usr/bin/python3';

export function pythonInterpreter(): string {
  return process.env.HEALING_PYTHON || DEFAULT_PYTHON;
}

export interface PythonScriptOptions {
  /** JSON written to the script's stdin (none: stdin is closed at once). */
  input?: unknown;
  args?: string[];
  /** What the script needs, for the message when the interpreter is missing (e.g. "scikit-learn"). */
  needs: string;
  /** The Debian package that provides it, named in that message. */
  debianPackage: string;
  /** The exit code by which the script says its library is not importable. */
  missingLibraryExit?: number;
}

export interface PythonScriptResult {
  /** The last non-empty line of stdout (the scripts print one JSON line last). */
  lastLine: string;
  interpreter: string;
}

function lastNonEmptyLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

/**
 * Runs a script on pythonInterpreter() with JSON on stdin. Every failure is a UserError a user can act
 * on: the interpreter missing (naming it, the Debian package and HEALING_PYTHON), the library missing,
 * or the script failing (its stderr's last line).
 */
export function runPythonScript(script: string, options: PythonScriptOptions): Promise<PythonScriptResult> {
  const interpreter = pythonInterpreter();
  const hint = `install ${options.needs} for it (Debian/Ubuntu: apt-get install ${options.debianPackage}) or point HEALING_PYTHON at a Python 3 that has it`;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (message: string) => {
      if (!settled) reject(new UserError(message));
      settled = true;
    };
    // One BLAS thread unless the user says otherwise: the fits are small and sparse, and a fixed thread
    // count keeps their floating-point sums (so a tie between two C values) the same from run to run.
    const env = { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1', OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' };
    const child = spawn(interpreter, [script, ...(options.args ?? [])], { stdio: ['pipe', 'pipe', 'pipe'], env });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'ENOENT' ? 'not found' : error.code === 'EACCES' ? 'not executable' : error.message;
      fail(`Python interpreter ${interpreter}: ${why}; ${basename(script)} needs Python 3 with ${options.needs}: ${hint}`);
    });
    // A script that dies before reading all of stdin closes the pipe; its exit code says why.
    child.stdin.on('error', () => {});
    child.on('close', (code, signal) => {
      const err = lastNonEmptyLine(Buffer.concat(stderr).toString('utf8'));
      if (options.missingLibraryExit !== undefined && code === options.missingLibraryExit) {
        fail(`${options.needs} is missing from ${interpreter}: ${hint}${err ? ` (${err})` : ''}`);
      } else if (code !== 0) {
        fail(`${script} failed on ${interpreter} (${signal ? `killed by ${signal}` : `exit code ${code}`}): ${err || 'no message on stderr'}`);
      } else if (!settled) {
        settled = true;
        resolve({ lastLine: lastNonEmptyLine(Buffer.concat(stdout).toString('utf8')), interpreter });
      }
    });
    child.stdin.end(options.input === undefined ? '' : JSON.stringify(options.input));
  });
}
