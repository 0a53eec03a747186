// GGUF reader (v2 and v3, little-endian), after ggml's docs/gguf.md:
//   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count | kv pairs | tensor infos | pad | data
//   kv pair   = string key, u32 value type, value      (string = u64 length + UTF-8 bytes)
//   array     = u32 item type, u64 count, items
//   tensor    = string name, u32 n_dims, u64 dims[n_dims] (dims[0] = row length), u32 type, u64 offset
// Tensor data starts at the first multiple of general.alignment (default 32) after the infos;
// each tensor offset is relative to that start. Only the header is read eagerly; tensor data is
// read by range on demand, so files larger than memory (or 2 GiB) open instantly.
import { ArrayBufferSource, type ByteSource } from './source.js';
import { type GGUFMetaValue, type GGUFScalar, plainValue } from './meta.js';
import { GGUFError, GGUFValueType, tensorByteSize, typeName } from './types.js';

export interface GGUFTensor {
  readonly name: string;
  readonly type: number;
  /** ggml order: dims[0] is the row length (the input dimension of a weight) */
  readonly dims: number[];
  readonly nElements: number;
  readonly byteSize: number;
  /** absolute byte offset of the data in the file */
  readonly offset: number;
  /** offset relative to the data section, as stored */
  readonly relativeOffset: number;
  /** the tensor's bytes (a view for in-memory sources: do not mutate) */
  read(): Promise<Uint8Array>;
  /** copies the tensor's bytes into target (length >= byteSize) */
  readInto(target: Uint8Array): Promise<void>;
}

