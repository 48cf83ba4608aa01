/**
 * The worker pool behind runGrid (grid.ts): planned runs on child processes (worker.ts), one run at
 * a time per worker, each outcome recorded the moment it arrives.
 *
 * A run's life: queued -> taken (takeNext: claimed for this process, see claims.ts; one another live
 * process holds waits in `deferred` and is looked at again once the queue is empty) -> dispatched
 * to a ready worker (dispatch) -> the worker's answer (onMessage) appends its row to the store
 * (recordResult) or records a failure (recordFailure), which may queue it again for a fresh worker
 * -> the claim is released -> that worker takes the next run. A worker with nothing to take while
 * other processes hold runs waits (poll) until they finish them or their claims expire.
 * A worker's life: spawned -> 'ready' -> runs until nothing is left to take, then is disconnected
 * and exits on its own (onExit), or is killed after a non-user error and replaced (replenish).
 * The pool settles (settleIfDone) once no worker is left.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../errors';
import { createProgress, type Progress } from '../progress';
import type { GridEvent, PlannedRun, RunGridOptions } from './grid';
import { identityChanges, rowHash, rowIdentity } from './identity';
import type { Claims } from './claims';
import { appendResult, readResults } from './store';
import { formatIssues, ResultRowSchema, type ResultRow } from './spec';
import type { ParentMessage, WorkerMessage } from './worker';

export type PoolOptions = Pick<RunGridOptions, 'resultsFile' | 'runnerModule' | 'progress'> & {
  /** Worker processes at once; the caller caps it at the runs to do (`env` was computed for it). */
  size: number;
  env: NodeJS.ProcessEnv;
  /** Extra attempts for a run whose worker crashed. */
  retries: number;
  emit: (event: GridEvent) => void;
  /** This process's claims on the store's runs (shared with other `healing run` processes). */
  claims: Claims;
  /** How often an idle worker looks again at runs other processes hold. */
  pollMs: number;
};

/** What the pool did; runGrid folds it into its summary. */
export interface PoolOutcome {
  ran: number;
  failed: number;
  failures: Array<{ hash: string; label: string; error: string }>;
  interrupted: boolean;
  /** Runs another process sharing the store finished while this one ran (not run here). */
  elsewhere: number;
}

interface Job {
  run: PlannedRun;
  attempts: number;
}

/** What taking a run's claim found. */
type Taken = 'ours' | 'held' | 'done';

interface Worker {
  id: number;
  child: ChildProcess;
  /** Said 'ready': its runner module loaded, so an exit from now on is not a start-up failure. */
  ready: boolean;
  job?: Job;
  /** Set when we end the worker on purpose, so its exit is not treated as a crash. */
  retiring: boolean;
}

const workerPath = new URL('./worker.ts', import.meta.url);
const defaultRunner = new URL('./run.ts', import.meta.url).href;

function runnerUrl(runnerModule: string | undefined): string {
  if (!runnerModule) return defaultRunner;
  if (runnerModule.startsWith('file:')) return runnerModule;
  return pathToFileURL(isAbsolute(runnerModule) ? runnerModule : resolve(runnerModule)).href;
}

function tsxImport(): string {
  // Resolved here rather than by name in the child, so workers start even when the cwd is outside
  // the package (e.g. `npx healing` from a data directory).
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `worker killed by ${signal}` : `worker exited with code ${code}`;
}

/**
 * One use: `await new GridPool(pending, options).run()`. A run is appended only by the process that
 * claimed it, after checking that the store does not hold it yet, so a row is stored once even with
 * other processes on the same store; a run cut off by a stop is simply not stored and runs again
 * next time.
 */
