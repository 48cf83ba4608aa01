import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { EngineInfo, NativeStatus } from '../backend/engine';
import { VERSION } from '../version';

/** Where a result came from: enough to tell which code, on which engine and machine, produced it. */
// A type alias (not an interface) so it is assignable to ResultRow's open-ended provenance object.
export type Provenance = {
  backend: string;
  /** The engine's thread count (EngineInfo.threads), when known. */
  threads?: number;
  /** Native kernels on (BLAS, threads, version) or off (why), when the engine was given. */
  native?: NativeStatus;
  packageVersion: string;
  gitCommit: string;
  /** True when tracked files differed from gitCommit; absent when git is unavailable. */
  gitDirty?: boolean;
  node: string;
  host: string;
};

const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

let gitCache: { commit: string; dirty?: boolean } | undefined;

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: packageRoot, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

/** Commit of the package's checkout; 'unknown' outside git (an npm install, a repo without commits). */
export function gitState(): { commit: string; dirty?: boolean } {
  if (!gitCache) {
    const commit = git(['rev-parse', 'HEAD']);
    if (!commit) gitCache = { commit: 'unknown' };
    else {
      const status = git(['status', '--porcelain', '--untracked-files=no']);
      gitCache = status === undefined ? { commit } : { commit, dirty: status.length > 0 };
    }
  }
  return gitCache;
}

/**
 * The engine name once initEngine() ran in this process ('unknown' before). Imported lazily because
 * the engine module loads TF.js; a caller that already knows its backend passes it and skips that.
 */
async function backendName(): Promise<string> {
  try {
    const engine = await import('../backend/engine');
    return engine.engineInfo()?.backend ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Given the engine a run used, it records the backend, its threads and the native kernels (on with
 * the BLAS, off with the reason; engines the addon does not serve count as off).
 */
export async function provenance(options: { backend?: string; engine?: EngineInfo } = {}): Promise<Provenance> {
  const { commit, dirty } = gitState();
  const engine = options.engine;
  const out: Provenance = {
    backend: options.backend ?? engine?.backend ?? (await backendName()),
    packageVersion: VERSION,
    gitCommit: commit,
    node: process.version,
    host: hostname(),
  };
  if (engine) {
    if (engine.threads !== undefined) out.threads = engine.threads;
    out.native = engine.native ?? { enabled: false, reason: `not served on the ${engine.backend} backend` };
  }
  if (dirty !== undefined) out.gitDirty = dirty;
  return out;
}
