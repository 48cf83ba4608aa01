import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError } from '../errors';
import { registerKernelFixes, registerNativeKernels } from './kernels';
import { loadNative } from './native/addon';
import { setActiveNative } from './native/state';
import { NATIVE_NUMERICS, TFJS_NUMERICS } from './numerics';
import { getThreadsCount, setWasmPaths } from './wasm_package';

/**
 * The one engine switch: picks the TF.js backend once per process and says why.
 *
 * Order: an explicit choice (option, else HEALING_BACKEND), else the native TensorFlow binding
 * (tfjs-node-gpu, then tfjs-node), else wasm with our kernel fixes and, where the addon is built, the
 * native kernels (HEALING_NATIVE=0 turns them off), else the plain JS cpu backend.
 */

export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface EngineInfo {
  backend: BackendName;
  /** The npm package that provides the backend, e.g. '@tensorflow/tfjs-node-gpu'. */
  package: string;
  gpu: boolean;
  /** What was tried, and why each candidate before the chosen one was skipped. */
  reason: string;
  tfjsVersion: string;
  threads?: number;
  /**
   * The native kernels (OpenBLAS/Accelerate addon) under the wasm backend: on, with the BLAS and thread
   * count, or off and why. Absent on engines the addon does not serve (tensorflow, cpu).
   */
  native?: NativeStatus;
  /**
   * Which arithmetic produced a result: engines with the same numerics give the same numbers for the
   * same seed (up to float noise). Part of each result's identity, so runs never mix silently.
   */
  numerics: string;
}

export type NativeStatus =
  | { enabled: true; blas: string; threads: number; version: string }
  | { enabled: false; reason: string };

export const BACKEND_ENV = 'HEALING_BACKEND';

export { NATIVE_NUMERICS, TFJS_NUMERICS } from './numerics';

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
const CPU_PACKAGE = '@tensorflow/tfjs-backend-cpu';

const require = createRequire(import.meta.url);

let chosen: EngineInfo | undefined;
let pending: Promise<EngineInfo> | undefined;

/** Validates a backend name from `source` (an env var or a flag), as a UserError naming both. */
export function parseBackendName(value: string, source: string): BackendName {
  const name = value.trim().toLowerCase();
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new UserError(`${source}=${JSON.stringify(value)} is not a backend; use one of: ${BACKEND_NAMES.join(', ')}`);
}

/** The engine chosen by initEngine, or undefined before it has finished. */
export function engineInfo(): EngineInfo | undefined {
  return chosen;
}

/**
 * Chooses and initialises the backend. Idempotent: later calls return the same info. An explicit
 * backend that differs from the one already chosen is an error, since a process has one engine.
 */
export function initEngine(options: { backend?: BackendName } = {}): Promise<EngineInfo> {
  if (!pending) {
    pending = choose(options.backend).then(
      (info) => (chosen = info),
      (error: unknown) => {
        pending = undefined;
        throw error;
      },
    );
    return pending;
  }
  return pending.then((info) => {
    if (options.backend && options.backend !== info.backend) {
      throw new Error(`initEngine: the engine is already '${info.backend}'; cannot switch to '${options.backend}'`);
    }
    return info;
  });
}

function shortError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].slice(0, 160);
}

/** Stops the cpu backend's one-time "install our node backend" hint; it does not apply to us. */
function silenceNodeBackendHint(): void {
  const cpu = tf.findBackend('cpu') as (tf.KernelBackend & { firstUse?: boolean }) | null;
  if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
}

type Attempt = { ok: true; info: Omit<EngineInfo, 'reason'>; note: string } | { ok: false; note: string };

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
  // A trivial op proves the kernels run, not only that the backend object exists.
  tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
}

async function tryNative(pkg: string): Promise<Attempt> {
  try {
    require(pkg);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const missing = code === 'MODULE_NOT_FOUND' && shortError(error).includes(pkg);
    return { ok: false, note: missing ? 'not installed' : `failed to load (${shortError(error)})` };
  }
  // In this repo '@tensorflow/tfjs-node' may be an npm alias of plain '@tensorflow/tfjs', so importing it
  // proves nothing; only a registered 'tensorflow' backend does.
  if (!(tf.engine().registryFactory as Record<string, unknown>).tensorflow) {
    return { ok: false, note: "imported, but no 'tensorflow' backend registered (alias without native binding?)" };
  }
  try {
    await activate('tensorflow');
  } catch (error) {
    return { ok: false, note: `backend failed to start (${shortError(error)})` };
  }
  const backend = tf.backend() as tf.KernelBackend & { isUsingGpuDevice?: boolean };
  return {
    ok: true,
    note: 'ok',
    info: {
      backend: 'tensorflow',
      package: pkg,
      gpu: backend.isUsingGpuDevice === true,
      tfjsVersion: tfjsVersion(),
      numerics: TFJS_NUMERICS,
    },
  };
}

