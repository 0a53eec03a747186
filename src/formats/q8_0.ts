// Q8_0 (ggml type 8): blocks of 32 consecutive elements of a row, 34 bytes each (block_q8_0):
//   bytes 0..1   d, f16 little-endian (the block scale)
//   bytes 2..33  qs[0..31], int8; element j of the block is qs[j] (byte 2 + j)
//   value_j = qs[j] * d  (f32)
// Rows must be a multiple of 32 elements. pack = quantize_row_q8_0_ref: amax = max |x| of the block,
// d = amax / 127 (f32), id = d ? 1/d : 0 (f32), qs[j] = roundf(x_j * id) (ties away from zero;
// x_j * id an f32 product), and d stored rounded to f16 (so unpack(pack(x)) uses the f16 d).

import { checkByteLength, checkFinite, checkShape, type WeightFormat } from './common.js';
import { f32ToF16, readF16, writeF16Bits } from './half.js';
import { roundHalfAway } from './rounding.js';

const NAME = 'Q8_0';
export const QK8_0 = 32;
export const BLOCK_BYTES = 34;
const fround = Math.fround;

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, QK8_0, nElements, rowLength);
  return (nElements / QK8_0) * BLOCK_BYTES;
}

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const out = new Float32Array(nElements);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  const nb = nElements / QK8_0;
  for (let b = 0, o = 0, y = 0; b < nb; b++, o += BLOCK_BYTES) {
    const d = readF16(bytes, o);
    for (let j = 0; j < QK8_0; j++) out[y++] = q[o + 2 + j]! * d; // exact: 8-bit x 11-bit product
  }
  return out;
}

export function pack(values: Float32Array, rowLength: number): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(byteSize(n, rowLength));
  checkFinite(NAME, values);
  const nb = n / QK8_0;
  for (let b = 0, o = 0; b < nb; b++, o += BLOCK_BYTES) {
    const x0 = b * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(values[x0 + j]!));
    const d = fround(amax / 127);
    const id = d !== 0 ? fround(1 / d) : 0;
    writeF16Bits(out, o, f32ToF16(d));
    for (let j = 0; j < QK8_0; j++) out[o + 2 + j] = roundHalfAway(fround(values[x0 + j]! * id)) & 0xff;
  }
  return out;
}

export const q8_0Format: WeightFormat = { type: 8, name: NAME, blockSize: QK8_0, byteSize, unpack, pack };
