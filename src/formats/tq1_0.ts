// TQ1_0 (ggml type 34, llama.cpp): blocks of 256 consecutive elements of a row, 54 bytes each
// (block_tq1_0):
//   bytes  0..47  qs[48]: 5 trits per byte
//   bytes 48..51  qh[4]:  4 trits per byte
//   bytes 52..53  d, f16 little-endian (the block scale)
// A trit is c = t + 1 (t in -1, 0, +1). Which elements share a byte (trit 0 is the most significant):
//   qs[m],      m = 0..31: elements m, m+32, m+64, m+96, m+128           (elements   0..159)
//   qs[32 + m], m = 0..15: elements 160+m, 176+m, 192+m, 208+m, 224+m    (elements 160..239)
//   qh[j],      j = 0..3:  elements 240+j, 244+j, 248+j, 252+j, then a 0 trit (elements 240..255)
// A byte holding trits c0..c4 is ceil((c0*81 + c1*27 + c2*9 + c3*3 + c4) * 256 / 243), a fixed-point
// fraction of 3^5; trit n is read back as ((byte * 3^n) mod 256) * 3 >> 8.
// value = (c - 1) * d (dequantize_row_tq1_0). Rows must be a multiple of 256 elements.
// pack = quantize_row_tq1_0_ref: d = max |x| of the block (f32, stored as f16), id = d ? 1/d : 0,
// c = lroundf(x * id) + 1 (ties away from zero).
// packTernary writes f16(scale) as d of every block with a nonzero code and 0 for all-zero blocks,
// which is what the reference quantizer makes of codes * scale (scale rounded to f16).

import {
  checkByteLength, checkShape,
  type TernaryFormat, type TernaryTensor,
} from './common.js';
import { readF16 } from './half.js';
import { packTqTernary, packTqValues, QK_K, type TqLayout } from './tq-blocks.js';
import { commonBlockScale } from './ternary.js';

const NAME = 'TQ1_0';
export { QK_K };
export const BLOCK_BYTES = 54;

/** TRITS[5 * byte + n] = t (-1, 0, +1) of trit n of a byte, decoded as dequantize_row_tq1_0 does. */
const TRITS = new Int8Array(256 * 5);
for (let b = 0; b < 256; b++) {
  for (let n = 0, p = 1; n < 5; n++, p *= 3) TRITS[5 * b + n] = ((((b * p) & 0xff) * 3) >> 8) - 1;
}

/** Element offsets (within a block) of the trits of every packed byte: OFFSETS[5 * i + n], byte i = 0..51. */
const OFFSETS = new Int16Array(52 * 5);
for (let m = 0; m < 32; m++) for (let n = 0; n < 5; n++) OFFSETS[5 * m + n] = m + 32 * n;
for (let m = 0; m < 16; m++) for (let n = 0; n < 5; n++) OFFSETS[5 * (32 + m) + n] = 160 + m + 16 * n;
for (let j = 0; j < 4; j++) for (let n = 0; n < 5; n++) OFFSETS[5 * (48 + j) + n] = n < 4 ? 240 + j + 4 * n : -1;

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, QK_K, nElements, rowLength);
  return (nElements / QK_K) * BLOCK_BYTES;
}

/** Packs the trits c = t + bias (0..2) of one block (elements x0..x0+255 of c) into out[o..o+51]. */
function packBlockCodes(out: Uint8Array, o: number, c: Uint8Array | Int8Array, x0: number, bias: number): void {
  for (let i = 0; i < 52; i++) {
    let q = 0;
    for (let n = 0; n < 5; n++) {
      const e = OFFSETS[5 * i + n]!;
      q = q * 3 + (e < 0 ? 0 : c[x0 + e]! + bias);
    }
    out[o + i] = Math.floor((q * 256 + 242) / 243);
  }
}

const LAYOUT: TqLayout = { name: NAME, blockBytes: BLOCK_BYTES, dOffset: 52, packBlockCodes };

export function pack(values: Float32Array, rowLength: number): Uint8Array {
  return packTqValues(LAYOUT, values, new Uint8Array(byteSize(values.length, rowLength)));
}

export function packTernary(codes: Int8Array, scale: number, rowLength: number): Uint8Array {
  return packTqTernary(LAYOUT, codes, scale, new Uint8Array(byteSize(codes.length, rowLength)));
}

/** Decodes the codes of block b (bytes at o) into codes[y..y+255]; returns nonzero if any code is. */
function decodeBlock(bytes: Uint8Array, o: number, codes: Int8Array, y: number): number {
  let nz = 0;
  for (let m = 0; m < 32; m++) {
    const t = 5 * bytes[o + m]!;
    const c0 = TRITS[t]!, c1 = TRITS[t + 1]!, c2 = TRITS[t + 2]!, c3 = TRITS[t + 3]!, c4 = TRITS[t + 4]!;
    codes[y + m] = c0;
    codes[y + m + 32] = c1;
    codes[y + m + 64] = c2;
    codes[y + m + 96] = c3;
    codes[y + m + 128] = c4;
    nz |= c0 | c1 | c2 | c3 | c4;
  }
  for (let m = 0; m < 16; m++) {
    const t = 5 * bytes[o + 32 + m]!;
    const c0 = TRITS[t]!, c1 = TRITS[t + 1]!, c2 = TRITS[t + 2]!, c3 = TRITS[t + 3]!, c4 = TRITS[t + 4]!;
    codes[y + 160 + m] = c0;
    codes[y + 176 + m] = c1;
    codes[y + 192 + m] = c2;
    codes[y + 208 + m] = c3;
    codes[y + 224 + m] = c4;
    nz |= c0 | c1 | c2 | c3 | c4;
  }
  for (let j = 0; j < 4; j++) {
    const t = 5 * bytes[o + 48 + j]!;
    const c0 = TRITS[t]!, c1 = TRITS[t + 1]!, c2 = TRITS[t + 2]!, c3 = TRITS[t + 3]!;
    codes[y + 240 + j] = c0;
    codes[y + 244 + j] = c1;
    codes[y + 248 + j] = c2;
    codes[y + 252 + j] = c3;
    nz |= c0 | c1 | c2 | c3;
  }
  return nz;
}

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const out = new Float32Array(nElements);
  const codes = new Int8Array(QK_K);
  for (let b = 0, o = 0; b < nElements / QK_K; b++, o += BLOCK_BYTES) {
    const d = readF16(bytes, o + 52);
    decodeBlock(bytes, o, codes, 0);
    const y = b * QK_K;
    for (let j = 0; j < QK_K; j++) out[y + j] = codes[j]! * d;
  }
  return out;
}

export function unpackTernary(bytes: Uint8Array, nElements: number, rowLength: number): TernaryTensor {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const nb = nElements / QK_K;
  const codes = new Int8Array(nElements);
  const d = new Float32Array(nb);
  const nonzero = new Uint8Array(nb);
  for (let b = 0, o = 0; b < nb; b++, o += BLOCK_BYTES) {
    d[b] = readF16(bytes, o + 52);
    nonzero[b] = decodeBlock(bytes, o, codes, b * QK_K) !== 0 ? 1 : 0;
  }
  return { codes, scale: commonBlockScale(NAME, d, nonzero) };
}

export const tq1_0Format: TernaryFormat = {
  type: 34, name: NAME, blockSize: QK_K, byteSize, unpack, pack, packTernary, unpackTernary,
};