async function tryWasm(): Promise<Attempt> {
  try {
    // In Node the binary is read from disk; point the loader at the package's dist/ folder.
    const dist = path.dirname(require.resolve(WASM_PACKAGE));
    setWasmPaths(dist + path.sep);
    await activate('wasm');
  } catch (error) {
    return { ok: false, note: `failed (${shortError(error)})` };
  }
  const load = loadNative();
  const base = { backend: 'wasm' as const, package: WASM_PACKAGE, gpu: false, tfjsVersion: tfjsVersion() };
  if (load.ok === false) {
    const threads = getThreadsCount();
    return {
      ok: true,
      note: `ok (${threads} thread${threads === 1 ? '' : 's'}, kernel fixes registered; native kernels: ${load.reason})`,
      info: { ...base, threads, native: { enabled: false, reason: load.reason }, numerics: TFJS_NUMERICS },
    };
  }
  registerNativeKernels(load.addon);
  setActiveNative(load.addon);
  return {
    ok: true,
    note: `ok with native kernels (${load.blas}, ${load.threads} thread${load.threads === 1 ? '' : 's'})`,
    info: {
      ...base,
      threads: load.threads,
      native: { enabled: true, blas: load.blas, threads: load.threads, version: NATIVE_NUMERICS },
      numerics: NATIVE_NUMERICS,
    },
  };
}

async function tryCpu(): Promise<Attempt> {
  try {
    await activate('cpu');
  } catch (error) {
    return { ok: false, note: `failed (${shortError(error)})` };
  }
  return {
    ok: true,
    note: 'ok (plain JS, kernel fixes registered)',
    info: { backend: 'cpu', package: CPU_PACKAGE, gpu: false, tfjsVersion: tfjsVersion(), threads: 1, numerics: TFJS_NUMERICS },
  };
}

function tfjsVersion(): string {
  return tf.version.tfjs ?? tf.version_core;
}

const shortName = (pkg: string) => pkg.replace('@tensorflow/', '');

async function choose(option: BackendName | undefined): Promise<EngineInfo> {
  registerKernelFixes();
  silenceNodeBackendHint();

  const envValue = process.env[BACKEND_ENV];
  let requested: BackendName | undefined = option;
  let requestedBy = 'option backend';
  if (!requested && envValue !== undefined && envValue.trim() !== '') {
    requested = parseBackendName(envValue, BACKEND_ENV);
    requestedBy = `${BACKEND_ENV}=${envValue.trim()}`;
  }

  const candidates: Array<{ label: string; backend: BackendName; run: () => Promise<Attempt> }> = [
    ...NATIVE_PACKAGES.map((pkg) => ({ label: shortName(pkg), backend: 'tensorflow' as const, run: () => tryNative(pkg) })),
    { label: 'wasm', backend: 'wasm', run: tryWasm },
    { label: 'cpu', backend: 'cpu', run: tryCpu },
  ];

  const notes: string[] = [];
  for (const candidate of candidates) {
    if (requested && candidate.backend !== requested) {
      notes.push(`${candidate.label}: not tried (${requestedBy})`);
      continue;
    }
    const attempt = await candidate.run();
    notes.push(`${candidate.label}: ${attempt.note}`);
    if (attempt.ok) {
      const rest = candidates.slice(candidates.indexOf(candidate) + 1).map((c) => `${c.label}: not needed`);
      const prefix = requested ? `requested by ${requestedBy}; ` : '';
      return { ...attempt.info, reason: prefix + [...notes, ...rest].join('; ') };
    }
  }
  const tried = notes.join('; ');
  if (requested) throw new UserError(`backend '${requested}' (${requestedBy}) is not available: ${tried}`);
  throw new Error(`no TF.js backend could start: ${tried}`);
}
