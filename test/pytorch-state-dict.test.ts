import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../src/errors';
import { readPytorch, readPytorchHeader } from '../src/io/pytorch-bin';

const PYTHON = process.env.HEALING_PYTHON || '/usr/bin/python3';
const haveTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const skip = !haveTorch && `no torch for ${PYTHON}`;

const dir = await mkdtemp(join(tmpdir(), 'healing-pytorch-bin-'));
test.after(() => rm(dir, { recursive: true, force: true }));

/**
 * torch writes a state dict of every kind a real one holds (views sharing a storage at an offset, a
 * transposed tensor, a Parameter, F16/BF16/I64, a module's _metadata) in both formats, and what each tensor
 * holds as float32 (torch's own .float(), row-major) for comparison.
 */
function writeFixture(): void {
  const script = `
import json, sys, torch
from collections import OrderedDict
out = sys.argv[1]
g = torch.Generator().manual_seed(0)
base = torch.randn(3, 4, generator=g)
lin = torch.nn.Linear(4, 3)
sd = lin.state_dict()                      # an OrderedDict with _metadata
sd['row'] = base[1]                        # offset view into base's storage
sd['column'] = base[:, 2]                  # strided view of the same storage
sd['transposed'] = torch.randn(5, 2, generator=g).t()
sd['half'] = torch.randn(7, generator=g).half()
sd['bf16'] = torch.randn(2, 3, generator=g).bfloat16()
sd['position_ids'] = torch.arange(6).unsqueeze(0)
sd['param'] = torch.nn.Parameter(torch.randn(2, generator=g))
sd['scalar'] = torch.tensor(2.5)
torch.save(sd, out + '/zip.bin')
torch.save(sd, out + '/legacy.bin', _use_new_zipfile_serialization=False)
json.dump({k: {'shape': list(v.shape), 'dtype': str(v.dtype), 'values': v.detach().float().reshape(-1).tolist()} for k, v in sd.items()}, open(out + '/expected.json', 'w'))
`;
  const r = spawnSync(PYTHON, ['-c', script, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

type Expected = Record<string, { shape: number[]; dtype: string; values: number[] }>;
const DTYPES: Record<string, string> = { 'torch.float32': 'F32', 'torch.float16': 'F16', 'torch.bfloat16': 'BF16', 'torch.int64': 'I64' };

test('both torch.save formats: names in order, dtypes, shapes and values as torch reads them', { skip }, async () => {
  writeFixture();
  const expected = JSON.parse(await readFile(join(dir, 'expected.json'), 'utf8')) as Expected;
  for (const file of ['zip.bin', 'legacy.bin']) {
    const path = join(dir, file);
    const header = await readPytorchHeader(path);
    assert.deepEqual(header.entries.map((e) => e.name), Object.keys(expected), file);
    const { tensors } = await readPytorch(path);
    for (const [name, e] of Object.entries(expected)) {
      const t = tensors.get(name)!;
      assert.deepEqual(t.shape, e.shape, `${file} ${name}`);
      assert.equal(t.dtype, DTYPES[e.dtype], `${file} ${name}`);
      assert.deepEqual(Array.from(t.data), Array.from(Float32Array.from(e.values)), `${file} ${name}`);
      assert.deepEqual(header.entries.find((h) => h.name === name), { name, dtype: t.dtype, shape: t.shape });
    }
    const some = await readPytorch(path, { names: (n) => n === 'column' });
    assert.deepEqual([...some.tensors.keys()], ['column'], 'names chooses what is read');
  }
});

test('a pickle that imports anything else is refused before it runs', { skip }, async () => {
  const marker = join(dir, 'pwned');
  const script = `
import os, sys, torch
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + sys.argv[2],))
torch.save({'w': torch.zeros(2), 'x': Evil()}, sys.argv[1])
`;
  const path = join(dir, 'evil.bin');
  const r = spawnSync(PYTHON, ['-c', script, path, marker], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const read of [readPytorchHeader, readPytorch]) {
    await assert.rejects(read(path), (e: Error) => {
      assert.ok(e instanceof UserError, String(e));
      assert.ok(e.message.startsWith(path), e.message);
      assert.match(e.message, /imports "(posix|os)\.system".*refused/);
      return true;
    });
  }
  assert.equal(existsSync(marker), false, 'nothing ran');
});

test('truncated or foreign files are named, with what is wrong', { skip }, async () => {
  const zip = await readFile(join(dir, 'zip.bin'));
  const legacy = await readFile(join(dir, 'legacy.bin'));
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['zip-cut.bin', zip.subarray(0, zip.length >> 1), /zip|truncated|damaged/],
    ['legacy-cut.bin', legacy.subarray(0, legacy.length - 10), /truncated|cut off/],
    ['text.bin', Buffer.from('not really'), /not a PyTorch checkpoint/],
  ];
  for (const [name, bytes, why] of cases) {
    const path = join(dir, name);
    await writeFile(path, bytes);
    await assert.rejects(readPytorch(path), (e: Error) => {
      assert.ok(e instanceof UserError, String(e));
      assert.ok(e.message.startsWith(path), e.message);
      assert.match(e.message, why);
      return true;
    });
  }
});
