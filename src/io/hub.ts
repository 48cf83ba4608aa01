import { createHash } from 'node:crypto';
import { constants, createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { access, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors';
import { createProgress } from '../progress';

/**
 * Downloads from the Hugging Face hub, following huggingface_hub's conventions so that a user's
 * existing cache is reused and ours is readable by Python:
 *
 *   endpoint  HF_ENDPOINT (default https://huggingface.co)
 *   files     <endpoint>/<repo>/resolve/<revision>/<file>            (models)
 *             <endpoint>/datasets/<repo>/resolve/<revision>/<file>   (datasets)
 *   cache     HF_HUB_CACHE, else <HF_HOME>/hub, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface or
 *             ~/.cache/huggingface
 *   layout    <cache>/<models|datasets>--<org>--<name>/
 *               refs/<revision>                    the commit a branch/tag resolved to
 *               snapshots/<commit>/<file>          the files (regular files, not blob symlinks)
 *               blobs/<etag>.incomplete            partial downloads, resumed with a Range request
 *               .no_exist/<commit>/<file>          remembered 404s, so optional files cost no request
 *   token     HF_TOKEN, else the file <HF_HOME>/token
 *   offline   HF_HUB_OFFLINE=1: never touch the network; serve from the cache or fail clearly
 *
 * A file already in the snapshot of the commit a revision last resolved to is a cache hit and makes no
 * request (pass `force` to re-check a moving branch).
 */

export type RepoType = 'model' | 'dataset';

export interface HubOptions {
  /** Defaults to hubEndpoint(). */
  endpoint?: string;
  /** Defaults to hubCacheDir(). */
  cacheDir?: string;
  /** Defaults to hubToken(); null sends no token. */
  token?: string | null;
}

/** One progress event of a download: reported as bytes arrive, from what is on disk up to the file's size. */
export interface DownloadProgress {
  /** Path of the file inside the repository, e.g. "model.safetensors". */
  filename: string;
  /** Bytes of the file received so far (a resumed download starts at what it already had). */
  downloaded: number;
  /** The file's size in bytes; undefined when the server reports no size. */
  total: number | undefined;
}

export interface DownloadFileOptions extends HubOptions {
  repoId: string;
  repoType?: RepoType;
  revision?: string;
  /** Path of the file inside the repository, e.g. "data/train-00000-of-00001.parquet". */
  filename: string;
  /** Write to <destDir>/<filename> instead of the cache snapshot. */
  destDir?: string;
  /** Called as bytes arrive; without it a progress bar is drawn (createProgress). */
  onProgress?: (progress: DownloadProgress) => void;
  /** Ignore a cached copy and ask the hub again. */
  force?: boolean;
  /** How often a dropped connection is resumed before giving up. */
  retries?: number;
}

/** A file the hub says does not exist (HTTP 404 / EntryNotFound): optional files are allowed to be missing. */
export class HubEntryNotFoundError extends UserError {
  constructor(
    readonly repoId: string,
    readonly filename: string,
    readonly revision: string,
    readonly url: string,
  ) {
    super(`${repoId} has no file ${filename} at revision ${revision} (${url} answered 404)`);
    this.name = 'HubEntryNotFoundError';
  }
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';
const COMMIT = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** $XDG_CACHE_HOME, else ~/.cache: the hub cache and the project's datasets both live under it. */
export function userCacheDir(): string {
  return process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
}

export function hfHome(): string {
  if (process.env.HF_HOME) return resolve(process.env.HF_HOME);
  return join(userCacheDir(), 'huggingface');
}

export function hubCacheDir(): string {
  return process.env.HF_HUB_CACHE ? resolve(process.env.HF_HUB_CACHE) : join(hfHome(), 'hub');
}

export function hubToken(): string | undefined {
  if (process.env.HF_TOKEN) return process.env.HF_TOKEN;
  const file = join(hfHome(), 'token');
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').trim() || undefined;
}

export function isRepoId(value: string): boolean {
  return REPO_ID.test(value) && !value.includes('..');
}

/** The cache folder of one repository, e.g. <cache>/models--google-bert--bert-base-uncased. */
export function repoCacheDir(repoId: string, repoType: RepoType = 'model', cacheDir = hubCacheDir()): string {
  return join(cacheDir, `${repoType}s--${repoId.replace(/\//g, '--')}`);
}

export function resolveUrl(endpoint: string, repoId: string, repoType: RepoType, revision: string, filename: string): string {
  const prefix = repoType === 'dataset' ? 'datasets/' : '';
  const path = filename.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${prefix}${repoId}/resolve/${encodeURIComponent(revision)}/${path}`;
}

function offline(): boolean {
  const v = process.env.HF_HUB_OFFLINE;
  return v === '1' || v?.toLowerCase() === 'true';
}

/**
 * A revision names a branch, tag, commit or a hub ref such as refs/pr/3, and becomes a path in the cache
 * (refs/<revision>, snapshots/<revision>): git's ref-name rules keep it there. No "..", no absolute path
 * or backslash, no empty or dot-led component, no control characters or the characters git forbids.
 */
export function checkRevision(revision: string): void {
  const parts = revision.split('/');
  const bad =
    revision === '' ||
    revision.length > 255 ||
    revision.startsWith('/') ||
    revision.endsWith('/') ||
    revision.endsWith('.lock') ||
    revision.includes('..') ||
    revision.includes('@{') ||
    /[\x00-\x20\x7f~^:?*[\\]/.test(revision) ||
    parts.some((p) => p === '' || p.startsWith('.'));
  if (bad) {
    throw new UserError(`--revision ${JSON.stringify(revision)}: not a branch, tag or commit (no "..", no absolute path, no backslash or special characters)`);
  }
}

function checkFilename(filename: string): void {
  if (!filename || filename.startsWith('/') || filename.split('/').some((p) => p === '..' || p === '')) {
    throw new UserError(`invalid file name in a hub repository: ${JSON.stringify(filename)}`);
  }
}

async function readRef(repoDir: string, revision: string): Promise<string | undefined> {
  if (COMMIT.test(revision)) return revision;
  try {
    const commit = (await readFile(join(repoDir, 'refs', revision), 'utf8')).trim();
    return commit || undefined;
  } catch {
    return undefined;
  }
}

async function atomicWrite(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}

interface FileMeta {
  commit?: string;
  etag?: string;
  size?: number;
}

/** Strips quotes and the weak-validator prefix: the hub sends `"<sha256>"` or `W/"<git sha1>"`. */
function cleanEtag(value: string | null): string | undefined {
  if (!value) return undefined;
  return value.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

/** The hub could not be reached at all (no network, DNS, refused): callers that have a fallback look for this. */
export class HubUnreachableError extends UserError {
  constructor(
    readonly endpoint: string,
    readonly url: string,
    /** The system's reason, e.g. ENOTFOUND or ECONNREFUSED. */
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`cannot reach ${endpoint} (offline?) while fetching ${url}: ${detail}`, options);
    this.name = 'HubUnreachableError';
  }
}

function networkError(endpoint: string, url: string, error: unknown): UserError {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const detail = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  return new HubUnreachableError(endpoint, url, detail, { cause: error });
}

function httpError(response: Response, ctx: { repoId: string; revision: string; filename: string; url: string }): UserError {
  const code = response.headers.get('x-error-code');
  const status = response.status;
  if (code === 'RepoNotFound' || (status === 401 && code !== 'GatedRepo')) {
    return new UserError(
      `repository ${ctx.repoId} not found at ${ctx.url} (HTTP ${status}); a private or gated repository needs HF_TOKEN`,
    );
  }
  if (code === 'RevisionNotFound') return new UserError(`revision ${ctx.revision} not found in ${ctx.repoId} (${ctx.url})`);
  if (code === 'GatedRepo' || status === 403) {
    return new UserError(`access to ${ctx.repoId} is restricted (HTTP ${status} for ${ctx.url}): accept its terms on the hub and set HF_TOKEN`);
  }
  if (status === 404) return new HubEntryNotFoundError(ctx.repoId, ctx.filename, ctx.revision, ctx.url);
  return new UserError(`${ctx.url} answered HTTP ${status} ${response.statusText}`);
}

function authHeaders(token: string | null | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * HEAD without following redirects to other hosts: the hub answers LFS files with a 302 to its CDN whose
 * own headers no longer carry X-Linked-Size / X-Linked-Etag. Relative redirects (renamed repos) are followed.
 */
async function headMeta(url: string, endpoint: string, headers: Record<string, string>): Promise<Response> {
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    let response: Response;
    try {
      response = await fetch(current, { method: 'HEAD', headers: { ...headers, 'accept-encoding': 'identity' }, redirect: 'manual' });
    } catch (error) {
      throw networkError(endpoint, current, error);
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, current);
      if (next.origin === new URL(current).origin && !response.headers.get('x-linked-size')) {
        current = next.href;
        continue;
      }
    }
    return response;
  }
  throw new UserError(`too many redirects while fetching ${url}`);
}

async function sha256OfFile(file: string): Promise<{ hash: ReturnType<typeof createHash>; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  if (!existsSync(file)) return { hash, size };
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash, size };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Streams `url` into `partial`, resuming from its current length with a Range request and again after
 * a dropped connection (up to `retries` times). Verifies the size and, for LFS files, the sha256.
 */
async function fetchInto(
  url: string,
  partial: string,
  meta: FileMeta,
  ctx: { endpoint: string; headers: Record<string, string>; retries: number; report: (downloaded: number) => void; repoId: string; revision: string; filename: string },
): Promise<void> {
  await mkdir(dirname(partial), { recursive: true });
  let restartedFromZero = false;
  for (let attempt = 0; ; attempt++) {
    const { hash, size: offset } = await sha256OfFile(partial);
    if (meta.size !== undefined && offset > meta.size) {
      await rm(partial, { force: true });
      continue;
    }
    let downloaded = offset;
    ctx.report(downloaded);
    const headers: Record<string, string> = { ...ctx.headers, 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    let response: Response;
    try {
      response = await fetch(url, { headers, redirect: 'follow' });
    } catch (error) {
      if (attempt < ctx.retries && offset > 0) {
        await sleep(200 * (attempt + 1));
        continue;
      }
      throw networkError(ctx.endpoint, url, error);
    }
    if (response.status === 416 && offset > 0) {
      // Our partial file is as long as the file or longer: verify it as is, or start over once.
      await response.body?.cancel();
      if (meta.size === offset) break;
      if (restartedFromZero) throw new UserError(`${url} refuses range requests for a partial download`);
      restartedFromZero = true;
      await rm(partial, { force: true });
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw httpError(response, { ...ctx, url });
    }
    const file = await open(partial, response.status === 206 ? 'a' : 'w');
    let streamHash = hash;
    if (response.status !== 206) {
      // The server ignored the Range header and sends everything.
      streamHash = createHash('sha256');
      downloaded = 0;
    } else {
      const range = response.headers.get('content-range');
      const start = range ? Number(/bytes (\d+)-/.exec(range)?.[1]) : offset;
      if (start !== offset) {
        await file.close();
        await response.body?.cancel();
        throw new UserError(`${url} answered a request for bytes ${offset}- with ${range}`);
      }
    }
    let dropped: unknown;
    try {
      if (response.body) {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          await file.write(chunk);
          streamHash.update(chunk);
          downloaded += chunk.length;
          ctx.report(downloaded);
        }
      }
    } catch (error) {
      dropped = error;
    } finally {
      await file.close();
    }
    const short = meta.size !== undefined && downloaded < meta.size;
    if (dropped !== undefined || short) {
      if (attempt < ctx.retries) {
        await sleep(200 * (attempt + 1));
        continue;
      }
      const cause = (dropped as { cause?: { code?: string } } | undefined)?.cause?.code;
      throw new UserError(
        `the connection to ${ctx.endpoint} dropped after ${downloaded}${meta.size !== undefined ? ` of ${meta.size}` : ''} bytes ` +
          `while fetching ${url}${cause ? ` (${cause})` : ''}; run the command again to resume`,
        { cause: dropped },
      );
    }
    if (meta.size !== undefined && downloaded !== meta.size) {
      await rm(partial, { force: true });
      throw new UserError(`${url}: received ${downloaded} bytes but the hub reports ${meta.size}; the partial file was removed`);
    }
    if (meta.etag && SHA256.test(meta.etag)) {
      const digest = streamHash.digest('hex');
      if (digest !== meta.etag) {
        await rm(partial, { force: true });
        throw new UserError(`${url}: sha256 ${digest} does not match the hub's ${meta.etag}; the file was removed`);
      }
    }
    return;
  }
  // Reached from the 416 branch with a partial file of exactly the right size.
  if (meta.etag && SHA256.test(meta.etag)) {
    const { hash } = await sha256OfFile(partial);
    const digest = hash.digest('hex');
    if (digest !== meta.etag) {
      await rm(partial, { force: true });
      throw new UserError(`${url}: sha256 ${digest} does not match the hub's ${meta.etag}; the file was removed`);
    }
  }
}