export interface GGUFFile {
  readonly version: number;
  readonly alignment: number;
  /** absolute offset of the tensor data section */
  readonly dataOffset: number;
  readonly size: number;
  readonly architecture: string | undefined;
  /** every metadata entry, in file order */
  readonly metadata: Map<string, GGUFMetaValue>;
  readonly tensors: GGUFTensor[];
  readonly source: ByteSource;
  /** plain value of a key (64-bit ints as numbers when exact), or undefined */
  get<T = unknown>(key: string): T | undefined;
  tensor(name: string): GGUFTensor | undefined;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const MAX_DIMS = 4;
const MAX_ARRAY_NESTING = 8;
const DEFAULT_ALIGNMENT = 32;
/**
 * The most header bytes (metadata + tensor infos) this reader will read. Real headers are a few MB
 * (a 256k-token vocabulary is ~5 MB); the cap keeps a corrupt count in a multi-GB file from
 * making the reader pull the whole file into memory before it can fail.
 */
export const MAX_HEADER_BYTES = 1 << 30;

/**
 * Limits on single header items, beyond the file-size bounds (a count or length can never promise more
 * bytes than the file has): real files stay far below them (a 256k-token vocabulary, merges of ~300k
 * lines, a chat template of tens of KB, names like 'blk.29.ffn_down.weight'), and they stop a small
 * hostile file from costing minutes and gigabytes before any verdict. Each refusal names the key.
 */
export const GGUF_LIMITS = {
  /** tensor name bytes: llama.cpp refuses names of GGML_MAX_NAME (64) bytes or more */
  tensorName: 63,
  /** metadata key bytes */
  key: 4096,
  /** bytes of one metadata string */
  string: 16 << 20,
  /** items of one metadata array */
  arrayItems: 1 << 22,
  /** tensors in one file */
  tensors: 1 << 17,
  /** metadata entries in one file */
  entries: 1 << 16,
} as const;

/** Smallest encoded size of one value of each type: bounds absurd counts before allocating. */
const MIN_VALUE_BYTES: Record<number, number> = {
  0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8,
};
const NUMERIC_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Thrown when the header runs past the bytes read so far (but not past the file). */
class NeedMoreBytes {}

class Cursor {
  pos = 0;
  private readonly dv: DataView;
  // ignoreBOM: a string that starts with U+FEFF keeps it (the default decoder would drop it)
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  /** counts and lengths in the header are bounded by this (the file size, at most MAX_HEADER_BYTES) */
  readonly headerLimit: number;
  constructor(readonly buf: Uint8Array, readonly fileSize: number) {
    this.headerLimit = Math.min(fileSize, MAX_HEADER_BYTES);
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number, what: string): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.buf.length < this.headerLimit) throw new NeedMoreBytes();
    if (this.headerLimit < this.fileSize) {
      throw new GGUFError(`GGUF header too large: ${what} at offset ${this.pos} needs ${n} bytes, past the ${MAX_HEADER_BYTES}-byte limit on header size`);
    }
    throw new GGUFError(`truncated GGUF header: ${what} at offset ${this.pos} needs ${n} bytes but the file ends at ${this.fileSize}`);
  }
  u8(what: string): number { this.need(1, what); return this.buf[this.pos++]; }
  i8(what: string): number { this.need(1, what); return this.dv.getInt8(this.pos++); }
  u16(what: string): number { this.need(2, what); const v = this.dv.getUint16(this.pos, true); this.pos += 2; return v; }
  i16(what: string): number { this.need(2, what); const v = this.dv.getInt16(this.pos, true); this.pos += 2; return v; }
  u32(what: string): number { this.need(4, what); const v = this.dv.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(what: string): number { this.need(4, what); const v = this.dv.getInt32(this.pos, true); this.pos += 4; return v; }
  f32(what: string): number { this.need(4, what); const v = this.dv.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64(what: string): number { this.need(8, what); const v = this.dv.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64big(what: string): bigint { this.need(8, what); const v = this.dv.getBigUint64(this.pos, true); this.pos += 8; return v; }
  i64big(what: string): bigint { this.need(8, what); const v = this.dv.getBigInt64(this.pos, true); this.pos += 8; return v; }
  /** n numbers of one numeric type, read straight off the DataView (vocabularies have 100k+) */
  numericArray(type: number, n: number, key: string): GGUFScalar[] {
    const out = new Array<GGUFScalar>(n);
    const dv = this.dv;
    let p = this.pos;
    switch (type) {
      case GGUFValueType.UINT8: for (let i = 0; i < n; i++, p += 1) out[i] = dv.getUint8(p); break;
      case GGUFValueType.INT8: for (let i = 0; i < n; i++, p += 1) out[i] = dv.getInt8(p); break;
      case GGUFValueType.UINT16: for (let i = 0; i < n; i++, p += 2) out[i] = dv.getUint16(p, true); break;
      case GGUFValueType.INT16: for (let i = 0; i < n; i++, p += 2) out[i] = dv.getInt16(p, true); break;
      case GGUFValueType.UINT32: for (let i = 0; i < n; i++, p += 4) out[i] = dv.getUint32(p, true); break;
      case GGUFValueType.INT32: for (let i = 0; i < n; i++, p += 4) out[i] = dv.getInt32(p, true); break;
      case GGUFValueType.FLOAT32: for (let i = 0; i < n; i++, p += 4) out[i] = dv.getFloat32(p, true); break;
      case GGUFValueType.FLOAT64: for (let i = 0; i < n; i++, p += 8) out[i] = dv.getFloat64(p, true); break;
      case GGUFValueType.UINT64: for (let i = 0; i < n; i++, p += 8) out[i] = dv.getBigUint64(p, true); break;
      case GGUFValueType.INT64: for (let i = 0; i < n; i++, p += 8) out[i] = dv.getBigInt64(p, true); break;
      case GGUFValueType.BOOL:
        for (let i = 0; i < n; i++, p += 1) {
          const b = dv.getUint8(p);
          if (b > 1) throw new GGUFError(`metadata '${key}': item ${i} is bool value ${b}, neither 0 nor 1`);
          out[i] = b === 1;
        }
        break;
    }
    this.pos = p;
    return out;
  }
  /**
   * A large string array (vocabulary, merges) decoded with ONE TextDecoder call: each string's
   * UTF-8 is validated and converted to UTF-16 units here (one pass, into one Uint16Array), the
   * units are decoded as UTF-16LE in one call (a plain copy, much faster than UTF-8 decoding), and
   * the result is sliced by each string's unit count. Validation follows the WHATWG fatal UTF-8
   * decoder per string (no overlongs, surrogates, code points past U+10FFFF, or sequences cut by
   * the string's end); on any invalid string this returns undefined and the caller decodes string
   * by string, replacing bad bytes with U+FFFD as TextDecoder does.
   */
  stringArrayBulk(n: number): string[] | undefined {
    const b = this.buf;
    const p0 = this.pos;
    if (n * 8 > b.length - p0) return undefined; // cannot fit in the bytes at hand: let the per-string path report it
    // pass 1: the length prefixes (each < 2^24 here, else the per-string path handles it) and the total
    let p = p0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      if (p + 8 > b.length || (b[p + 3] | b[p + 4] | b[p + 5] | b[p + 6] | b[p + 7]) !== 0) return undefined;
      const len = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
      p += 8 + len;
      if (p > b.length) return undefined;
      total += len;
    }
    const end = p;
    // pass 2: UTF-8 -> UTF-16 units (never more units than bytes)
    const u16 = new Uint16Array(total);
    const units = new Uint32Array(n);
    let q = 0;
    p = p0;
    for (let i = 0; i < n; i++) {
      const len = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
      let k = p + 8;
      const stop = k + len;
      const q0 = q;
      while (k < stop) {
        const c = b[k];
        if (c < 0x80) {
          u16[q++] = c;
          k++;
        } else if (c >= 0xc2 && c <= 0xdf) {
          if (k + 1 >= stop) return undefined;
          const c1 = b[k + 1];
          if ((c1 & 0xc0) !== 0x80) return undefined;
          u16[q++] = ((c & 0x1f) << 6) | (c1 & 0x3f);
          k += 2;
        } else if (c >= 0xe0 && c <= 0xef) {
          if (k + 2 >= stop) return undefined;
          const c1 = b[k + 1], c2 = b[k + 2];
          // E0: no overlongs (>= A0); ED: no UTF-16 surrogates (<= 9F)
          if (c1 < (c === 0xe0 ? 0xa0 : 0x80) || c1 > (c === 0xed ? 0x9f : 0xbf) || (c2 & 0xc0) !== 0x80) return undefined;
          u16[q++] = ((c & 0x0f) << 12) | ((c1 & 0x3f) << 6) | (c2 & 0x3f);
          k += 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
          if (k + 3 >= stop) return undefined;
          const c1 = b[k + 1], c2 = b[k + 2], c3 = b[k + 3];
          // F0: no overlongs (>= 90); F4: nothing past U+10FFFF (<= 8F)
          if (c1 < (c === 0xf0 ? 0x90 : 0x80) || c1 > (c === 0xf4 ? 0x8f : 0xbf) || (c2 & 0xc0) !== 0x80 || (c3 & 0xc0) !== 0x80) return undefined;
          const cp = (((c & 0x07) << 18) | ((c1 & 0x3f) << 12) | ((c2 & 0x3f) << 6) | (c3 & 0x3f)) - 0x10000;
          u16[q++] = 0xd800 | (cp >> 10);
          u16[q++] = 0xdc00 | (cp & 0x3ff);
          k += 4;
        } else {
          return undefined; // continuation byte without a lead, C0/C1, F5..FF
        }
      }
      units[i] = q - q0;
      p = stop;
    }
    const text = utf16le.decode(u16.subarray(0, q));
    const out = new Array<string>(n);
    for (let i = 0, s = 0; i < n; i++) {
      const u = units[i];
      out[i] = text.slice(s, s + u);
      s += u;
    }
    this.pos = end;
    return out;
  }
  /**
   * A u64 that must be a count/size/offset: returned as a number, at most `limit`. `inHeader`: the
   * limit comes from the header-size cap rather than the file size (only matters for huge files).
   */
  u64n(what: string, limit: number, inHeader = false): number {
    this.need(8, what);
    const lo = this.dv.getUint32(this.pos, true);
    const hi = this.dv.getUint32(this.pos + 4, true);
    const v = hi * 2 ** 32 + lo;
    if (v > limit) {
      const bound = inHeader && this.headerLimit < this.fileSize ? `a GGUF header can hold (at most ${MAX_HEADER_BYTES} bytes)` : `a ${this.fileSize}-byte file can hold`;
      throw new GGUFError(`${what} at offset ${this.pos} is ${hi >= 2 ** 21 ? 'about ' : ''}${hi ? `2^${Math.log2(v).toFixed(1)}` : v}, more than ${bound}`);
    }
    this.pos += 8;
    return v;
  }
  /** A string of at most `maxBytes` bytes (checked before anything is read or decoded). */
  string(what: string, maxBytes: number = GGUF_LIMITS.string): string {
    const len = this.u64n(`length of ${what}`, this.headerLimit - this.pos - 8, true);
    if (len > maxBytes) throw new GGUFError(`${what} is ${len} bytes long, more than the ${maxBytes} allowed`);
    this.need(len, what);
    const start = this.pos;
    this.pos += len;
    return len <= 64 ? decodeShortUtf8(this.buf, start, len, this.utf8) : this.utf8.decode(this.buf.subarray(start, start + len));
  }
}

/** UTF-16LE decoder for the bulk string path; ignoreBOM keeps a leading U+FEFF as a character. */
const utf16le = new TextDecoder('utf-16le', { ignoreBOM: true });

/** Hand-rolled decoder for the many short strings of a vocabulary (faster than TextDecoder per call). */
const shortCodes = new Uint16Array(64);
function decodeShortUtf8(b: Uint8Array, start: number, len: number, fallback: TextDecoder): string {
  const end = start + len;
  let n = 0;
  for (let i = start; i < end; ) {
    const c = b[i];
    if (c < 0x80) { shortCodes[n++] = c; i++; }
    else if (c >= 0xc2 && c < 0xe0 && i + 1 < end && (b[i + 1] & 0xc0) === 0x80) {
      shortCodes[n++] = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f); i += 2;
    } else return fallback.decode(b.subarray(start, end)); // 3/4-byte or invalid: let TextDecoder do it
  }
  switch (n) {
    case 0: return '';
    case 1: return String.fromCharCode(shortCodes[0]);
    case 2: return String.fromCharCode(shortCodes[0], shortCodes[1]);
    case 3: return String.fromCharCode(shortCodes[0], shortCodes[1], shortCodes[2]);
    case 4: return String.fromCharCode(shortCodes[0], shortCodes[1], shortCodes[2], shortCodes[3]);
    default: return String.fromCharCode.apply(null, shortCodes.subarray(0, n) as unknown as number[]);
  }
}

