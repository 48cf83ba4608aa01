import { readFile } from 'node:fs/promises';
import { unzipSync } from 'fflate';
import { UserError } from '../errors';
import type { SafetensorsDtype, SafetensorsTensor } from './safetensors';

/**
 * PyTorch state dicts (`torch.save(model.state_dict())`, i.e. pytorch_model.bin) read without running
 * them. A pickle can call anything it imports, so this is not a general unpickler: it knows the handful
 * of opcodes and the few imports a state dict of tensors needs, and refuses every other import before
 * anything is built. Both of torch's formats: the zip archive (torch >= 1.6: `<prefix>/data.pkl` plus one
 * raw entry per storage) and the older stream of pickles followed by the storages.
 * A top-level dict that wraps the state dict under "state_dict" or "model" (training checkpoints) is
 * unwrapped; anything else that is not a name -> tensor mapping is refused.
 */

export interface PytorchEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

export interface PytorchHeader {
  /** State-dict order. */
  entries: PytorchEntry[];
}

const STORAGES: Record<string, { dtype: SafetensorsDtype; itemSize: number }> = {
  FloatStorage: { dtype: 'F32', itemSize: 4 },
  HalfStorage: { dtype: 'F16', itemSize: 2 },
  BFloat16Storage: { dtype: 'BF16', itemSize: 2 },
  DoubleStorage: { dtype: 'F64', itemSize: 8 },
  LongStorage: { dtype: 'I64', itemSize: 8 },
  IntStorage: { dtype: 'I32', itemSize: 4 },
  ShortStorage: { dtype: 'I16', itemSize: 2 },
  CharStorage: { dtype: 'I8', itemSize: 1 },
  ByteStorage: { dtype: 'U8', itemSize: 1 },
  BoolStorage: { dtype: 'BOOL', itemSize: 1 },
};

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGES).map((s) => `torch.${s}`),
]);

/** torch's legacy format opens with this number (torch/serialization.py MAGIC_NUMBER). */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
/** A state dict's pickle is a few kB per tensor; more opcodes than this is not one. */
const MAX_OPCODES = 50_000_000;
/** 4 GiB once widened to float32: the wasm heap's cap, and ~30x bert-large's largest tensor (its word embeddings). */
const MAX_TENSOR_ELEMENTS = 2 ** 30;

class Global {
  constructor(readonly path: string) {}
}

interface StorageRef {
  dtype: SafetensorsDtype;
  itemSize: number;
  key: string;
  numel: number;
}

class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

function fail(file: string, message: string): never {
  throw new UserError(`${file}: ${message}`);
}

const asInt = (file: string, v: unknown, what: string): number => {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) fail(file, `${what} is ${String(v)}, not a non-negative integer`);
  return n;
};

/**
 * Runs one pickle from `start` on the opcodes a state dict uses; `persistentLoad` resolves storages.
 * Returns the value and where the pickle ended (the legacy format has several in a row).
 */
