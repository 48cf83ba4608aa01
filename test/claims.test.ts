import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Claims, claimsDir, claimStaleness, ClaimSchema, type Claim } from '../src/experiment/claims';
import { createIdentityResolver } from '../src/experiment/identity';
import { appendResult, readResults } from '../src/experiment/store';
import { exited, lastJson, startRun } from './helpers/cli-process';
import { fakeRunRow } from './helpers/fake-runner';
import { fakeSpecs, identityHashes, rawHashes } from './helpers/grid-runs';
import { tempDirs } from './helpers/tmpdirs';

const fakeRunner = fileURLToPath(new URL('./helpers/fake-runner.ts', import.meta.url));
const tmp = tempDirs('claims');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pid that existed and has exited (a kill -9'd owner's, as far as a claim can tell). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

/** A claim file as another process would have left it, with its heartbeat `ageMs` ago. */
function leaveClaim(dir: string, hash: string, claim: Partial<Claim>, ageMs = 0): string {
  mkdirSync(dir, { recursive: true });
  const full: Claim = { pid: 4242, host: 'elsewhere.example', startedAt: new Date(Date.now() - ageMs).toISOString(), token: `left-${hash}`, leaseMs: 300_000, ...claim };
  const path = join(dir, hash);
  writeFileSync(path, JSON.stringify(full));
  const t = new Date(Date.now() - ageMs);
  utimesSync(path, t, t);
  return path;
}

test('staleness: a dead pid on this host at once; elsewhere only when the heartbeat is older than the owner\'s lease', () => {
  const claim: Claim = { pid: 10, host: 'a', startedAt: '', token: 't', leaseMs: 60_000 };
  const here = { host: 'a', now: 1_000_000, leaseMs: 5_000, alive: (pid: number) => pid !== 10 };
  assert.match(claimStaleness({ claim, heartbeatMs: here.now }, here).reason, /pid 10 on a is not running/);
  assert.equal(claimStaleness({ claim, heartbeatMs: here.now }, here).stale, true);
  const alive = { ...here, alive: () => true };
  assert.equal(claimStaleness({ claim, heartbeatMs: here.now - 59_000 }, alive).stale, false, "the owner's 60 s lease, not ours of 5 s");
  assert.equal(claimStaleness({ claim, heartbeatMs: here.now - 61_000 }, alive).stale, true, 'a live pid with a dead heartbeat (pid reuse, a hang)');
  const remote = { ...claim, host: 'b' };
  assert.equal(claimStaleness({ claim: remote, heartbeatMs: here.now - 30_000 }, here).stale, false, 'another host: pids say nothing');
  assert.match(claimStaleness({ claim: remote, heartbeatMs: here.now - 61_000 }, here).reason, /no heartbeat for 61 s \(lease 60 s\)/);
  // A claim still being written (or garbled) goes by its mtime and our lease.
  assert.equal(claimStaleness({ claim: undefined, heartbeatMs: here.now - 1_000 }, here).stale, false);
  assert.equal(claimStaleness({ claim: undefined, heartbeatMs: here.now - 6_000 }, here).stale, true);
  // Our own pid on our host, but a token we do not hold: an earlier process that had our pid.
  const mine = { ...claim, host: 'a', pid: process.pid };
  assert.equal(claimStaleness({ claim: mine, heartbeatMs: here.now }, { ...alive, ownTokens: new Set(['other']) }).stale, true);
  assert.equal(claimStaleness({ claim: mine, heartbeatMs: here.now }, { ...alive, ownTokens: new Set(['t']) }).stale, false);
});

test('a claim is one O_EXCL file with owner and lease; others see it held; release removes only our own', () => {
  const dir = join(tmp(), 'results.jsonl.claims');
  const a = new Claims(dir, { leaseMs: 60_000 });
  const b = new Claims(dir, { leaseMs: 60_000 });
  assert.deepEqual(a.tryClaim('h1'), { ok: true });
  const claim = ClaimSchema.parse(JSON.parse(readFileSync(join(dir, 'h1'), 'utf8')));
  assert.deepEqual({ pid: claim.pid, host: claim.host, leaseMs: claim.leaseMs }, { pid: process.pid, host: hostname(), leaseMs: 60_000 });
  assert.ok(Number.isFinite(Date.parse(claim.startedAt)));
  const held = b.tryClaim('h1');
  assert.ok(!held.ok && /held by pid/.test(held.reason), 'a live claim is not taken');
  assert.ok(a.holds('h1') && !b.holds('h1'));
  b.release('h1');
  assert.ok(existsSync(join(dir, 'h1')), "releasing a claim one does not hold leaves it alone");
  a.release('h1');
  assert.ok(!existsSync(join(dir, 'h1')));
  assert.deepEqual(b.tryClaim('h1'), { ok: true }, 'free again');
  b.releaseAll();
  assert.deepEqual(readdirSync(dir), []);
});

