// Test helpers for the format tests: a seeded PRNG and f32 bit views (written independently of src/formats).
import { mulberry32 } from '../helpers/random.js';

/** mulberry32: small deterministic PRNG, uniform in [0, 1). */
export const rng = mulberry32;

const dv = new DataView(new ArrayBuffer(4));
export function bitsOf(x: number): number {
  dv.setFloat32(0, x);
  return dv.getUint32(0);
}
export function fromBits(b: number): number {
  dv.setUint32(0, b >>> 0);
  return dv.getFloat32(0);
}

/** Random ternary codes with about 1/3 zeros. */
export function randomCodes(n: number, r: () => number): Int8Array {
  const c = new Int8Array(n);
  for (let i = 0; i < n; i++) c[i] = Math.floor(r() * 3) - 1;
  return c;
}

/** Random normal-ish floats (sum of uniforms) times `scale`. */
export function randomFloats(n: number, r: () => number, scale = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (r() + r() + r() - 1.5) * scale;
  return x;
}

/** Value of an f16 bit pattern, computed arithmetically (not via bit tricks). */
export function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * ggml's portable fp32 -> fp16 (the FP16 library's magic-number algorithm from ggml-impl.h),
 * re-expressed with Math.fround: a second, independent implementation of round-to-nearest-even.
 */
export function refF32ToF16(w: number): number {
  const fround = Math.fround;
  const f = fromBits(w);
  let base = fround(fround(Math.abs(f) * 2 ** 112) * 2 ** -110);
  const shl1 = (w << 1) >>> 0;
  const sign = (w & 0x80000000) >>> 0;
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = fround(fromBits((bias >>> 1) + 0x07800000) + base);
  const bits = bitsOf(base);
  const expBits = (bits >>> 13) & 0x7c00;
  const mantBits = bits & 0xfff;
  return (sign >>> 16) | (shl1 > 0xff000000 ? 0x7e00 : expBits + mantBits);
}

/** Bytes of a little-endian f16 at o. */
export function f16At(bytes: Uint8Array, o: number): number {
  return bytes[o]! | (bytes[o + 1]! << 8);
}
