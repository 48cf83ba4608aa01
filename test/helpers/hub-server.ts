import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * A stand-in for the Hugging Face hub on 127.0.0.1: serves `root/<repo>/<path>` at
 *   /<repo>/resolve/<revision>/<path>            (models)
 *   /datasets/<repo>/resolve/<revision>/<path>   (datasets)
 * with the hub's headers: X-Repo-Commit on every answer; "LFS" files (default: larger than 1 kB)
 * answer the resolve URL with a 302 to a /cdn/ URL carrying X-Linked-Size and X-Linked-Etag (sha256),
 * small files are served directly with a git-style ETag. GET honours `Range: bytes=N-`. Missing
 * files answer 404 with X-Error-Code EntryNotFound, missing repositories RepoNotFound.
 */

export interface Fault {
  /** Send only this many bytes of the body, then destroy the socket. */
  dropAfter?: number;
  /** Serve the content with one byte flipped (the headers stay those of the real file). */
  flipByte?: boolean;
  /** Report this size in X-Linked-Size (the hub's metadata) instead of the real one; the CDN stays honest. */
  reportSize?: number;
  /** How many GETs the fault applies to (default: all). */
  times?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export interface HubServer {
  endpoint: string;
  commit: string;
  requests: LoggedRequest[];
  /** Faults keyed by the path inside the repository, e.g. "model.safetensors". */
  faults: Map<string, Fault>;
  close(): Promise<void>;
}

export interface HubServerOptions {
  root: string;
  commit?: string;
  /** Which files behave like LFS files. */
  isLfs?: (path: string, size: number) => boolean;
}

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const commit = options.commit ?? createHash('sha1').update(options.root).digest('hex');
  const isLfs = options.isLfs ?? ((_path: string, size: number) => size > 1000);
  const requests: LoggedRequest[] = [];
  const faults = new Map<string, Fault>();

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    res.setHeader('x-repo-commit', commit);

    if (segments[0] === 'cdn') {
      const inRepo = url.searchParams.get('path') ?? '';
      const file = url.searchParams.get('file') ?? '';
      return serveBytes(req, res, file, inRepo, faults);
    }
    const datasets = segments[0] === 'datasets';
    const rest = datasets ? segments.slice(1) : segments;
    const at = rest.indexOf('resolve');
    if (at < 1 || rest.length < at + 3) {
      res.writeHead(400).end('bad path');
      return;
    }
    const repo = rest.slice(0, at).join('/');
    const inRepo = rest.slice(at + 2).join('/');
    if (!existsSync(join(options.root, repo))) {
      res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end('Repository not found');
      return;
    }
    const file = join(options.root, repo, inRepo);
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    const size = statSync(file).size;
    const fault = faults.get(inRepo);
    if (isLfs(inRepo, size)) {
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      const cdn = `/cdn/${sha}?file=${encodeURIComponent(file)}&path=${encodeURIComponent(inRepo)}`;
      res.writeHead(302, {
        location: cdn,
        'x-linked-size': String(fault?.reportSize ?? size),
        'x-linked-etag': `"${sha}"`,
        etag: `"${createHash('sha1').update(inRepo).digest('hex')}"`,
      });
      res.end();
      return;
    }
    serveBytes(req, res, file, inRepo, faults, `W/"${gitBlobSha1(readFileSync(file))}"`);
  };

  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    commit,
    requests,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function gitBlobSha1(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

function serveBytes(
  req: IncomingMessage,
  res: ServerResponse,
  file: string,
  inRepo: string,
  faults: Map<string, Fault>,
  etag?: string,
): void {
  let content = readFileSync(file);
  const fault = faults.get(inRepo);
  const active = fault && (fault.times === undefined || fault.times > 0) && req.method === 'GET';
  if (active && fault.times !== undefined) fault.times--;
  if (active && fault.flipByte) {
    content = Buffer.from(content);
    content[Math.floor(content.length / 2)] ^= 0xff;
  }
  const headers: Record<string, string> = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  if (etag) headers.etag = etag;
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range) {
    start = Number(range[1]);
    if (start >= content.length) {
      res.writeHead(416, { 'content-range': `bytes */${content.length}` }).end();
      return;
    }
    headers['content-range'] = `bytes ${start}-${content.length - 1}/${content.length}`;
  }
  const body = content.subarray(start);
  headers['content-length'] = String(body.length);
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (active && fault.dropAfter !== undefined) {
    res.write(body.subarray(0, fault.dropAfter), () => {
      setTimeout(() => res.socket?.destroy(), 20);
    });
    return;
  }
  res.end(body);
}

/** A port nothing listens on: bind, read the port, close. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
