// I2_S (bitnet.cpp fork type 36; x86 layout, the one the official BitNet b1.58 2B4T GGUF uses).
// A whole tensor of n elements (row-major, rows a multiple of 128) takes n/4 + 32 bytes:
//   bytes 0 .. n/4-1        blocks of 128 consecutive elements, 32 bytes each; byte j (j = 0..31) of
//                           block k holds elements 128k + j, +32, +64, +96 at bit shifts 6, 4, 2, 0
//                           (most significant pair first). 2-bit code c = t + 1: 0 -> -1, 1 -> 0, 2 -> +1.
//   bytes n/4 .. n/4+3      the ONE per-tensor scale, f32 little-endian: value = t * scale.
//   bytes n/4+4 .. n/4+31   padding. bitnet.cpp's quantize_i2_s never writes it: files made by its
//                           llama-quantize carry stale bytes from the previous tensor there (seen in the
//                           oracle file); this module writes zeros unless given the padding to reproduce.
// pack = quantize_i2_s (bitnet.cpp src/ggml-bitnet-mad.cpp, ACT_PARALLEL build, the default):
//   scale = max |x| over the tensor; c = 1 if |x| < 1e-6, else 2 for x > 0 and 0 for x < 0. No
//   rounding to the scale: every nonzero element becomes +-1.
// unpack follows the fork's dequantize_row_i2_s: value = scale * {-1, 0, +1, 0}[c] (a stray code 3
// reads as 0 there, but the fork's AVX2 matmul would read it as +2, so unpackTernary refuses it).
// Not this layout: ARM builds of bitnet.cpp (64-element blocks of 16 bytes) and post-2025 builds
// without ACT_PARALLEL (four rows interleaved per byte); neither can be told apart from the bytes.
// i2_s-layouts.ts reads and writes those (`--i2s-layout`).

import {
  checkByteLength, checkFinite, checkShape, checkTernaryInput, FormatError,
  type TernaryFormat, type TernaryTensor,
} from './common.js';

const NAME = 'I2_S';
export const QK_I2_S = 128;
export const TAIL_BYTES = 32;
export const PADDING_BYTES = TAIL_BYTES - 4;

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, QK_I2_S, nElements, rowLength);
  return nElements / 4 + TAIL_BYTES;
}

/** Packs codes c = t + bias into out (n/4 bytes). */
function packCodes(out: Uint8Array, c: Uint8Array | Int8Array, n: number, bias: number): void {
  for (let k = 0; k < n / QK_I2_S; k++) {
    const e0 = k * QK_I2_S;
    const o = k * 32;
    for (let j = 0; j < 32; j++) {
      const e = e0 + j;
      out[o + j] = ((c[e]! + bias) << 6) | ((c[e + 32]! + bias) << 4) | ((c[e + 64]! + bias) << 2) | (c[e + 96]! + bias);
    }
  }
}

function writeTail(out: Uint8Array, n: number, scale: number, padding?: Uint8Array): void {
  new DataView(out.buffer, out.byteOffset, out.byteLength).setFloat32(n / 4, scale, true);
  if (padding !== undefined) {
    if (padding.length !== PADDING_BYTES) {
      throw new FormatError(`${NAME}: padding must be ${PADDING_BYTES} bytes, got ${padding.length}`);
    }
    out.set(padding, n / 4 + 4);
  }
}

function readScale(bytes: Uint8Array, n: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat32(n / 4, true);
}

export function pack(values: Float32Array, rowLength: number, padding?: Uint8Array): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(byteSize(n, rowLength));
  checkFinite(NAME, values);
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(values[i]!));
  const c = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    c[i] = Math.abs(v) < 1e-6 ? 1 : v > 0 ? 2 : 0;
  }
  packCodes(out, c, n, 0);
  writeTail(out, n, max, padding);
  return out;
}

/** Packs codes with the per-tensor scale (stored as f32); `padding` (28 bytes) defaults to zeros. */
export function packTernary(codes: Int8Array, scale: number, rowLength: number, padding?: Uint8Array): Uint8Array {
  const n = codes.length;
  const out = new Uint8Array(byteSize(n, rowLength));
  checkTernaryInput(NAME, codes, scale);
  packCodes(out, codes, n, 1);
  writeTail(out, n, scale, padding);
  return out;
}

