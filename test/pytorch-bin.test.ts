import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { UserError } from '../src/errors';
import { readPytorch, readPytorchHeader } from '../src/io/pytorch-bin';
import { runTorch, torchMissing } from './helpers/torch';

/**
 * The pytorch_model.bin reader against files torch itself wrote (and a few Python's pickle module wrote
 * to torch's layout, for what torch never writes). Complements test/pytorch-state-dict.test.ts with every
 * storage dtype, pickle protocols 4 and 5 (FRAME, MEMOIZE, STACK_GLOBAL), allocation counts, every
 * truncation point and hand-made hostile pickles that need no torch.
 */

/**
 * Writes the fixtures into argv[1]: one real module state dict (plus views, strides, every dtype) saved
 * four ways, its values as torch reads them (row-major float32 bytes, expected.f32), and files torch
 * would only write when asked to do something a state dict never is.
 */
const FIXTURES = String.raw`
import array, io, json, os, pickle, sys, zipfile
from collections import OrderedDict
import torch

out, marker = sys.argv[1], sys.argv[2]
g = torch.Generator().manual_seed(1234)

model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
sd = model.state_dict()                       # an OrderedDict carrying _metadata (pickled as BUILD)
assert len(sd._metadata) == 3
base = torch.arange(12.).reshape(3, 4) + torch.randn(3, 4, generator=g)
sd['row'] = base[1]                           # storage offset 4; torch saves base's whole storage
sd['column'] = base[:, 2]                     # offset 2, stride 4, the same storage
sd['transposed'] = torch.randn(5, 2, generator=g).t()
sd['permuted'] = torch.randn(2, 3, 4, generator=g).permute(2, 0, 1)
sd['half'] = torch.randn(2, 5, generator=g).half()
sd['bf16'] = (torch.randn(7, generator=g) * 1e3).bfloat16()
sd['double'] = torch.randn(3, generator=g).double()
sd['position_ids'] = torch.arange(9).expand(1, -1)
sd['int32'] = torch.tensor([-7, 0, 2**30], dtype=torch.int32)
sd['int16'] = torch.tensor([-300, 5], dtype=torch.int16)
sd['int8'] = torch.tensor([-128, 127], dtype=torch.int8)
sd['uint8'] = torch.tensor([0, 255], dtype=torch.uint8)
sd['mask'] = torch.tensor([True, False, True])
sd['broadcast'] = torch.randn(3, generator=g).expand(2, 3)   # stride 0
sd['param'] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
sd['scalar'] = torch.tensor(2.5)
sd['empty'] = torch.zeros(0, 3)
sd['tied'] = sd['0.weight']                   # one tensor under two names, as tied embeddings are
sd['big'] = torch.randn(256, 256, generator=g)
assert not sd['transposed'].is_contiguous() and not sd['permuted'].is_contiguous()
assert sd['row'].storage_offset() == 4 and sd['column'].stride() == (4,)

files = {'zip-p2.bin': {}, 'zip-p4.bin': {'pickle_protocol': 4},
         'legacy-p2.bin': {'_use_new_zipfile_serialization': False},
         'legacy-p5.bin': {'_use_new_zipfile_serialization': False, 'pickle_protocol': 5}}
for name, kw in files.items():
    torch.save(sd, os.path.join(out, name), **kw)

DT = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64', torch.int64: 'I64',
      torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8', torch.bool: 'BOOL'}
entries = []
with open(os.path.join(out, 'expected.f32'), 'wb') as raw:
    for k, v in sd.items():
        values = v.detach().contiguous().float().reshape(-1).tolist()
        entries.append({'name': k, 'dtype': DT[v.dtype], 'shape': list(v.shape)})
        raw.write(array.array('f', values).tobytes())
for f in files:
    back = torch.load(os.path.join(out, f))
    assert list(back) == list(sd) and all(torch.equal(back[k], v) for k, v in sd.items())

opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
torch.save({'model': OrderedDict(w=torch.ones(2)), 'optimizer': opt.state_dict(), 'epoch': 3}, os.path.join(out, 'wrapped.bin'))
torch.save(torch.nn.Linear(2, 2), os.path.join(out, 'module.bin'))   # the whole module: pickles its class
torch.save({'w': torch.ones(2), 'n': 3}, os.path.join(out, 'not-tensor.bin'))

class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned > ' + marker,))
torch.save({'w': torch.zeros(2), 'x': Evil()}, os.path.join(out, 'evil-zip.bin'))
torch.save({'w': torch.zeros(2), 'x': Evil()}, os.path.join(out, 'evil-p4.bin'), pickle_protocol=4)
torch.save({'w': torch.zeros(2), 'x': Evil()}, os.path.join(out, 'evil-legacy.bin'), _use_new_zipfile_serialization=False)

# torch's zip layout around pickles torch would not write: any persistent id, size, stride, dict items.
class Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel
class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())
    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)
class Items:
    def __init__(self, items):
        self.items = items
    def __reduce__(self):
        return (OrderedDict, (), None, None, iter(self.items))
class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ('storage', torch.FloatStorage, obj.key, 'cpu', obj.numel) if isinstance(obj, Storage) else None
def archive(name, obj, records, pkl=None):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(os.path.join(out, name), 'w', zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', buf.getvalue() if pkl is None else pkl)
        for key, data in records.items():
            z.writestr('archive/data/' + key, data)
        z.writestr('archive/version', '3\n')
four = array.array('f', [1, 2, 3, 4]).tobytes()
s = Storage('0', 4)
archive('overrun.bin', Items([('ok', Tensor(s, 0, [4], [1])), ('long', Tensor(s, 2, [3], [1]))]), {'0': four})
archive('short-record.bin', Items([('w', Tensor(Storage('0', 8), 0, [8], [1]))]), {'0': four})
archive('duplicate.bin', Items([('a', Tensor(s, 0, [2], [1])), ('a', Tensor(s, 2, [2], [1]))]), {'0': four})
archive('huge-broadcast.bin', Items([('w', Tensor(s, 0, [10**6, 10**6], [0, 0]))]), {'0': four})
archive('big-endian.bin', Items([('w', Tensor(s, 0, [4], [1]))]), {'0': four})
with zipfile.ZipFile(os.path.join(out, 'big-endian.bin'), 'a') as z:
    z.writestr('archive/byteorder', 'big')
class Call:
    def __init__(self, *call):
        self.call = call
    def __reduce__(self):
        return self.call
archive('ordereddict-int.bin', Call(OrderedDict, (5,)), {})
bad = b'\x80\x02}q\x00X\x01\x00\x00\x00aq\x01'      # {'a': then INT (0x49), a protocol-0 opcode
archive('opcode.bin', None, {}, pkl=bad + b'I5\n' + b's.')
print(json.dumps({'entries': entries, 'opcodeOffset': len(bad)}))
`;