function unpickle(bytes: Uint8Array, start: number, file: string, persistentLoad: (pid: unknown) => unknown): { value: unknown; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = start;
  const need = (n: number) => {
    if (pos + n > bytes.length) fail(file, `the pickle ends early (offset ${pos}, ${n} more byte(s) needed): the file is truncated or not a PyTorch checkpoint`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(file, `a length of ${v} bytes at offset ${pos - 8} runs past the end of the file`);
    return Number(v);
  };
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const text = (n: number) => new TextDecoder().decode(take(n));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(file, `the pickle ends early inside a GLOBAL (offset ${pos})`);
    const s = new TextDecoder().decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail(file, `malformed pickle: pop from an empty stack at offset ${pos - 1}`);
    return stack.pop();
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail(file, `malformed pickle: no MARK before offset ${pos - 1}`);
    return stack.splice(m);
  };
  const top = () => {
    if (!stack.length) fail(file, `malformed pickle: empty stack at offset ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const global = (path: string) => {
    if (!ALLOWED_GLOBALS.has(path)) fail(file, `pickle imports "${path}", which a state dict never needs: refused (only tensors are read, nothing runs)`);
    return new Global(path);
  };
  // Python keeps the last of duplicate keys; a state dict never has any, so one is damage, not a choice to make.
  const put = (map: Map<unknown, unknown>, key: unknown, value: unknown) => {
    if (map.has(key)) fail(file, `key ${typeof key === 'string' ? `"${key}"` : describe(key)} appears twice in one mapping: a state dict names each tensor once`);
    map.set(key, value);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) fail(file, `malformed pickle: SETITEM(S) on a ${describe(target)} at offset ${pos - 1}`);
    for (let i = 0; i + 1 < items.length; i += 2) put(target, items[i], items[i + 1]);
  };
  const reduce = (callable: unknown, args: unknown): unknown => {
    if (!(callable instanceof Global) || !Array.isArray(args)) fail(file, `malformed pickle: REDUCE of a ${describe(callable)} at offset ${pos - 1}`);
    if (callable.path === 'collections.OrderedDict') {
      const map = new Map<unknown, unknown>();
      const pairs = args[0] ?? [];
      if (!Array.isArray(pairs)) fail(file, `malformed pickle: OrderedDict called with a ${describe(pairs)} at offset ${pos - 1}, not a list of pairs`);
      for (const pair of pairs) {
        if (!Array.isArray(pair) || pair.length !== 2) fail(file, `malformed pickle: an OrderedDict item is a ${describe(pair)} at offset ${pos - 1}, not a (key, value) pair`);
        put(map, pair[0], pair[1]);
      }
      return map;
    }
    if (callable.path === 'torch._utils._rebuild_parameter') {
      if (!(args[0] instanceof TensorRef)) fail(file, `a Parameter wraps a ${describe(args[0])}, not a tensor`);
      return args[0];
    }
    if (callable.path === 'torch._utils._rebuild_tensor_v2') {
      const [storage, offset, size, stride] = args as [StorageRef, unknown, unknown, unknown];
      if (!storage || typeof storage !== 'object' || !('key' in storage)) fail(file, `a tensor is built on a ${describe(storage)}, not a storage`);
      if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length) fail(file, `a tensor has size ${String(size)} and stride ${String(stride)}`);
      return new TensorRef(storage, asInt(file, offset, 'a storage offset'), size.map((d) => asInt(file, d, 'a dimension')), stride.map((d) => asInt(file, d, 'a stride')));
    }
    fail(file, `pickle calls "${callable.path}", which builds no tensor: refused`);
  };

  for (let count = 0; ; count++) {
    if (count > MAX_OPCODES) fail(file, `more than ${MAX_OPCODES} pickle opcodes: not a state dict`);
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: a length hint only
      case 0x2e: return { value: pop(), end: pos }; // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: need(4); stack.push(view.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: case 0x8b: { // LONG1, LONG4: little-endian two's complement
        const n = op === 0x8a ? u8() : u32();
        if (n > 64) fail(file, `a ${n}-byte integer at offset ${at}: not a state dict`);
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text(u64())); break; // BINUNICODE8
      case 0x54: stack.push(text(u32())); break; // BINSTRING
      case 0x55: stack.push(text(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32())); break; // BINBYTES
      case 0x43: stack.push(take(u8())); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64())); break; // BINBYTES8
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const m = new Map(); setItems(m, popMark()); stack.push(m); break; } // DICT
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail(file, `malformed pickle: APPEND at offset ${at}`); l.push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail(file, `malformed pickle: APPENDS at offset ${at}`); l.push(...items); break; }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x63: { const module = line(); stack.push(global(`${module}.${line()}`)); break; } // GLOBAL
      case 0x93: { const name = pop(); const module = pop(); stack.push(global(`${String(module)}.${String(name)}`)); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); stack.push(reduce(pop(), args)); break; } // REDUCE
      case 0x62: { // BUILD: a state dict's _metadata, set on the OrderedDict; not needed
        pop();
        const target = top();
        if (!(target instanceof Map) && !(target instanceof TensorRef)) fail(file, `malformed pickle: BUILD on a ${describe(target)} at offset ${at}`);
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) fail(file, `malformed pickle: memo ${key} read before it is written (offset ${at})`);
        stack.push(memo.get(key));
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      default:
        fail(file, `pickle opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at} is not one a state dict uses: refused`);
    }
  }
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof Map) return 'dict';
  if (v instanceof TensorRef) return 'tensor';
  if (v instanceof Global) return v.path;
  if (Array.isArray(v)) return 'tuple or list';
  return typeof v;
}

/** A storage from a persistent id: ('storage', torch.XStorage, key, location, numel[, view_metadata]). */
function storageFrom(file: string, pid: unknown, storages: Map<string, StorageRef>): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof Global)) fail(file, `a persistent id that is not a storage (${describe(pid)})`);
  const kind = STORAGES[pid[1].path.replace(/^torch\./, '')];
  if (!kind) fail(file, `storage type ${pid[1].path} is not supported`);
  if (pid.length > 5 && pid[5] !== null) fail(file, 'a storage view (pre-1.0 torch) is not supported');
  const key = String(pid[2]);
  const numel = asInt(file, pid[4], `storage ${key}'s size`);
  const known = storages.get(key);
  if (known) return known;
  const ref = { ...kind, key, numel };
  storages.set(key, ref);
  return ref;
}

interface Parsed {
  tensors: Array<[string, TensorRef]>;
  /** Raw bytes of a storage, only for the keys asked for. */
  storageBytes(keys: Set<string>): Map<string, Uint8Array>;
}

function stateDictEntries(file: string, value: unknown): Array<[string, TensorRef]> {
  if (!(value instanceof Map)) fail(file, `holds a ${describe(value)}, not a state dict (a mapping of names to tensors)`);
  const values = [...value.values()];
  if (!values.some((v) => v instanceof TensorRef)) {
    for (const key of ['state_dict', 'model']) if (value.get(key) instanceof Map) return stateDictEntries(file, value.get(key));
  }
  const out: Array<[string, TensorRef]> = [];
  for (const [name, v] of value) {
    if (typeof name !== 'string') fail(file, `a state-dict key is a ${describe(name)}, not a name`);
    if (!(v instanceof TensorRef)) fail(file, `"${name}" holds a ${describe(v)}, not a tensor`);
    out.push([name, v]);
  }
  return out;
}

function parseZip(file: string, bytes: Uint8Array): Parsed {
  const names: string[] = [];
  try {
    unzipSync(bytes, { filter: (f) => (names.push(f.name), false) });
  } catch (error) {
    fail(file, `not a readable zip archive (${(error as Error).message}): the file is truncated or damaged`);
  }
  const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) fail(file, 'a zip archive without <name>/data.pkl: not a PyTorch checkpoint');
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const meta = unzipSync(bytes, { filter: (f) => f.name === pkl || f.name === `${prefix}byteorder` });
  const order = meta[`${prefix}byteorder`];
  if (order && new TextDecoder().decode(order).trim() !== 'little') fail(file, 'a big-endian checkpoint is not supported');
  const storages = new Map<string, StorageRef>();
  const { value } = unpickle(meta[pkl], 0, file, (pid) => storageFrom(file, pid, storages));
  return {
    tensors: stateDictEntries(file, value),
    storageBytes(keys) {
      const wanted = new Set([...keys].map((k) => `${prefix}data/${k}`));
      const found = unzipSync(bytes, { filter: (f) => wanted.has(f.name) });
      const out = new Map<string, Uint8Array>();
      for (const key of keys) {
        const b = found[`${prefix}data/${key}`];
        if (!b) fail(file, `storage ${key} is missing from the archive`);
        out.set(key, b);
      }
      return out;
    },
  };
}