export class GridPool {
  private readonly queue: Job[];
  /** Runs another live process held when we came to them; revisited once the queue is empty. */
  private readonly deferred: Job[] = [];
  private readonly workers = new Set<Worker>();
  private readonly outcome: PoolOutcome = { ran: 0, failed: 0, failures: [], interrupted: false, elsewhere: 0 };
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly runner: string;
  private readonly tsx = tsxImport();
  private progress?: Progress;
  private nextId = 1;
  private finished = 0;
  private lastAccuracy = '-';
  /** Set by the first error that makes every further run pointless; run() rejects with it. */
  private fatal: Error | undefined;
  private settle?: { resolve: (outcome: PoolOutcome) => void; reject: (error: Error) => void };

  constructor(
    runs: readonly PlannedRun[],
    private readonly options: PoolOptions,
  ) {
    this.queue = runs.map((run) => ({ run, attempts: 0 }));
    this.runner = runnerUrl(options.runnerModule);
  }

  run(): Promise<PoolOutcome> {
    return new Promise<PoolOutcome>((resolvePromise, rejectPromise) => {
      this.settle = { resolve: resolvePromise, reject: rejectPromise };
      this.progress = createProgress({
        label: 'grid',
        total: this.queue.length,
        unit: 'runs',
        fields: ['acc', 'busy'],
        enabled: this.options.progress,
      });
      process.on('SIGINT', this.onSignal);
      process.on('SIGTERM', this.onSignal);
      for (let i = 0; i < this.options.size; i++) this.spawn();
    });
  }

  private get stopping(): boolean {
    return this.outcome.interrupted || this.fatal !== undefined;
  }

  // --- a run's life ------------------------------------------------------------------------

  /**
   * The one place a run leaves the queue for a worker, claimed for this process (a retry keeps its
   * claim). A run another live process holds is set aside and looked at again once the queue is
   * empty, in case its owner died (its claim then expires) or finished it (its row is then stored).
   */
  private takeNext(): Job | undefined {
    let stored: Set<string> | undefined;
    // Read at most once per call, and only when a claim needs it.
    const storedNow = (): Set<string> => (stored ??= this.storedHashes());
    while (this.queue.length > 0) {
      const job = this.queue.shift()!;
      const taken = this.take(job, storedNow);
      if (taken === 'ours') return job;
      if (taken === 'held') this.deferred.push(job);
    }
    for (let i = 0; i < this.deferred.length; i++) {
      const job = this.deferred[i];
      const taken = this.take(job, storedNow);
      if (taken === 'held') continue;
      this.deferred.splice(i--, 1);
      if (taken === 'ours') return job;
    }
    return undefined;
  }

  private take(job: Job, stored: () => Set<string>): Taken {
    const { hash, label } = job.run;
    const claims = this.options.claims;
    if (claims.holds(hash)) return 'ours';
    const claim = claims.tryClaim(hash);
    // Checked after claiming: a process that finished the run appended its row before releasing.
    if (stored().has(hash)) {
      if (claim.ok) claims.release(hash);
      this.doneElsewhere(job);
      return 'done';
    }
    if (!claim.ok) return 'held';
    if (claim.tookOver) process.stderr.write(`grid: run ${label} (${hash}): took over a stale claim (${claim.tookOver})\n`);
    return 'ours';
  }

  private doneElsewhere(job: Job): void {
    process.stderr.write(`grid: run ${job.run.label} (${job.run.hash}) was stored by another process\n`);
    this.outcome.elsewhere++;
    this.countFinished();
  }

  private storedHashes(): Set<string> {
    return new Set(readResults(this.options.resultsFile).rows.map(rowHash));
  }

  private dispatch(worker: Worker): void {
    if (this.stopping) return;
    const job = this.takeNext();
    if (!job) {
      if (this.deferred.length > 0) {
        // Others hold the rest: wait for them to finish it or for their claims to expire.
        this.schedulePoll();
        return;
      }
      // Nothing left for this worker: closing the channel lets it exit on its own.
      worker.retiring = true;
      if (worker.child.connected) worker.child.disconnect();
      return;
    }
    job.attempts++;
    worker.job = job;
    const { hash, label, spec } = job.run;
    this.options.emit({ type: 'start', hash, label, worker: worker.id, attempt: job.attempts });
    const message: ParentMessage = { type: 'run', spec, hash };
    worker.child.send(message);
    this.showProgress();
  }