interface RawTensorInfo { name: string; dims: number[]; type: number; relOffset: number }

function parseHeader(c: Cursor) {
  if (c.fileSize < 4) throw new GGUFError(`not a GGUF file: ${c.fileSize} bytes, too short for the magic`);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    if (magic === 0x47475546) throw new GGUFError('big-endian GGUF files are not supported');
    const shown = Array.from(c.buf.subarray(0, 4), (x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`)).join('');
    throw new GGUFError(`not a GGUF file: bad magic "${shown}" (expected "GGUF")`);
  }
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    // big-endian files keep the "GGUF" magic bytes but store the version (and all else) byte-swapped
    const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
    if (swapped >= 1 && swapped <= 3) throw new GGUFError(`big-endian GGUF files are not supported (version ${swapped} stored big-endian)`);
    throw new GGUFError(`unsupported GGUF version ${version} (this reader handles versions 2 and 3)`);
  }
  // each tensor info takes at least 8+4+8+4+8 bytes, each kv at least 8+4+1
  const tensorCount = c.u64n('tensor count', Math.floor(c.headerLimit / 32), true);
  const kvCount = c.u64n('metadata entry count', Math.floor(c.headerLimit / 13), true);
  if (tensorCount > GGUF_LIMITS.tensors) throw new GGUFError(`tensor count ${tensorCount} is more than the ${GGUF_LIMITS.tensors} allowed`);
  if (kvCount > GGUF_LIMITS.entries) throw new GGUFError(`metadata entry count ${kvCount} is more than the ${GGUF_LIMITS.entries} allowed`);

  const metadata = new Map<string, GGUFMetaValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`key of metadata entry ${i}`, GGUF_LIMITS.key);
    const type = c.u32(`value type of '${key}'`);
    const value = readValue(c, type, key, 0);
    if (metadata.has(key)) throw new GGUFError(`duplicate metadata key '${key}'`);
    metadata.set(key, value);
  }

  const infos: RawTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`name of tensor ${i}`, GGUF_LIMITS.tensorName);
    const nDims = c.u32(`dimension count of tensor '${name}'`);
    if (nDims < 1 || nDims > MAX_DIMS) throw new GGUFError(`tensor '${name}' has ${nDims} dimensions (1..${MAX_DIMS} allowed)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64n(`dimension ${d} of tensor '${name}'`, 2 ** 40));
    const type = c.u32(`type of tensor '${name}'`);
    const relOffset = c.u64n(`data offset of tensor '${name}'`, c.fileSize);
    infos.push({ name, dims, type, relOffset });
  }
  return { version, metadata, infos, headerEnd: c.pos };
}

