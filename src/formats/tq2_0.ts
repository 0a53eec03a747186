// TQ2_0 (ggml type 35, llama.cpp): blocks of 256 consecutive elements of a row, 66 bytes each
// (block_tq2_0):
//   bytes  0..63  qs[64]: 2-bit codes c = t + 1 (t in -1, 0, +1), four per byte
//   bytes 64..65  d, f16 little-endian (the block scale)
// Element e of the block (e = 0..255) lives in byte qs[32 * (e >> 7) + (e & 31)] at bit shift
// 2 * ((e >> 5) & 3): i.e. qs[0..31] hold elements 0..127 (bits 0-1: elements 0..31, bits 2-3:
// 32..63, bits 4-5: 64..95, bits 6-7: 96..127) and qs[32..63] hold elements 128..255 the same way.
// value = (c - 1) * d (dequantize_row_tq2_0; a stray code 3 decodes to 2d there, and
// unpackTernary refuses it). Rows must be a multiple of 256 elements.
// pack = quantize_row_tq2_0_ref: d = max |x| of the block (f32, stored as f16),
// id = d ? 1/d : 0, c = lroundf(x * id) + 1 (ties away from zero).
// packTernary writes f16(scale) as d of every block with a nonzero code and 0 for all-zero blocks,
// which is what the reference quantizer makes of codes * scale; a scale that f16 cannot hold exactly
// is rounded to f16 (the format stores nothing finer).

import {
  checkByteLength, checkShape, FormatError,
  type TernaryFormat, type TernaryTensor,
} from './common.js';
import { readF16 } from './half.js';
import { packTqTernary, packTqValues, QK_K, type TqLayout } from './tq-blocks.js';
import { commonBlockScale } from './ternary.js';

const NAME = 'TQ2_0';
export { QK_K };
export const BLOCK_BYTES = 66;

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, QK_K, nElements, rowLength);
  return (nElements / QK_K) * BLOCK_BYTES;
}

/** Writes the 2-bit codes c[0..255] (0..2) of one block at out[o..o+63]. */
function packBlockCodes(out: Uint8Array, o: number, c: Uint8Array | Int8Array, x0: number, bias: number): void {
  for (let h = 0; h < 2; h++) {
    const e0 = x0 + 128 * h;
    for (let m = 0; m < 32; m++) {
      const e = e0 + m;
      out[o + 32 * h + m] =
        ((c[e]! + bias) & 3) | (((c[e + 32]! + bias) & 3) << 2) | (((c[e + 64]! + bias) & 3) << 4) | (((c[e + 96]! + bias) & 3) << 6);
    }
  }
}

const LAYOUT: TqLayout = { name: NAME, blockBytes: BLOCK_BYTES, dOffset: 64, packBlockCodes };

export function pack(values: Float32Array, rowLength: number): Uint8Array {
  return packTqValues(LAYOUT, values, new Uint8Array(byteSize(values.length, rowLength)));
}

export function packTernary(codes: Int8Array, scale: number, rowLength: number): Uint8Array {
  return packTqTernary(LAYOUT, codes, scale, new Uint8Array(byteSize(codes.length, rowLength)));
}

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const out = new Float32Array(nElements);
  for (let b = 0, o = 0; b < nElements / QK_K; b++, o += BLOCK_BYTES) {
    const d = readF16(bytes, o + 64);
    for (let h = 0; h < 2; h++) {
      const y = b * QK_K + 128 * h;
      const q = o + 32 * h;
      for (let m = 0; m < 32; m++) {
        const v = bytes[q + m]!;
        out[y + m] = ((v & 3) - 1) * d;
        out[y + m + 32] = (((v >> 2) & 3) - 1) * d;
        out[y + m + 64] = (((v >> 4) & 3) - 1) * d;
        out[y + m + 96] = ((v >> 6) - 1) * d;
      }
    }
  }
  return out;
}

export function unpackTernary(bytes: Uint8Array, nElements: number, rowLength: number): TernaryTensor {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const nb = nElements / QK_K;
  const codes = new Int8Array(nElements);
  // codes written a 32-bit word (4 elements) at a time: bytes m..m+3 of a 32-byte group hold
  // elements m..m+3 at each shift; per byte (c + 0x7f) ^ 0x80 = c - 1 (no carry between bytes).
  // Little-endian host assumed, as on every JS/WebAssembly platform in use.
  const words = new Int32Array(codes.buffer, codes.byteOffset, nElements / 4);
  const d = new Float32Array(nb);
  const nonzero = new Uint8Array(nb);
  for (let b = 0, o = 0; b < nb; b++, o += BLOCK_BYTES) {
    d[b] = readF16(bytes, o + 64);
    let nz = 0;
    let bad = 0;
    for (let h = 0; h < 2; h++) {
      const y = (b * QK_K + 128 * h) >> 2; // in words
      const q = o + 32 * h;
      for (let m = 0; m < 32; m += 4) {
        const w = bytes[q + m]! | (bytes[q + m + 1]! << 8) | (bytes[q + m + 2]! << 16) | (bytes[q + m + 3]! << 24);
        nz |= w ^ 0x55555555; // any pair != 01
        bad |= w & (w >>> 1) & 0x55555555; // any pair == 11
        const i = y + (m >> 2);
        words[i] = ((w & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
        words[i + 8] = (((w >>> 2) & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
        words[i + 16] = (((w >>> 4) & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
        words[i + 24] = (((w >>> 6) & 0x03030303) + 0x7f7f7f7f) ^ 0x80808080;
      }
    }
    if (bad !== 0) {
      let e = b * QK_K;
      while (codes[e] !== 2) e++;
      throw new FormatError(`${NAME}: element ${e} (block ${b}) has code 3, which is not a ternary code`);
    }
    nonzero[b] = nz !== 0 ? 1 : 0;
  }
  return { codes, scale: commonBlockScale(NAME, d, nonzero) };
}

export const tq2_0Format: TernaryFormat = {
  type: 35, name: NAME, blockSize: QK_K, byteSize, unpack, pack, packTernary, unpackTernary,
};
