import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors';
import {
  float32ToFloat16Bits,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type WriteTensor,
} from '../src/io/safetensors';
import { runTorch, torchMissing } from './helpers/torch';

const PYTHON = '/usr/bin/python3';
const havePython = existsSync(PYTHON);
const parityDir = process.env.HEALING_SHARED_DIR
  ? join(process.env.HEALING_SHARED_DIR, 'fixtures/parity')
  : fileURLToPath(new URL('../../shared/fixtures/parity/', import.meta.url));

const dir = await mkdtemp(join(tmpdir(), 'healing-safetensors-'));
test.after(() => rm(dir, { recursive: true, force: true }));

/** An independent, minimal safetensors writer: any dtype, any (even invalid) offsets. */
function buildFile(header: Record<string, unknown>, data: Uint8Array, headerLength?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

function python(script: string, input: string): string {
  const out = spawnSync(PYTHON, ['-c', script], { input, encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout;
}

const bits32 = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

let fileCounter = 0;
async function fileWith(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `bad-${fileCounter++}.safetensors`);
  await writeFile(path, bytes);
  return path;
}

/** Asserts reading `path` fails with a UserError naming the file and every `mentions` string. */
async function assertRejects(path: string, mentions: string[]): Promise<void> {
  await assert.rejects(readSafetensors(path), (error: unknown) => {
    assert.ok(error instanceof UserError, `expected UserError, got ${error}`);
    assert.ok(error.message.includes(path), `message names the file: ${error.message}`);
    for (const m of mentions) assert.ok(error.message.includes(m), `message mentions ${m}: ${error.message}`);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });
}

test('F32 round trip is bit-exact, including specials, scalars and empty tensors', async () => {
  const path = join(dir, 'roundtrip.safetensors');
  const special = new Float32Array([0, -0, 1.5, -2.25, Infinity, -Infinity, NaN, 1e-45, 3.4028234663852886e38, 0.1]);
  const random = Float32Array.from({ length: 7 * 5 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453);
  const tensors = new Map<string, WriteTensor>([
    ['a.weight', { shape: [7, 5], data: random }],
    ['special', { shape: [10], data: special }],
    ['scalar', { shape: [], data: new Float32Array([42.5]) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
  ]);
  await writeSafetensors(path, tensors, { metadata: { source: 'test' } });
  const bytes = await readFile(path);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, 'data buffer is 8-byte aligned');
  const back = await readSafetensors(path);
  assert.deepEqual(back.metadata, { format: 'pt', source: 'test' });
  assert.deepEqual([...back.tensors.keys()], [...tensors.keys()]);
  for (const [name, t] of tensors) {
    const r = back.tensors.get(name)!;
    assert.equal(r.dtype, 'F32');
    assert.deepEqual(r.shape, t.shape);
    assert.deepEqual(bits32(r.data), bits32(t.data), name);
  }
  assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp-')), [], 'no temp file left');
});

test('F16 writing stays within fp16 precision', async () => {
  const path = join(dir, 'half.safetensors');
  const data = Float32Array.from({ length: 4000 }, (_, i) => Math.sin(i * 7.31) * 10 ** ((i % 9) - 4));
  await writeSafetensors(path, new Map([['x', { shape: [4000], data }]]), { dtype: 'F16' });
  const r = (await readSafetensors(path)).tensors.get('x')!;
  assert.equal(r.dtype, 'F16');
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    // Half a unit in the last place: relative 2^-11 for normals, absolute 2^-25 in the subnormal range.
    const tolerance = Math.max(Math.abs(x) * 2 ** -11, 2 ** -25);
    assert.ok(Math.abs(r.data[i] - x) <= tolerance, `${x} -> ${r.data[i]}`);
  }
});

const haveTorch = havePython && spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

test('BF16 writing (optimizer moments) rounds to nearest even as torch does, bit for bit', { skip: !haveTorch && 'no torch for /usr/bin/python3' }, async () => {
  const values = [0, -0, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 3e38, -3.4e38, 1e-39, 1e-45, 0.1, 1 / 3, NaN, Infinity, -Infinity];
  for (let i = 0; i < 500; i++) values.push(Math.sin(i * 3.7) * 2 ** ((i % 60) - 40));
  const data = Float32Array.from(values);
  const path = join(dir, 'bf16.safetensors');
  await writeSafetensors(path, new Map([['x', { shape: [data.length], data }]]), { dtype: 'BF16' });
  const script = `
import json, struct, sys, torch
inp = json.loads(sys.stdin.read())
x = torch.tensor(inp['bits'], dtype=torch.int64).to(torch.int32).view(torch.float32)
expected = x.to(torch.bfloat16).view(torch.int16).to(torch.int32).tolist()
b = open(inp['path'], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
begin, end = h['x']['data_offsets']
stored = list(struct.unpack('<%dh' % ((end - begin) // 2), b[8 + n + begin:8 + n + end]))
print(json.dumps({'expected': expected, 'stored': stored, 'dtype': h['x']['dtype']}))
`;
  const signed = bits32(data).map((u) => (u > 0x7fffffff ? u - 2 ** 32 : u));
  const out = JSON.parse(python(script, JSON.stringify({ path, bits: signed })));
  assert.equal(out.dtype, 'BF16');
  // NaN payloads may differ; both must be NaN (exponent all ones, mantissa non-zero).
  const isNan = (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
  out.expected.forEach((e: number, i: number) => {
    if (isNan(e)) assert.ok(isNan(out.stored[i]), `value ${i} is NaN`);
    else assert.equal(out.stored[i], e, `value ${i} (${data[i]})`);
  });
  const back = (await readSafetensors(path)).tensors.get('x')!.data;
  // Within half a bf16 ulp, except where rounding overflows to infinity (|x| near float32's max), as in torch.
  for (let i = 0; i < data.length; i++) if (Number.isFinite(back[i]) && Number.isFinite(data[i])) assert.ok(Math.abs(back[i] - data[i]) <= Math.max(Math.abs(data[i]) * 2 ** -8, 2 ** -133), `${data[i]} -> ${back[i]}`);
});

test('F16 rounding matches Python struct (IEEE round-to-nearest-even) bit for bit', { skip: !havePython && 'no /usr/bin/python3' }, async () => {
  const values = [
    0, -0, 1, -1, 65504, 65519.99, 65520, -70000, 1e-8, -1e-8,
    2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -25 * 1.0001, 2 ** -14, 2 ** -14 * (1 - 2 ** -11),
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2048 + 1, 2048 + 3, 0.1, 1 / 3, Math.PI, NaN, Infinity, -Infinity,
  ];
  for (let i = 0; i < 500; i++) values.push(Math.sin(i * 3.7) * 2 ** ((i % 40) - 26));
  const data = Float32Array.from(values);
  const path = join(dir, 'half-python.safetensors');
  await writeSafetensors(path, new Map([['x', { shape: [data.length], data }]]), { dtype: 'F16' });
  const script = `
import json, struct, sys
inp = json.loads(sys.stdin.read())
def half(u):
    x = struct.unpack('<f', struct.pack('<I', u))[0]
    try:
        return struct.unpack('<H', struct.pack('<e', x))[0]
    except OverflowError:
        return 0xfc00 if x < 0 else 0x7c00
b = open(inp['path'], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
begin, end = h['x']['data_offsets']
stored = list(struct.unpack('<%dH' % ((end - begin) // 2), b[8 + n + begin:8 + n + end]))
print(json.dumps({'expected': [half(u) for u in inp['bits']], 'stored': stored, 'dtype': h['x']['dtype']}))
`;
  const out = JSON.parse(python(script, JSON.stringify({ path, bits: bits32(data) })));
  assert.equal(out.dtype, 'F16');
  assert.deepEqual(out.stored, out.expected);
  assert.deepEqual(Array.from(data, float32ToFloat16Bits), out.expected);
});

test('reads F16, BF16, F32 and I64 written by an independent Python writer', { skip: !havePython && 'no /usr/bin/python3' }, async () => {
  const path = join(dir, 'python-written.safetensors');
  const script = `
import json, struct, math
vals = [0.0, -0.0, 1.0, -2.5, 3.14159265, 1e-3, -7e-6, 65504.0, 1e30, -1e-30, 6e-8, float('inf'), float('-inf')]
vals += [math.sin(i * 1.37) * 10 ** (i % 7 - 3) for i in range(200)]
f32 = lambda x: struct.pack('<f', x)
f32bits = lambda x: struct.unpack('<I', f32(x))[0]
def to_half(x):
    try: return struct.pack('<e', x)
    except OverflowError: return struct.pack('<H', 0xfc00 if x < 0 else 0x7c00)
tensors = {
  'h': ('F16', b''.join(to_half(x) for x in vals)),
  'bf': ('BF16', b''.join(f32(x)[2:4] for x in vals)),          # bfloat16 = top 16 bits (truncated)
  'f': ('F32', b''.join(f32(x) for x in vals)),
}
expected = {
  'h': [f32bits(struct.unpack('<e', to_half(x))[0]) for x in vals],
  'bf': [struct.unpack('<I', b'\\x00\\x00' + f32(x)[2:4])[0] for x in vals],
  'f': [f32bits(x) for x in vals],
}
ids = [0, 1, 2, 511, -3, 2 ** 40]
header, data = {}, b''
for name, (dt, raw) in tensors.items():
    header[name] = {'dtype': dt, 'shape': [len(vals)], 'data_offsets': [len(data), len(data) + len(raw)]}
    data += raw
raw = struct.pack('<%dq' % len(ids), *ids)
header['position_ids'] = {'dtype': 'I64', 'shape': [1, len(ids)], 'data_offsets': [len(data), len(data) + len(raw)]}
data += raw
header['__metadata__'] = {'format': 'pt'}
hj = json.dumps(header).encode()
hj += b' ' * ((8 - len(hj) % 8) % 8)
import sys
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hj)) + hj + data)
print(json.dumps({'expected': expected, 'ids': ids}))
`;
  const out = spawnSync(PYTHON, ['-c', script, path], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const { expected, ids } = JSON.parse(out.stdout) as { expected: Record<string, number[]>; ids: number[] };
  const file = await readSafetensors(path);
  assert.deepEqual(file.metadata, { format: 'pt' });
  for (const [name, dtype] of [['h', 'F16'], ['bf', 'BF16'], ['f', 'F32']] as const) {
    const t = file.tensors.get(name)!;
    assert.equal(t.dtype, dtype);
    assert.deepEqual(bits32(t.data), expected[name], name);
  }
  const pos = file.tensors.get('position_ids')!;
  assert.equal(pos.dtype, 'I64');
  assert.deepEqual(pos.shape, [1, ids.length]);
  assert.deepEqual(Array.from(pos.data), ids);
});

test('BF16 decoding equals the float32 whose low 16 bits are zero', async () => {
  const source = Float32Array.from({ length: 300 }, (_, i) => Math.cos(i * 0.77) * 2 ** ((i % 60) - 30));
  const words = new Uint32Array(source.buffer);
  const halves = Uint16Array.from(words, (w) => w >>> 16);
  const path = await fileWith(buildFile({ b: { dtype: 'BF16', shape: [300], data_offsets: [0, 600] } }, new Uint8Array(halves.buffer)));
  const t = (await readSafetensors(path)).tensors.get('b')!;
  const view = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < source.length; i++) {
    view.setUint32(0, (words[i] & 0xffff0000) >>> 0, true);
    assert.equal(t.data[i], view.getFloat32(0, true));
  }
});

test('a parity fixture written by PyTorch tooling reads the same as Python decodes it', { skip: !havePython && 'no /usr/bin/python3' }, async () => {
  const path = join(parityDir, 'bert-tiny-random/model.safetensors');
  const file = await readSafetensors(path);
  const script = `
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); h.pop('__metadata__', None)
out = {}
for k, v in h.items():
    s, e = v['data_offsets']
    out[k] = {'shape': v['shape'], 'bits': list(struct.unpack('<%dI' % ((e - s) // 4), b[8 + n + s:8 + n + e]))}
print(json.dumps(out))
`;
  const out = spawnSync(PYTHON, ['-c', script, path], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  assert.equal(out.status, 0, out.stderr);
  const expected = JSON.parse(out.stdout) as Record<string, { shape: number[]; bits: number[] }>;
  assert.equal(file.tensors.size, Object.keys(expected).length);
  for (const [name, e] of Object.entries(expected)) {
    const t = file.tensors.get(name)!;
    assert.deepEqual(t.shape, e.shape, name);
    assert.deepEqual(bits32(t.data), e.bits, name);
  }
});

test('cross-check against tensors from torch, written with a hand-built header (no safetensors package)', { skip: torchMissing() }, async () => {
  // The safetensors layout: 8-byte little-endian header length, the JSON header (padded with spaces to a
  // multiple of 8, as safetensors does), then each tensor's raw little-endian bytes at its data_offsets.
  const path = join(dir, 'torch.safetensors');
  const script = `
import json, struct, sys, torch
assert sys.byteorder == 'little'
torch.manual_seed(0)
t = {
  'w': torch.randn(3, 4),
  'wt': torch.randn(4, 2).t(),          # a transposed view: written in its row-major order
  'h': torch.randn(5).half(),
  'b': (torch.randn(6) * 1e3).bfloat16(),
  'pos': torch.tensor([[0, 1, 2, 511, -3, 2 ** 40]], dtype=torch.int64),
}
dtypes = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64'}
def raw(v):
    v = v.contiguous()
    return (v.view(torch.int16) if v.dtype == torch.bfloat16 else v).numpy().tobytes()
header, data = {'__metadata__': {'format': 'pt'}}, b''
for name, v in t.items():
    r = raw(v)
    header[name] = {'dtype': dtypes[v.dtype], 'shape': list(v.shape), 'data_offsets': [len(data), len(data) + len(r)]}
    data += r
hj = json.dumps(header).encode()
hj += b' ' * ((8 - len(hj) % 8) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hj)) + hj + data)
print(json.dumps({k: {'shape': list(v.shape), 'values': (v if v.dtype == torch.int64 else v.float()).flatten().tolist()} for k, v in t.items()}))
`;
  const expected = runTorch<Record<string, { shape: number[]; values: number[] }>>(script, { args: [path] });
  const file = await readSafetensors(path);
  assert.deepEqual(file.metadata, { format: 'pt' });
  assert.deepEqual([...file.tensors.keys()].sort(), Object.keys(expected).sort());
  for (const [name, e] of Object.entries(expected)) {
    const t = file.tensors.get(name)!;
    assert.deepEqual(t.shape, e.shape, name);
    // Floats: torch's own float32 values of each tensor, bit for bit (F16 and BF16 widen exactly).
    assert.deepEqual(Array.from(t.data), name === 'pos' ? e.values : Array.from(Float32Array.from(e.values)), name);
  }
});

test('names filter reads only the requested tensors; header reader touches no data', async () => {
  const path = join(dir, 'filter.safetensors');
  await writeSafetensors(path, new Map([
    ['keep', { shape: [2], data: new Float32Array([1, 2]) }],
    ['skip', { shape: [3], data: new Float32Array([3, 4, 5]) }],
  ]));
  const file = await readSafetensors(path, { names: (n) => n === 'keep' });
  assert.deepEqual([...file.tensors.keys()], ['keep']);
  const header = await readSafetensorsHeader(path);
  assert.deepEqual(header.entries.map((e) => [e.name, e.dtype, e.shape]), [['keep', 'F32', [2]], ['skip', 'F32', [3]]]);
});

const f32 = (n: number) => new Uint8Array(new Float32Array(n).buffer);

test('bad input: truncated file names the file and the tensor cut off', async () => {
  const good = buildFile({
    first: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    last: { dtype: 'F32', shape: [4], data_offsets: [16, 32] },
  }, f32(8));
  await assertRejects(await fileWith(good.subarray(0, good.length - 5)), ['"last"', 'out of range', 'truncated']);
  await assertRejects(await fileWith(good.subarray(0, 5)), ['too short']);
});

test('bad input: header length beyond the file', async () => {
  const bytes = buildFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1), 1n << 40n);
  await assertRejects(await fileWith(bytes), ['header length', 'exceeds the file size']);
});

test('bad input: offsets out of range are caught before any allocation', async () => {
  // A 4 TB tensor: allocating before validating would throw a RangeError, not a UserError.
  const huge = buildFile({ big: { dtype: 'F32', shape: [1_000_000, 1_000_000], data_offsets: [0, 4e12] } }, f32(4));
  await assertRejects(await fileWith(huge), ['"big"', 'out of range']);
  const past = buildFile({ a: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } }, f32(4));
  await assertRejects(await fileWith(past), ['"a"', '[12, 20]', 'out of range']);
  const malformed = buildFile({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f32(4));
  await assertRejects(await fileWith(malformed), ['"a"', 'data_offsets']);
  const negative = buildFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(4));
  await assertRejects(await fileWith(negative), ['"a"', 'shape']);
});

test('bad input: overlapping tensors name both tensors', async () => {
  const bytes = buildFile({
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
  }, f32(6));
  await assertRejects(await fileWith(bytes), ['"a"', '"b"', 'overlap']);
});

test('bad input: unknown dtype', async () => {
  const bytes = buildFile({ weird: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, f32(1));
  await assertRejects(await fileWith(bytes), ['"weird"', 'dtype "Q7"']);
});

test('bad input: byte size disagreeing with shape and dtype', async () => {
  const bytes = buildFile({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, f32(5));
  await assertRejects(await fileWith(bytes), ['"w"', '20 bytes', '24']);
  const half = buildFile({ h: { dtype: 'F16', shape: [4], data_offsets: [0, 16] } }, f32(4));
  await assertRejects(await fileWith(half), ['"h"', 'F16']);
});

test('bad input: header that is not JSON, not an object, or bad metadata', async () => {
  const notJson = Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{nope'), Buffer.alloc(4)]);
  await assertRejects(await fileWith(notJson), ['not valid JSON']);
  const array = Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('[]')]);
  await assertRejects(await fileWith(array), ['not a JSON object']);
  await assertRejects(await fileWith(buildFile({ __metadata__: { n: 3 } }, new Uint8Array(0))), ['__metadata__.n']);
  const bytes = buildFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1));
  assert.throws(() => parseSafetensorsHeader(bytes.subarray(0, 12), 'given.safetensors', bytes.length), /given\.safetensors/);
});

test('bad input: missing file', async () => {
  await assertRejects(join(dir, 'nope.safetensors'), ['not found']);
});

test('writing rejects data that does not fill its shape and keeps the existing file', async () => {
  const path = join(dir, 'keep.safetensors');
  await writeSafetensors(path, new Map([['a', { shape: [2], data: new Float32Array([1, 2]) }]]));
  const before = await readFile(path);
  await assert.rejects(
    writeSafetensors(path, new Map([['a', { shape: [2], data: new Float32Array([9, 9]) }], ['bad', { shape: [2, 2], data: new Float32Array(3) }]])),
    (e: unknown) => e instanceof UserError && e.message.includes(path) && e.message.includes('"bad"'),
  );
  assert.deepEqual(await readFile(path), before);
  assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp-')), []);
});
