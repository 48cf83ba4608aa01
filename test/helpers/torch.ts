import { spawnSync } from 'node:child_process';
import { pythonInterpreter } from '../../src/io/python';

/**
 * PyTorch as an independent reference: scripts run on the project's Python (src/io/python.ts:
 * HEALING_PYTHON, else /usr/bin/python3, where Debian's python3-torch lives; CI installs it).
 */

let missing: string | false | undefined;

/** Why torch cannot be imported here (a skip reason), or false when it can. */
export function torchMissing(): string | false {
  if (missing === undefined) {
    const python = pythonInterpreter();
    const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
    missing = probe.status === 0 ? false : `${python} cannot import torch (apt-get install python3-torch, or set HEALING_PYTHON)`;
  }
  return missing;
}

/** Runs `script` (python -c) with `input` as JSON on stdin and `args` after it; returns its last stdout line, parsed. */
export function runTorch<T>(script: string, options: { input?: unknown; args?: string[] } = {}): T {
  const out = spawnSync(pythonInterpreter(), ['-c', script, ...(options.args ?? [])], {
    input: JSON.stringify(options.input ?? null),
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  if (out.status !== 0) throw new Error(`torch script failed (${out.signal ?? `exit code ${out.status}`}): ${out.stderr}`);
  const lines = out.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}
