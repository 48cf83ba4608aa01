/**
 * A grid worker: one child process with its own TF.js engine, running one experiment at a time for
 * the parent (src/experiment/grid.ts). It never touches the result store; it sends each result back
 * over IPC and the parent appends it, so there is exactly one writer per store.
 *
 * Started as `fork(worker.ts, [runnerModuleUrl], { execArgv: ['--import', tsx] })`.
 */
import type { ExperimentSpec, ResultRow } from './spec';

export interface RunProgress {
  phase: string;
  step: number;
  totalSteps: number;
  loss?: number;
}

/** What a runner module exports (src/experiment/run.ts, or a test double). */
export type RunExperiment = (spec: ExperimentSpec, options: { onProgress?: (p: RunProgress) => void }) => Promise<ResultRow>;

export type ParentMessage = { type: 'run'; spec: ExperimentSpec; hash: string };

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'fatal'; error: string }
  | { type: 'progress'; hash: string; progress: RunProgress }
  | { type: 'result'; hash: string; row: ResultRow }
  | { type: 'error'; hash: string; error: string; userError: boolean };

// Progress messages are for a display; a few per second is plenty and keeps the channel free.
const PROGRESS_INTERVAL_MS = 250;

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function main(): Promise<void> {
  if (!process.send) {
    process.stderr.write('worker.ts runs as a child of runGrid (src/experiment/grid.ts), not on its own\n');
    process.exit(2);
  }
  // The parent decides when workers stop (it kills them); a Ctrl-C reaching the whole process group
  // must not look like a crash that the parent would retry. Losing the parent ends us.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('disconnect', () => process.exit(0));

  const specifier = process.argv[2];
  let runExperiment: RunExperiment;
  try {
    if (!specifier) throw new Error('no runner module given');
    const mod = (await import(specifier)) as { runExperiment?: unknown };
    if (typeof mod.runExperiment !== 'function') throw new Error(`${specifier} does not export runExperiment`);
    runExperiment = mod.runExperiment as RunExperiment;
  } catch (error) {
    await send({ type: 'fatal', error: (error as Error).message ?? String(error) });
    process.exit(1);
  }

  // One run at a time: the parent only sends the next spec after our answer, but chain anyway.
  let chain = Promise.resolve();
  process.on('message', (raw: unknown) => {
    const msg = raw as ParentMessage;
    if (msg.type !== 'run') return;
    chain = chain.then(async () => {
      let lastSent = 0;
      let lastPhase = '';
      const onProgress = (p: RunProgress): void => {
        const now = Date.now();
        if (p.phase === lastPhase && now - lastSent < PROGRESS_INTERVAL_MS) return;
        lastSent = now;
        lastPhase = p.phase;
        void send({ type: 'progress', hash: msg.hash, progress: p });
      };
      try {
        const row = await runExperiment(msg.spec, { onProgress });
        await send({ type: 'result', hash: msg.hash, row });
      } catch (error) {
        const e = error as Error;
        await send({
          type: 'error',
          hash: msg.hash,
          error: e?.message ?? String(error),
          userError: e?.name === 'UserError',
        });
      }
    });
  });
  await send({ type: 'ready' });
}

void main();
