import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { z } from 'zod';
import { register as registerResults } from '../src/cli/results';
import { register as registerRun, resultsFileFor } from '../src/cli/run';
import { UserError } from '../src/errors';
import { expandGrid, shardOf } from '../src/experiment/grid';
import { rowHash } from '../src/experiment/identity';
import { planMerge } from '../src/experiment/merge';
import { K8S_INDEX_VAR, resolveShard, SHARD_COUNT_VAR, SLURM_ARRAY_VARS, shardResultsFile } from '../src/experiment/shard';
import { appendResult, readResults } from '../src/experiment/store';
import { captureOutput } from './helpers/capture-output';
import { exited, lastJson, startCommand, startRun } from './helpers/cli-process';
import { fakeRow } from './helpers/fake-runner';
import { identityHashes, rawHashes } from './helpers/grid-runs';
import { tempDirs } from './helpers/tmpdirs';
import { parseYamlSubset } from './helpers/yaml-subset';

const fakeRunner = fileURLToPath(new URL('./helpers/fake-runner.ts', import.meta.url));
const docs = fileURLToPath(new URL('../docs/cluster/', import.meta.url));
const tmp = tempDirs('cluster');

/** The variables Slurm sets in task `id` of `sbatch --array=min-max`. */
function slurmEnv(id: number, min: number, max: number): Record<string, string> {
  const V = SLURM_ARRAY_VARS;
  return { [V.id]: String(id), [V.min]: String(min), [V.max]: String(max), [V.count]: String(max - min + 1), [V.step]: '1', SLURM_ARRAY_JOB_ID: '77', SLURM_JOB_ID: '78' };
}

const rejects = (text: string, env: Record<string, string>, pattern: RegExp, shardCount?: string): void =>
  assert.throws(() => resolveShard(text, { env, shardCount }), (e: unknown) => e instanceof UserError && pattern.test(e.message), `${JSON.stringify(env)} -> ${pattern}`);

test('--shard auto under Slurm: ID - MIN of COUNT, whatever the first ID; strides, lists and strays are refused by name', () => {
  assert.deepEqual(resolveShard('auto', { env: slurmEnv(0, 0, 3) }), { index: 1, count: 4, source: 'SLURM_ARRAY_TASK_ID=0 - SLURM_ARRAY_TASK_MIN=0 of SLURM_ARRAY_TASK_COUNT=4' });
  assert.deepEqual([1, 2, 3, 4].map((id) => resolveShard('auto', { env: slurmEnv(id, 1, 4) }).index), [1, 2, 3, 4]);
  assert.equal(resolveShard(' AUTO ', { env: slurmEnv(12, 10, 13) }).index, 3);
  assert.equal(resolveShard('auto', { env: slurmEnv(2, 1, 4), shardCount: '4' }).count, 4, 'an agreeing --shard-count is fine');
  rejects('auto', slurmEnv(2, 1, 4), /--shard-count 3 disagrees with SLURM_ARRAY_TASK_COUNT=4/, '3');
  rejects('auto', { ...slurmEnv(4, 0, 12), SLURM_ARRAY_TASK_STEP: '4', SLURM_ARRAY_TASK_COUNT: '4' }, /SLURM_ARRAY_TASK_STEP=4: an array with a stride/);
  rejects('auto', { ...slurmEnv(3, 1, 7), SLURM_ARRAY_TASK_COUNT: '3' }, /SLURM_ARRAY_TASK_MIN=1, SLURM_ARRAY_TASK_MAX=7 but SLURM_ARRAY_TASK_COUNT=3: .*not one consecutive range/);
  const { SLURM_ARRAY_TASK_MAX: _max, ...noMax } = slurmEnv(9, 1, 4);
  rejects('auto', noMax, /SLURM_ARRAY_TASK_ID=9 is outside SLURM_ARRAY_TASK_MIN\.\.SLURM_ARRAY_TASK_MIN\+SLURM_ARRAY_TASK_COUNT-1 \(1\.\.4\)/);
  const { SLURM_ARRAY_TASK_MIN: _min, ...noMin } = slurmEnv(2, 1, 4);
  rejects('auto', noMin, /SLURM_ARRAY_TASK_MIN is not set/);
  rejects('auto', { ...slurmEnv(2, 1, 4), SLURM_ARRAY_TASK_COUNT: 'four' }, /SLURM_ARRAY_TASK_COUNT="four" is not a non-negative integer/);
  rejects('auto', { SLURM_JOB_ID: '5' }, /not a job array \(SLURM_ARRAY_TASK_ID is not set\)/);
  rejects('auto', {}, /neither SLURM_ARRAY_TASK_ID .* nor JOB_COMPLETION_INDEX .* is set/);
  rejects('auto', { ...slurmEnv(1, 1, 4), JOB_COMPLETION_INDEX: '0' }, /both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set/);
});