const MAP = new Float32Array([-1, 0, 1, 0]);

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const scale = readScale(bytes, nElements);
  const out = new Float32Array(nElements);
  for (let k = 0; k < nElements / QK_I2_S; k++) {
    const y = k * QK_I2_S;
    const o = k * 32;
    for (let j = 0; j < 32; j++) {
      const v = bytes[o + j]!;
      out[y + j] = scale * MAP[v >> 6]!;
      out[y + j + 32] = scale * MAP[(v >> 4) & 3]!;
      out[y + j + 64] = scale * MAP[(v >> 2) & 3]!;
      out[y + j + 96] = scale * MAP[v & 3]!;
    }
  }
  return out;
}

export function unpackTernary(bytes: Uint8Array, nElements: number, rowLength: number): TernaryTensor {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const scale = readScale(bytes, nElements);
  if (!Number.isFinite(scale)) throw new FormatError(`${NAME}: the tensor scale is ${scale}`);
  const codes = new Int8Array(nElements);
  const bad = bytes.byteOffset % 4 === 0 ? unpackCodesWords(bytes, nElements, codes) : unpackCodesBytes(bytes, nElements, codes);
  if (bad !== 0) {
    const e = codes.indexOf(2);
    throw new FormatError(
      `${NAME}: element ${e} has code 3, which is not a ternary code (bitnet.cpp's dequantizer reads it as 0, its matmul as +2)`,
    );
  }
  return { codes, scale };
}

/** codes[i] = c_i - 1, byte by byte; returns nonzero if any code is 3. */
function unpackCodesBytes(bytes: Uint8Array, n: number, codes: Int8Array): number {
  let bad = 0;
  for (let k = 0; k < n / QK_I2_S; k++) {
    const y = k * QK_I2_S;
    const o = k * 32;
    for (let j = 0; j < 32; j++) {
      const v = bytes[o + j]!;
      bad |= v & (v >> 1) & 0x55;
      codes[y + j] = (v >> 6) - 1;
      codes[y + j + 32] = ((v >> 4) & 3) - 1;
      codes[y + j + 64] = ((v >> 2) & 3) - 1;
      codes[y + j + 96] = (v & 3) - 1;
    }
  }
  return bad;
}

/**
 * The same, four bytes at a time (the loader's hot path: 2.1G codes for 2B4T), assuming a
 * little-endian host like every WebAssembly/JS platform in use. One 32-bit word
 * holds bytes j..j+3 of a block, whose codes at one shift are elements j..j+3: a word of the
 * output. Per byte, (c + 0x7f) ^ 0x80 = c - 1 as int8 for c in 0..3, with no carry between bytes.
 */
function unpackCodesWords(bytes: Uint8Array, n: number, codes: Int8Array): number {
  const src = new Uint32Array(bytes.buffer, bytes.byteOffset, n / 16);
  const dst = new Int32Array(codes.buffer, codes.byteOffset, n / 4);
  let bad = 0;
  for (let k = 0; k < n / QK_I2_S; k++) {
    const s0 = k * 8; // 32 bytes = 8 words per block
    const d0 = k * 32; // 128 codes = 32 words per block
    for (let j = 0; j < 8; j++) {
      const w = src[s0 + j]!;
      bad |= w & (w >>> 1) & 0x55555555;
      dst[d0 + j] = (((w >>> 6) & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
      dst[d0 + j + 8] = (((w >>> 4) & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
      dst[d0 + j + 16] = (((w >>> 2) & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
      dst[d0 + j + 24] = ((w & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
    }
  }
  return bad;
}

/** I2_S's pack functions also take the 28 padding bytes (default zeros). */
export interface I2SFormat extends TernaryFormat {
  pack(values: Float32Array, rowLength: number, padding?: Uint8Array): Uint8Array;
  packTernary(codes: Int8Array, scale: number, rowLength: number, padding?: Uint8Array): Uint8Array;
}

export const i2_sFormat: I2SFormat = {
  type: 36, name: NAME, blockSize: QK_I2_S, byteSize, unpack, pack, packTernary, unpackTernary,
};
