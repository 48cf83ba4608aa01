import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatResults, resultLines } from '../src/cli/results';
import { provenance } from '../src/experiment/provenance';
import { withRecovery } from '../src/experiment/recovery';
import type { ResultRow } from '../src/experiment/spec';
import { appendResult, readResults } from '../src/experiment/store';
import { fakeRow } from './helpers/fake-runner';

const made: string[] = [];
const tmp = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'healing-store-'));
  made.push(dir);
  return dir;
};
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});
const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);

test('appended rows read back equal, one line each, creating directories', () => {
  const file = join(tmp(), 'nested', 'dir', 'results.jsonl');
  const a = fakeRow({ dataset: { name: 'sst2' }, seed: 0 });
  const b = fakeRow({ dataset: { name: 'sst2' }, corruption: { layers: 'top:1' }, seed: 0 });
  appendResult(file, a);
  appendResult(file, b);
  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  assert.equal(lines(file).length, 2);
  const out = readResults(file);
  assert.deepEqual(out.rows, [a, b]);
  assert.equal(out.torn, 0);
  assert.deepEqual(out.invalid, []);
});

test('a missing store is an empty store', () => {
  const out = readResults(join(tmp(), 'none.jsonl'));
  assert.deepEqual(out, { rows: [], torn: 0, invalid: [], duplicates: 0 });
});

test('a torn last line is ignored, and the next append starts on a clean line', () => {
  const file = join(tmp(), 'results.jsonl');
  const rows = [0, 1, 2].map((seed) => fakeRow({ dataset: { name: 'emotion' }, seed }));
  appendResult(file, rows[0]);
  appendResult(file, rows[1]);
  // What a crash in the middle of a write leaves: the first half of a line, no newline.
  const whole = JSON.stringify(rows[2]);
  appendFileSync(file, whole.slice(0, Math.floor(whole.length / 2)));
  const torn = readResults(file);
  assert.deepEqual(torn.rows.map((r) => r.hash), [rows[0].hash, rows[1].hash]);
  assert.equal(torn.torn, 1);

  appendResult(file, rows[2]);
  const after = readResults(file);
  assert.deepEqual(after.rows, rows);
  assert.equal(after.torn, 1, 'the fragment stays (append-only) and keeps being skipped');
  const raw = lines(file);
  assert.equal(raw.length, 4);
  assert.deepEqual(JSON.parse(raw[3]), rows[2], 'the new line is whole, not glued to the fragment');
});

test('lines that are JSON but not result rows are reported with their line number, never fatal', () => {
  const file = join(tmp(), 'results.jsonl');
  const good = fakeRow({ dataset: { name: 'sst2' } });
  writeFileSync(file, `${JSON.stringify({ hello: 'world' })}\n\n${JSON.stringify(good)}\n${JSON.stringify({ ...good, status: 'weird' })}\n`);
  const out = readResults(file);
  assert.deepEqual(out.rows, [good]);
  assert.deepEqual(out.invalid.map((i) => i.line), [1, 4]);
  assert.match(out.invalid[1].error, /status/);
});

test('shard stores merge by concatenation: readers dedupe by hash, first wins', () => {
  const dir = tmp();
  const shared = fakeRow({ dataset: { name: 'sst2' }, seed: 5 }, 0.9);
  const onlyA = fakeRow({ dataset: { name: 'sst2' }, seed: 6 });
  const onlyB = fakeRow({ dataset: { name: 'sst2' }, seed: 7 });
  appendResult(join(dir, 'a.jsonl'), shared);
  appendResult(join(dir, 'a.jsonl'), onlyA);
  appendResult(join(dir, 'b.jsonl'), { ...shared, final: { accuracy: 0.1, macroF1: 0.1 } });
  appendResult(join(dir, 'b.jsonl'), onlyB);
  const merged = join(dir, 'merged.jsonl');
  writeFileSync(merged, readFileSync(join(dir, 'a.jsonl'), 'utf8') + readFileSync(join(dir, 'b.jsonl'), 'utf8'));
  const out = readResults(merged);
  assert.deepEqual(out.rows.map((r) => r.hash), [shared.hash, onlyA.hash, onlyB.hash]);
  assert.equal(out.rows[0].final.accuracy, 0.9);
  assert.equal(out.duplicates, 1);
});

test('a diverged run stores NaN metrics as null and reads back', () => {
  const file = join(tmp(), 'results.jsonl');
  const row = fakeRow({ dataset: { name: 'sst2' } }, Number.NaN, { status: 'diverged', divergedAt: { epoch: 0, step: 3 } });
  appendResult(file, row);
  const [back] = readResults(file).rows;
  assert.equal(back.status, 'diverged');
  assert.equal(back.final.accuracy, null);
  assert.deepEqual(back.divergedAt, { epoch: 0, step: 3 });
});

