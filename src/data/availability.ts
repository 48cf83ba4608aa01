import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors';
import { HubUnreachableError, hubEndpoint } from '../io/hub';
import { ownerRecord, ownerStaleness, pidAlive, readOwnerFile } from '../io/ownership';
import { dataDir, dataDirOrigin, readInfo, type DatasetInfo } from './local';
import { downloadDataset, type SplitSummary } from './parquet';
import { datasetEntry, type DatasetEntry, type HubSource } from './registry';
import { HELDOUT_SPLIT } from './sampling';

/**
 * Whether a registry dataset is on this machine, fetching it from the hub on first use (the same code as
 * `healing download-dataset`), and the stand-ins a caller may take when it cannot be had. An embedded
 * sample is always here and is never fetched.
 */

export type Log = (line: string) => void;

const stderrLog: Log = (line) => process.stderr.write(`${line}\n`);

/** A registry dataset that is neither in the data directory nor fetchable now. */
export class DatasetUnavailableError extends UserError {
  constructor(
    readonly dataset: string,
    /** The folder it was looked for in. */
    readonly folder: string,
    /** Why it could not be fetched, short enough for a log line. */
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DatasetUnavailableError';
  }
}

function unavailable(name: string, folder: string, option: string | undefined, error: unknown): DatasetUnavailableError {
  const reason =
    error instanceof HubUnreachableError
      ? `${error.endpoint} cannot be reached (${error.detail})`
      : error instanceof Error
        ? ((error as NodeJS.ErrnoException).code ?? error.message)
        : String(error);
  const origin = dataDirOrigin(option);
  // The two ways out: data that is already somewhere, or one download on a machine with internet.
  const elsewhere = option
    ? `point --data-dir (or HEALING_DATA_DIR) at a folder that has ${name}/`
    : `set HEALING_DATA_DIR to a folder that has ${name}/`;
  const download = `healing download-dataset ${name}${option ? ` --data-dir ${option}` : ''}`;
  return new DatasetUnavailableError(
    name,
    folder,
    reason,
    `dataset ${name} is not in ${folder} (${origin}) and cannot be fetched: ${reason}. ` +
      `Either ${elsewhere} (its info.json and .jsonl splits), or run \`${download}\` with internet`,
    { cause: error },
  );
}

/** The line `healing download-dataset` prints per split, and a fetch on first use too. */
export function describeSplit(name: string, s: SplitSummary): string {
  const note = s.skipped ? 'skipped (no labelled rows)' : `${s.rows} rows -> ${s.file}`;
  const drops = s.dropped.unlabelled + s.dropped.emptyText;
  return `${name}/${s.split}: ${note}${drops ? ` (dropped ${s.dropped.unlabelled} unlabelled, ${s.dropped.emptyText} empty)` : ''}`;
}

async function readInfoIfThere(folder: string): Promise<DatasetInfo | undefined> {
  try {
    await stat(join(folder, 'info.json'));
  } catch {
    return undefined;
  }
  return readInfo(join(folder, 'info.json'));
}

/**
 * The hub splits still to fetch into `folder`: every labelled split when there is no info.json (what
 * download-dataset fetches), else those of `wanted` that info.json lacks; undefined when none. A split the
 * hub does not have is not fetched: loading it fails later, naming the splits there are.
 */
async function splitsToFetch(folder: string, entry: DatasetEntry, hub: HubSource, wanted?: readonly string[]): Promise<string[] | undefined> {
  const info = await readInfoIfThere(folder);
  if (!info) return Object.keys(hub.files);
  const missing = (wanted ?? [entry.trainSplit, entry.evalSplit]).filter((s) => s in hub.files && !(s in info.splits));
  return missing.length > 0 ? [...new Set(missing)] : undefined;
}

export interface EnsureDatasetOptions {
  /** --data-dir (default HEALING_DATA_DIR, else defaultDataDir()). */
  dataDir?: string;
  /** The splits the caller will read (default: the registry's train and evaluation splits). */
  splits?: readonly string[];
  /** Where the fetch says what it does (default: stderr). */
  log?: Log;
}

