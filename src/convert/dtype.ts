// Decoding safetensors element data (little-endian) to f32, and reading scalar tensors.
// BF16 -> f32 appends 16 zero bits; F16 -> f32 is exact (ggml's table); F32 is copied.

import { f16ToF32BitsTable, f32BitsToF16Bits } from '../formats/half.js';
import type { SafetensorsDType } from './safetensors.js';
import { ConvertError } from './errors.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A Uint16Array/Uint32Array view of bytes (copied first when the offset is misaligned or the host is big-endian). */
export function u16View(b: Uint8Array): Uint16Array {
  if (!LITTLE_ENDIAN) throw new ConvertError('big-endian hosts are not supported by the converter');
  if (b.byteOffset % 2 !== 0) b = b.slice();
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >>> 1);
}
function u32View(b: Uint8Array): Uint32Array {
  if (!LITTLE_ENDIAN) throw new ConvertError('big-endian hosts are not supported by the converter');
  if (b.byteOffset % 4 !== 0) b = b.slice();
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}

/** Decodes BF16 / F16 / F32 element bytes to a Float32Array (into `out` when given). */
export function decodeFloats(bytes: Uint8Array, dtype: SafetensorsDType, out?: Float32Array): Float32Array {
  const size = dtype === 'F32' ? 4 : 2;
  const n = bytes.byteLength / size;
  const res = out ?? new Float32Array(n);
  const bits = new Uint32Array(res.buffer, res.byteOffset, n);
  if (dtype === 'BF16') {
    const src = u16View(bytes);
    for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
  } else if (dtype === 'F16') {
    const table = f16ToF32BitsTable();
    const src = u16View(bytes);
    for (let i = 0; i < n; i++) bits[i] = table[src[i]!]!;
  } else if (dtype === 'F32') {
    bits.set(u32View(bytes));
  } else {
    throw new ConvertError(`cannot decode ${dtype} data as floating point`);
  }
  return res;
}

export function isFloatDType(dtype: SafetensorsDType): boolean {
  return dtype === 'BF16' || dtype === 'F16' || dtype === 'F32';
}

let bf16ToF16: Uint16Array | undefined;
/** f16 bits of every bf16 bit pattern (f32 -> f16 round to nearest even, as the F16 format packs). */
export function bf16ToF16Bits(): Uint16Array {
  if (!bf16ToF16) {
    bf16ToF16 = new Uint16Array(65536);
    for (let v = 0; v < 65536; v++) bf16ToF16[v] = f32BitsToF16Bits((v << 16) >>> 0);
  }
  return bf16ToF16;
}