function readValue(c: Cursor, type: number, key: string, depth: number): GGUFMetaValue {
  switch (type) {
    case GGUFValueType.UINT8: return { type, value: c.u8(key) };
    case GGUFValueType.INT8: return { type, value: c.i8(key) };
    case GGUFValueType.UINT16: return { type, value: c.u16(key) };
    case GGUFValueType.INT16: return { type, value: c.i16(key) };
    case GGUFValueType.UINT32: return { type, value: c.u32(key) };
    case GGUFValueType.INT32: return { type, value: c.i32(key) };
    case GGUFValueType.FLOAT32: return { type, value: c.f32(key) };
    case GGUFValueType.FLOAT64: return { type, value: c.f64(key) };
    case GGUFValueType.UINT64: return { type, value: c.u64big(key) };
    case GGUFValueType.INT64: return { type, value: c.i64big(key) };
    case GGUFValueType.BOOL: {
      const b = c.u8(key);
      if (b > 1) throw new GGUFError(`metadata '${key}': bool value ${b} is neither 0 nor 1`);
      return { type, value: b === 1 };
    }
    case GGUFValueType.STRING: return { type, value: c.string(`string value of '${key}'`) };
    case GGUFValueType.ARRAY: {
      if (depth >= MAX_ARRAY_NESTING) throw new GGUFError(`metadata '${key}': arrays nested deeper than ${MAX_ARRAY_NESTING}`);
      const itemType = c.u32(`array item type of '${key}'`);
      const minBytes = MIN_VALUE_BYTES[itemType];
      if (minBytes === undefined) throw new GGUFError(`metadata '${key}': unknown array item type ${itemType}`);
      const n = c.u64n(`array length of '${key}'`, Math.floor((c.headerLimit - c.pos - 8) / minBytes), true);
      if (n > GGUF_LIMITS.arrayItems) throw new GGUFError(`metadata '${key}': array of ${n} items, more than the ${GGUF_LIMITS.arrayItems} allowed`);
      return { type, itemType, value: readArrayItems(c, itemType, n, key, depth) };
    }
    default:
      throw new GGUFError(`metadata '${key}': unknown value type ${type}`);
  }
}