interface Fixtures {
  entries: Array<{ name: string; dtype: string; shape: number[] }>;
  opcodeOffset: number;
}

const TORCH_FILES = ['zip-p2.bin', 'zip-p4.bin', 'legacy-p2.bin', 'legacy-p5.bin'];

/** Asserts `promise` rejects with a UserError whose message starts with `path` and matches every pattern. */
async function refused(promise: Promise<unknown>, path: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (e: Error) => {
    assert.ok(e instanceof UserError, `${path}: ${e.name}: ${e.message}`);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

/**
 * Float32Array elements constructed while `run` runs: the reader widens every tensor to float32, so this
 * counts tensor data materialised (typed arrays built from a buffer count their length too).
 */
async function float32Allocated(run: () => Promise<unknown>): Promise<number> {
  const Real = globalThis.Float32Array;
  let elements = 0;
  globalThis.Float32Array = new Proxy(Real, {
    construct(target, args, newTarget) {
      const made = Reflect.construct(target, args, newTarget) as Float32Array;
      elements += made.length;
      return made;
    },
  });
  try {
    await run();
  } finally {
    globalThis.Float32Array = Real;
  }
  return elements;
}

/** A pickle (protocol 2) that calls posix.system(command): GLOBAL, the argument tuple, REDUCE. */
function systemPickle(command: string): Buffer {
  const arg = Buffer.from(command, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(arg.length);
  return Buffer.concat([Buffer.from('\x80\x02cposix\nsystem\n', 'latin1'), Buffer.from([0x58]), length, arg, Buffer.from([0x85, 0x52, 0x2e])]);
}

/** The three pickles torch's legacy format opens with: magic number (LONG1), protocol 1001, sys_info {}. */
function legacyPrologue(): Buffer {
  const magic = Buffer.alloc(10);
  let m = 0x1950a86a20f9469cfc6cn;
  for (let i = 0; i < 10; i++, m >>= 8n) magic[i] = Number(m & 0xffn);
  return Buffer.concat([Buffer.from([0x80, 0x02, 0x8a, 10]), magic, Buffer.from([0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e, 0x80, 0x02, 0x7d, 0x2e])]);
}

test('hand-made pickles that call posix.system are refused by name in both formats, and nothing runs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'healing-pytorch-bin-'));
  try {
    const marker = join(dir, 'pwned');
    const evil = systemPickle(`echo pwned > ${marker}`);
    const zip = join(dir, 'evil-zip.bin');
    const legacy = join(dir, 'evil-legacy.bin');
    await writeFile(zip, zipSync({ 'archive/data.pkl': evil, 'archive/version': new TextEncoder().encode('3\n') }, { level: 0 }));
    await writeFile(legacy, Buffer.concat([legacyPrologue(), evil]));
    for (const path of [zip, legacy]) {
      for (const read of [readPytorchHeader, readPytorch]) {
        await refused(read(path), path, /pickle imports "posix\.system"/, /refused/);
      }
    }
    assert.equal(existsSync(marker), false, 'the command did not run');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('pytorch_model.bin files torch wrote', async (t) => {
  const missing = torchMissing();
  if (missing) {
    t.skip(missing);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'healing-pytorch-bin-'));
  try {
    const marker = join(dir, 'pwned');
    const fixtures = runTorch<Fixtures>(FIXTURES, { args: [dir, marker] });
    const raw = await readFile(join(dir, 'expected.f32'));
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

    await t.test('zip and legacy formats, pickle protocols 2, 4 and 5: names in order, dtypes, shapes, values bit for bit', async () => {
      for (const file of TORCH_FILES) {
        const { tensors } = await readPytorch(join(dir, file));
        assert.deepEqual([...tensors.keys()], fixtures.entries.map((e) => e.name), `${file}: state-dict order`);
        let at = 0;
        for (const e of fixtures.entries) {
          const got = tensors.get(e.name)!;
          const want = values.subarray(at, (at += count(e.shape)));
          assert.equal(got.dtype, e.dtype, `${file} ${e.name}`);
          assert.deepEqual(got.shape, e.shape, `${file} ${e.name}`);
          assert.ok(got.data instanceof Float32Array, `${file} ${e.name}: Float32Array`);
          // F16/BF16/F64/integers against torch's own .float(); exact, bit for bit.
          assert.deepEqual(Array.from(got.data), Array.from(want), `${file} ${e.name}`);
        }
        assert.equal(at, values.length);
        assert.notEqual(tensors.get('tied')!.data, tensors.get('0.weight')!.data, 'tied names get their own arrays');
      }
    });

    await t.test('readPytorchHeader lists the same entries and materialises no tensor data', async () => {
      for (const file of TORCH_FILES) {
        let header: Awaited<ReturnType<typeof readPytorchHeader>> | undefined;
        const allocated = await float32Allocated(async () => {
          header = await readPytorchHeader(join(dir, file));
        });
        assert.equal(allocated, 0, `${file}: float32 elements allocated by the header reader`);
        assert.deepEqual(header!.entries, fixtures.entries, file);
      }
    });

    await t.test('names chooses which tensors are read; the others are never widened', async () => {
      const big = count(fixtures.entries.find((e) => e.name === 'big')!.shape);
      for (const file of TORCH_FILES) {
        const path = join(dir, file);
        const all = await float32Allocated(() => readPytorch(path));
        assert.ok(all >= big, `${file}: the unfiltered read materialises "big" (${all} elements allocated)`);
        let chosen: Awaited<ReturnType<typeof readPytorch>> | undefined;
        const some = await float32Allocated(async () => {
          chosen = await readPytorch(path, { names: (n) => n === 'row' || n === 'position_ids' });
        });
        assert.deepEqual([...chosen!.tensors.keys()], ['row', 'position_ids'], file);
        assert.ok(some < big, `${file}: ${some} float32 elements allocated for two small tensors`);
        const full = (await readPytorch(path)).tensors;
        for (const [name, got] of chosen!.tensors) assert.deepEqual(got, full.get(name), `${file} ${name}`);
      }
    });

    await t.test('pickles torch wrote for os.system (GLOBAL, STACK_GLOBAL, legacy) and a whole nn.Module are refused by name', async () => {
      for (const file of ['evil-zip.bin', 'evil-p4.bin', 'evil-legacy.bin']) {
        const path = join(dir, file);
        for (const read of [readPytorchHeader, readPytorch]) await refused(read(path), path, /pickle imports "posix\.system"/, /refused/);
      }
      const module = join(dir, 'module.bin');
      await refused(readPytorch(module), module, /"torch\.nn\.modules\.linear\.Linear"/, /refused/);
      assert.equal(existsSync(marker), false, 'the command did not run');
    });

    await t.test('a file cut short (in half, or at sampled points) is a UserError naming the file', async () => {
      for (const file of ['zip-p2.bin', 'legacy-p2.bin', 'legacy-p5.bin']) {
        const bytes = await readFile(join(dir, file));
        const cut = join(dir, `cut-${file}`);
        await writeFile(cut, bytes.subarray(0, bytes.length >> 1));
        await refused(readPytorchHeader(cut), cut);
        await refused(readPytorch(cut), cut);
        // Legacy: every byte through the three opening pickles, every 5th through the state dict and the
        // storage keys (about 2.4 kB here), then cuts spread over the storages. Zip: any cut loses the
        // central directory, so a few suffice.
        const cuts = file === 'legacy-p2.bin' ? [...Array(200).keys(), ...Array.from({ length: 500 }, (_, i) => 200 + 5 * i)] : [];
        for (let i = 1; i < 16; i++) cuts.push(Math.floor((bytes.length * i) / 16));
        for (const n of cuts) {
          await writeFile(cut, bytes.subarray(0, n));
          await refused(readPytorch(cut), cut);
        }
      }
    });

    await t.test('non-tensors, overrunning views, short storages, foreign opcodes and big-endian files are refused, naming what is wrong', async () => {
      const at = (name: string) => join(dir, name);
      await refused(readPytorchHeader(at('not-tensor.bin')), at('not-tensor.bin'), /"n"/, /not a tensor/);
      await refused(readPytorchHeader(at('overrun.bin')), at('overrun.bin'), /"long"/);
      await refused(readPytorch(at('overrun.bin')), at('overrun.bin'), /"long"/);
      await refused(readPytorch(at('short-record.bin')), at('short-record.bin'), /"w"/);
      await refused(readPytorch(at('opcode.bin')), at('opcode.bin'), /0x49/, new RegExp(`offset ${fixtures.opcodeOffset}\\b`));
      await refused(readPytorch(at('big-endian.bin')), at('big-endian.bin'), /big-endian/);
      const text = at('text.bin');
      await writeFile(text, 'version https://git-lfs.github.com/spec/v1\n');
      await refused(readPytorch(text), text, /not a PyTorch checkpoint/);
      await refused(readPytorch(at('absent.bin')), at('absent.bin'));
    });

    await t.test('a training checkpoint is unwrapped to its "model" state dict, as the module documents', async () => {
      const { tensors } = await readPytorch(join(dir, 'wrapped.bin'));
      assert.deepEqual([...tensors.entries()], [['w', { dtype: 'F32', shape: [2], data: new Float32Array([1, 1]) }]]);
    });

    await t.test('a state dict that names a tensor twice is refused', async () => {
      await refused(readPytorchHeader(join(dir, 'duplicate.bin')), join(dir, 'duplicate.bin'), /"a"/);
    });
    await t.test('a stride-0 view too big to materialise is refused before anything is allocated', async () => {
      const path = join(dir, 'huge-broadcast.bin');
      await refused(readPytorchHeader(path), path, /"w"/, /1000000000000 elements/);
      assert.equal(await float32Allocated(() => refused(readPytorch(path), path, /"w"/)), 0);
    });
    await t.test('collections.OrderedDict called with a non-iterable is a UserError', async () => {
      const path = join(dir, 'ordereddict-int.bin');
      await refused(readPytorch(path), path, /OrderedDict called with a number/);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