function parseLegacy(file: string, bytes: Uint8Array): Parsed {
  const noStorage = () => fail(file, 'a persistent id before the state dict: not a PyTorch checkpoint');
  const notTorch = 'neither a zip archive nor a legacy torch.save stream: not a PyTorch checkpoint';
  let magic: { value: unknown; end: number };
  try {
    magic = unpickle(bytes, 0, file, noStorage);
  } catch {
    fail(file, notTorch);
  }
  if (magic.value !== LEGACY_MAGIC) fail(file, `${notTorch} (wrong magic number)`);
  const version = unpickle(bytes, magic.end, file, noStorage);
  if (version.value !== 1001) fail(file, `legacy format protocol ${String(version.value)} is not supported (expected 1001)`);
  const sysInfo = unpickle(bytes, version.end, file, noStorage);
  const storages = new Map<string, StorageRef>();
  const body = unpickle(bytes, sysInfo.end, file, (pid) => storageFrom(file, pid, storages));
  const keys = unpickle(bytes, body.end, file, noStorage);
  if (!Array.isArray(keys.value)) fail(file, 'the list of storage keys after the state dict is missing');
  // Storages follow in that order, each as an int64 element count and its bytes.
  const at = new Map<string, Uint8Array>();
  let pos = keys.end;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const k of keys.value) {
    const key = String(k);
    const ref = storages.get(key);
    if (!ref) fail(file, `storage ${key} is listed but no tensor uses it`);
    if (pos + 8 > bytes.length) fail(file, `storage ${key} is cut off: the file is truncated`);
    const numel = Number(view.getBigInt64(pos, true));
    const length = numel * ref.itemSize;
    if (numel !== ref.numel || pos + 8 + length > bytes.length) fail(file, `storage ${key} is cut off or has ${numel} elements where ${ref.numel} are declared: the file is truncated or damaged`);
    at.set(key, bytes.subarray(pos + 8, pos + 8 + length));
    pos += 8 + length;
  }
  return {
    tensors: stateDictEntries(file, body.value),
    storageBytes(wanted) {
      const out = new Map<string, Uint8Array>();
      for (const key of wanted) {
        const b = at.get(key);
        if (!b) fail(file, `storage ${key} is missing`);
        out.set(key, b);
      }
      return out;
    },
  };
}

