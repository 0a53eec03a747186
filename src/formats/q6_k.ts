// Q6_K (ggml type 14), unpack only: blocks of 256 consecutive elements of a row, 210 bytes each
// (block_q6_K):
//   bytes   0..127  ql[128]: low 4 bits of each 6-bit quant
//   bytes 128..191  qh[64]:  high 2 bits
//   bytes 192..207  scales[16], int8: one per 16 elements (element e of the block uses scales[e >> 4])
//   bytes 208..209  d, f16 little-endian (super-block scale)
// The block is two halves of 128 elements; half h (elements 128h..128h+127) uses ql[64h..64h+63],
// qh[32h..32h+31]. With l = 0..31, inside half h:
//   element l      : low  nibble of ql[64h + l],      qh[32h + l] bits 0-1
//   element l + 32 : low  nibble of ql[64h + l + 32], qh[32h + l] bits 2-3
//   element l + 64 : high nibble of ql[64h + l],      qh[32h + l] bits 4-5
//   element l + 96 : high nibble of ql[64h + l + 32], qh[32h + l] bits 6-7
// q = (low | high << 4) - 32 in -32..31, value = d * scale * q (f32, as dequantize_row_q6_K).
// Rows must be a multiple of 256 elements.

import { checkByteLength, checkShape, type WeightFormat } from './common.js';
import { readF16 } from './half.js';

const NAME = 'Q6_K';
export const QK_K = 256;
export const BLOCK_BYTES = 210;

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, QK_K, nElements, rowLength);
  return (nElements / QK_K) * BLOCK_BYTES;
}

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const out = new Float32Array(nElements);
  const sc = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  const nb = nElements / QK_K;
  for (let b = 0; b < nb; b++) {
    const o = b * BLOCK_BYTES;
    const d = readF16(bytes, o + 208);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const s = o + 192 + 8 * h;
      const y = b * QK_K + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const lo0 = bytes[ql + l]!;
        const lo1 = bytes[ql + l + 32]!;
        const hi = bytes[qh + l]!;
        const q1 = ((lo0 & 0xf) | ((hi & 3) << 4)) - 32;
        const q2 = ((lo1 & 0xf) | (((hi >> 2) & 3) << 4)) - 32;
        const q3 = ((lo0 >> 4) | (((hi >> 4) & 3) << 4)) - 32;
        const q4 = ((lo1 >> 4) | (((hi >> 6) & 3) << 4)) - 32;
        // d * scale is exact in f32 (11 x 8 bits); the product with q is rounded once, on store.
        out[y + l] = d * sc[s + is]! * q1;
        out[y + l + 32] = d * sc[s + is + 2]! * q2;
        out[y + l + 64] = d * sc[s + is + 4]! * q3;
        out[y + l + 96] = d * sc[s + is + 6]! * q4;
      }
    }
  }
  return out;
}

export const q6_kFormat: WeightFormat = { type: 14, name: NAME, blockSize: QK_K, byteSize, unpack };
