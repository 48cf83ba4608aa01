import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../src/errors';
import { checkTokenizerFits, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../src/io/checkpoint';
import { readSafetensors, readSafetensorsHeader } from '../src/io/safetensors';
import { disposeParams, parameterLayout } from '../src/model/names';

const parityDir = process.env.HEALING_SHARED_DIR
  ? join(process.env.HEALING_SHARED_DIR, 'fixtures/parity')
  : fileURLToPath(new URL('../../shared/fixtures/parity/', import.meta.url));
const BERT = join(parityDir, 'bert-tiny-random');
const DISTIL = join(parityDir, 'distilbert-tiny-random');

const work = await mkdtemp(join(tmpdir(), 'healing-checkpoint-'));
test.after(() => rm(work, { recursive: true, force: true }));

type Raw = { dtype: string; shape: number[]; bytes: Uint8Array };

const f32Raw = (shape: number[], data: Float32Array): Raw => ({ dtype: 'F32', shape, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
const bits = (a: Float32Array | ArrayLike<number>): number[] => Array.from(new Uint32Array(Float32Array.from(a).buffer));

/** An independent safetensors writer (any dtype), so variants don't depend on the code under test. */
function safetensorsBytes(tensors: Array<[string, Raw]>): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, ...tensors.map(([, t]) => t.bytes)]);
}

async function fixtureTensors(dir: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  return (await readSafetensors(join(dir, 'model.safetensors'))).tensors;
}

async function fixtureConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
}

let variantCounter = 0;
async function variant(config: Record<string, unknown>, tensors: Array<[string, Raw]>): Promise<string> {
  const dir = join(work, `variant-${variantCounter++}`);
  await mkdir(dir);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await writeFile(join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  return dir;
}

/** The fixture's tensors as raw F32 entries, keys mapped (undefined drops a key). */
async function fixtureEntries(dir: string, rename: (key: string) => string | undefined = (k) => k): Promise<Array<[string, Raw]>> {
  const out: Array<[string, Raw]> = [];
  for (const [key, t] of await fixtureTensors(dir)) {
    const name = rename(key);
    if (name !== undefined) out.push([name, f32Raw(t.shape, t.data)]);
  }
  return out;
}

async function paramBits(c: Checkpoint): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const [name, t] of c.params) out.set(name, bits((await t.data()) as Float32Array));
  return out;
}

async function assertUserError(promise: Promise<unknown>, mentions: string[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof UserError, `expected UserError, got ${(error as Error)?.stack ?? error}`);
    for (const m of mentions) assert.ok(error.message.includes(m), `message mentions ${JSON.stringify(m)}: ${error.message}`);
    return true;
  });
}

const leftovers = async (dir: string) => (await readdir(dir)).filter((f) => f.includes('.tmp-') || f.includes('.old-'));