interface Fetched {
  path: string;
  /** The commit (or, when the hub reports none, the revision name) the file belongs to. */
  snapshot: string;
  /** The folder the repository's files land in: destDir, or the snapshot folder. */
  root: string;
}

async function fetchFile(options: DownloadFileOptions): Promise<Fetched> {
  const { repoId, filename } = options;
  const repoType = options.repoType ?? 'model';
  const revision = options.revision ?? 'main';
  const endpoint = (options.endpoint ?? hubEndpoint()).replace(/\/+$/, '');
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const token = options.token === undefined ? hubToken() : options.token;
  if (!isRepoId(repoId)) throw new UserError(`not a hub repository id: ${JSON.stringify(repoId)} (expected "name" or "org/name")`);
  checkRevision(revision);
  checkFilename(filename);
  const repoDir = repoCacheDir(repoId, repoType, cacheDir);
  const url = resolveUrl(endpoint, repoId, repoType, revision, filename);

  const known = (await readRef(repoDir, revision)) ?? revision;
  const rootOf = (snapshot: string) => options.destDir ?? join(repoDir, 'snapshots', snapshot);
  const cachedPath = join(rootOf(known), filename);
  if (!options.force && existsSync(cachedPath)) return { path: cachedPath, snapshot: known, root: rootOf(known) };
  const noExist = join(repoDir, '.no_exist', known, filename);
  if (!options.force && !options.destDir && existsSync(noExist)) throw new HubEntryNotFoundError(repoId, filename, revision, url);
  if (offline()) {
    throw new UserError(`HF_HUB_OFFLINE is set and ${repoId}/${filename} (revision ${revision}) is not in the cache ${repoDir}`);
  }

  // The cache must be writable before anything is fetched; otherwise the error would name a temp file
  // deep inside it and not the variable that chose it.
  try {
    await mkdir(repoDir, { recursive: true });
    await access(repoDir, constants.W_OK);
  } catch (error) {
    const chosenBy = options.cacheDir ? 'the cache directory given' : process.env.HF_HUB_CACHE ? 'HF_HUB_CACHE' : process.env.HF_HOME ? 'HF_HOME' : 'the default HF_HOME (~/.cache/huggingface)';
    throw new UserError(`${repoDir}: the hub cache is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); it is set by ${chosenBy}`);
  }
  const headers = authHeaders(token);
  const head = await headMeta(url, endpoint, headers);
  const commit = head.headers.get('x-repo-commit') ?? undefined;
  const snapshot = commit && COMMIT.test(commit) ? commit : known;
  if (snapshot !== revision && !COMMIT.test(revision)) await atomicWrite(join(repoDir, 'refs', revision), snapshot);
  if (!head.ok && !(head.status >= 300 && head.status < 400)) {
    const error = httpError(head, { repoId, revision, filename, url });
    if (error instanceof HubEntryNotFoundError && !options.destDir) {
      await atomicWrite(join(repoDir, '.no_exist', snapshot, filename), '');
    }
    throw error;
  }
  // A redirect's own Content-Length and ETag describe the redirect, not the file.
  const direct = head.ok;
  const sizeHeader = head.headers.get('x-linked-size') ?? (direct ? head.headers.get('content-length') : null);
  const meta: FileMeta = {
    commit,
    etag: cleanEtag(head.headers.get('x-linked-etag') ?? (direct ? head.headers.get('etag') : null)),
    size: sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined,
  };

  const finalPath = join(rootOf(snapshot), filename);
  if (!options.force && existsSync(finalPath)) return { path: finalPath, snapshot, root: rootOf(snapshot) };
  // Keyed by etag so resumed bytes always belong to the same content.
  const partial = meta.etag && !options.destDir
    ? join(repoDir, 'blobs', `${meta.etag}.incomplete`)
    : `${finalPath}.incomplete`;

  const progressBar = options.onProgress
    ? undefined
    : createProgress({ label: `download ${filename}`, total: toMB(meta.size ?? 0), unit: 'MB' });
  const report = (downloaded: number) => {
    if (options.onProgress) options.onProgress({ filename, downloaded, total: meta.size });
    else progressBar?.update(toMB(downloaded));
  };
  try {
    await fetchInto(url, partial, meta, { endpoint, headers, retries: options.retries ?? 3, report, repoId, revision, filename });
  } finally {
    progressBar?.stop();
  }
  await mkdir(dirname(finalPath), { recursive: true });
  await rename(partial, finalPath);
  return { path: finalPath, snapshot, root: rootOf(snapshot) };
}

