// 16-bit floats <-> f32, bit-exact with ggml (ggml-impl.h).
//
// f16 (IEEE binary16): bit 15 sign, bits 14..10 exponent (bias 15), bits 9..0 mantissa.
//   f32 -> f16 rounds to nearest, ties to even (what F16C's _cvtss_sh(x, 0) and ggml's portable
//   ggml_compute_fp32_to_fp16 both do); overflow -> +-Inf; results below half the smallest
//   subnormal (2^-25) -> +-0. NaN -> sign | 0x7E00, as ggml's portable C conversion does (F16C
//   hardware instead keeps the top 10 payload bits; both are quiet NaNs).
//   f16 -> f32 is exact (subnormals included); NaN payloads are kept (shifted up by 13 bits).
// bf16: the top 16 bits of an f32. f32 -> bf16 as ggml_compute_fp32_to_bf16: NaN -> top 16 bits
//   with the quiet bit (0x0040) forced on; otherwise round to nearest, ties to even, on the bits
//   (which carries correctly into the exponent, overflowing to Inf). bf16 -> f32 appends 16 zero bits.
//
// The scalar functions work on bit patterns (numbers holding uint16 / uint32) so NaN payloads and
// -0 survive; f32Bits/f32FromBits convert between a JS number and its f32 bit pattern.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Bit pattern (uint32) of Math.fround(x). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

/** The f32 whose bit pattern is `bits` (a NaN's payload is not guaranteed to survive as a JS number). */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

/** f32 bit pattern -> f16 bit pattern, round to nearest even. */
export function f32BitsToF16Bits(w: number): number {
  const sign = (w >>> 16) & 0x8000;
  const exp = (w >>> 23) & 0xff;
  const mant = w & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  if (exp >= 143) return sign | 0x7c00; // >= 2^16: beyond the f16 range even before rounding
  if (exp >= 113) {
    // normal f16 (2^-14 <= |x| < 2^16): keep 10 mantissa bits, round the 13 dropped ones.
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++; // a carry may reach Inf: correct
    return sign | h;
  }
  if (exp < 102) return sign; // |x| < 2^-25 rounds to zero
  // subnormal f16: value = m * 2^(exp-150), unit 2^-24 -> shift right by 126 - exp (14..24).
  const m = mant | 0x800000;
  const shift = 126 - exp;
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) !== 0)) h++; // may become the smallest normal: correct
  return sign | h;
}

/** f16 bit pattern -> f32 bit pattern (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: mant * 2^-24, normalize.
  let e = 113;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** Number -> f16 bit pattern (the number is first rounded to f32, as C's float argument would be). */
export function f32ToF16(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** f16 bit pattern -> number. */
export function f16ToF32(h: number): number {
  return f32FromBits(f16BitsToF32Bits(h));
}

/** f32 bit pattern -> bf16 bit pattern (ggml_compute_fp32_to_bf16). */
export function f32BitsToBf16Bits(w: number): number {
  if ((w & 0x7fffffff) >>> 0 > 0x7f800000) return ((w >>> 16) | 0x40) & 0xffff;
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

export function bf16ToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

let f16Table: Uint32Array | undefined;
/** All 65536 f16 values as f32 bit patterns (256 KiB, built on first use), like ggml_table_f32_f16. */
export function f16ToF32BitsTable(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** Reads the little-endian f16 at bytes[offset] as a number. */
export function readF16(bytes: Uint8Array, offset: number): number {
  return f16ToF32(bytes[offset]! | (bytes[offset + 1]! << 8));
}

/** Writes f16 bit pattern h little-endian at bytes[offset]. */
export function writeF16Bits(bytes: Uint8Array, offset: number, h: number): void {
  bytes[offset] = h & 0xff;
  bytes[offset + 1] = (h >>> 8) & 0xff;
}

/** Writes each f32 of values as a 16-bit little-endian word convert(f32 bits) (F16 and BF16 pack). */
export function packHalfWords(values: Float32Array, out: Uint8Array, convert: (f32Bits: number) => number): Uint8Array {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0, j = 0; i < n; i++, j += 2) {
    const h = convert(bits[i]!);
    out[j] = h & 0xff;
    out[j + 1] = h >>> 8;
  }
  return out;
}
