// F32 (ggml type 0): 4 bytes per element, IEEE binary32 little-endian, element i at bytes 4i..4i+3.
// No blocks. unpack/pack copy the bits unchanged (NaN payloads and -0 included).

import { checkByteLength, checkShape, LITTLE_ENDIAN, type WeightFormat } from './common.js';

const NAME = 'F32';

export function byteSize(nElements: number, rowLength: number): number {
  checkShape(NAME, 1, nElements, rowLength);
  return nElements * 4;
}

export function unpack(bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  checkByteLength(NAME, bytes, byteSize(nElements, rowLength), nElements);
  if (LITTLE_ENDIAN) return new Float32Array(bytes.slice().buffer, 0, nElements);
  const out = new Float32Array(nElements);
  const outBits = new Uint32Array(out.buffer);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < nElements; i++) outBits[i] = dv.getUint32(4 * i, true);
  return out;
}

export function pack(values: Float32Array, rowLength: number): Uint8Array {
  const n = values.length;
  byteSize(n, rowLength);
  if (LITTLE_ENDIAN) return new Uint8Array(values.slice().buffer, 0, n * 4);
  const out = new Uint8Array(n * 4);
  const dv = new DataView(out.buffer);
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0; i < n; i++) dv.setUint32(4 * i, bits[i]!, true);
  return out;
}

export const f32Format: WeightFormat = { type: 0, name: NAME, blockSize: 1, byteSize, unpack, pack };
