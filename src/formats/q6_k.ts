// Q6_K (ggml type 14): blocks of 256 consecutive elements of a row, 210 bytes each
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
// pack is a plain quantizer (for synthetic models and baselines, not llama.cpp's error-minimizing
// make_qx_quants): each 16-element scale is amax/31, d = max |scale| / 127 (stored as f16), the
// int8 scales are scale / d rounded up, and q = round(x / (d * scale)) clamped to -32..31.

import { checkByteLength, checkShape, type WeightFormat } from './common.js';
import { f16ToF32, f32ToF16, readF16, writeF16Bits } from './half.js';

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

export function pack(values: Float32Array, rowLength: number): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(byteSize(n, rowLength));
  const sub = new Float64Array(16);
  for (let b = 0; b < n / QK_K; b++) {
    const x = b * QK_K;
    const o = b * BLOCK_BYTES;
    let maxSub = 0;
    for (let j = 0; j < 16; j++) {
      let amax = 0;
      for (let i = 0; i < 16; i++) amax = Math.max(amax, Math.abs(values[x + 16 * j + i]!));
      sub[j] = amax / 31;
      maxSub = Math.max(maxSub, sub[j]!);
    }
    const dBits = f32ToF16(maxSub / 127);
    const d = f16ToF32(dBits);
    writeF16Bits(out, o + 208, dBits);
    for (let j = 0; j < 16; j++) {
      // rounded up, so d * scale >= amax / 31 and no quant is clamped
      const sc = d > 0 ? Math.min(127, Math.ceil(sub[j]! / d - 1e-6)) : 0;
      out[o + 192 + j] = sc & 0xff;
      const step = Math.fround(d * sc);
      for (let i = 0; i < 16; i++) {
        const e = 16 * j + i;
        const q = step !== 0 ? Math.max(-32, Math.min(31, Math.round(values[x + e]! / step))) : 0;
        const u = q + 32;
        // e = 128h + 32k + l: see the layout above
        const h = e >> 7;
        const k = (e >> 5) & 3;
        const l = e & 31;
        const ql = o + 64 * h + l + (k & 1) * 32;
        out[ql] = out[ql]! | ((u & 0xf) << (k >= 2 ? 4 : 0));
        out[o + 128 + 32 * h + l] = out[o + 128 + 32 * h + l]! | ((u >> 4) << (2 * k));
      }
    }
  }
  return out;
}

export const q6_kFormat: WeightFormat = { type: 14, name: NAME, blockSize: QK_K, byteSize, unpack, pack };