test('the heartbeat refreshes the mtime well within the lease; a claim taken over is reported lost', async () => {
  const dir = join(tmp(), 'claims');
  const lost: string[] = [];
  const claims = new Claims(dir, { leaseMs: 1_000, onLost: (h) => lost.push(h) });
  assert.equal(claims.heartbeatMs, 100);
  claims.tryClaim('h1');
  claims.tryClaim('h2');
  const old = new Date(Date.now() - 10_000);
  utimesSync(join(dir, 'h1'), old, old);
  await sleep(350);
  assert.ok(Date.now() - statSync(join(dir, 'h1')).mtimeMs < 300, 'refreshed');
  // Someone judged us dead and replaced the claim: the next beat notices, and release keeps theirs.
  leaveClaim(dir, 'h2', { token: 'theirs' });
  await sleep(350);
  assert.deepEqual(lost, ['h2']);
  assert.ok(!claims.holds('h2'));
  claims.releaseAll();
  assert.equal(JSON.parse(readFileSync(join(dir, 'h2'), 'utf8')).token, 'theirs');
  assert.ok(!existsSync(join(dir, 'h1')));
});

test('stale claims are taken over once: a dead pid on this host, an old heartbeat from another host; a half-written claim waits', () => {
  const dir = join(tmp(), 'claims');
  leaveClaim(dir, 'dead', { pid: deadPid(), host: hostname() });
  leaveClaim(dir, 'old', { host: 'elsewhere.example' }, 10 * 60_000);
  leaveClaim(dir, 'fresh', { host: 'elsewhere.example' }, 1_000);
  writeFileSync(join(dir, 'writing'), '');
  const a = new Claims(dir);
  const b = new Claims(dir);
  const dead = a.tryClaim('dead');
  assert.ok(dead.ok && /is not running/.test(dead.tookOver ?? ''), JSON.stringify(dead));
  const old = a.tryClaim('old');
  assert.ok(old.ok && /elsewhere\.example: no heartbeat for 600 s \(lease 300 s\)/.test(old.tookOver ?? ''), JSON.stringify(old));
  assert.equal(b.tryClaim('dead').ok, false, 'the new claim is live: nobody takes it over again');
  assert.equal(b.tryClaim('fresh').ok, false);
  assert.equal(b.tryClaim('writing').ok, false);
  assert.equal(JSON.parse(readFileSync(join(dir, 'old'), 'utf8')).pid, process.pid);
  assert.ok(!existsSync(join(dir, 'old.takeover')), 'the takeover lock is gone');
  a.releaseAll();
});

test('sweep removes stale claims on stored runs only (a process killed between append and release)', () => {
  const dir = join(tmp(), 'claims');
  leaveClaim(dir, 'stored-dead', { pid: deadPid(), host: hostname() });
  leaveClaim(dir, 'stored-dead.takeover', { pid: deadPid(), host: hostname() });
  leaveClaim(dir, 'stored-live', { host: 'elsewhere.example' });
  leaveClaim(dir, 'pending-dead', { pid: deadPid(), host: hostname() });
  const claims = new Claims(dir);
  assert.equal(claims.sweep(new Set(['stored-dead', 'stored-live'])), 2);
  assert.deepEqual(readdirSync(dir).sort(), ['pending-dead', 'stored-live'], 'a pending run keeps its claim for the takeover; a live one is left alone');
  assert.equal(new Claims(join(tmp(), 'none')).sweep(new Set(['x'])), 0, 'no claims directory yet');
});

