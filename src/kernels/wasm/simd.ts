// Small SIMD helpers shared by the kernels. ASC_FEATURE_RELAXED_SIMD is a compile-time constant:
// the relaxed build and the plain SIMD128 build come from the same source.

/** [sum of a's 8 i16 lanes, b's, c's, d's] as i32x4: a transpose-add (4 widenings, 6 shuffles, 3 adds)
 *  instead of four horizontal sums (7 operations each, two of them lane extracts). */
@inline export function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const wa = i32x4.extadd_pairwise_i16x8_s(a), wb = i32x4.extadd_pairwise_i16x8_s(b);
  const wc = i32x4.extadd_pairwise_i16x8_s(c), wd = i32x4.extadd_pairwise_i16x8_s(d);
  const ab = i32x4.add(i32x4.shuffle(wa, wb, 0, 1, 4, 5), i32x4.shuffle(wa, wb, 2, 3, 6, 7)); // a0+a2 a1+a3 b0+b2 b1+b3
  const cd = i32x4.add(i32x4.shuffle(wc, wd, 0, 1, 4, 5), i32x4.shuffle(wc, wd, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

/** Sum over the 4 i32 lanes of v. */
@inline export function hsum32(w: v128): i32 {
  const s = i32x4.add(w, i32x4.shuffle(w, w, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** i16 lane i = a[2i]*c[2i] + a[2i+1]*c[2i+1] (relaxed) or any lane-preserving-sum equivalent (plain);
 *  a: int8 activations, c: unsigned codes in [0, 3]. Only the total over lanes is used by callers. */
@inline export function dotCodes(a: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i16x8.relaxed_dot_i8x16_i7x16_s(a, c);
  } else {
    return i16x8.add(i16x8.extmul_low_i8x16_s(a, c), i16x8.extmul_high_i8x16_s(a, c));
  }
}

/** Table lookup with indices known to be in [0, 15]. */
@inline export function lookup(table: v128, idx: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i8x16.relaxed_swizzle(table, idx);
  } else {
    return i8x16.swizzle(table, idx);
  }
}

/** Fixed constant block at the bottom of memory, written by the JavaScript side before any call
 *  (src/kernels/wasm-backend.ts, KERNEL_CONSTANTS). Loading a mask from memory once before a loop
 *  keeps it in a register (or one folded memory operand); a v128.const or a splat inside the loop
 *  is rebuilt by V8 on every iteration (3 to 5 instructions). */
export const CONST_BASE: usize = 64;
// (CONST_BASE + 64: 8 x u16 0x8fff for the f16 widening of float-matmul.ts)
/** 16 bytes of 0x03 */
@inline export function mask3(): v128 {
  return v128.load(CONST_BASE);
}
/** 16 bytes of 0x0C */
@inline export function mask12(): v128 {
  return v128.load(CONST_BASE, 32);
}
/** 16 bytes of 0x0F */
@inline export function mask15(): v128 {
  return v128.load(CONST_BASE, 16);
}

/** Index of the first int8 code outside {-1, 0, +1} among n at src, or -1 when all are valid
 *  (16 at a time: T + 1 must be 0, 1 or 2 as an unsigned byte). */
export function firstInvalidCode(src: usize, n: usize): i32 {
  const one = i8x16.splat(1), two = i8x16.splat(2);
  let k: usize = 0;
  for (; k + 16 <= n; k += 16) {
    if (v128.any_true(i8x16.gt_u(i8x16.add(v128.load(src + k), one), two))) break;
  }
  for (; k < n; k++) {
    const c = load<i8>(src + k);
    if (c < -1 || c > 1) return <i32>k;
  }
  return -1;
}

/** e^x on four lanes, x clamped to [lo, hi] (callers pass -87 and 88 or 0): x = n ln2 + r with n the
 *  nearest integer to x log2e (ties to even), e^r by a degree-6 polynomial, times 2^n from the exponent
 *  bits. n comes from adding magic = 1.5 * 2^23: the f32 sum rounds x log2e to an integer exactly as
 *  nearest() does and holds n in its low bits, so t + bias (bias = 127 - bits(magic)) is the biased
 *  exponent of 2^n; this avoids V8's multi-instruction lowering of trunc_sat. The values are those of
 *  the scalar versions (nearest, then the same operations in the same order), so lane results equal
 *  theirs. The constants come from the caller, splatted once before its loop (V8 rebuilds a splat
 *  that sits inside a loop on every iteration). */
@inline export function exp4(x: v128, lo: v128, hi: v128, log2e: v128, ln2: v128, c6: v128, c5: v128, c4: v128,
                             c3: v128, c2: v128, one: v128, magic: v128, bias: v128): v128 {
  const xc = f32x4.pmin(f32x4.pmax(x, lo), hi); // pmin/pmax: one instruction each (min/max: eight)
  const t = f32x4.add(f32x4.mul(xc, log2e), magic);
  const n = f32x4.sub(t, magic);
  const r = f32x4.sub(xc, f32x4.mul(n, ln2));
  let p = f32x4.add(f32x4.mul(r, c6), c5);
  p = f32x4.add(f32x4.mul(r, p), c4);
  p = f32x4.add(f32x4.mul(r, p), c3);
  p = f32x4.add(f32x4.mul(r, p), c2);
  p = f32x4.add(f32x4.mul(r, p), one);
  p = f32x4.add(f32x4.mul(r, p), one);
  return f32x4.mul(p, i32x4.shl(i32x4.add(t, bias), 23));
}

/** The f32x4 constants of exp4, silu and attention's f16 widening, four lanes each, in the constant
 *  block (written by src/kernels/wasm-backend.ts, writeKernelConstants, in this order). Loaded from
 *  memory before a loop: V8 treats a constant splat as rematerializable and rebuilds it at every
 *  use inside the loop (movq + vmovq + vpunpcklqdq, three instructions per constant per use: read
 *  back with --print-wasm-code in siluGate, whose loop rebuilt ten of them per four elements), while
 *  a loaded value stays in a register or is reloaded with one instruction. */
export const VEC_CONST: usize = CONST_BASE + 128;
@inline export function cLog2e(): v128 { return v128.load(VEC_CONST, 0); } // 1.4426950408889634
@inline export function cLn2(): v128 { return v128.load(VEC_CONST, 16); } // 0.6931471805599453
@inline export function cC6(): v128 { return v128.load(VEC_CONST, 32); } // 0.0013888889
@inline export function cC5(): v128 { return v128.load(VEC_CONST, 48); } // 0.008333334
@inline export function cC4(): v128 { return v128.load(VEC_CONST, 64); } // 0.041666668
@inline export function cC3(): v128 { return v128.load(VEC_CONST, 80); } // 0.16666667
@inline export function cHalf(): v128 { return v128.load(VEC_CONST, 96); } // 0.5
@inline export function cOne(): v128 { return v128.load(VEC_CONST, 112); } // 1
@inline export function cMagic(): v128 { return v128.load(VEC_CONST, 128); } // exp4's magic: 1.5 * 2^23 (bits 0x4b400000)
@inline export function cBias(): v128 { return v128.load(VEC_CONST, 144); } // exp4's bias: i32 127 - 0x4b400000
@inline export function cMinus87(): v128 { return v128.load(VEC_CONST, 160); } // -87
@inline export function cPlus88(): v128 { return v128.load(VEC_CONST, 176); } // 88
@inline export function cSign(): v128 { return v128.load(VEC_CONST, 192); } // i32 0x80000000
@inline export function cF16Mask(): v128 { return v128.load(VEC_CONST, 208); } // i32 0x8fffffff
@inline export function cF16Scale(): v128 { return v128.load(VEC_CONST, 224); } // 2^112 (5.192296858534828e33)
@inline export function cAbsMask(): v128 { return v128.load(VEC_CONST, 240); } // i32 0x7fffffff