test('an invalid row is refused and the store is left untouched', () => {
  const file = join(tmp(), 'results.jsonl');
  appendResult(file, fakeRow({ dataset: { name: 'sst2' } }));
  const before = readFileSync(file, 'utf8');
  const bad = { ...fakeRow({ dataset: { name: 'sst2' }, seed: 1 }), hash: 'not-a-hash' } as ResultRow;
  assert.throws(() => appendResult(file, bad), /hash/);
  assert.equal(readFileSync(file, 'utf8'), before);
});

test('extra fields from newer runners survive a round trip', () => {
  const file = join(tmp(), 'results.jsonl');
  const row = { ...fakeRow({ dataset: { name: 'sst2' } }), cka: [0.9, 0.8] } as ResultRow;
  appendResult(file, row);
  assert.deepEqual(readResults(file).rows[0].cka, [0.9, 0.8]);
});

test('recovery = corrupted accuracy / clean accuracy of the same dataset, model, recipe and seed', () => {
  const base = { model: 'tiny', dataset: { name: 'sst2', trainSize: 100 } };
  const clean0 = fakeRow({ ...base, seed: 0 }, 0.8);
  const clean1 = fakeRow({ ...base, seed: 1 }, 0.9);
  const bottom0 = fakeRow({ ...base, seed: 0, corruption: { layers: 'bottom:1' } }, 0.6);
  const top1 = fakeRow({ ...base, seed: 1, corruption: { layers: 'top:1' } }, 0.81);
  // No clean partner: different subset size, different seed, or only a from-scratch "clean" run.
  const otherSize = fakeRow({ ...base, dataset: { name: 'sst2', trainSize: 200 }, corruption: { layers: 'top:1' } }, 0.5);
  const seed2 = fakeRow({ ...base, seed: 2, corruption: { layers: 'top:1' } }, 0.5);
  const scratchClean = fakeRow({ ...base, seed: 3, fromScratch: true }, 0.5);
  const seed3 = fakeRow({ ...base, seed: 3, corruption: { layers: 'top:1' } }, 0.4);
  const input = [bottom0, clean0, top1, clean1, otherSize, seed2, scratchClean, seed3];
  const snapshot = JSON.stringify(input);
  const out = withRecovery(input);
  assert.equal(JSON.stringify(input), snapshot, 'pure: inputs untouched');
  assert.equal(out[0].recovery, 0.6 / 0.8);
  assert.equal(out[0].gap, 0.8 - 0.6);
  assert.equal(out[0].cleanHash, clean0.hash);
  assert.equal(out[1].recovery, 1);
  assert.equal(out[2].recovery, 0.81 / 0.9);
  for (const i of [4, 5, 6, 7]) assert.equal(out[i].recovery, undefined, `row ${i}`);
});

test('results table/csv/json carry one line per run with recovery', () => {
  const clean = fakeRow({ dataset: { name: 'sst2' } }, 0.8);
  const corrupted = fakeRow({ dataset: { name: 'sst2' }, corruption: { layers: 'bottom:2' } }, 0.4);
  const rows = resultLines(withRecovery([clean, corrupted]));
  const csv = formatResults(rows, 'csv').trim().split('\n');
  assert.equal(csv.length, 3);
  const header = csv[0].split(',');
  const second = Object.fromEntries(csv[2].split(',').map((v, i) => [header[i], v]));
  assert.equal(second.corruption, 'bottom:2/all/reinit');
  assert.equal(Number(second.recovery), 0.5);
  assert.equal(Number(second.accuracy), 0.4);
  const json = JSON.parse(formatResults(rows, 'json'));
  assert.equal(json[0].recovery, 1);
  const table = formatResults(rows, 'table').trim().split('\n');
  assert.equal(table.length, 3);
  assert.match(table[2], /sst2\s+bottom:2\/all\/reinit\s+0\s+0\.4000\s+0\.4000\s+0\.5000\s+ok/);
});

test('provenance names this package version, node, and the git commit (or unknown)', async () => {
  const p = await provenance();
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(p.packageVersion, pkg.version);
  assert.equal(p.node, process.version);
  assert.ok(p.host.length > 0);
  assert.equal(p.backend, 'unknown', 'no engine was initialised in this process');
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' });
  assert.equal(p.gitCommit, git.status === 0 ? git.stdout.trim() : 'unknown');
  assert.ok(existsSync(new URL('../package.json', import.meta.url)));
});
