// Byte sources the GGUF reader reads from: the whole file never needs to be in memory.
// The core knows only this interface; Node's file-backed source lives in src/node/file-source.ts.

export interface ByteSource {
  /** total size in bytes */
  readonly size: number;
  /** bytes [offset, offset+length); may be a view (do not mutate) */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** An in-memory file (browser ArrayBuffer, tests). read() returns views, no copies. */
export class ArrayBufferSource implements ByteSource {
  private readonly bytes: Uint8Array;
  constructor(data: ArrayBuffer | Uint8Array) {
    // a plain view even of a Node Buffer: Buffer's slice() is a view, not the copy the format
    // readers take it for (they would read the wrong bytes from a file given as fs.readFileSync's Buffer)
    this.bytes = data instanceof Uint8Array ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
  }
  get size(): number {
    return this.bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length, this.size);
    return this.bytes.subarray(offset, offset + length);
  }
}

/** A browser File/Blob, read by range without loading it whole. */
export class BlobSource implements ByteSource {
  constructor(private readonly blob: Blob) {}
  get size(): number {
    return this.blob.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length, this.size);
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }
}

export function checkRange(offset: number, length: number, size: number): void {
  if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
    throw new RangeError(`read of ${length} bytes at offset ${offset} is outside the file (size ${size})`);
  }
}

/** A ByteSource for whatever a caller holds: bytes in memory, a browser File/Blob, or a source. */
export function toByteSource(input: ByteSource | ArrayBuffer | Uint8Array | Blob): ByteSource {
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) return new ArrayBufferSource(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return new BlobSource(input);
  return input as ByteSource;
}