test('--shard auto in a Kubernetes Indexed Job: JOB_COMPLETION_INDEX of --shard-count or HEALING_SHARD_COUNT', () => {
  assert.deepEqual(resolveShard('auto', { env: { JOB_COMPLETION_INDEX: '0', HEALING_SHARD_COUNT: '4' } }), { index: 1, count: 4, source: 'JOB_COMPLETION_INDEX=0 of HEALING_SHARD_COUNT=4' });
  assert.deepEqual(resolveShard('auto', { env: { JOB_COMPLETION_INDEX: '2' }, shardCount: '3' }), { index: 3, count: 3, source: 'JOB_COMPLETION_INDEX=2 of --shard-count 3' });
  rejects('auto', { JOB_COMPLETION_INDEX: '1' }, /no shard count: .*set HEALING_SHARD_COUNT .* or pass --shard-count N/);
  rejects('auto', { JOB_COMPLETION_INDEX: '4', HEALING_SHARD_COUNT: '4' }, /JOB_COMPLETION_INDEX=4 is outside 0\.\.3 \(HEALING_SHARD_COUNT=4\)/);
  rejects('auto', { JOB_COMPLETION_INDEX: '1', HEALING_SHARD_COUNT: '4' }, /--shard-count 3 disagrees with HEALING_SHARD_COUNT=4/, '3');
  rejects('auto', { JOB_COMPLETION_INDEX: '1', HEALING_SHARD_COUNT: '0' }, /HEALING_SHARD_COUNT "0" is not a positive integer/);
  rejects('auto', { JOB_COMPLETION_INDEX: '-1', HEALING_SHARD_COUNT: '4' }, /JOB_COMPLETION_INDEX="-1"/);
  // i/n stays as it was; --shard-count belongs to auto.
  assert.deepEqual(resolveShard('2/4', { env: { JOB_COMPLETION_INDEX: '0' } }), { index: 2, count: 4, source: '--shard 2/4' });
  rejects('2/4', {}, /--shard-count goes with --shard auto/, '4');
});

test('with --shard auto and the default --results each task gets its own store; a given --results is kept', () => {
  const shard = { index: 2, count: 4, source: '' };
  assert.equal(shardResultsFile('data/results/results.jsonl', shard), 'data/results/results.shard-2-of-4.jsonl');
  assert.equal(shardResultsFile('store', shard), 'store.shard-2-of-4');
  assert.equal(resultsFileFor({ results: 'data/results/results.jsonl', shard: 'auto' }, shard, false), 'data/results/results.shard-2-of-4.jsonl');
  assert.equal(resultsFileFor({ results: 'r/shard-1.jsonl', shard: 'auto' }, shard, true), 'r/shard-1.jsonl');
  assert.equal(resultsFileFor({ results: 'data/results/results.jsonl', shard: '2/4' }, shard, false), 'data/results/results.jsonl', 'explicit i/n: as before');
});

