// F16 (ggml type 1): 2 bytes per element, IEEE binary16 little-endian, element i at bytes 2i (low
// byte) and 2i+1 (high byte: sign, 5 exponent bits, top 2 mantissa bits). No blocks.
// pack rounds f32 -> f16 to nearest even as ggml (see half.ts); unpack is exact.

import { checkByteLength, checkShape, type WeightFormat } from './common.js';
import { f16ToF32BitsTable, f32BitsToF16Bits, packHalfWords } from './half.js';

const NAME = 'F16';

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, 1, nElements, rowLength);
  return nElements * 2;
}

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  const table = f16ToF32BitsTable();
  const out = new Float32Array(nElements);
  const outBits = new Uint32Array(out.buffer); // native order, bits kept exactly (NaN payloads)
  for (let i = 0, j = 0; i < nElements; i++, j += 2) outBits[i] = table[bytes[j]! | (bytes[j + 1]! << 8)]!;
  return out;
}

export function pack(values: Float32Array, rowLength: number): Uint8Array {
  return packHalfWords(values, new Uint8Array(byteSize(values.length, rowLength)), f32BitsToF16Bits);
}

export const f16Format: WeightFormat = { type: 1, name: NAME, blockSize: 1, byteSize, unpack, pack };