  /** The worker's run, if `hash` answers for it (anything else is stale and ignored); the worker is free again. */
  private answered(worker: Worker, hash: string): Job | undefined {
    const job = worker.job;
    if (!job || job.run.hash !== hash) return undefined;
    worker.job = undefined;
    return job;
  }

  private recordResult(job: Job, reported: ResultRow): void {
    const { spec, identity, hash, label } = job.run;
    // The grid's spec is the run's spec, whatever the runner echoed back; the row's hash is the
    // identity of what it reports it ran (its fingerprint, recipe and numerics).
    const parsed = ResultRowSchema.safeParse({ ...(reported as object), hash, spec });
    if (!parsed.success) {
      this.recordFailure(job, `the runner returned an invalid result row: ${formatIssues(parsed.error)}`, false);
      return;
    }
    const row: ResultRow = { ...parsed.data, hash: rowHash(parsed.data) };
    try {
      // Our claim kept everyone else off this run, unless we stalled past its lease and it was
      // taken over and finished meanwhile: then that row stands and ours is not stored again.
      if (this.storedHashes().has(row.hash)) {
        this.options.claims.release(hash);
        this.doneElsewhere(job);
        return;
      }
      appendResult(this.options.resultsFile, row);
    } catch (error) {
      this.stop(new UserError(`${this.options.resultsFile}: cannot append a result (${(error as Error).message})`));
      return;
    }
    this.options.claims.release(hash);
    if (row.hash !== hash) {
      // Stored under what it did run (nothing computed is lost), but not what was planned: the
      // worker's model or engine differs from this process's, and a rerun would do it again.
      const changes = identityChanges(identity, rowIdentity(row)).join('; ');
      this.recordFailure(job, `the worker ran another identity than planned (${changes}); stored as ${row.hash}, not counted as done`, false);
      return;
    }
    this.outcome.ran++;
    const acc = row.final.accuracy;
    this.lastAccuracy = acc == null ? 'NaN' : acc.toFixed(4);
    this.options.emit({ type: 'result', hash, label, row });
    this.countFinished();
  }

  /** A retryable failure goes back to the front of the queue while attempts remain; any other is final. */
  private recordFailure(job: Job, error: string, retryable: boolean): void {
    const { hash, label } = job.run;
    const retrying = retryable && job.attempts <= this.options.retries && !this.stopping;
    process.stderr.write(
      `grid: run ${label} (${hash}) failed on attempt ${job.attempts}: ${error}${retrying ? ' (retrying on a new worker)' : ''}\n`,
    );
    this.options.emit({ type: 'failure', hash, label, error, attempt: job.attempts, retrying });
    if (retrying) {
      this.queue.unshift(job);
    } else {
      this.options.claims.release(hash);
      this.outcome.failed++;
      this.outcome.failures.push({ hash, label, error });
      this.countFinished();
    }
  }

  // --- a worker's life ---------------------------------------------------------------------

  private spawn(): void {
    const child = fork(workerPath, [this.runner], {
      execArgv: ['--import', this.tsx],
      // Worker stdout goes to our stderr: our stdout carries the CLI's JSON summary only. Workers
      // draw no progress bars of their own (their env says so); the grid's bar is the one the user
      // watches.
      stdio: ['ignore', 2, 2, 'ipc'],
      env: this.options.env,
    });
    const worker: Worker = { id: this.nextId++, child, ready: false, retiring: false };
    this.workers.add(worker);
    child.on('message', (raw: unknown) => this.onMessage(worker, raw as WorkerMessage));
    child.on('error', (error) => process.stderr.write(`grid: worker ${worker.id}: ${error.message}\n`));
    child.on('exit', (code, signal) => this.onExit(worker, code, signal));
  }