test('job-array tasks as local processes (Slurm with MIN=1, Kubernetes): the shards partition the grid and merge to the full store', async () => {
  const dir = tmp();
  const grid = join(dir, 'grid.json');
  writeFileSync(grid, JSON.stringify({ model: 'tiny', datasets: ['sst2', 'emotion'], corruptions: [null, 'bottom:1'], seeds: [0, 1] }));
  const specs = expandGrid(grid);
  const all = (await identityHashes(specs)).sort();
  const base = ['--grid', grid, '--workers', '1', '--runner', fakeRunner, '--shard', 'auto'];
  const env = { FAKE_RUNNER_SLEEP_MS: '50', HEALING_PROGRESS: '0', [K8S_INDEX_VAR]: undefined, [SHARD_COUNT_VAR]: undefined, SLURM_JOB_ID: undefined };
  const slurm = [1, 2, 3, 4].map((id) => ({ file: join(dir, `slurm-${id}.jsonl`), env: { ...env, ...slurmEnv(id, 1, 4) } }));
  const noSlurm = Object.fromEntries(Object.values(SLURM_ARRAY_VARS).map((v) => [v, undefined]));
  const k8s = [0, 1, 2].map((k) => ({ file: join(dir, `k8s-${k}.jsonl`), env: { ...env, ...noSlurm, [K8S_INDEX_VAR]: String(k), [SHARD_COUNT_VAR]: '3' } }));
  const exits = await Promise.all([...slurm, ...k8s].map((task) => exited(startRun([...base, '--results', task.file], task.env))));
  for (const exit of exits) assert.equal(exit.code, 0, exit.stderr);
  assert.match(exits[0].stderr, /run: shard 1 of 4 \(SLURM_ARRAY_TASK_ID=1 - SLURM_ARRAY_TASK_MIN=1 of SLURM_ARRAY_TASK_COUNT=4\)/);
  assert.match(exits[4].stderr, /run: shard 1 of 3 \(JOB_COMPLETION_INDEX=0 of HEALING_SHARD_COUNT=3\)/);
  assert.deepEqual(lastJson(exits[5]).shard, { index: 2, count: 3 });

  for (const [tasks, n] of [[slurm, 4], [k8s, 3]] as const) {
    const stored = tasks.map((t) => (existsSync(t.file) ? rawHashes(t.file) : []));
    assert.deepEqual(stored.flat().sort(), all, `n=${n}: disjoint shards whose union is the grid`);
    // Each task ran exactly the slice --shard i/n names.
    tasks.forEach((_, i) => assert.equal(stored[i].length, shardOf(specs, i + 1, n).length));
  }

  const present = slurm.filter((t) => existsSync(t.file)).map((t) => t.file);
  const merged = join(dir, 'merged.jsonl');
  const merge = await exited(startCommand('results', ['--merge', ...present, '--out', merged], {}));
  assert.equal(merge.code, 0, merge.stderr);
  assert.deepEqual({ rows: lastJson(merge).rows, conflicts: lastJson(merge).conflicts }, { rows: 8, conflicts: [] });
  assert.deepEqual(readResults(merged).rows.map((r) => r.hash).sort(), all, 'the full store, once each');
  // Both arrays ran the same experiments: merging everything finds them equal, not in conflict.
  const both = planMerge([merged, ...k8s.filter((t) => existsSync(t.file)).map((t) => t.file)]);
  assert.deepEqual({ lines: both.lines.length, duplicates: both.duplicates, conflicts: both.conflicts.length }, { lines: 8, duplicates: 8, conflicts: 0 });
});

/** `healing results ...` in this process: its JSON line, its stderr and the error it failed with. */
async function results(args: string[]): Promise<{ error?: Error; stdout: string; stderr: string }> {
  const program = new Command().exitOverride();
  registerResults(program);
  let error: Error | undefined;
  const output = await captureOutput('{', () => program.parseAsync(['results', ...args], { from: 'user' }).catch((e: Error) => (error = e)));
  return { error, ...output };
}

