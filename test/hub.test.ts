import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../src/errors';
import {
  downloadFile,
  downloadModel,
  hubCacheDir,
  hubEndpoint,
  repoCacheDir,
  resolveModel,
  HubEntryNotFoundError,
  checkRevision,
} from '../src/io/hub';
import { downloadDataset } from '../src/data/parquet';
import { loadTokenizer } from '../src/tokenizer/tokenizer';
import { closedPort, startHubServer, type HubServer } from './helpers/hub-server';

const REPO = 'tiny-org/tiny-bert';
const work = mkdtempSync(join(tmpdir(), 'healing-hub-'));
const hubRoot = join(work, 'hub');
const weights = randomBytes(300_000);
const onlyBin = randomBytes(2000);
const config = JSON.stringify({ model_type: 'bert', hidden_size: 8 });
const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'hello'].join('\n');
let server: HubServer;
let cache: string;
const savedEnv = { ...process.env };

before(async () => {
  mkdirSync(join(hubRoot, REPO), { recursive: true });
  writeFileSync(join(hubRoot, REPO, 'config.json'), config);
  writeFileSync(join(hubRoot, REPO, 'model.safetensors'), weights);
  writeFileSync(join(hubRoot, REPO, 'vocab.txt'), vocab);
  mkdirSync(join(hubRoot, 'tiny-org/only-bin'), { recursive: true });
  writeFileSync(join(hubRoot, 'tiny-org/only-bin/config.json'), config);
  writeFileSync(join(hubRoot, 'tiny-org/only-bin/vocab.txt'), vocab);
  writeFileSync(join(hubRoot, 'tiny-org/only-bin/pytorch_model.bin'), onlyBin);
  mkdirSync(join(hubRoot, 'tiny-org/no-weights'), { recursive: true });
  writeFileSync(join(hubRoot, 'tiny-org/no-weights/config.json'), config);
  writeFileSync(join(hubRoot, 'tiny-org/no-weights/vocab.txt'), vocab);
  mkdirSync(join(hubRoot, 'tiny-org/no-tokenizer'), { recursive: true });
  writeFileSync(join(hubRoot, 'tiny-org/no-tokenizer/config.json'), config);
  writeFileSync(join(hubRoot, 'tiny-org/no-tokenizer/model.safetensors'), weights);
  mkdirSync(join(hubRoot, 'some-org/some-data/data'), { recursive: true });
  writeFileSync(join(hubRoot, 'some-org/some-data/data/train.parquet'), randomBytes(5000));
  server = await startHubServer({ root: hubRoot });
});

after(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  for (const key of ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HF_TOKEN', 'HF_HUB_OFFLINE']) delete process.env[key];
  Object.assign(process.env, { HEALING_PROGRESS: '0' });
  cache = mkdtempSync(join(work, 'home-'));
  process.env.HF_HOME = cache;
  process.env.HF_ENDPOINT = server.endpoint;
  server.requests.length = 0;
  server.faults.clear();
});

after(() => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('endpoint and cache follow HF_ENDPOINT / HF_HOME / HF_HUB_CACHE', () => {
  process.env.HF_ENDPOINT = 'https://hub.example.org/';
  assert.equal(hubEndpoint(), 'https://hub.example.org');
  delete process.env.HF_ENDPOINT;
  assert.equal(hubEndpoint(), 'https://huggingface.co');
  assert.equal(hubCacheDir(), join(cache, 'hub'));
  process.env.HF_HUB_CACHE = join(work, 'elsewhere');
  assert.equal(hubCacheDir(), join(work, 'elsewhere'));
  assert.equal(repoCacheDir('google-bert/bert-base-uncased', 'model', '/c'), '/c/models--google-bert--bert-base-uncased');
  assert.equal(repoCacheDir('stanfordnlp/sst2', 'dataset', '/c'), '/c/datasets--stanfordnlp--sst2');
});

test('downloadModel fetches the checkpoint into a huggingface_hub-style snapshot; optional 404s are fine', async () => {
  const dir = await downloadModel(REPO);
  const repoDir = join(cache, 'hub', 'models--tiny-org--tiny-bert');
  assert.equal(dir, join(repoDir, 'snapshots', server.commit));
  assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), server.commit);
  assert.deepEqual(readFileSync(join(dir, 'model.safetensors')), weights);
  assert.equal(readFileSync(join(dir, 'config.json'), 'utf8'), config);
  assert.equal(readFileSync(join(dir, 'vocab.txt'), 'utf8'), vocab);
  assert.equal(existsSync(join(dir, 'tokenizer.json')), false);
  assert.ok(existsSync(join(repoDir, '.no_exist', server.commit, 'tokenizer.json')), 'a 404 is remembered');
  // No partial files left behind.
  const blobs = join(repoDir, 'blobs');
  assert.deepEqual(existsSync(blobs) ? readdirSync(blobs).filter((f) => f.endsWith('.incomplete')) : [], []);
  // The weights went through the LFS path: a redirect to the CDN, then the CDN.
  assert.ok(server.requests.some((r) => r.path.startsWith('/cdn/')));
  assert.ok(server.requests.every((r) => r.path.startsWith(`/${REPO}/resolve/main/`) || r.path.startsWith(`/${REPO}/resolve/${server.commit}/`) || r.path.startsWith('/cdn/')));
});