const toMB = (bytes: number) => Math.round(bytes / 1e5) / 10;

/** Downloads one file (or finds it in the cache) and returns its local path. */
export async function downloadFile(options: DownloadFileOptions): Promise<string> {
  return (await fetchFile(options)).path;
}

export interface DownloadModelOptions extends HubOptions {
  revision?: string;
  /** Write the files to this folder instead of the cache. */
  destDir?: string;
  /** Exactly these files, all required (default: the files a BERT checkpoint needs). */
  files?: string[];
  force?: boolean;
  onProgress?: (progress: DownloadProgress) => void;
}

export const MODEL_FILES = {
  required: ['config.json'],
  /** The first of these the repository has is downloaded. */
  weights: ['model.safetensors', 'pytorch_model.bin'],
  /** At least one of vocab.txt / tokenizer.json must exist. */
  tokenizer: ['vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'],
} as const;

/**
 * Downloads a checkpoint's files into the cache and returns the snapshot directory. config.json goes
 * first: it fails fast on a wrong repo id, and the commit it resolves pins every other file, so a push
 * to the hub halfway through cannot mix two versions.
 */
export async function downloadModel(repoId: string, options: DownloadModelOptions = {}): Promise<string> {
  const base = { ...options, repoId, repoType: 'model' as const };
  const first = await fetchFile({ ...base, filename: options.files?.[0] ?? 'config.json' });
  const pinned = { ...base, revision: first.snapshot };
  const dir = first.root;
  if (options.files) {
    for (const filename of options.files.slice(1)) await fetchFile({ ...pinned, filename });
    return dir;
  }
  const found: string[] = [];
  for (const filename of MODEL_FILES.tokenizer) {
    try {
      await fetchFile({ ...pinned, filename });
      found.push(filename);
    } catch (error) {
      if (!(error instanceof HubEntryNotFoundError)) throw error;
    }
  }
  if (!found.includes('vocab.txt') && !found.includes('tokenizer.json')) {
    // forward and corrupt need no tokenizer; commands that tokenize say so when they load it.
    process.stderr.write(
      `warning: ${repoId} (revision ${options.revision ?? 'main'}) has neither vocab.txt nor tokenizer.json: ` +
        'healing forward and corrupt work on it, commands that tokenize text (finetune, evaluate, fill-mask, tokenize) will not\n',
    );
  }
  // safetensors where the hub has it; else the pickle, which older repositories (Google's BERT miniatures)
  // have alone and the loader reads without running it.
  for (const filename of MODEL_FILES.weights) {
    try {
      await fetchFile({ ...pinned, filename });
      return dir;
    } catch (error) {
      if (!(error instanceof HubEntryNotFoundError)) throw error;
    }
  }
  throw new UserError(
    `${repoId} (revision ${options.revision ?? 'main'}) has neither ${MODEL_FILES.weights.join(' nor ')}; sharded ` +
      `checkpoints and TensorFlow/Flax weights are not supported — pick a repository or revision with one of those files`,
  );
}

/**
 * The `--model` argument: an existing local directory as is, otherwise a hub repository id, downloaded
 * into the cache (a complete cached snapshot makes no request).
 */
export async function resolveModel(modelArg: string, options: DownloadModelOptions = {}): Promise<string> {
  if (existsSync(modelArg)) {
    if (!statSync(modelArg).isDirectory()) {
      throw new UserError(`--model ${modelArg} is a file; expected a checkpoint directory or a hub repository id`);
    }
    return resolve(modelArg);
  }
  const looksLikePath = /^(\.|~|\/)/.test(modelArg) || modelArg.includes('\\') || modelArg.split('/').length > 2;
  if (looksLikePath || !isRepoId(modelArg)) {
    throw new UserError(`--model ${modelArg}: no such directory, and not a hub repository id ("name" or "org/name")`);
  }
  return downloadModel(modelArg, options);
}

/** Bytes on disk of a finished download, for summaries. */
export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