test('results --merge: dedupes by identity, reports conflicts by hash and file, keeps inputs, guards --out', async () => {
  const dir = tmp();
  const [a, b, c] = ['a.jsonl', 'b.jsonl', 'c.jsonl'].map((f) => join(dir, f));
  const clean = fakeRow({ dataset: { name: 'sst2' }, seed: 0 });
  const top = fakeRow({ dataset: { name: 'sst2' }, corruption: { layers: 'top:1' }, seed: 0 });
  const other = fakeRow({ dataset: { name: 'sst2' }, seed: 1 });
  appendResult(a, clean);
  appendResult(a, top);
  appendResult(b, { ...clean, timings: { ...clean.timings, seconds: 99 }, provenance: { ...clean.provenance, host: 'node-2' } });
  appendResult(b, other);
  writeFileSync(b, `${readFileSync(b, 'utf8')}{"torn`);
  appendResult(c, { ...top, final: { accuracy: 0.5, macroF1: 0.5 } });
  const before = [a, b, c].map((f) => readFileSync(f, 'utf8'));

  const out = join(dir, 'out', 'merged.jsonl');
  const ok = await results(['--merge', a, b, '--out', out]);
  assert.equal(ok.error, undefined, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout).rows, 3);
  assert.equal(JSON.parse(ok.stdout).duplicates, 1, 'same identity, same metrics, other timing and host: one row');
  assert.match(ok.stderr, /b\.jsonl: 1 torn line\(s\) ignored .*\(not merged\)/);
  assert.deepEqual(readResults(out).rows.map(rowHash), [clean, top, other].map(rowHash), 'first occurrence, argument order');
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8').split('\n')[0]), JSON.parse(JSON.stringify(clean)), 'rows copied unchanged');

  const again = await results(['--merge', a, b, '--out', out]);
  assert.match(again.error?.message ?? '', /--out .*merged\.jsonl exists; pass --force to replace it/);
  const conflict = await results(['--merge', a, c, '--out', join(dir, 'x.jsonl'), '--force']);
  assert.match(conflict.error?.message ?? '', /1 identity has rows with different measurements; nothing written/);
  assert.match(conflict.stderr, new RegExp(`conflict: ${rowHash(top)} \\(${top.label.replace(/[()]/g, '\\$&')}\\) differs between .*a\\.jsonl, .*c\\.jsonl: .*accuracy 0\\.5,`));
  assert.ok(!existsSync(join(dir, 'x.jsonl')), 'nothing written on a conflict');
  const kept = await results(['--merge', a, c, '--out', out, '--force', '--keep-first']);
  assert.equal(kept.error, undefined, kept.stderr);
  assert.match(kept.stderr, /warning: conflict: .* \(kept the first\)/);
  assert.equal(readResults(out).rows.find((r) => rowHash(r) === rowHash(top))?.final.accuracy, top.final.accuracy);

  for (const bad of [a, join(dir, '.', 'a.jsonl')]) {
    const self = await results(['--merge', a, b, '--out', bad, '--force']);
    assert.match(self.error?.message ?? '', /is also an input/);
  }
  symlinkSync(a, join(dir, 'link.jsonl'));
  assert.match((await results(['--merge', a, '--out', join(dir, 'link.jsonl'), '--force'])).error?.message ?? '', /is also an input/);
  assert.match((await results(['--merge', a, join(dir, 'missing.jsonl'), '--out', join(dir, 'y.jsonl')])).error?.message ?? '', /missing\.jsonl: no such file/);
  assert.match((await results(['--merge', a])).error?.message ?? '', /--merge needs --out FILE/);
  assert.match((await results(['--out', out])).error?.message ?? '', /--out goes with --merge/);
  assert.deepEqual([a, b, c].map((f) => readFileSync(f, 'utf8')), before, 'inputs untouched');
});

