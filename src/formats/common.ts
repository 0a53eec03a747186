// What every weight-format module exports, and the shape checks they share.
//
// A tensor is handled as nElements values in rows of rowLength (ggml dims[0]); the ggml block
// formats never let a block cross a row, so rowLength must be a multiple of the block size.

/** A tensor of ternary codes (-1, 0, +1; row-major) times one scale: value = codes[i] * scale. */
export interface TernaryTensor {
  codes: Int8Array;
  scale: number;
}

export interface WeightFormat {
  /** ggml type id (I2_S: bitnet.cpp fork id 36). */
  readonly type: number;
  readonly name: string;
  /** Elements per block; rows must be a multiple of it. */
  readonly blockSize: number;
  /** Bytes a tensor of nElements (rows of rowLength) takes; throws on a bad shape. */
  byteSize(nElements: number, rowLength: number): number;
  /** Decodes to f32 exactly as ggml's dequantize_row_* / to_float does. */
  unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array;
  /** Encodes f32 values byte-exactly as the reference quantizer/converter; absent where not supported (Q6_K). */
  pack?(values: Float32Array, rowLength: number): Uint8Array;
}

export interface TernaryFormat extends WeightFormat {
  pack(values: Float32Array, rowLength: number): Uint8Array;
  /** Packs codes (-1/0/+1) with one per-tensor scale. */
  packTernary(codes: Int8Array, scale: number, rowLength: number): Uint8Array;
  /** Returns the codes and the ONE per-tensor scale; throws if the data is not ternary x one scale. */
  unpackTernary(bytes: Uint8Array, nElements: number, rowLength: number): TernaryTensor;
}

export class FormatError extends Error {
  override name = 'FormatError';
}

/** Checks nElements / rowLength / block size; returns the number of rows. */
export function checkShape(format: string, blockSize: number, nElements: number, rowLength: number): number {
  if (!Number.isSafeInteger(rowLength) || rowLength <= 0) {
    throw new FormatError(`${format}: row length must be a positive integer, got ${rowLength}`);
  }
  if (!Number.isSafeInteger(nElements) || nElements < 0) {
    throw new FormatError(`${format}: element count must be a non-negative integer, got ${nElements}`);
  }
  if (rowLength % blockSize !== 0) {
    throw new FormatError(
      `${format}: row length ${rowLength} is not a multiple of the block size ${blockSize} (${format} blocks never cross a row)`,
    );
  }
  if (nElements % rowLength !== 0) {
    throw new FormatError(`${format}: ${nElements} elements is not a whole number of rows of ${rowLength}`);
  }
  return nElements / rowLength;
}

/** Throws unless bytes.length is exactly the size the tensor needs. */
export function checkByteLength(format: string, bytes: Uint8Array, expected: number, nElements: number): void {
  if (bytes.length !== expected) {
    throw new FormatError(`${format}: ${nElements} elements take ${expected} bytes, but ${bytes.length} were given`);
  }
}

/** Throws unless every value is finite (quantizers have no meaningful output for NaN / Inf). */
export function checkFinite(format: string, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new FormatError(`${format}: cannot quantize element ${i}, which is ${v}`);
  }
}

/** Throws unless every code is -1, 0 or +1 and the scale is a finite number. */
export function checkTernaryInput(format: string, codes: Int8Array, scale: number): void {
  if (!Number.isFinite(scale)) throw new FormatError(`${format}: the ternary scale must be finite, got ${scale}`);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c < -1 || c > 1) throw new FormatError(`${format}: code ${i} is ${c}; ternary codes must be -1, 0 or +1`);
  }
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Formats a number for messages: shortest round-trip form. */
export function fmt(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x);
}
