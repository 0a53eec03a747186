// Byte-level GGUF builder for tests: writes exactly the fields it is told to, valid or not,
// so that malformed files (bad counts, unknown types, invalid UTF-8) can be made on purpose.
// Layout reminder (little-endian): magic u32 | version u32 | u64 n_tensors | u64 n_kv | kv... | tensor infos | pad | data.

export class Raw {
  private buf = new Uint8Array(256);
  private dv = new DataView(this.buf.buffer);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
    this.dv = new DataView(nb.buffer);
  }
  u8(v: number): this { this.ensure(1); this.dv.setUint8(this.pos, v); this.pos += 1; return this; }
  u16(v: number): this { this.ensure(2); this.dv.setUint16(this.pos, v, true); this.pos += 2; return this; }
  u32(v: number): this { this.ensure(4); this.dv.setUint32(this.pos, v, true); this.pos += 4; return this; }
  i32(v: number): this { this.ensure(4); this.dv.setInt32(this.pos, v, true); this.pos += 4; return this; }
  f32(v: number): this { this.ensure(4); this.dv.setFloat32(this.pos, v, true); this.pos += 4; return this; }
  u64(v: number | bigint): this { this.ensure(8); this.dv.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; return this; }
  bytes(b: ArrayLike<number>): this { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; return this; }
  /** a GGUF string: u64 byte length, then the bytes (UTF-8 of a JS string, or raw bytes as given) */
  str(s: string | Uint8Array): this {
    const b = typeof s === 'string' ? new TextEncoder().encode(s) : s;
    return this.u64(b.length).bytes(b);
  }
  /** zero bytes up to the next multiple of a */
  pad(a: number): this { const n = (a - (this.pos % a)) % a; return this.bytes(new Uint8Array(n)); }
  /** a header prefix: magic, version, counts */
  header(nTensors: number | bigint, nKv: number | bigint, version = 3): this {
    return this.bytes([0x47, 0x47, 0x55, 0x46]).u32(version).u64(nTensors).u64(nKv);
  }
  /** a tensor info: name, n_dims, dims, type, relative offset */
  tensorInfo(name: string, dims: (number | bigint)[], type: number, offset: number | bigint): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  done(): Uint8Array { return this.buf.slice(0, this.pos); }
}

/** Little-endian helpers for patching a copy of a file. */
export function patchU32(b: Uint8Array, at: number, v: number): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setUint32(at, v, true);
  return c;
}
export function patchU64(b: Uint8Array, at: number, v: number | bigint): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setBigUint64(at, BigInt(v), true);
  return c;
}

/** Offset of the first occurrence of a byte pattern (e.g. an encoded GGUF string) at or after `from`. */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** The bytes of a GGUF string field (u64 length + UTF-8), for locating fields in a file. */
export function ggufStringBytes(s: string): Uint8Array {
  return new Raw().str(s).done();
}