async function parse(path: string): Promise<Parsed> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new UserError(`${path}: cannot read (${(error as Error).message})`);
  }
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  const parsed = isZip ? parseZip(path, bytes) : parseLegacy(path, bytes);
  for (const [name, t] of parsed.tensors) {
    // The last element a view reaches must lie inside its storage, and the view must fit in memory once widened,
    // both before anything is allocated (a stride-0 view of 4 elements can claim 10^12).
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel > MAX_TENSOR_ELEMENTS) {
      fail(path, `tensor "${name}" (shape [${t.shape.join(', ')}]) has ${numel} elements, more than the ${MAX_TENSOR_ELEMENTS} a float32 tensor here can hold`);
    }
    const last = numel === 0 ? t.offset : t.offset + t.shape.reduce((s, d, i) => s + (d - 1) * t.stride[i], 0);
    if (numel > 0 && last >= t.storage.numel) {
      fail(path, `tensor "${name}" (shape [${t.shape.join(', ')}], offset ${t.offset}) reaches element ${last} of a storage of ${t.storage.numel}`);
    }
  }
  return parsed;
}

/** Names, dtypes and shapes of the state dict's tensors; no tensor data is decoded. */
export async function readPytorchHeader(path: string): Promise<PytorchHeader> {
  const { tensors } = await parse(path);
  return { entries: tensors.map(([name, t]) => ({ name, dtype: t.storage.dtype, shape: [...t.shape] })) };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** A storage's elements widened to float32 (the loader's one representation, as for safetensors). */
function decode(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  // A copy into a fresh buffer: zip entries and legacy offsets need not be aligned for typed arrays.
  const buffer = new Uint8Array(bytes).buffer; // a copy, never a Buffer's shared pool
  switch (dtype) {
    case 'F32': return new Float32Array(buffer);
    case 'F64': return Float32Array.from(new Float64Array(buffer));
    case 'F16': return Float32Array.from(new Uint16Array(buffer), halfToFloat);
    case 'BF16': {
      const u16 = new Uint16Array(buffer);
      const u32 = new Uint32Array(u16.length);
      for (let i = 0; i < u16.length; i++) u32[i] = u16[i] << 16;
      return new Float32Array(u32.buffer);
    }
    case 'I64': return Float32Array.from(new BigInt64Array(buffer), (v) => Number(v));
    case 'I32': return Float32Array.from(new Int32Array(buffer));
    case 'I16': return Float32Array.from(new Int16Array(buffer));
    case 'I8': return Float32Array.from(new Int8Array(buffer));
    case 'U8': case 'BOOL': return Float32Array.from(new Uint8Array(buffer));
  }
}

/** The view's elements in row-major order, whatever its strides (transposed or offset views share storages). */
function gather(values: Float32Array, t: TensorRef): Float32Array {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(numel);
  const rank = t.shape.length;
  const contiguous = t.stride.every((s, i) => t.shape[i] === 1 || s === t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  if (contiguous) {
    out.set(values.subarray(t.offset, t.offset + numel));
    return out;
  }
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < numel; i++) {
    let at = t.offset;
    for (let d = 0; d < rank; d++) at += index[d] * t.stride[d];
    out[i] = values[at];
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d] < t.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** The state dict's tensors (only those `names` accepts), values widened to float32. */
export async function readPytorch(path: string, options: { names?: (name: string) => boolean } = {}): Promise<{ tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> }> {
  const parsed = await parse(path);
  const wanted = parsed.tensors.filter(([name]) => !options.names || options.names(name));
  const raw = parsed.storageBytes(new Set(wanted.map(([, t]) => t.storage.key)));
  const decoded = new Map<string, Float32Array>();
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, t] of wanted) {
    const { key, dtype, itemSize, numel } = t.storage;
    const bytes = raw.get(key)!;
    if (bytes.length < numel * itemSize) fail(path, `storage ${key} holds ${bytes.length} bytes, ${numel * itemSize} declared (tensor "${name}"): the file is damaged`);
    if (!decoded.has(key)) decoded.set(key, decode(bytes.subarray(0, numel * itemSize), dtype));
    tensors.set(name, { dtype, shape: [...t.shape], data: gather(decoded.get(key)!, t) });
  }
  return { tensors, metadata: {} };
}