test('a complete cached model makes no request (resolveModel by repo id)', async () => {
  const first = await resolveModel(REPO);
  server.requests.length = 0;
  const again = await resolveModel(REPO);
  assert.equal(again, first);
  assert.deepEqual(server.requests, []);
  // HF_HUB_OFFLINE: still served from the cache.
  process.env.HF_HUB_OFFLINE = '1';
  assert.equal(await resolveModel(REPO), first);
  assert.deepEqual(server.requests, []);
});

test('resolveModel: a local directory is used as is; a missing path is a clear error', async () => {
  const local = mkdtempSync(join(work, 'local-'));
  assert.equal(await resolveModel(local), local);
  assert.deepEqual(server.requests, []);
  await assert.rejects(resolveModel('./no/such/dir'), (e: Error) => e instanceof UserError && /no such directory/.test(e.message));
  await assert.rejects(resolveModel(join(hubRoot, REPO, 'config.json')), /is a file/);
});

test('a dropped connection is resumed with a Range request within one call', async () => {
  server.faults.set('model.safetensors', { dropAfter: 100_000, times: 1 });
  const path = await downloadFile({ repoId: REPO, filename: 'model.safetensors' });
  assert.deepEqual(readFileSync(path), weights);
  const gets = server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/cdn/'));
  assert.equal(gets.length, 2);
  assert.equal(gets[0].range, undefined);
  const resumedFrom = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1]);
  assert.ok(resumedFrom > 0 && resumedFrom <= 100_000, `resumed from ${gets[1].range}`);
});

test('an interrupted download leaves an .incomplete file that the next call resumes', async () => {
  server.faults.set('model.safetensors', { dropAfter: 120_000, times: 1 });
  await assert.rejects(downloadFile({ repoId: REPO, filename: 'model.safetensors', retries: 0 }), (e: Error) => e instanceof UserError);
  const repoDir = join(cache, 'hub', 'models--tiny-org--tiny-bert');
  const partial = join(repoDir, 'blobs', `${sha256(weights)}.incomplete`);
  assert.ok(existsSync(partial));
  const have = statSync(partial).size;
  assert.ok(have > 0 && have < weights.length);
  assert.equal(existsSync(join(repoDir, 'snapshots', server.commit, 'model.safetensors')), false);

  server.requests.length = 0;
  const path = await downloadFile({ repoId: REPO, filename: 'model.safetensors' });
  assert.deepEqual(readFileSync(path), weights);
  const get = server.requests.find((r) => r.method === 'GET');
  assert.equal(get?.range, `bytes=${have}-`);
  assert.equal(existsSync(partial), false);
});

test('a sha256 mismatch is an error and leaves no file behind', async () => {
  server.faults.set('model.safetensors', { flipByte: true });
  await assert.rejects(
    downloadFile({ repoId: REPO, filename: 'model.safetensors' }),
    (e: Error) => e instanceof UserError && e.message.includes('sha256') && e.message.includes(sha256(weights)),
  );
  const repoDir = join(cache, 'hub', 'models--tiny-org--tiny-bert');
  assert.equal(existsSync(join(repoDir, 'snapshots', server.commit, 'model.safetensors')), false);
  assert.equal(existsSync(join(repoDir, 'blobs', `${sha256(weights)}.incomplete`)), false);
});

test('a size mismatch is an error and leaves no file behind', async () => {
  server.faults.set('model.safetensors', { reportSize: weights.length - 10 });
  await assert.rejects(
    downloadFile({ repoId: REPO, filename: 'model.safetensors' }),
    (e: Error) => e instanceof UserError && e.message.includes(`${weights.length - 10}`),
  );
  const repoDir = join(cache, 'hub', 'models--tiny-org--tiny-bert');
  assert.equal(existsSync(join(repoDir, 'snapshots', server.commit, 'model.safetensors')), false);
  const blobs = join(repoDir, 'blobs');
  assert.deepEqual(existsSync(blobs) ? readdirSync(blobs) : [], []);
});

test('HF_TOKEN is sent as a bearer token', async () => {
  process.env.HF_TOKEN = 'hf_test_secret';
  await downloadFile({ repoId: REPO, filename: 'config.json' });
  assert.ok(server.requests.length >= 2);
  for (const r of server.requests) assert.equal(r.authorization, 'Bearer hf_test_secret');
  delete process.env.HF_TOKEN;
  server.requests.length = 0;
  await downloadFile({ repoId: REPO, filename: 'vocab.txt' });
  for (const r of server.requests) assert.equal(r.authorization, undefined);
});