test('loads both parity fixtures with every expected name, shape and value', async () => {
  const before = tf.memory().numTensors;
  for (const dir of [BERT, DISTIL]) {
    const json = await fixtureConfig(dir);
    const numLabels = Object.keys(json.id2label as object).length;
    const c = await loadCheckpoint(dir);
    assert.equal(c.head, 'classifier');
    assert.equal(c.numLabels, numLabels);
    assert.deepEqual(c.labels, Object.values(json.id2label as object));
    const layout = parameterLayout(c.config, 'classifier', numLabels);
    assert.deepEqual([...c.params.keys()].sort(), layout.map((p) => p.name).sort());
    for (const p of layout) assert.deepEqual(c.params.get(p.name)!.shape, p.shape, p.name);
    const raw = await fixtureTensors(dir);
    const loaded = await paramBits(c);
    for (const [name, t] of raw) assert.deepEqual(loaded.get(name), bits(t.data), name);
    assert.deepEqual(c.report.dtypes, ['F32']);
    assert.deepEqual(c.report.renamed, []);
    assert.deepEqual(c.report.initialised, []);
    assert.deepEqual(c.report.ignored, []);
    disposeParams(c.params);
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});

const PYTHON = process.env.HEALING_PYTHON || '/usr/bin/python3';
const haveTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

/**
 * Writes the fixture's weights as PyTorch does (torch.save of the state dict, zip or pre-1.6 format), under
 * the names Google's BERT miniatures use, beside a config.json without model_type, as those repositories have.
 */
function torchCheckpoint(out: string, legacy: boolean): void {
  const script = `
import json, struct, sys, torch
src, out, legacy = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
raw = open(src + '/model.safetensors', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n]); header.pop('__metadata__', None)
sd = {}
for name, e in header.items():
    a, b = e['data_offsets']
    t = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(e['shape'])
    sd[name.replace('LayerNorm.weight', 'LayerNorm.gamma').replace('LayerNorm.bias', 'LayerNorm.beta')] = t.clone()
# A module's state dict carries _metadata and may hold non-contiguous tensors: keep both as real files do.
from collections import OrderedDict
sd = OrderedDict(sd); sd._metadata = OrderedDict({'': {'version': 1}})
w = 'bert.encoder.layer.0.attention.self.query.weight'
sd[w] = sd[w].t().contiguous().t()
sd['bert.embeddings.position_ids'] = torch.arange(40).unsqueeze(0)
torch.save(sd, out + '/pytorch_model.bin', _use_new_zipfile_serialization=not legacy)
config = json.load(open(src + '/config.json')); config.pop('model_type')
json.dump(config, open(out + '/config.json', 'w'))
`;
  const r = spawnSync(PYTHON, ['-c', script, BERT, out, legacy ? '1' : '0'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test('a checkpoint stored as Google\'s miniatures are (pytorch_model.bin, no model_type) loads the same weights as its safetensors', { skip: !haveTorch && `no torch for ${PYTHON}` }, async () => {
  const reference = await loadCheckpoint(BERT);
  const expected = await paramBits(reference);
  for (const legacy of [false, true]) {
    const dir = join(work, `torch-${legacy ? 'legacy' : 'zip'}`);
    await mkdir(dir);
    torchCheckpoint(dir, legacy);
    const c = await loadCheckpoint(dir);
    assert.equal(c.config.modelType, 'bert', 'inferred from the fields');
    assert.equal(c.config.raw.model_type, 'bert', 'a saved copy states it');
    assert.deepEqual(c.report.files, [join(dir, 'pytorch_model.bin')]);
    assert.deepEqual([...(await paramBits(c)).entries()].sort(), [...expected.entries()].sort(), legacy ? 'legacy format' : 'zip format');
    assert.ok(c.report.renamed.some((r) => r.from.endsWith('LayerNorm.gamma')), 'gamma/beta renamed');
    assert.ok(c.report.ignored.some((r) => r.name === 'bert.embeddings.position_ids'));
    disposeParams(c.params);
  }
  // Sharded as transformers shards big .bin checkpoints: pytorch_model.bin.index.json names each tensor's file.
  const sharded = join(work, 'torch-sharded');
  await mkdir(sharded);
  const split = `
import sys, torch, json
d = sys.argv[1]
sd = torch.load(d + '/../torch-zip/pytorch_model.bin', weights_only=True)
names = list(sd); half = len(names) // 2
parts = {'pytorch_model-00001-of-00002.bin': names[:half], 'pytorch_model-00002-of-00002.bin': names[half:]}
for f, ns in parts.items(): torch.save({n: sd[n] for n in ns}, d + '/' + f)
json.dump({'metadata': {}, 'weight_map': {n: f for f, ns in parts.items() for n in ns}}, open(d + '/pytorch_model.bin.index.json', 'w'))
`;
  const r = spawnSync(PYTHON, ['-c', split, sharded], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await writeFile(join(sharded, 'config.json'), await readFile(join(work, 'torch-zip', 'config.json')));
  const c = await loadCheckpoint(sharded);
  assert.equal(c.report.files.length, 2);
  assert.deepEqual([...(await paramBits(c)).entries()].sort(), [...expected.entries()].sort(), 'sharded');
  disposeParams(c.params);
  disposeParams(reference.params);
});

test('old BERT naming: gamma/beta, no bert. prefix, pretraining heads and position_ids are handled', async () => {
  const raw = await fixtureTensors(BERT);
  const entries = await fixtureEntries(BERT, (k) =>
    k.replace(/^bert\./, '').replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'),
  );
  const h = 48;
  entries.push(
    ['cls.predictions.transform.dense.weight', f32Raw([h, h], new Float32Array(h * h))],
    ['cls.predictions.transform.LayerNorm.gamma', f32Raw([h], new Float32Array(h))],
    ['cls.seq_relationship.weight', f32Raw([2, h], new Float32Array(2 * h))],
    ['bert.embeddings.position_ids', { dtype: 'I64', shape: [1, 40], bytes: new Uint8Array(BigInt64Array.from({ length: 40 }, (_, i) => BigInt(i)).buffer) }],
  );
  const dir = await variant(await fixtureConfig(BERT), entries);
  const c = await loadCheckpoint(dir);
  assert.equal(c.head, 'classifier');
  const loaded = await paramBits(c);
  assert.equal(loaded.size, raw.size);
  for (const [name, t] of raw) assert.deepEqual(loaded.get(name), bits(t.data), name);
  const renamed = new Map(c.report.renamed.map((r) => [r.from, r.to]));
  assert.equal(renamed.get('embeddings.LayerNorm.gamma'), 'bert.embeddings.LayerNorm.weight');
  assert.equal(renamed.get('encoder.layer.2.output.LayerNorm.beta'), 'bert.encoder.layer.2.output.LayerNorm.bias');
  assert.equal(renamed.get('encoder.layer.0.attention.self.query.weight'), 'bert.encoder.layer.0.attention.self.query.weight');
  assert.equal(renamed.has('classifier.weight'), false, 'head keys have no prefix to add');
  assert.equal(c.report.renamed.length, raw.size - 2);
  assert.deepEqual(c.report.ignored.map((i) => i.name).sort(), [
    'bert.embeddings.position_ids', 'cls.predictions.transform.LayerNorm.gamma', 'cls.predictions.transform.dense.weight', 'cls.seq_relationship.weight',
  ]);
  disposeParams(c.params);
});

test('sharded checkpoints (model.safetensors.index.json) load from every shard', async () => {
  const raw = await fixtureTensors(BERT);
  const entries = await fixtureEntries(BERT);
  const dir = join(work, 'sharded');
  await mkdir(dir);
  await writeFile(join(dir, 'config.json'), JSON.stringify(await fixtureConfig(BERT)));
  const half = Math.floor(entries.length / 2);
  const shards = { 'model-00001-of-00002.safetensors': entries.slice(0, half), 'model-00002-of-00002.safetensors': entries.slice(half) };
  const weightMap: Record<string, string> = {};
  for (const [file, part] of Object.entries(shards)) {
    await writeFile(join(dir, file), safetensorsBytes(part));
    for (const [k] of part) weightMap[k] = file;
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const c = await loadCheckpoint(dir);
  assert.equal(c.report.files.length, 2);
  const loaded = await paramBits(c);
  for (const [name, t] of raw) assert.deepEqual(loaded.get(name), bits(t.data), name);
  disposeParams(c.params);
  await rm(join(dir, 'model-00002-of-00002.safetensors'));
  await assertUserError(loadCheckpoint(dir), [join(dir, 'model-00002-of-00002.safetensors'), 'not found']);
});

test('DistilBERT without prefix and with vocab_* heads: ignored for a classifier, used for MLM', async () => {
  const raw = await fixtureTensors(DISTIL);
  const h = 48;
  const v = 120;
  const word = raw.get('distilbert.embeddings.word_embeddings.weight')!;
  const projectorBias = Float32Array.from({ length: v }, (_, i) => i / 7);
  const entries = await fixtureEntries(DISTIL, (k) => k.replace(/^distilbert\./, ''));
  entries.push(
    ['vocab_transform.weight', f32Raw([h, h], Float32Array.from({ length: h * h }, (_, i) => Math.sin(i)))],
    ['vocab_transform.bias', f32Raw([h], new Float32Array(h))],
    ['vocab_layer_norm.weight', f32Raw([h], new Float32Array(h).fill(1))],
    ['vocab_layer_norm.bias', f32Raw([h], new Float32Array(h))],
    ['vocab_projector.weight', f32Raw([v, h], word.data)],
    ['vocab_projector.bias', f32Raw([v], projectorBias)],
  );
  const dir = await variant(await fixtureConfig(DISTIL), entries);

  const c = await loadCheckpoint(dir);
  assert.equal(c.head, 'classifier');
  const loaded = await paramBits(c);
  for (const [name, t] of raw) assert.deepEqual(loaded.get(name), bits(t.data), name);
  assert.deepEqual(c.report.ignored.map((i) => i.name).sort(), entries.slice(-6).map(([k]) => k).sort());
  disposeParams(c.params);

  const m = await loadCheckpoint(dir, { head: 'mlm' });
  assert.deepEqual([...m.params.keys()].sort(), parameterLayout(m.config, 'mlm').map((p) => p.name).sort());
  assert.deepEqual(bits((await m.params.get('vocab_projector.bias')!.data()) as Float32Array), bits(projectorBias));
  const ignored = new Map(m.report.ignored.map((i) => [i.name, i.reason]));
  assert.match(ignored.get('vocab_projector.weight')!, /tied/);
  assert.ok(ignored.has('classifier.weight') && ignored.has('pre_classifier.weight'));
  assert.deepEqual(m.report.initialised, []);
  disposeParams(m.params);
});

test('no classifier: head none by default; a classifier head is initialised from the seed and reported', async () => {
  const raw = await fixtureTensors(BERT);
  const entries = await fixtureEntries(BERT, (k) => (k.startsWith('classifier.') || k.startsWith('bert.pooler.') ? undefined : k));
  const dir = await variant(await fixtureConfig(BERT), entries);

  const plain = await loadCheckpoint(dir);
  assert.equal(plain.head, 'none');
  assert.equal(plain.numLabels, undefined);
  assert.deepEqual([...plain.params.keys()].sort(), parameterLayout(plain.config, 'none').map((p) => p.name).sort());
  assert.deepEqual(plain.report.initialised, []);
  disposeParams(plain.params);

  const load = (seed: number) => loadCheckpoint(dir, { head: 'classifier', numLabels: 4, seed });
  const a = await load(7);
  assert.equal(a.numLabels, 4);
  assert.equal(a.labels, undefined, 'config.json labels are for 2 classes');
  assert.deepEqual(a.params.get('classifier.weight')!.shape, [4, 48]);
  assert.deepEqual(a.report.initialised.map((i) => i.name).sort(), [
    'bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'classifier.bias', 'classifier.weight',
  ]);
  for (const i of a.report.initialised) assert.match(i.reason, /seed 7/);
  const pa = await paramBits(a);
  for (const [name, t] of raw) if (!name.startsWith('classifier') && !name.startsWith('bert.pooler')) assert.deepEqual(pa.get(name), bits(t.data));
  for (const bias of ['classifier.bias', 'bert.pooler.dense.bias']) assert.ok(Array.from(await a.params.get(bias)!.data()).every((x) => x === 0), bias);
  // HF initializer_range: N(0, 0.02); 2304 draws put the sample std well within 10%.
  const w = Array.from(await a.params.get('bert.pooler.dense.weight')!.data());
  const mean = w.reduce((s, x) => s + x, 0) / w.length;
  const std = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length);
  assert.ok(Math.abs(mean) < 0.002 && std > 0.018 && std < 0.022, `mean ${mean} std ${std}`);

  const again = await load(7);
  assert.deepEqual(await paramBits(again), pa, 'same seed, same head');
  disposeParams(again.params);
  const other = await load(8);
  assert.notDeepEqual(await paramBits(other), pa, 'another seed, another head');
  disposeParams(a.params);
  disposeParams(other.params);

  const distil = await variant(await fixtureConfig(DISTIL), await fixtureEntries(DISTIL, (k) => (k.includes('classifier') ? undefined : k)));
  const d = await loadCheckpoint(distil, { head: 'classifier' });
  assert.equal(d.numLabels, 3, 'numLabels from config.json id2label');
  assert.deepEqual(d.labels, ['LABEL_0', 'LABEL_1', 'LABEL_2']);
  assert.deepEqual(d.report.initialised.map((i) => i.name).sort(), ['classifier.bias', 'classifier.weight', 'pre_classifier.bias', 'pre_classifier.weight']);
  disposeParams(d.params);
});

test('a classifier of another size is replaced when numLabels asks for it, an error otherwise', async () => {
  const raw = await fixtureTensors(DISTIL);
  const c = await loadCheckpoint(DISTIL, { labels: ['a', 'b', 'c', 'd', 'e'] });
  assert.equal(c.numLabels, 5);
  assert.deepEqual(c.labels, ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(c.params.get('classifier.weight')!.shape, [5, 48]);
  assert.deepEqual(c.report.initialised.map((i) => i.name).sort(), ['classifier.bias', 'classifier.weight']);
  assert.deepEqual(c.report.ignored.map((i) => i.name).sort(), ['classifier.bias', 'classifier.weight']);
  assert.deepEqual(bits((await c.params.get('pre_classifier.weight')!.data()) as Float32Array), bits(raw.get('pre_classifier.weight')!.data));
  disposeParams(c.params);

  const json = await fixtureConfig(DISTIL);
  json.id2label = { 0: 'x', 1: 'y' };
  const dir = await variant(json, await fixtureEntries(DISTIL));
  await assertUserError(loadCheckpoint(dir), ['classifier.weight', '[3, 48]', '[2, 48]', 'config.json']);
  await assertUserError(loadCheckpoint(DISTIL, { numLabels: 2, labels: ['a', 'b', 'c'] }), ['numLabels 2']);
});

test('F16 and BF16 checkpoints load, within their precision', async () => {
  const raw = await fixtureTensors(BERT);
  const c = await loadCheckpoint(BERT);
  const half = join(work, 'f16');
  await saveCheckpoint(half, c, { dtype: 'F16' });
  disposeParams(c.params);
  assert.ok((await readSafetensorsHeader(join(half, 'model.safetensors'))).entries.every((e) => e.dtype === 'F16'));
  const h = await loadCheckpoint(half);
  assert.deepEqual(h.report.dtypes, ['F16']);
  for (const [name, t] of raw) {
    const got = await h.params.get(name)!.data();
    t.data.forEach((x, i) => assert.ok(Math.abs(got[i] - x) <= Math.max(Math.abs(x) * 2 ** -11, 2 ** -25), `${name}[${i}]: ${x} vs ${got[i]}`));
  }
  disposeParams(h.params);

  // bfloat16 is the top 16 bits of a float32 (truncation here); expected values zero the low 16 bits.
  const entries: Array<[string, Raw]> = [];
  const expected = new Map<string, number[]>();
  for (const [name, t] of raw) {
    const words = new Uint32Array(Float32Array.from(t.data).buffer);
    entries.push([name, { dtype: 'BF16', shape: t.shape, bytes: new Uint8Array(Uint16Array.from(words, (w) => w >>> 16).buffer) }]);
    expected.set(name, Array.from(words, (w) => (w & 0xffff0000) >>> 0));
  }
  const b = await loadCheckpoint(await variant(await fixtureConfig(BERT), entries));
  assert.deepEqual(b.report.dtypes, ['BF16']);
  assert.deepEqual(await paramBits(b), expected);
  disposeParams(b.params);
});

test('BERT MLM head: tied decoder weight checked and ignored, decoder bias accepted as an alias', async () => {
  const raw = await fixtureTensors(BERT);
  const h = 48;
  const bias = Float32Array.from({ length: 120 }, (_, i) => Math.cos(i));
  const base = await fixtureEntries(BERT, (k) => (k.startsWith('classifier.') || k.startsWith('bert.pooler.') ? undefined : k));
  const head = (decoderShape: number[]): Array<[string, Raw]> => [
    ['cls.predictions.transform.dense.weight', f32Raw([h, h], Float32Array.from({ length: h * h }, (_, i) => i / 1000))],
    ['cls.predictions.transform.dense.bias', f32Raw([h], new Float32Array(h))],
    ['cls.predictions.transform.LayerNorm.gamma', f32Raw([h], new Float32Array(h).fill(1))],
    ['cls.predictions.transform.LayerNorm.beta', f32Raw([h], new Float32Array(h))],
    ['cls.predictions.decoder.weight', f32Raw(decoderShape, new Float32Array(decoderShape[0] * decoderShape[1]))],
    ['cls.predictions.decoder.bias', f32Raw([120], bias)],
  ];
  const dir = await variant(await fixtureConfig(BERT), [...base, ...head([120, h])]);
  const m = await loadCheckpoint(dir, { head: 'mlm' });
  assert.deepEqual([...m.params.keys()].sort(), parameterLayout(m.config, 'mlm').map((p) => p.name).sort());
  assert.deepEqual(bits((await m.params.get('cls.predictions.bias')!.data()) as Float32Array), bits(bias));
  assert.deepEqual(bits((await m.params.get('bert.embeddings.word_embeddings.weight')!.data()) as Float32Array), bits(raw.get('bert.embeddings.word_embeddings.weight')!.data));
  assert.ok(m.report.renamed.some((r) => r.from === 'cls.predictions.decoder.bias' && r.to === 'cls.predictions.bias'));
  assert.ok(m.report.ignored.some((i) => i.name === 'cls.predictions.decoder.weight'));
  assert.deepEqual(m.report.initialised, []);
  disposeParams(m.params);

  const bad = await variant(await fixtureConfig(BERT), [...base, ...head([100, h])]);
  await assertUserError(loadCheckpoint(bad, { head: 'mlm' }), ['cls.predictions.decoder.weight', '[100, 48]', 'model.safetensors']);
});

test('save -> load round-trips exactly, with labels, architectures and tokenizer files', async () => {
  const tokenizerSource = join(work, 'tok');
  await mkdir(tokenizerSource);
  await writeFile(join(tokenizerSource, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n');
  await writeFile(join(tokenizerSource, 'tokenizer_config.json'), '{"do_lower_case": true}');
  for (const [dir, labels, arch] of [
    [BERT, ['neg', 'pos'], 'BertForSequenceClassification'],
    [DISTIL, undefined, 'DistilBertForSequenceClassification'],
  ] as const) {
    const c = await loadCheckpoint(dir);
    const out = join(work, `roundtrip-${arch}`);
    await saveCheckpoint(out, { config: c.config, params: c.params, labels: labels ? [...labels] : undefined, tokenizerFiles: tokenizerSource });
    const back = await loadCheckpoint(out);
    assert.deepEqual(await paramBits(back), await paramBits(c));
    assert.deepEqual(back.labels, labels ?? c.labels);
    const original = await fixtureConfig(dir);
    const saved = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(saved.architectures, [arch]);
    const finalLabels = labels ?? Object.values(original.id2label as object);
    assert.deepEqual(saved.id2label, Object.fromEntries(finalLabels.map((l, i) => [String(i), l])));
    assert.deepEqual(saved.label2id, Object.fromEntries(finalLabels.map((l, i) => [l, i])));
    for (const key of Object.keys(original)) if (!['id2label', 'label2id', 'architectures'].includes(key)) assert.deepEqual(saved[key], original[key], key);
    assert.deepEqual(await readFile(join(out, 'vocab.txt')), await readFile(join(tokenizerSource, 'vocab.txt')));
    assert.deepEqual((await readdir(out)).sort(), ['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt']);
    assert.deepEqual(back.tokenizerFiles.map((f) => f.slice(out.length + 1)).sort(), ['tokenizer_config.json', 'vocab.txt']);
    disposeParams(c.params);
    disposeParams(back.params);
  }

  // MLM: the tied decoder weight is written for transformers, equal to the word embeddings.
  const m = await loadCheckpoint(BERT, { head: 'mlm', seed: 1 });
  const out = join(work, 'roundtrip-mlm');
  await saveCheckpoint(out, m);
  const file = (await readSafetensors(join(out, 'model.safetensors'))).tensors;
  assert.deepEqual(bits(file.get('cls.predictions.decoder.weight')!.data), bits(file.get('bert.embeddings.word_embeddings.weight')!.data));
  assert.deepEqual(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).architectures, ['BertForMaskedLM']);
  const back = await loadCheckpoint(out, { head: 'mlm' });
  assert.deepEqual(await paramBits(back), await paramBits(m));
  disposeParams(m.params);
  disposeParams(back.params);
});

test('a checkpoint that cannot be written names its target, not the temporary file it was written to', async () => {
  const c = await loadCheckpoint(BERT);
  const file = join(work, 'a-file');
  await writeFile(file, 'not a directory');
  for (const target of [join(file, 'ckpt'), join(file, 'deeper', 'ckpt')]) {
    const error = await saveCheckpoint(target, { config: c.config, params: c.params, labels: ['a', 'b'] }).then(
      () => assert.fail(`${target}: saved under a file`),
      (e: unknown) => e,
    );
    assert.ok(error instanceof UserError, String(error));
    assert.ok(error.message.startsWith(`${target}: cannot save the checkpoint (a part of `), error.message);
    assert.match(error.message, /is a file, not a directory\); nothing there was changed$/);
    assert.doesNotMatch(error.message, /\.tmp-/);
  }
  assert.equal(await readFile(file, 'utf8'), 'not a directory');
  disposeParams(c.params);
});

test('saving replaces an existing checkpoint atomically; a failed save leaves it untouched', async () => {
  const target = join(work, 'atomic', 'ckpt');
  const c = await loadCheckpoint(BERT);
  await saveCheckpoint(target, { config: c.config, params: c.params, labels: ['a', 'b'] });
  await saveCheckpoint(target, { config: c.config, params: c.params, labels: ['c', 'd'] });
  assert.deepEqual((await loadCheckpoint(target).then((r) => { disposeParams(r.params); return r; })).labels, ['c', 'd']);
  assert.deepEqual(await leftovers(join(work, 'atomic')), []);

  const snapshot = async () => Promise.all(['config.json', 'model.safetensors'].map((f) => readFile(join(target, f))));
  const before = await snapshot();

  // Fails validation: a parameter of the wrong shape.
  const wrong = new Map(c.params);
  const bad = tf.zeros([96, 47]);
  wrong.set('bert.encoder.layer.1.intermediate.dense.weight', bad);
  await assertUserError(saveCheckpoint(target, { config: c.config, params: wrong, labels: ['x', 'y'] }), ['bert.encoder.layer.1.intermediate.dense.weight', '[96, 47]']);
  bad.dispose();

  // Fails after model.safetensors is written: a tokenizer file that isn't there.
  const missing = join(work, 'no-such-dir', 'vocab.txt');
  await assertUserError(saveCheckpoint(target, { config: c.config, params: c.params, labels: ['x', 'y'], tokenizerFiles: [missing] }), [missing]);

  assert.deepEqual(await snapshot(), before);
  assert.deepEqual(await leftovers(join(work, 'atomic')), []);
  disposeParams(c.params);
});

test('bad checkpoint directories give one clear UserError naming the file and tensor', async () => {
  const before = tf.memory().numTensors;
  const config = await fixtureConfig(BERT);
  const entries = await fixtureEntries(BERT);

  const nowhere = join(work, 'does-not-exist');
  await assertUserError(loadCheckpoint(nowhere), [nowhere, 'not found']);
  const aFile = join(work, 'a-file');
  await writeFile(aFile, 'x');
  await assertUserError(loadCheckpoint(aFile), [aFile, 'not a directory']);

  const noConfig = join(work, 'no-config');
  await mkdir(noConfig);
  await assertUserError(loadCheckpoint(noConfig), [join(noConfig, 'config.json'), 'not found']);

  const torchOnly = join(work, 'torch-only');
  await mkdir(torchOnly);
  await writeFile(join(torchOnly, 'config.json'), JSON.stringify(config));
  await writeFile(join(torchOnly, 'pytorch_model.bin'), 'not really');
  await assertUserError(loadCheckpoint(torchOnly), [join(torchOnly, 'pytorch_model.bin')]);

  const tfOnly = join(work, 'tf-only');
  await mkdir(tfOnly);
  await writeFile(join(tfOnly, 'config.json'), JSON.stringify(config));
  await writeFile(join(tfOnly, 'tf_model.h5'), 'not really');
  await assertUserError(loadCheckpoint(tfOnly), [join(tfOnly, 'model.safetensors'), 'pytorch_model.bin', 'tf_model.h5']);

  const untyped = await variant({ ...config, model_type: undefined, num_hidden_layers: undefined }, entries);
  await assertUserError(loadCheckpoint(untyped), [join(untyped, 'config.json'), 'model_type is missing']);

  const badJson = await variant(config, entries);
  await writeFile(join(badJson, 'config.json'), '{"model_type": "bert",');
  await assertUserError(loadCheckpoint(badJson), [join(badJson, 'config.json'), 'invalid JSON']);

  const roberta = await variant({ ...config, model_type: 'roberta' }, entries);
  await assertUserError(loadCheckpoint(roberta), [join(roberta, 'config.json'), 'roberta']);

  const narrow = await variant({ ...config, intermediate_size: 64 }, entries);
  await assertUserError(loadCheckpoint(narrow), ['model.safetensors', 'config.json', 'bert.encoder.layer.0.intermediate.dense.weight', '[96, 48]', '[64, 48]']);

  const holed = await variant(config, entries.filter(([k]) => k !== 'bert.encoder.layer.2.output.dense.weight'));
  await assertUserError(loadCheckpoint(holed), ['model.safetensors', 'missing tensor bert.encoder.layer.2.output.dense.weight']);

  const truncated = await variant(config, entries);
  const bytes = await readFile(join(truncated, 'model.safetensors'));
  await writeFile(join(truncated, 'model.safetensors'), bytes.subarray(0, bytes.length - 4));
  await assertUserError(loadCheckpoint(truncated), [join(truncated, 'model.safetensors'), '"classifier.bias"', 'out of range']);

  assert.equal(tf.memory().numTensors, before, 'failed loads allocate no tensors');
});

test('the config\'s depth must match the weights: 1e9 layers fail at once, fewer layers are not run silently', async () => {
  const config = JSON.parse(await readFile(join(BERT, 'config.json'), 'utf8')) as Record<string, unknown>;
  const stored = config.num_hidden_layers as number;
  for (const layers of [1e9, stored - 1, stored + 1]) {
    const dir = join(work, `depth-${layers}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: layers }));
    await writeFile(join(dir, 'model.safetensors'), await readFile(join(BERT, 'model.safetensors')));
    const started = performance.now();
    await assert.rejects(loadCheckpoint(dir), (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, new RegExp(`config\\.json: num_hidden_layers is ${layers} but .*model\\.safetensors holds ${stored} encoder layers`));
      return true;
    });
    assert.ok(performance.now() - started < 5000, 'refused before building anything');
  }
});

test('a tokenizer larger than the model\'s vocabulary is refused when the two are paired, naming both sizes', async () => {
  const checkpoint = await loadCheckpoint(BERT);
  try {
    checkTokenizerFits({ vocabSize: checkpoint.config.vocabSize }, checkpoint.config, BERT);
    assert.throws(
      () => checkTokenizerFits({ vocabSize: checkpoint.config.vocabSize + 1 }, checkpoint.config, BERT),
      (error: unknown) => error instanceof UserError && new RegExp(`${checkpoint.config.vocabSize + 1} tokens but config.json's vocab_size is ${checkpoint.config.vocabSize}`).test(error.message),
    );
  } finally {
    disposeParams(checkpoint.params);
  }
});

test('NaN or infinite weights are refused at load, naming the tensor and the count', async () => {
  const target = 'bert.encoder.layer.0.attention.self.query.weight';
  for (const poison of [NaN, Infinity, -Infinity]) {
    const entries = await fixtureEntries(BERT);
    const i = entries.findIndex(([key]) => key === target);
    assert.ok(i >= 0, `${target} is in the fixture`);
    const data = new Float32Array(new Float32Array(entries[i][1].bytes.buffer.slice(entries[i][1].bytes.byteOffset, entries[i][1].bytes.byteOffset + entries[i][1].bytes.byteLength)));
    data[3] = poison;
    data[7] = poison;
    entries[i] = [target, f32Raw(entries[i][1].shape, data)];
    const dir = await variant(await fixtureConfig(BERT), entries);
    await assertUserError(loadCheckpoint(dir), [`tensor "${target}" holds 2 NaN or infinite values`, 'model.safetensors']);
  }
});

test('a config whose num_labels and id2label disagree is refused, naming both', async () => {
  const config = { ...(await fixtureConfig(BERT)), num_labels: 3, id2label: { '0': 'negative', '1': 'positive' } };
  const dir = await variant(config, await fixtureEntries(BERT));
  await assertUserError(loadCheckpoint(dir), ['config.json', 'num_labels is 3 but id2label names 2 labels']);
  // Agreeing fields load as before.
  const fine = await variant({ ...config, num_labels: 2 }, await fixtureEntries(BERT));
  const loaded = await loadCheckpoint(fine);
  assert.deepEqual(loaded.config.labels, ['negative', 'positive']);
  disposeParams(loaded.params);
});

test('an unreadable config.json is described by position, never by quoting its contents', async () => {
  const secret = join(work, 'not-a-config.txt');
  await writeFile(secret, 'root:x:0:0:SECRET-CONTENT:/root:/bin/bash\n');
  for (const [name, link] of [['symlinked', true], ['broken', false]] as const) {
    const dir = join(work, `config-${name}`);
    await mkdir(dir, { recursive: true });
    if (link) await symlink(secret, join(dir, 'config.json'));
    else await writeFile(join(dir, 'config.json'), '{"model_type": "bert",\n "hidden_size": 8 oops}');
    await writeFile(join(dir, 'model.safetensors'), await readFile(join(BERT, 'model.safetensors')));
    await assert.rejects(loadCheckpoint(dir), (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, /config\.json: invalid JSON/);
      assert.doesNotMatch(error.message, /SECRET|root:x|oops/, 'no file contents in the message');
      return true;
    });
  }
  await assert.rejects(loadCheckpoint(join(work, 'config-broken')), /invalid JSON at line 2, column \d+/);
});

test('an integer (quantized) weight is named as such, not reported as missing; a wrong-size classifier names the flag', async () => {
  const target = 'bert.encoder.layer.0.output.dense.weight';
  const entries = await fixtureEntries(BERT);
  const i = entries.findIndex(([key]) => key === target);
  const shape = entries[i][1].shape;
  entries[i] = [target, { dtype: 'I8', shape, bytes: new Uint8Array(shape.reduce((a, b) => a * b, 1)) }];
  const dir = await variant(await fixtureConfig(BERT), entries);
  await assertUserError(loadCheckpoint(dir), [`tensor "${target}" is I8: quantized weights are not supported`]);
  // A classifier of another size than config.json implies: the message names the CLI flag.
  const config = await fixtureConfig(BERT);
  const withHead = await variant({ ...config, id2label: { '0': 'a', '1': 'b', '2': 'c' } }, [
    ...(await fixtureEntries(BERT)),
    ['classifier.weight', f32Raw([2, config.hidden_size as number], new Float32Array(2 * (config.hidden_size as number)))],
    ['classifier.bias', f32Raw([2], new Float32Array(2))],
  ]);
  await assertUserError(loadCheckpoint(withHead, { head: 'classifier' }), ['pass --num-labels']);
});