/**
 * The folder holding a registry dataset: an embedded sample's own, or <dataDir>/<name>, fetched from the
 * hub first when it is not there (with download-dataset's progress bar and checks). Throws
 * DatasetUnavailableError, naming the folder and the two fixes, when the fetch fails.
 */
export async function ensureDataset(name: string, options: EnsureDatasetOptions = {}): Promise<string> {
  const entry = datasetEntry(name);
  if (entry.source.kind === 'embedded') return entry.source.dir;
  const hub = entry.source;
  const dir = dataDir(options.dataDir);
  const folder = join(dir, entry.name);
  if ((await splitsToFetch(folder, entry, hub, options.splits)) === undefined) return folder;
  const log = options.log ?? stderrLog;
  try {
    await withFetchLock(dir, entry.name, log, async () => {
      // Asked again under the lock: another process may have fetched it while this one waited.
      const splits = await splitsToFetch(folder, entry, hub, options.splits);
      if (splits === undefined) return;
      log(
        `${name}: not in ${folder} (${dataDirOrigin(options.dataDir)}); fetching it from ` +
          `${hubEndpoint()}/datasets/${entry.hubId} on first use, as \`healing download-dataset ${name}\` does`,
      );
      const summary = await downloadDataset(name, { dataDir: dir, splits });
      for (const s of summary.splits) log(describeSplit(name, s));
    });
  } catch (error) {
    // Anything the user can act on (no network, a hub error, an unwritable folder) makes the dataset
    // unavailable; a bug stays a bug.
    if (error instanceof UserError || typeof (error as NodeJS.ErrnoException)?.code === 'string') {
      throw unavailable(name, folder, options.dataDir, error);
    }
    throw error;
  }
  return folder;
}

const LOCK_POLL_MS = 300;
/** A lock without its owner file yet is being taken; past this age its taker died in between. */
const UNOWNED_LOCK_MS = 10_000;
/** A lock held from another machine (whose processes cannot be asked) is taken over after this: its owner's lease. */
const FOREIGN_LOCK_MS = 60 * 60 * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a fetch lock's owner is gone, by the same rule as run claims (src/io/ownership.ts). */
async function lockAbandoned(lock: string): Promise<boolean> {
  let found = readOwnerFile(join(lock, 'owner.json'));
  if (!found) {
    try {
      found = { claim: undefined, heartbeatMs: (await stat(lock)).mtimeMs };
    } catch {
      return false; // Gone already: the next mkdir tells.
    }
  }
  return ownerStaleness(found, { host: hostname(), now: Date.now(), leaseMs: UNOWNED_LOCK_MS, alive: pidAlive }).stale;
}

/**
 * Runs `fn` while holding <dir>/.<name>.fetching: grid workers that all need a missing dataset fetch it
 * once, the others wait (two writers on one hub cache file would corrupt it). A lock whose process died
 * (kill -9) is taken over.
 */