test('offline: a clear message naming the endpoint and the URL', async () => {
  const endpoint = `http://127.0.0.1:${await closedPort()}`;
  process.env.HF_ENDPOINT = endpoint;
  await assert.rejects(downloadModel(REPO), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /^cannot reach http:\/\/127\.0\.0\.1:\d+ \(offline\?\) while fetching /);
    assert.ok(e.message.includes(`${endpoint}/${REPO}/resolve/main/config.json`));
    return true;
  });
  process.env.HF_HUB_OFFLINE = '1';
  await assert.rejects(downloadModel(REPO), /HF_HUB_OFFLINE is set/);
});

test('a repository with only pytorch_model.bin downloads it; one with neither weight file names the repo and both', async () => {
  const dir = await downloadModel('tiny-org/only-bin');
  assert.deepEqual(readFileSync(join(dir, 'pytorch_model.bin')), onlyBin);
  assert.equal(existsSync(join(dir, 'model.safetensors')), false);
  await assert.rejects(downloadModel('tiny-org/no-weights'), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.ok(e.message.includes('tiny-org/no-weights'));
    assert.ok(e.message.includes('model.safetensors') && e.message.includes('pytorch_model.bin'));
    return true;
  });
  await assert.rejects(downloadModel('tiny-org/absent'), /repository tiny-org\/absent not found/);
  await assert.rejects(
    downloadFile({ repoId: REPO, filename: 'nope.json' }),
    (e: Error) => e instanceof HubEntryNotFoundError && e.message.includes('nope.json'),
  );
});

test('datasets use /datasets/<repo>/resolve/<rev>/<file>; destDir writes outside the cache', async () => {
  const dest = mkdtempSync(join(work, 'dest-'));
  const path = await downloadFile({
    repoId: 'some-org/some-data',
    repoType: 'dataset',
    revision: 'v1.0',
    filename: 'data/train.parquet',
    destDir: dest,
  });
  assert.equal(path, join(dest, 'data/train.parquet'));
  assert.deepEqual(readFileSync(path), readFileSync(join(hubRoot, 'some-org/some-data/data/train.parquet')));
  assert.equal(server.requests[0].path, '/datasets/some-org/some-data/resolve/v1.0/data/train.parquet');
  assert.equal(existsSync(join(cache, 'hub', 'datasets--some-org--some-data', 'snapshots')), false);
});

test('onProgress reports monotone byte counts up to the size', async () => {
  const seen: number[] = [];
  await downloadFile({
    repoId: REPO,
    filename: 'model.safetensors',
    onProgress: (p) => {
      assert.equal(p.total, weights.length);
      seen.push(p.downloaded);
    },
  });
  assert.equal(seen.at(-1), weights.length);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1]);
});

test('a revision that would leave the cache is refused before any request or write', async () => {
  const outside = join(work, 'outside');
  for (const revision of ['../../../../outside', '/etc', 'a/../../b', 'main\\..\\x', '.hidden', 'a//b', 'x\nname']) {
    await assert.rejects(downloadModel(REPO, { revision }), (error: unknown) => error instanceof UserError && /--revision .*not a branch, tag or commit/.test(error.message), revision);
    await assert.rejects(downloadDataset('sst2', { dataDir: join(work, 'datasets'), revision }), (error: unknown) => error instanceof UserError && /--revision/.test(error.message), `dataset ${revision}`);
  }
  assert.equal(server.requests.length, 0, 'no request was made');
  assert.equal(existsSync(outside), false, 'nothing written outside the cache');
  assert.equal(existsSync(join(cache, 'hub')), false, 'nothing written in the cache either');
  // What huggingface_hub accepts still works: branches with slashes, hub PR refs, tags, full commits.
  for (const ok of ['main', 'v1.0', 'feature/x', 'refs/pr/3', 'a'.repeat(40)]) checkRevision(ok);
});

test('an unusable hub cache is named with the variable that chose it, before any request', async () => {
  const notADir = join(work, 'hf-home-is-a-file');
  writeFileSync(notADir, 'x');
  process.env.HF_HOME = notADir;
  await assert.rejects(downloadModel(REPO), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.match(error.message, /hf-home-is-a-file\/hub\/models--tiny-org--tiny-bert: the hub cache is not writable \(ENOTDIR\); it is set by HF_HOME/);
    return true;
  });
  assert.equal(server.requests.length, 0);
});

test('a repository without tokenizer files downloads with a warning (forward needs none); tokenizing it is the error', async () => {
  const warnings: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    warnings.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let dir: string;
  try {
    dir = await downloadModel('tiny-org/no-tokenizer');
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(readFileSync(join(dir, 'model.safetensors')), weights);
  assert.ok(warnings.some((w) => /no-tokenizer .*has neither vocab\.txt nor tokenizer\.json: healing forward and corrupt work/.test(w)), warnings.join(''));
  await assert.rejects(loadTokenizer(dir), (error: unknown) => error instanceof UserError && /no tokenizer found/.test(error.message));
});
