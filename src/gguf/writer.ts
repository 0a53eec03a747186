// GGUF writer: the inverse of reader.ts. Layout rules match gguf-py / llama.cpp so that
// reading a file and writing it back gives the same bytes: entries in the given order, tensor
// data aligned to general.alignment, each tensor (the last one too) zero-padded to the alignment.
import type { GGUFMetaValue } from './meta.js';
import { GGUFError, GGUFValueType, tensorByteSize } from './types.js';
import { alignUp } from './reader.js';

export interface GGUFTensorSpec {
  name: string;
  type: number;
  /** ggml order: dims[0] = row length */
  dims: number[];
}

export interface GGUFHeaderLayout {
  /** header bytes, including the zero padding up to the data section */
  header: Uint8Array;
  dataOffset: number;
  /** offsets relative to the data section, one per tensor */
  tensorOffsets: number[];
  tensorSizes: number[];
  /** total file size including the last tensor's padding */
  totalSize: number;
  alignment: number;
}

export interface GGUFWriteOptions {
  version?: 2 | 3;
  metadata: Iterable<[string, GGUFMetaValue]>;
  tensors: GGUFTensorSpec[];
}

class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  pos = 0;
  private readonly enc = new TextEncoder();
  private ensure(n: number) {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
    this.dv = new DataView(nb.buffer);
  }
  u8(v: number) { this.ensure(1); this.dv.setUint8(this.pos, v); this.pos += 1; }
  i8(v: number) { this.ensure(1); this.dv.setInt8(this.pos, v); this.pos += 1; }
  u16(v: number) { this.ensure(2); this.dv.setUint16(this.pos, v, true); this.pos += 2; }
  i16(v: number) { this.ensure(2); this.dv.setInt16(this.pos, v, true); this.pos += 2; }
  u32(v: number) { this.ensure(4); this.dv.setUint32(this.pos, v, true); this.pos += 4; }
  i32(v: number) { this.ensure(4); this.dv.setInt32(this.pos, v, true); this.pos += 4; }
  f32(v: number) { this.ensure(4); this.dv.setFloat32(this.pos, v, true); this.pos += 4; }
  f64(v: number) { this.ensure(8); this.dv.setFloat64(this.pos, v, true); this.pos += 8; }
  u64(v: bigint | number) {
    this.ensure(8);
    if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      // counts, lengths, offsets: two u32 halves, no BigInt per call
      this.dv.setUint32(this.pos, v % 0x100000000, true);
      this.dv.setUint32(this.pos + 4, Math.floor(v / 0x100000000), true);
    } else {
      this.dv.setBigUint64(this.pos, BigInt(v), true);
    }
    this.pos += 8;
  }
  i64(v: bigint | number) { this.ensure(8); this.dv.setBigInt64(this.pos, BigInt(v), true); this.pos += 8; }
  /** u64 byte length + UTF-8, encoded straight into the buffer (vocabularies have 400k strings) */
  string(s: string) {
    const n = s.length;
    this.ensure(8 + n * 3); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const buf = this.buf;
    const start = this.pos + 8;
    let q = start;
    let i = 0;
    // ASCII and 2-byte characters inline (short vocabulary strings); anything else goes to encodeInto
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) buf[q++] = c;
      else if (c < 0x800) { buf[q++] = 0xc0 | (c >> 6); buf[q++] = 0x80 | (c & 0x3f); }
      else break;
    }
    if (i < n) q += this.enc.encodeInto(s.slice(i), buf.subarray(q)).written;
    this.u64(q - start);
    this.pos = q;
  }
  padTo(n: number) { this.ensure(n - this.pos); this.buf.fill(0, this.pos, n); this.pos = n; }
  bytes(): Uint8Array { return this.buf.slice(0, this.pos); }
}

const INT_RANGE: Record<number, [number, number, string]> = {
  [GGUFValueType.UINT8]: [0, 0xff, 'uint8'], [GGUFValueType.INT8]: [-0x80, 0x7f, 'int8'],
  [GGUFValueType.UINT16]: [0, 0xffff, 'uint16'], [GGUFValueType.INT16]: [-0x8000, 0x7fff, 'int16'],
  [GGUFValueType.UINT32]: [0, 0xffffffff, 'uint32'], [GGUFValueType.INT32]: [-0x80000000, 0x7fffffff, 'int32'],
};
const BIG_RANGE: Record<number, [bigint, bigint, string]> = {
  [GGUFValueType.UINT64]: [0n, 2n ** 64n - 1n, 'uint64'], [GGUFValueType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n, 'int64'],
};

function badValue(key: string, v: unknown, what: string): GGUFError {
  const shown = typeof v === 'string' ? JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v) : typeof v === 'bigint' ? `${v}n` : String(v);
  return new GGUFError(`metadata '${key}': ${shown} is not ${what}`);
}

