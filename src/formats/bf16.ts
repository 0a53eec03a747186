// BF16 (ggml type 30): 2 bytes per element, little-endian; element i at bytes 2i (bf16 bits 7..0:
// the low exponent bit and 7 mantissa bits) and 2i+1 (bits 15..8: sign and the top 7 exponent bits).
// A bf16 is the top 16 bits of an f32. No blocks. pack as ggml_compute_fp32_to_bf16 (round to nearest even,
// NaN kept quiet); unpack appends 16 zero bits (exact).

import { checkByteLength, checkShape, type WeightFormat } from './common.js';
import { f32BitsToBf16Bits, packHalfWords } from './half.js';

const NAME = 'BF16';

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, 1, nElements, rowLength);
  return nElements * 2;
}

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const out = new Float32Array(nElements);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0, j = 0; i < nElements; i++, j += 2) outBits[i] = ((bytes[j]! << 16) | (bytes[j + 1]! << 24)) >>> 0;
  return out;
}

export function pack(values: Float32Array, rowLength: number): Uint8Array {
  return packHalfWords(values, new Uint8Array(byteSize(values.length, rowLength)), f32BitsToBf16Bits);
}

export const bf16Format: WeightFormat = { type: 30, name: NAME, blockSize: 1, byteSize, unpack, pack };