async function withFetchLock(dir: string, name: string, log: Log, fn: () => Promise<void>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const lock = join(dir, `.${name}.fetching`);
  let said = false;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await lockAbandoned(lock)) {
      await rm(lock, { recursive: true, force: true });
      continue;
    }
    if (!said) {
      log(`${name}: another process is fetching it into ${dir}; waiting for it`);
      said = true;
    }
    await sleep(LOCK_POLL_MS);
  }
  try {
    await writeFile(join(lock, 'owner.json'), JSON.stringify(ownerRecord(FOREIGN_LOCK_MS)));
    await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** The part of a dataset spec this module reads (src/experiment/spec.ts's DatasetSpec has it). */
export interface DatasetRef {
  name?: string;
  evalSplit?: string;
  trainSize?: number;
  evalSize?: number;
}

export interface PrepareDatasetsOptions {
  dataDir?: string;
  /** Stand-ins by name, taken when a dataset is unavailable (e.g. a preset's { sst2: 'sst2-sample' }). */
  fallbacks?: Readonly<Record<string, string>>;
  log?: Log;
}

const count = (n: number) => n.toLocaleString('en-US');

async function infoOf(name: string, dataDirOption: string | undefined): Promise<DatasetInfo> {
  return readInfo(join(await ensureDataset(name, { dataDir: dataDirOption }), 'info.json'));
}

async function describeStandIn(name: string, dataDirOption: string | undefined): Promise<string> {
  const entry = datasetEntry(name);
  const info = await infoOf(name, dataDirOption);
  const rows = (split: string) => `${count(info.splits[split]?.rows ?? 0)} ${split}`;
  const kind = entry.source.kind === 'embedded' ? 'the embedded sample ' : '';
  return `${kind}${name}: ${rows(entry.trainSplit)} / ${rows(entry.evalSplit)}`;
}

/**
 * Readies the registry datasets a list of experiments names before any of them runs (in the parent, so
 * a grid's workers find them in place): each is found or fetched once; one that is unavailable is
 * replaced by its stand-in in `fallbacks` (logged, with why), or fails here rather than in every run.
 * Subset sizes are checked against the splits: an evaluation size above the split's rows warns once per
 * dataset (all of them are used, and each result row records how many), a training size above it is an
 * error. Returns the items, with stand-ins' names where they replace a dataset.
 */
export async function prepareDatasets<T extends { dataset: DatasetRef }>(
  items: readonly T[],
  options: PrepareDatasetsOptions = {},
): Promise<T[]> {
  const log = options.log ?? stderrLog;
  const splitsByName = new Map<string, Set<string>>();
  for (const { dataset } of items) {
    if (dataset.name === undefined) continue;
    const entry = datasetEntry(dataset.name);
    const splits = splitsByName.get(entry.name) ?? new Set([entry.trainSplit]);
    splits.add(dataset.evalSplit === HELDOUT_SPLIT ? entry.trainSplit : dataset.evalSplit ?? entry.evalSplit);
    splitsByName.set(entry.name, splits);
  }
  const used = new Map<string, string>();
  for (const [name, splits] of splitsByName) {
    try {
      await ensureDataset(name, { dataDir: options.dataDir, splits: [...splits], log });
      used.set(name, name);
    } catch (error) {
      const standIn = options.fallbacks?.[name];
      if (!(error instanceof DatasetUnavailableError) || standIn === undefined) throw error;
      const what = await describeStandIn(standIn, options.dataDir);
      log(`${name} not available here (no copy in ${error.folder}, and ${error.reason}); using ${what}`);
      used.set(name, standIn);
    }
  }
  const prepared = items.map((item) => {
    const name = item.dataset.name;
    const to = name === undefined ? undefined : used.get(name);
    return to === undefined || to === name ? item : { ...item, dataset: { ...item.dataset, name: to } };
  });
  await checkSizes(prepared, options.dataDir, log);
  return prepared;
}

async function checkSizes(items: ReadonlyArray<{ dataset: DatasetRef }>, dataDirOption: string | undefined, log: Log): Promise<void> {
  const infos = new Map<string, DatasetInfo>();
  const warned = new Set<string>();
  for (const { dataset } of items) {
    if (dataset.name === undefined) continue;
    const entry = datasetEntry(dataset.name);
    let info = infos.get(entry.name);
    if (!info) {
      info = await infoOf(entry.name, dataDirOption);
      infos.set(entry.name, info);
    }
    const trainRows = info.splits[entry.trainSplit]?.rows;
    if (dataset.trainSize !== undefined && trainRows !== undefined && dataset.trainSize > trainRows) {
      // A training subset larger than the data would be recorded (and hashed) as an experiment that never ran.
      throw new UserError(`train size ${count(dataset.trainSize)}: ${entry.name} has only ${count(trainRows)} ${entry.trainSplit} examples`);
    }
    const evalSplit = dataset.evalSplit === HELDOUT_SPLIT ? entry.trainSplit : dataset.evalSplit ?? entry.evalSplit;
    const evalRows = info.splits[evalSplit]?.rows;
    const key = `${entry.name}\n${evalSplit}\n${dataset.evalSize}`;
    if (dataset.evalSize !== undefined && evalRows !== undefined && dataset.evalSize > evalRows && !warned.has(key)) {
      warned.add(key);
      log(`warning: ${entry.name}: ${count(evalRows)} evaluation examples available, ${count(dataset.evalSize)} asked; using ${count(evalRows)}`);
    }
  }
}