// ---------------------------------------------------------------------------------------------
// The shipped examples use what the code reads

function options(register: (program: Command) => void, name: string): Set<string> {
  const program = new Command();
  register(program);
  const command = program.commands.find((c) => c.name() === name)!;
  return new Set(command.options.map((o) => o.long!));
}

/** Every `healing run|results ...` command line in a text, with its flags checked against the CLI's. */
function healingCommands(text: string): Array<{ command: 'run' | 'results'; line: string }> {
  const known = { run: options(registerRun, 'run'), results: options(registerResults, 'results') };
  // To the end of the line, less the quote that closes an sbatch --wrap "...".
  return [...text.matchAll(/healing (run|results)\b([^\n]*?)"?$/gm)].map((m) => {
    const command = m[1] as 'run' | 'results';
    for (const flag of m[2].match(/--[a-z][a-z-]*/g) ?? []) assert.ok(known[command].has(flag), `healing ${command} has no ${flag} (in: ${m[0]})`);
    return { command, line: m[0] };
  });
}

/** The glob a merge line reads must be what the run line writes, with the task's variable as `*`. */
function mergeReadsWhatRunsWrite(runLine: string, mergeLine: string, variable: string): void {
  const written = /--results "?([^"\s]+)"?/.exec(runLine)?.[1];
  assert.ok(written?.includes(variable), `the store names the task (${variable}): ${runLine}`);
  const glob = written!.replace(`\${${variable}}`, '*').replace(`$${variable}`, '*');
  assert.ok(mergeLine.includes(`--merge ${glob}`), `merge reads ${glob}: ${mergeLine}`);
}