  private onMessage(worker: Worker, msg: WorkerMessage): void {
    switch (msg.type) {
      case 'ready':
        worker.ready = true;
        this.dispatch(worker);
        break;
      case 'fatal':
        // The runner module itself cannot load: every run would fail the same way.
        this.stop(new UserError(`cannot start grid workers: ${msg.error}`));
        break;
      case 'progress':
        if (worker.job) this.options.emit({ type: 'progress', hash: worker.job.run.hash, label: worker.job.run.label, ...msg.progress });
        break;
      case 'result': {
        const job = this.answered(worker, msg.hash);
        if (!job) break;
        this.recordResult(job, msg.row);
        this.dispatch(worker);
        break;
      }
      case 'error': {
        const job = this.answered(worker, msg.hash);
        if (!job) break;
        // A UserError (missing dataset, bad layer selector) fails the same way every time; anything
        // else may have left the engine in a bad state, so the retry gets a fresh process.
        this.recordFailure(job, msg.error, !msg.userError);
        if (msg.userError) {
          this.dispatch(worker);
        } else {
          worker.retiring = true;
          worker.child.kill('SIGKILL');
        }
        break;
      }
    }
  }

  private onExit(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(worker);
    const job = worker.job;
    worker.job = undefined;
    // A run cut off because we are stopping is not a failure: it is simply not done yet.
    if (job && !this.stopping) {
      this.recordFailure(job, describeExit(code, signal), true);
    } else if (!job && !worker.ready && !worker.retiring && !this.stopping) {
      // Died before it could take work (tsx missing, out of memory at start): respawning would loop.
      this.stop(new Error(`a grid worker failed to start (${describeExit(code, signal)})`));
    }
    this.replenish();
    this.settleIfDone();
  }

  /** Starts a replacement when more runs wait than workers on their way to take them. */
  private replenish(): void {
    if (this.stopping) return;
    const live = [...this.workers].filter((w) => !w.retiring);
    const starting = live.filter((w) => !w.job).length;
    const waiting = this.queue.length + (this.deferred.length > 0 ? 1 : 0);
    if (waiting > starting && live.length < this.options.size) this.spawn();
  }

  /** One timer for every idle worker: each tries takeNext again when it fires. */
  private schedulePoll(): void {
    if (this.pollTimer || this.stopping) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      for (const worker of [...this.workers]) {
        if (worker.ready && !worker.job && !worker.retiring) this.dispatch(worker);
      }
    }, this.options.pollMs);
  }

  // --- stopping and settling ---------------------------------------------------------------

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\ngrid: ${signal} received, stopping workers (finished runs are saved; rerun to continue)\n`);
    this.outcome.interrupted = true;
    this.killAll();
  };

  private stop(error: Error): void {
    this.fatal ??= error;
    this.killAll();
  }

  private killAll(): void {
    this.queue.length = 0;
    this.deferred.length = 0;
    for (const worker of this.workers) {
      worker.retiring = true;
      worker.child.kill('SIGKILL');
    }
    this.settleIfDone();
  }

  /** Resolves once every worker has exited and there is nothing left to do (or a stop was asked). */
  private settleIfDone(): void {
    if (!this.settle || this.workers.size > 0) return;
    if (!this.stopping && this.queue.length + this.deferred.length > 0) return;
    const { resolve: resolvePromise, reject: rejectPromise } = this.settle;
    this.settle = undefined;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    // Runs cut off by a stop are free for other processes at once, not after the lease.
    this.options.claims.releaseAll();
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    this.progress?.stop();
    if (this.fatal) rejectPromise(this.fatal);
    else resolvePromise(this.outcome);
  }

  // --- the progress bar --------------------------------------------------------------------

  private busy(): number {
    return [...this.workers].filter((w) => w.job).length;
  }

  private countFinished(): void {
    this.finished++;
    this.showProgress();
  }

  private showProgress(): void {
    this.progress?.update(this.finished, { acc: this.lastAccuracy, busy: this.busy() });
  }
}
