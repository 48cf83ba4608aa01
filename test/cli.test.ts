import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { loadCheckpoint } from '../src/io/checkpoint';
import { encode } from '../src/model/encoder';
import { mlmLogits } from '../src/model/heads';
import { disposeParams } from '../src/model/names';
import { makeTinyModel, sentimentExamples, writeJsonl } from './helpers/tiny-model';
import { syntheticResults } from '../src/analysis/synthetic';
import { findBrowser } from '../src/analysis/export';
import { presetSpecs } from '../src/experiment/presets';

await initEngine({ backend: 'wasm' });

const repo = fileURLToPath(new URL('..', import.meta.url));
const parityDir = process.env.HEALING_SHARED_DIR
  ? join(process.env.HEALING_SHARED_DIR, 'fixtures/parity')
  : fileURLToPath(new URL('../../shared/fixtures/parity/', import.meta.url));
const BERT = join(parityDir, 'bert-tiny-random');

const work = await mkdtemp(join(tmpdir(), 'healing-cli-'));
test.after(() => rm(work, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The real `healing` command in a child process, from the repository root: bin/healing.js as npx runs
 * it (with only the hooks it registers itself, so a module that loads under the test runner's tsx but
 * not under the bin fails here).
 */
function healing(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repo, 'bin', 'healing.js'), ...args],
      { cwd: options.cwd ?? repo, env: { ...process.env, HEALING_PROGRESS: '0', ...options.env }, maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 300_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Every command prints one JSON object last on stdout. */
function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
}

interface ForwardJson {
  hidden_states: number[][][][];
  last_hidden_state: number[][][];
  pooler_output?: number[][];
  logits?: number[][];
}

/** Largest difference at real (attention_mask 1) positions across every output of the fixture. */
function forwardMaxDiff(actual: ForwardJson, expected: ForwardJson, mask: number[][]): number {
  let worst = 0;
  const states = (a: number[][][], e: number[][][]) =>
    e.forEach((row, b) => row.forEach((vec, t) => mask[b][t] === 1 && vec.forEach((x, h) => (worst = Math.max(worst, Math.abs(a[b][t][h] - x))))));
  const matrix = (a: number[][], e: number[][]) => e.forEach((row, i) => row.forEach((x, j) => (worst = Math.max(worst, Math.abs(a[i][j] - x)))));
  assert.equal(actual.hidden_states.length, expected.hidden_states.length);
  expected.hidden_states.forEach((e, layer) => states(actual.hidden_states[layer], e));
  states(actual.last_hidden_state, expected.last_hidden_state);
  matrix(actual.pooler_output!, expected.pooler_output!);
  matrix(actual.logits!, expected.logits!);
  return worst;
}

const parityInput = JSON.parse(readFileSync(join(BERT, 'input.json'), 'utf8')) as { input_ids: number[][]; attention_mask: number[][] };
const parityExpected = JSON.parse(readFileSync(join(BERT, 'expected.json'), 'utf8')) as ForwardJson;

test('healing forward reproduces the parity fixture, on stdout and with --output', async () => {
  const output = join(work, 'forward-out.json');
  const [plain, toFile] = await Promise.all([
    healing(['forward', '--model', BERT, '--input', join(BERT, 'input.json')]),
    healing(['forward', '--model', BERT, '--input', join(BERT, 'input.json'), '--output', output]),
  ]);
  assert.equal(plain.code, 0, plain.stderr);
  const d = forwardMaxDiff(lastJson(plain.stdout) as unknown as ForwardJson, parityExpected, parityInput.attention_mask);
  assert.ok(d < 1e-4, `stdout differs by ${d}`);

  assert.equal(toFile.code, 0, toFile.stderr);
  const summary = lastJson(toFile.stdout);
  assert.equal(summary.output, output);
  assert.equal(summary.layers, 3);
  const written = JSON.parse(await readFile(output, 'utf8')) as ForwardJson;
  const d2 = forwardMaxDiff(written, parityExpected, parityInput.attention_mask);
  assert.ok(d2 < 1e-4, `--output file differs by ${d2}`);
});

test('healing forward: bad input is one "healing:" line naming the file or value, exit 1, no stack', async () => {
  const missing = join(work, 'no-such-input.json');
  const malformed = join(work, 'malformed.json');
  const ragged = join(work, 'ragged.json');
  const outOfVocab = join(work, 'out-of-vocab.json');
  await writeFile(malformed, '{"input_ids": [[2, 3, 4]], "attention_mask": ');
  await writeFile(ragged, JSON.stringify({ input_ids: [[2, 3, 4], [2, 3]], attention_mask: [[1, 1, 1], [1, 1]] }));
  await writeFile(outOfVocab, JSON.stringify({ input_ids: [[2, 3, 4321]], attention_mask: [[1, 1, 1]] }));
  const badType = join(work, 'bad-token-type.json');
  const badMask = join(work, 'bad-mask.json');
  await writeFile(badType, JSON.stringify({ input_ids: [[2, 3, 4]], attention_mask: [[1, 1, 1]], token_type_ids: [[0, 0, 7]] }));
  await writeFile(badMask, JSON.stringify({ input_ids: [[2, 3, 4]], attention_mask: [[1, 5, 1]] }));
  const empty = join(work, 'empty-rows.json');
  const unattended = join(work, 'unattended-row.json');
  await writeFile(empty, JSON.stringify({ input_ids: [[]], attention_mask: [[]] }));
  await writeFile(unattended, JSON.stringify({ input_ids: [[2, 3, 4], [0, 0, 0]], attention_mask: [[1, 1, 1], [0, 0, 0]] }));
  const cases: Array<{ file: string; mentions: RegExp }> = [
    { file: empty, mentions: /rows are empty/ },
    { file: unattended, mentions: /attention_mask\[1\] attends to no token/ },
    { file: missing, mentions: /no such file|not found|does not exist|ENOENT/i },
    { file: malformed, mentions: /JSON|Unexpected|unterminated|end of/i },
    { file: ragged, mentions: /input_ids\[1\]/ },
    { file: outOfVocab, mentions: /4321.*vocabulary|vocabulary.*4321/ },
    { file: badType, mentions: /token_type_ids.*\b7\b/ },
    { file: badMask, mentions: /attention_mask.*\b5\b/ },
  ];
  const runs = await Promise.all([
    ...cases.map((c) => healing(['forward', '--model', BERT, '--input', c.file])),
    healing(['--verbose', 'forward', '--model', BERT, '--input', ragged]),
  ]);
  cases.forEach((c, i) => {
    const r = runs[i];
    assert.equal(r.code, 1, `${c.file}: exit code`);
    assert.equal(r.stdout, '', `${c.file}: nothing on stdout`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${c.file}: one line, got:\n${r.stderr}`);
    assert.ok(lines[0].startsWith('healing: '), lines[0]);
    assert.ok(lines[0].includes(c.file), `names the file: ${lines[0]}`);
    assert.match(lines[0], c.mentions);
  });
  const verbose = runs[cases.length];
  assert.equal(verbose.code, 1);
  const lines = verbose.stderr.trimEnd().split('\n');
  assert.ok(lines[0].startsWith('healing: ') && lines[0].includes(ragged));
  assert.ok(lines.some((l) => /^\s+at .*forward\.ts/.test(l)), `a stack trace with --verbose:\n${verbose.stderr}`);
});

test('healing --help and every subcommand\'s --help exit 0', async () => {
  const top = await healing(['--help']);
  assert.equal(top.code, 0, top.stderr);
  assert.match(top.stdout, /^Usage: healing/m);
  const commandsSection = top.stdout.split(/^Commands:$/m)[1] ?? '';
  const commands = [...commandsSection.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help');
  for (const expected of ['forward', 'fill-mask', 'finetune', 'evaluate', 'pretrain']) assert.ok(commands.includes(expected), `${expected} is listed`);
  // One process runs the real entry point for every subcommand: a process start per command would cost minutes.
  const script = `
    const { main } = await import('./src/cli/main.ts');
    for (const c of ${JSON.stringify(commands)}) {
      const code = await main([c, '--help']);
      process.stdout.write('\\n@@exit ' + c + ' ' + code + '\\n');
    }`;
  const r = await new Promise<Run>((resolve) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
    ),
  );
  assert.equal(r.code, 0, r.stderr);
  const sections = r.stdout.split(/^@@exit .*$/m);
  for (const [i, c] of commands.entries()) {
    assert.ok(r.stdout.includes(`@@exit ${c} 0`), `${c} --help exits 0`);
    assert.match(sections[i], new RegExp(`Usage: healing ${c} `), `${c} prints its usage`);
  }
});

test('healing fill-mask on a tiny MLM model prints the head\'s predictions as JSON', async () => {
  const tiny = await makeTinyModel(join(work, 'tiny-mlm'));
  const text = 'the movie was [MASK] .';
  const r = await healing(['fill-mask', '--model', tiny.dir, '--top', '5', text]);
  assert.equal(r.code, 0, r.stderr);
  const out = lastJson(r.stdout) as { text: string; masks: Array<{ position: number; predictions: Array<{ token: string; id: number; probability: number }> }> };
  assert.equal(out.text, text);
  const encoding = tiny.tokenizer.encode(text);
  assert.deepEqual(out.masks.map((m) => m.position), [encoding.inputIds.indexOf(tiny.tokenizer.maskId)]);
  const predictions = out.masks[0].predictions;
  assert.equal(predictions.length, 5);

  // The same probabilities computed here, from the checkpoint, over the whole vocabulary.
  const checkpoint = await loadCheckpoint(tiny.dir, { head: 'mlm' });
  const probs = tf.tidy(() => {
    const inputIds = tf.tensor2d([encoding.inputIds], undefined, 'int32');
    const { lastHiddenState } = encode(checkpoint.config, checkpoint.params, { inputIds, attentionMask: tf.onesLike(inputIds) as tf.Tensor2D });
    const hidden = lastHiddenState.slice([0, out.masks[0].position, 0], [1, 1, -1]).reshape([1, -1]) as tf.Tensor2D;
    return Array.from(tf.softmax(mlmLogits(checkpoint.config, checkpoint.params, hidden)).dataSync());
  });
  disposeParams(checkpoint.params);
  const sorted = [...probs].sort((a, b) => b - a);
  predictions.forEach((p, k) => {
    assert.equal(p.token, tiny.tokenizer.idToToken(p.id));
    assert.ok(Math.abs(p.probability - probs[p.id]) < 1e-5, `${p.token}: ${p.probability} vs ${probs[p.id]}`);
    assert.ok(Math.abs(p.probability - sorted[k]) < 1e-5, `rank ${k + 1} holds the ${k + 1}th largest probability`);
  });
});

test('healing finetune then healing evaluate on its --out reproduces the accuracy', async () => {
  const tiny = await makeTinyModel(join(work, 'tiny-finetune'));
  const train = await writeJsonl(join(work, 'train.jsonl'), sentimentExamples(96, 1));
  const evalFile = await writeJsonl(join(work, 'eval.jsonl'), sentimentExamples(40, 2));
  const out = join(work, 'finetuned');
  const ft = await healing([
    'finetune', '--model', tiny.dir, '--train', train, '--eval', evalFile, '--epochs', '4', '--batch-size', '8', '--lr', '3e-3', '--max-length', '16', '--seed', '0', '--out', out,
  ]);
  assert.equal(ft.code, 0, ft.stderr);
  const row = lastJson(ft.stdout) as { final: { accuracy: unknown }; out: string; epochs: unknown[]; evalExamples: number };
  assert.equal(typeof row.final.accuracy, 'number');
  assert.equal(row.out, out);
  assert.equal(row.epochs.length, 4);
  assert.match(ft.stderr, /^epoch 4: train loss/m);

  const ev = await healing(['evaluate', '--model', out, '--data', evalFile, '--max-length', '16']);
  assert.equal(ev.code, 0, ev.stderr);
  const metrics = lastJson(ev.stdout) as { accuracy: number; examples: number; confusion: number[][] };
  assert.equal(metrics.examples, 40);
  assert.equal(metrics.accuracy, row.final.accuracy);
  const lastEpoch = row.epochs[3] as { eval: { confusion: number[][] } };
  assert.deepEqual(metrics.confusion, lastEpoch.eval.confusion);
});

test('commands that write a directory never destroy what the user did not ask to replace', async () => {
  const tiny = await makeTinyModel(join(work, 'tiny-guard'));
  const train = await writeJsonl(join(work, 'guard-train.jsonl'), sentimentExamples(16, 1));
  const evalFile = await writeJsonl(join(work, 'guard-eval.jsonl'), sentimentExamples(8, 2));
  const modelFiles = async () => (await readFile(join(tiny.dir, 'model.safetensors'))).length;
  const size = await modelFiles();
  // finetune --out on a folder with the user's files: refused before any training, the file kept.
  const thesis = join(work, 'thesis');
  await mkdir(thesis, { recursive: true });
  await writeFile(join(thesis, 'thesis.txt'), 'three years of work');
  const base = ['finetune', '--model', tiny.dir, '--train', train, '--eval', evalFile, '--epochs', '1', '--batch-size', '8', '--max-length', '16'];
  const refused = await healing([...base, '--out', thesis]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^healing: --out .*thesis: already exists and is not empty \(pass --force to replace it\)\n$/);
  assert.equal(await readFile(join(thesis, 'thesis.txt'), 'utf8'), 'three years of work');
  // --out equal to --model, or a parent of it: refused even with --force; the model untouched.
  for (const target of [tiny.dir, join(tiny.dir, '..')]) {
    for (const cmd of [[...base, '--force', '--out', target], ['corrupt', '--model', tiny.dir, '--layers', 'bottom:1', '--force', '--out', target]]) {
      const run = await healing(cmd);
      assert.equal(run.code, 1, `${cmd[0]} --out ${target}: ${run.stderr}`);
      assert.match(run.stderr, /--out .*: (is|contains) the --model directory/);
      assert.equal(await modelFiles(), size, 'the model is intact');
    }
  }
  // An --out that is a file, and a --results that is a directory: refused at start, not after the run.
  const file = join(work, 'a-file');
  await writeFile(file, 'x');
  const onFile = await healing([...base, '--out', file]);
  assert.equal(onFile.code, 1);
  assert.match(onFile.stderr, /--out .*a-file: exists and is not a directory/);
  const onDir = await healing([...base, '--results', thesis]);
  assert.equal(onDir.code, 1);
  assert.match(onDir.stderr, /--results .*thesis: is a directory, not a file/);
  assert.doesNotMatch(onDir.stderr, /^epoch/m, 'nothing was trained');
});

test('healing run: a --results that cannot be written is refused before the first run', async () => {
  const dir = join(work, 'results-is-a-dir');
  await mkdir(dir, { recursive: true });
  const run = await healing(['run', '--preset', 'quick', '--results', dir]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^healing: --results .*results-is-a-dir: is a directory, not a file\n$/);
  // An unknown dataset name fails when the grid is read, --dry-run included.
  const grid = join(work, 'unknown-dataset-grid.json');
  await writeFile(grid, JSON.stringify({ experiments: [{ model: 'tiny', dataset: { name: 'sst3' }, corruption: null, seed: 0 }] }));
  const dry = await healing(['run', '--grid', grid, '--dry-run', '--results', join(work, 'unknown.jsonl')]);
  assert.equal(dry.code, 1);
  assert.match(dry.stderr, /^healing: unknown dataset "sst3"; known datasets: sst2, [a-z0-9_, -]*twitter_financial_news_topic[a-z0-9_, -]*\n$/);
});

test('healing pretrain: an invalid argument is one line naming the flag and value, and creates nothing', async () => {
  const out = join(work, 'pretrain-never');
  const r = await healing(['pretrain', '--out', out, '--vocab-size', '50']);
  assert.equal(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^healing: --vocab-size 50: .*128/);
  assert.equal(existsSync(out), false);
});

test('healing report writes HTML, and Markdown with its PNG figures where Chromium is installed', async () => {
  const results = join(work, 'report-results.jsonl');
  await writeFile(results, syntheticResults().map((r) => JSON.stringify(r)).join('\n') + '\n');
  const html = await healing(['report', '--results', results, '--out', join(work, 'r', 'report.html')]);
  assert.equal(html.code, 0, html.stderr);
  assert.match(readFileSync(join(work, 'r', 'report.html'), 'utf8'), /F3/);
  const md = await healing(['report', '--results', results, '--out', join(work, 'r', 'report.md')]);
  assert.equal(md.code, 0, md.stderr);
  const out = lastJson(md.stdout) as { figures: string[] | false; verdicts: Record<string, string> };
  assert.deepEqual(Object.keys(out.verdicts).sort(), ['F1', 'F2', 'F3']);
  if (findBrowser()) {
    assert.ok(Array.isArray(out.figures) && out.figures.length > 0, 'figures exported');
    for (const f of out.figures as string[]) assert.ok(existsSync(f), f);
  } else {
    assert.equal(out.figures, false);
  }
});

// Nine real fine-tuning runs and two reports: ~85 s with the native kernels, ~4-5x that on the plain wasm engine
// (CI's second pass), more on a busy machine.
test('healing reproduce: runs the quick preset, then reports it and the recorded study', { timeout: 900_000 }, async () => {
  // A project directory of its own: the recorded study (data/results/results.jsonl) is a synthetic store.
  const project = join(work, 'project');
  await mkdir(join(project, 'data', 'results'), { recursive: true });
  await writeFile(join(project, 'data', 'results', 'results.jsonl'), syntheticResults().map((r) => JSON.stringify(r)).join('\n') + '\n');
  const shared = process.env.HEALING_SHARED_DIR ?? fileURLToPath(new URL('../../shared', import.meta.url));
  const env = { HEALING_DATA_DIR: join(shared, 'data', 'datasets') };
  const run = await healing(['reproduce', '--model', 'tiny', '--workers', '2', '--out', 'out'], { cwd: project, env, timeoutMs: 840_000 });
  assert.equal(run.code, 0, run.stderr);
  const out = lastJson(run.stdout) as { ran: number; html: string; study?: { html: string; markdown: string; verdicts: Record<string, string> } };
  assert.equal(out.ran, presetSpecs('quick', { numLayers: 4 }).length, 'every run of the quick preset');
  assert.ok(existsSync(join(project, out.html)));
  assert.ok(out.study, 'the study report is written');
  assert.ok(existsSync(join(project, out.study.html)) && existsSync(join(project, out.study.markdown)));
  // The synthetic store plants bottom-worse-than-top: the study report must find it.
  assert.equal(out.study.verdicts.F3, 'supported');
  assert.match(run.stderr, /\[4\/4\]/);
  // Rerun: nothing left to run, and --no-study skips the second report.
  const again = await healing(['reproduce', '--model', 'tiny', '--out', 'out', '--no-study'], { cwd: project, env });
  assert.equal(again.code, 0, again.stderr);
  const second = lastJson(again.stdout) as { ran: number; study?: unknown };
  assert.equal(second.ran, 0);
  assert.equal(second.study, undefined);
});
