import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors';
import { createProgress } from '../progress';

/**
 * The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian u64
 * header length N, N bytes of JSON `{ name: { dtype, shape, data_offsets: [begin, end] },
 * "__metadata__"?: { string: string } }`, then the byte buffer the offsets point into.
 *
 * Reading validates the whole header against the file size before any tensor memory is
 * allocated, so a truncated or hostile file fails with one message naming the file and tensor
 * instead of an out-of-memory or a RangeError deep inside a typed-array constructor.
 */

/** Dtypes we decode. Others in the spec (U16, U32, U64, F8_*) are reported as unsupported. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const ITEM_SIZE: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Floating dtypes: the ones a checkpoint's parameters may use. */
export const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(['F64', 'F32', 'F16', 'BF16']);

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data buffer. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Where the data buffer starts in the file (8 + header length). */
  dataStart: number;
  /** Entries in header order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Values widened to float32 (integers too: position_ids and friends are small). */
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers above 100 MB; a bigger length means a corrupt file. */
const MAX_HEADER_BYTES = 100_000_000;

function fail(file: string, message: string): never {
  throw new UserError(`${file}: ${message}`);
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(ITEM_SIZE, value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Reads the header length from the first 8 bytes and checks it fits the file. Split out so the
 * reader can learn how many bytes to read before reading them.
 */
function headerLength(bytes: Uint8Array, file: string, fileSize: number): number {
  if (fileSize < 8 || bytes.length < 8) {
    fail(file, `file is ${fileSize} bytes, too short to hold a safetensors header (truncated or not a safetensors file)`);
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    fail(file, `header length ${n} exceeds the file size (${fileSize} bytes): truncated or not a safetensors file`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) fail(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  return Number(n);
}

/**
 * Parses and validates a safetensors header. `bytes` must hold at least the first 8 + N bytes of
 * the file; `fileSize` is the whole file's size (defaults to `bytes.length`, i.e. the whole file).
 * Checks: header length within the file, valid JSON object, known dtypes, well-formed shapes and
 * offsets, byte size == product(shape) * itemsize, offsets inside the data buffer, no overlaps.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, file: string, fileSize = bytes.length): SafetensorsHeader {
  const n = headerLength(bytes, file, fileSize);
  if (bytes.length < 8 + n) fail(file, `only ${bytes.length} bytes given for a ${n}-byte header`);
  const dataStart = 8 + n;
  const bufferSize = fileSize - dataStart;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    fail(file, `header is not valid JSON (${(error as Error).message}): not a safetensors file?`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(file, 'header is not a JSON object');

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') fail(file, `__metadata__.${k} is not a string (${JSON.stringify(v)})`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const where = `tensor "${name}"`;
    if (typeof value !== 'object' || value === null) fail(file, `${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isDtype(dtype)) {
      fail(file, `${where}: unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(file, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      fail(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = numel * ITEM_SIZE[dtype];
    if (end - begin !== expected) {
      fail(file, `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} shape [${shape.join(', ')}] needs ${expected}`);
    }
    if (end > bufferSize) {
      fail(file, `${where}: data_offsets [${begin}, ${end}] out of range (data buffer is ${bufferSize} bytes): truncated file?`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  const byBegin = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byBegin.length; i++) {
    const prev = byBegin[i - 1];
    const cur = byBegin[i];
    if (cur.begin < prev.end) {
      fail(file, `tensor "${cur.name}": data_offsets [${cur.begin}, ${cur.end}] overlap tensor "${prev.name}" [${prev.begin}, ${prev.end}]`);
    }
  }
  return { dataStart, entries, metadata };
}

let f16Table: Float32Array | undefined;

/** All 65536 half-precision values, decoded once: a lookup beats per-element bit fiddling. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) table[h] = mant ? NaN : sign * Infinity;
    else table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  f16Table = table;
  return table;
}

/** Converts raw little-endian bytes (an aligned copy) to float32 values. */
function decode(dtype: SafetensorsDtype, raw: ArrayBuffer, numel: number): Float32Array {
  switch (dtype) {
    case 'F32':
      return new Float32Array(raw, 0, numel);
    case 'F16': {
      const table = halfTable();
      const src = new Uint16Array(raw, 0, numel);
      const out = new Float32Array(numel);
      for (let i = 0; i < numel; i++) out[i] = table[src[i]];
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32, so widening is a 16-bit shift.
      const src = new Uint16Array(raw, 0, numel);
      const bits = new Uint32Array(numel);
      for (let i = 0; i < numel; i++) bits[i] = src[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F64':
      return Float32Array.from(new Float64Array(raw, 0, numel));
    case 'I64': {
      const src = new BigInt64Array(raw, 0, numel);
      const out = new Float32Array(numel);
      for (let i = 0; i < numel; i++) out[i] = Number(src[i]);
      return out;
    }
    case 'I32':
      return Float32Array.from(new Int32Array(raw, 0, numel));
    case 'I16':
      return Float32Array.from(new Int16Array(raw, 0, numel));
    case 'I8':
      return Float32Array.from(new Int8Array(raw, 0, numel));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(new Uint8Array(raw, 0, numel));
  }
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Typed arrays use host byte order and safetensors is little-endian; every supported host is.
  throw new Error('healing-bert: safetensors decoding assumes a little-endian host');
}

/** Reads exactly `length` bytes at `position` into `target`, looping over short reads. */
async function readExactly(handle: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) fail(file, `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

async function openSafetensors(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    fail(path, code === 'ENOENT' ? 'file not found' : `cannot open (${(error as Error).message})`);
  }
}

async function readHeader(handle: FileHandle, path: string): Promise<SafetensorsHeader> {
  const { size } = await handle.stat();
  const prefix = new Uint8Array(Math.min(8, size));
  await readExactly(handle, prefix, 0, path);
  const n = headerLength(prefix, path, size);
  const headerBytes = new Uint8Array(8 + n);
  await readExactly(handle, headerBytes, 0, path);
  return parseSafetensorsHeader(headerBytes, path, size);
}

/** Reads and validates only the header: names, dtypes and shapes without touching tensor data. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const handle = await openSafetensors(path);
  try {
    return await readHeader(handle, path);
  } finally {
    await handle.close();
  }
}

/**
 * Reads a .safetensors file. The header is read and validated first; then each tensor is read
 * straight into its own aligned buffer (no second copy of the whole file in memory).
 * `names` restricts which tensors are read (the others' bytes are never touched), so a loader can
 * skip heads it ignores.
 */
export async function readSafetensors(path: string, options: { names?: (name: string) => boolean } = {}): Promise<SafetensorsFile> {
  const handle = await openSafetensors(path);
  try {
    const header = await readHeader(handle, path);
    const wanted = header.entries.filter((e) => !options.names || options.names(e.name));
    const totalBytes = wanted.reduce((s, e) => s + e.end - e.begin, 0);
    const progress = createProgress({
      label: `read ${path}`,
      total: Math.ceil(totalBytes / 2 ** 20),
      unit: 'MB',
      // Small files load in a blink; a bar would only flicker.
      enabled: totalBytes >= 64 * 2 ** 20 ? undefined : false,
    });
    const tensors = new Map<string, SafetensorsTensor>();
    let doneBytes = 0;
    for (const entry of wanted) {
      const byteLength = entry.end - entry.begin;
      const raw = new ArrayBuffer(byteLength);
      await readExactly(handle, new Uint8Array(raw), header.dataStart + entry.begin, path);
      const numel = byteLength / ITEM_SIZE[entry.dtype];
      tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: decode(entry.dtype, raw, numel) });
      doneBytes += byteLength;
      progress.update(Math.floor(doneBytes / 2 ** 20));
    }
    progress.stop();
    return { tensors, metadata: header.metadata };
  } finally {
    await handle.close();
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> IEEE half bits, round to nearest, ties to even; overflow goes to ±Infinity. */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand, implicit bit included, into place.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  // A carry out of the mantissa correctly bumps the exponent (and 65520.. to Infinity).
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

export interface WriteTensor {
  shape: number[];
  data: Float32Array;
}

export interface WriteOptions {
  /** F32, F16 (exported weights) or BF16 (optimizer moments: F16 underflows AdamW's second moment). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** String-to-string metadata; `format: "pt"` is added unless given, as transformers expects it. */
  metadata?: Record<string, string>;
}

/** bfloat16 bits of a float32: its top half, rounded to nearest even (NaN stays a quiet NaN). */
function float32ToBfloat16Bits(bits: Uint32Array): Uint16Array {
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) out[i] = (b >>> 16) | 0x0040;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

function encode(data: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    return new Uint8Array(float32ToBfloat16Bits(bits).buffer);
  }
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = float32ToFloat16Bits(data[i]);
  return new Uint8Array(out.buffer);
}

/**
 * Writes tensors (in map order) to a .safetensors file. Everything is validated first; the file is
 * written under a temporary name and renamed into place, so an existing file is never half
 * overwritten.
 */
export async function writeSafetensors(path: string, tensors: Map<string, WriteTensor>, options: WriteOptions = {}): Promise<void> {
  const dtype = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') fail(path, `cannot write dtype ${JSON.stringify(dtype)} (use F32, F16 or BF16)`);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...options.metadata } };
  for (const [k, v] of Object.entries(header.__metadata__ as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(path, `metadata ${k} is not a string`);
  }
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') fail(path, 'a tensor cannot be named "__metadata__"');
    if (!t.shape.every(isCount)) fail(path, `tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== numel) {
      fail(path, `tensor "${name}": ${t.data?.length} values do not fill shape [${t.shape.join(', ')}] (${numel} values)`);
    }
    const size = numel * ITEM_SIZE[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  const jsonBytes = () => new TextEncoder().encode(json);
  json += ' '.repeat((8 - (jsonBytes().length % 8)) % 8);
  const headerBytes = jsonBytes();
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);

  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.write(prefix);
      await handle.write(headerBytes);
      for (const t of tensors.values()) await handle.write(encode(t.data, dtype));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    if (error instanceof UserError) throw error;
    fail(path, `cannot write (${(error as Error).message})`);
  }
}