function readArrayItems(c: Cursor, itemType: number, n: number, key: string, depth: number): GGUFScalar[] | GGUFMetaValue[] {
  const width = NUMERIC_BYTES[itemType];
  if (width !== undefined) {
    c.need(n * width, `array '${key}'`);
    return c.numericArray(itemType, n, key);
  }
  if (itemType === GGUFValueType.STRING) {
    if (n >= 256) {
      const fast = c.stringArrayBulk(n);
      if (fast) return fast;
    }
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = c.string(`item ${i} of '${key}'`);
    return out;
  }
  const out = new Array<GGUFMetaValue>(n);
  for (let i = 0; i < n; i++) out[i] = readValue(c, itemType, key, depth + 1);
  return out;
}

/**
 * Opens a GGUF file: parses the header (metadata and tensor infos) and validates every tensor's
 * type, size and placement. Tensor data is not read.
 */
export async function readGGUF(input: ByteSource | ArrayBuffer | Uint8Array): Promise<GGUFFile> {
  const source: ByteSource = input instanceof ArrayBuffer || input instanceof Uint8Array ? new ArrayBufferSource(input) : input;
  const size = source.size;
  // Read a prefix and parse; if the header is longer, read twice as much and parse again.
  const headerLimit = Math.min(size, MAX_HEADER_BYTES);
  let want = Math.min(headerLimit, 16 << 20);
  let parsed: ReturnType<typeof parseHeader>;
  for (;;) {
    const buf = await source.read(0, want);
    try {
      parsed = parseHeader(new Cursor(buf, size));
      break;
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
      want = Math.min(headerLimit, want * 2);
    }
  }
  const { version, metadata, infos, headerEnd } = parsed;

  const alignV = metadata.get('general.alignment');
  let alignment = DEFAULT_ALIGNMENT;
  if (alignV !== undefined) {
    if (alignV.type !== GGUFValueType.UINT32) throw new GGUFError(`general.alignment must be a uint32 (found value type ${alignV.type})`);
    alignment = alignV.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) throw new GGUFError(`general.alignment ${alignment} is not a power of two`);
  }
  const archV = metadata.get('general.architecture');
  const architecture = archV?.type === GGUFValueType.STRING ? (archV.value as string) : undefined;
  const dataOffset = alignUp(headerEnd, alignment);

  const tensors: GGUFTensor[] = [];
  const byName = new Map<string, GGUFTensor>();
  for (const info of infos) {
    if (byName.has(info.name)) throw new GGUFError(`duplicate tensor name '${info.name}'`);
    const nElements = info.dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(nElements) || nElements > size * 8) {
      // each dim is bounded, but their product can still overflow: refuse before computing a size
      throw new GGUFError(`tensor '${info.name}' has dims [${info.dims.join(', ')}]: ${nElements > 2 ** 53 ? `about 2^${Math.log2(nElements).toFixed(1)}` : nElements} elements, more than a ${size}-byte file can hold`);
    }
    const byteSize = tensorByteSize(info.type, info.dims, architecture, info.name);
    if (info.relOffset % alignment !== 0) {
      throw new GGUFError(`tensor '${info.name}' data offset ${info.relOffset} is not a multiple of the alignment ${alignment}`);
    }
    const offset = dataOffset + info.relOffset;
    if (offset + byteSize > size) {
      const what = offset >= size ? 'starts outside the file' : 'runs past the end of the file (truncated tensor data?)';
      throw new GGUFError(`tensor '${info.name}' (${typeName(info.type, architecture)}, ${byteSize} bytes at offset ${offset}) ${what}: the file has ${size} bytes`);
    }
    const t = makeTensor(source, info, byteSize, offset);
    tensors.push(t);
    byName.set(info.name, t);
  }

  return {
    version, alignment, dataOffset, size, architecture, metadata, tensors, source,
    get<T>(key: string): T | undefined {
      const v = metadata.get(key);
      return v === undefined ? undefined : (plainValue(v) as T);
    },
    tensor: (name: string) => byName.get(name),
  };
}

function makeTensor(source: ByteSource, info: RawTensorInfo, byteSize: number, offset: number): GGUFTensor {
  return {
    name: info.name,
    type: info.type,
    dims: info.dims,
    nElements: info.dims.reduce((a, b) => a * b, 1),
    byteSize,
    offset,
    relativeOffset: info.relOffset,
    read: () => source.read(offset, byteSize),
    async readInto(target: Uint8Array) {
      if (target.length < byteSize) throw new RangeError(`target of ${target.length} bytes is smaller than tensor '${info.name}' (${byteSize} bytes)`);
      target.set(await source.read(offset, byteSize));
    },
  };
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