test('docs/cluster/slurm-array.sbatch: a consecutive --array, --shard auto, only variables Slurm sets and the code reads', () => {
  const text = readFileSync(join(docs, 'slurm-array.sbatch'), 'utf8');
  const lines = text.split('\n');
  assert.ok(lines[0].startsWith('#!/bin/bash'));
  // sbatch reads #SBATCH lines only before the first command.
  const firstCommand = lines.findIndex((l) => l.trim() !== '' && !l.startsWith('#'));
  const directives = lines.slice(0, firstCommand).filter((l) => l.startsWith('#SBATCH ')).map((l) => l.slice('#SBATCH '.length).trim());
  assert.ok(lines.slice(firstCommand).every((l) => !l.startsWith('#SBATCH')), 'no directive after the first command');
  const Directives = z.object({ array: z.string().regex(/^\d+-\d+$/, 'a consecutive range, no stride or list'), 'cpus-per-task': z.string().regex(/^\d+$/) }).loose();
  const parsed = Directives.parse(Object.fromEntries(directives.map((d) => /^--([a-z-]+)=(.*)$/.exec(d)!.slice(1))));
  const [min, max] = parsed.array.split('-').map(Number);
  assert.deepEqual([min, max], [0, 3]);
  assert.doesNotMatch(text, /^\s*module /m, 'module-free');

  // Every task of that array resolves to its own shard, together all of them.
  const shards = Array.from({ length: max - min + 1 }, (_, k) => resolveShard('auto', { env: slurmEnv(min + k, min, max) }));
  assert.deepEqual(shards.map((s) => `${s.index}/${s.count}`), ['1/4', '2/4', '3/4', '4/4']);

  const used = new Set([...text.matchAll(/\$\{?(SLURM_[A-Z_]+)/g)].map((m) => m[1]));
  const slurmSets = new Set([...Object.values(SLURM_ARRAY_VARS), 'SLURM_ARRAY_JOB_ID', 'SLURM_SUBMIT_DIR', 'SLURM_JOB_ID']);
  for (const v of used) assert.ok(slurmSets.has(v), `${v} is not a variable Slurm sets in array tasks`);
  assert.ok(used.has(SLURM_ARRAY_VARS.id) && used.has(SLURM_ARRAY_VARS.min));
  assert.doesNotMatch(text, new RegExp(`${SHARD_COUNT_VAR}|--shard-count`), 'Slurm gives the count itself');

  const commands = healingCommands(text);
  const run = commands.filter((c) => c.command === 'run');
  const merge = commands.filter((c) => c.command === 'results');
  assert.equal(run.length, 1);
  assert.equal(merge.length, 1);
  assert.match(run[0].line, /--shard auto\b/);
  mergeReadsWhatRunsWrite(run[0].line, merge[0].line, SLURM_ARRAY_VARS.id);
});

const EnvVar = z.object({ name: z.string(), value: z.string().optional() }).loose();
const Container = z.object({ name: z.string(), image: z.string(), command: z.array(z.string()).optional(), args: z.array(z.string()), env: z.array(EnvVar).default([]) }).loose();
const JobSchema = z
  .object({
    apiVersion: z.literal('batch/v1'),
    kind: z.literal('Job'),
    metadata: z.object({ name: z.string() }).loose(),
    spec: z
      .object({
        completionMode: z.literal('Indexed').optional(),
        completions: z.number().int().positive().optional(),
        parallelism: z.number().int().positive().optional(),
        template: z.object({ spec: z.object({ containers: z.array(Container).length(1) }).loose() }).loose(),
      })
      .loose(),
  })
  .loose();

function job(file: string): z.infer<typeof JobSchema> {
  const documents = parseYamlSubset(readFileSync(join(docs, file), 'utf8'));
  assert.equal(documents.length, 1, file);
  return JobSchema.parse(documents[0]);
}

test('docs/cluster/k8s-indexed-job.yaml: Indexed, 4 completions in parallel, HEALING_SHARD_COUNT equal to them; the merge Job reads its stores', () => {
  const shards = job('k8s-indexed-job.yaml');
  assert.equal(shards.spec.completionMode, 'Indexed');
  assert.equal(shards.spec.completions, 4);
  assert.equal(shards.spec.parallelism, 4);
  const container = shards.spec.template.spec.containers[0];
  const count = container.env.find((e) => e.name === SHARD_COUNT_VAR)?.value;
  assert.equal(count, String(shards.spec.completions), `${SHARD_COUNT_VAR} must equal completions`);
  // Every pod index resolves to its own shard, together all of them.
  const resolved = Array.from({ length: shards.spec.completions! }, (_, k) => resolveShard('auto', { env: { [K8S_INDEX_VAR]: String(k), [SHARD_COUNT_VAR]: count } }));
  assert.deepEqual(resolved.map((s) => `${s.index}/${s.count}`), ['1/4', '2/4', '3/4', '4/4']);

  assert.deepEqual(container.command, ['sh', '-c'], 'a shell expands the index in --results');
  const [run] = healingCommands(container.args.join(' '));
  assert.equal(run.command, 'run');
  assert.match(run.line, /--shard auto\b/);
  const merger = job('k8s-merge-job.yaml');
  assert.equal(merger.spec.completionMode, undefined);
  const [merge] = healingCommands(merger.spec.template.spec.containers[0].args.join(' '));
  assert.equal(merge.command, 'results');
  mergeReadsWhatRunsWrite(run.line, merge.line, K8S_INDEX_VAR);
});

test('the YAML subset reader: maps, sequences of maps, scalars, flow lists; refuses what it does not know', () => {
  const [doc] = parseYamlSubset('a: 1 # note\nb:\n  - name: x\n    value: "4"\n  - plain text\nc: [\"sh\", \"-c\"]\nd:\n- \'it\'\'s\'\ne: true\n');
  assert.deepEqual(doc, { a: 1, b: [{ name: 'x', value: '4' }, 'plain text'], c: ['sh', '-c'], d: ["it's"], e: true });
  assert.throws(() => parseYamlSubset('a: |\n  text\n'), /outside the YAML subset/);
});
