import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { initEngine, type EngineInfo } from '../backend/engine';
import { VERSION } from '../version';

/** Debian's chromium: the figure export drives it headless to write PNG/SVG. */
const CHROMIUM = '/usr/bin/chromium';

export interface InfoReport {
  version: string;
  node: string;
  backend: string;
  package: string;
  gpu: boolean;
  threads: number | null;
  /** The native kernels under wasm: on (BLAS, threads) or off and why; null on other engines. */
  native: EngineInfo['native'] | null;
  numerics: string;
  reason: string;
  tfjsVersion: string;
  chromium: string | null;
}

export async function collectInfo(): Promise<InfoReport> {
  const engine = await initEngine();
  return {
    version: VERSION,
    node: process.version,
    backend: engine.backend,
    package: engine.package,
    gpu: engine.gpu,
    threads: engine.threads ?? null,
    native: engine.native ?? null,
    numerics: engine.numerics,
    reason: engine.reason,
    tfjsVersion: engine.tfjsVersion,
    chromium: existsSync(CHROMIUM) ? CHROMIUM : null,
  };
}

export function formatInfo(info: InfoReport): string {
  const native = info.native;
  const rows: Array<[string, string]> = [
    ['healing-bert', info.version],
    ['node', info.node],
    ['backend', `${info.backend} (${info.package}${info.gpu ? ', GPU' : ''})`],
    ['threads', info.threads === null ? 'unknown' : String(info.threads)],
    [
      'native kernels',
      !native
        ? 'not used by this engine'
        : native.enabled
          ? `on (${native.blas}, ${native.threads} thread${native.threads === 1 ? '' : 's'}; HEALING_THREADS sets them, HEALING_NATIVE=0 turns them off)`
          : `off: ${native.reason}`,
    ],
    ['numerics', info.numerics],
    ['tfjs', info.tfjsVersion],
    ['why', info.reason],
    ['chromium', info.chromium ?? `not found at ${CHROMIUM} (figure export to PNG/SVG unavailable)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function register(program: Command): void {
  program
    .command('info')
    .description('print the version, the TF.js backend in use and why it was chosen, and optional tools found')
    .option('--json', 'print one JSON object instead of a table')
    .action(async (options: { json?: boolean }) => {
      const info = await collectInfo();
      process.stdout.write(options.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatInfo(info)}\n`);
    });
}