/** Waits for `ready()` (polling), failing after `seconds`: process start-up is slow on a loaded machine. */
async function until(what: string, ready: () => boolean, seconds = 600): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!ready()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${seconds} s`);
    await sleep(50);
  }
}

/** The pids owning the claims in `dir` now. */
function claimPids(dir: string): Set<number> {
  if (!existsSync(dir)) return new Set();
  return new Set(
    readdirSync(dir).flatMap((name) => {
      try {
        return [ClaimSchema.parse(JSON.parse(readFileSync(join(dir, name), 'utf8'))).pid];
      } catch {
        return [];
      }
    }),
  );
}

test('two `healing run` processes on one store split the runs: each stored exactly once, both did work', async () => {
  const dir = tmp();
  const results = join(dir, 'results.jsonl');
  const grid = join(dir, 'grid.json');
  const gate = join(dir, 'gate');
  const specs = fakeSpecs(6);
  writeFileSync(grid, JSON.stringify({ model: 'tiny', datasets: ['sst2'], seeds: [0, 1, 2, 3, 4, 5] }));
  const args = ['--grid', grid, '--workers', '1', '--results', results, '--runner', fakeRunner, '--claim-lease', '10'];
  // Runs hold until the gate opens, so both processes are seen with a run in flight at once
  // however slowly each starts; after that they share what is left.
  const env = { FAKE_RUNNER_SLEEP_MS: '400', FAKE_RUNNER_GATE: gate, HEALING_PROGRESS: '0' };
  const children = [startRun(args, env), startRun(args, env)];
  const exits = Promise.all(children.map(exited));
  await until('both processes claimed a run', () => claimPids(claimsDir(results)).size === 2);
  writeFileSync(gate, '');
  const [a, b] = await exits;
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const [sa, sb] = [lastJson(a), lastJson(b)];
  assert.deepEqual(rawHashes(results).sort(), (await identityHashes(specs)).sort(), 'every run exactly once');
  assert.equal(sa.ran + sb.ran, 6);
  assert.ok(sa.ran > 0 && sb.ran > 0, `both processes ran some (${sa.ran} + ${sb.ran})`);
  assert.equal(sa.ran + sa.skipped + sa.elsewhere, 6, 'each accounts for every run');
  assert.equal(sb.ran + sb.skipped + sb.elsewhere, 6);
  assert.equal(new Set(readResults(results).rows.map((r) => r.workerPid)).size, 2, "rows come from both processes' workers");
  assert.deepEqual(readdirSync(claimsDir(results)), [], 'every claim released');
});

test('claims left by killed processes are taken over; a run stored by another process meanwhile is not run again', async () => {
  const dir = tmp();
  const results = join(dir, 'results.jsonl');
  const grid = join(dir, 'grid.json');
  const specs = fakeSpecs(5);
  writeFileSync(grid, JSON.stringify({ model: 'tiny', datasets: ['sst2'], seeds: [0, 1, 2, 3, 4] }));
  const hashes = await identityHashes(specs);
  const claims = claimsDir(results);
  leaveClaim(claims, hashes[0], { pid: deadPid(), host: hostname() });
  leaveClaim(claims, hashes[1], { host: 'node-7.cluster' }, 20 * 60_000);
  // Alive (heartbeating) until the grid has stored 2 runs, silent from then on: it expires while
  // the grid waits at the end, which must then take it over.
  const fading = leaveClaim(claims, hashes[2], { host: 'node-8.cluster', leaseMs: 10_000 });
  // Held by a live process that finishes it while we run: we must not run it too.
  const busy = leaveClaim(claims, hashes[3], { host: 'node-9.cluster', leaseMs: 600_000 });
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimesSync(fading, now, now);
    utimesSync(busy, now, now);
  }, 500);
  const args = ['--grid', grid, '--workers', '1', '--results', results, '--runner', fakeRunner, '--claim-lease', '2'];
  const done = exited(startRun(args, { FAKE_RUNNER_SLEEP_MS: '300', HEALING_PROGRESS: '0' }));
  try {
    await until('the grid stored 2 runs', () => existsSync(results) && rawHashes(results).length >= 2);
  } finally {
    clearInterval(heartbeat);
  }
  // The other process appends its row, then releases its claim (the order the pool keeps).
  appendResult(results, await fakeRunRow(specs[3], createIdentityResolver()));
  unlinkSync(busy);
  const exit = await done;
  assert.equal(exit.code, 0, exit.stderr);
  const summary = lastJson(exit);
  assert.deepEqual({ ran: summary.ran, elsewhere: summary.elsewhere, failed: summary.failed }, { ran: 4, elsewhere: 1, failed: 0 }, exit.stderr);
  assert.equal((exit.stderr.match(/took over a stale claim/g) ?? []).length, 3, exit.stderr);
  assert.match(exit.stderr, /is not running/);
  assert.match(exit.stderr, /node-7\.cluster: no heartbeat/);
  assert.match(exit.stderr, /node-8\.cluster: no heartbeat for \d+ s \(lease 10 s\)/, 'taken over after the wait, once its lease ran out');
  assert.deepEqual(rawHashes(results).sort(), [...hashes].sort(), 'every run exactly once');
  assert.deepEqual(readdirSync(claims), []);
});