/** Writes one scalar, refusing values the type cannot hold (DataView would silently wrap them). */
function writeScalar(w: ByteWriter, type: number, v: unknown, key: string): void {
  const ir = INT_RANGE[type];
  if (ir) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < ir[0] || v > ir[1]) throw badValue(key, v, `a ${ir[2]}`);
  }
  switch (type) {
    case GGUFValueType.UINT8: return w.u8(v as number);
    case GGUFValueType.INT8: return w.i8(v as number);
    case GGUFValueType.UINT16: return w.u16(v as number);
    case GGUFValueType.INT16: return w.i16(v as number);
    case GGUFValueType.UINT32: return w.u32(v as number);
    case GGUFValueType.INT32: return w.i32(v as number);
    case GGUFValueType.FLOAT32:
    case GGUFValueType.FLOAT64:
      if (typeof v !== 'number') throw badValue(key, v, `a ${type === GGUFValueType.FLOAT32 ? 'float32' : 'float64'} (a number)`);
      return type === GGUFValueType.FLOAT32 ? w.f32(v) : w.f64(v);
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64: {
      const [lo, hi, name] = BIG_RANGE[type];
      const b = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : undefined;
      if (b === undefined || b < lo || b > hi) throw badValue(key, v, `a ${name}`);
      return type === GGUFValueType.UINT64 ? w.u64(b) : w.i64(b);
    }
    case GGUFValueType.BOOL:
      if (typeof v !== 'boolean') throw badValue(key, v, 'a bool');
      return w.u8(v ? 1 : 0);
    case GGUFValueType.STRING:
      if (typeof v !== 'string') throw badValue(key, v, 'a string');
      return w.string(v);
    default: throw new GGUFError(`metadata '${key}': cannot write value type ${type}`);
  }
}

/** A value: a scalar, or an array (item type, count, items; arrays of arrays recurse). */
function writeValue(w: ByteWriter, v: GGUFMetaValue, key: string): void {
  if (v.type !== GGUFValueType.ARRAY) return writeScalar(w, v.type, v.value, key);
  writeArrayBody(w, v, key);
}

function writeArrayBody(w: ByteWriter, v: GGUFMetaValue, key: string): void {
  if (v.itemType === undefined) throw new GGUFError(`metadata '${key}': array without item type`);
  if (!Array.isArray(v.value)) throw new GGUFError(`metadata '${key}': array value is not an array`);
  const items = v.value as unknown[];
  w.u32(v.itemType);
  w.u64(items.length);
  if (v.itemType === GGUFValueType.ARRAY) {
    // each item of an array of arrays is itself a typed array value: item type, count, items
    for (const it of items as GGUFMetaValue[]) {
      if (typeof it !== 'object' || it === null || it.type !== GGUFValueType.ARRAY) {
        throw new GGUFError(`metadata '${key}': an item of an array of arrays is not an array value`);
      }
      writeArrayBody(w, it, key);
    }
  } else {
    for (const x of items) writeScalar(w, v.itemType, x, key);
  }
}

/** Lays out a GGUF file: the header bytes and where each tensor's data goes. */
export function buildGGUFHeader(opts: GGUFWriteOptions): GGUFHeaderLayout {
  const meta = [...opts.metadata];
  const version = opts.version ?? 3;
  if (version !== 2 && version !== 3) throw new GGUFError(`cannot write GGUF version ${version} (2 or 3)`);
  let alignment = 32;
  let arch: string | undefined;
  const seen = new Set<string>();
  for (const [k, v] of meta) {
    if (seen.has(k)) throw new GGUFError(`duplicate metadata key '${k}'`);
    seen.add(k);
    if (k === 'general.alignment') {
      const a = v.value;
      if (v.type !== GGUFValueType.UINT32 || typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || a > 0x80000000 || (a & (a - 1)) !== 0) {
        throw new GGUFError(`general.alignment must be a uint32 power of two (got ${String(a)}, value type ${v.type})`);
      }
      alignment = a;
    }
    if (k === 'general.architecture' && v.type === GGUFValueType.STRING) arch = v.value as string;
  }
  const w = new ByteWriter();
  w.u32(0x46554747);
  w.u32(version);
  w.u64(opts.tensors.length);
  w.u64(meta.length);
  for (const [k, v] of meta) {
    w.string(k);
    w.u32(v.type);
    writeValue(w, v, k);
  }
  const tensorOffsets: number[] = [];
  const tensorSizes: number[] = [];
  let off = 0;
  const names = new Set<string>();
  for (const t of opts.tensors) {
    if (names.has(t.name)) throw new GGUFError(`duplicate tensor name '${t.name}'`);
    names.add(t.name);
    if (!Array.isArray(t.dims) || t.dims.length < 1 || t.dims.length > 4) {
      throw new GGUFError(`tensor '${t.name}' has ${Array.isArray(t.dims) ? t.dims.length : 'no'} dimensions (1..4 allowed)`);
    }
    for (const d of t.dims) {
      if (!Number.isSafeInteger(d) || d < 0) throw new GGUFError(`tensor '${t.name}' has dimension ${d}, not a non-negative integer`);
    }
    const size = tensorByteSize(t.type, t.dims, arch, t.name);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(off);
    tensorOffsets.push(off);
    tensorSizes.push(size);
    off = alignUp(off + size, alignment);
  }
  // gguf-py pads the header to the alignment even when there are no tensors
  const dataOffset = alignUp(w.pos, alignment);
  w.padTo(dataOffset);
  return { header: w.bytes(), dataOffset, tensorOffsets, tensorSizes, totalSize: dataOffset + off, alignment };
}

/** Writes a whole GGUF file into memory (small files, tests, the browser). */
export interface GGUFTensorWithData extends GGUFTensorSpec {
  data: Uint8Array;
}

export function serializeGGUF(opts: { version?: 2 | 3; metadata: Iterable<[string, GGUFMetaValue]>; tensors: GGUFTensorWithData[] }): Uint8Array {
  const layout = buildGGUFHeader(opts);
  const out = new Uint8Array(layout.totalSize);
  out.set(layout.header, 0);
  opts.tensors.forEach((t, i) => {
    if (t.data.length !== layout.tensorSizes[i]) {
      throw new GGUFError(`tensor '${t.name}': ${t.data.length} bytes of data given, its type and shape need ${layout.tensorSizes[i]}`);
    }
    out.set(t.data, layout.dataOffset + layout.tensorOffsets[i]);
  });
  return out;
}
