// Activation quantizer (SPEC.md §2) and RMSNorm, bit-exact with src/kernels/reference.ts.
//   s = f32(127 / max(1e-5, max|x|)) (max in f64), q = clamp(nearest_even(f32(x * s)), -128, 127).
//   f32x4.nearest rounds half to even; the saturating narrows give the clamp (|x * s| <= 127 plus
//   rounding, so the conversion to i32 never saturates: the relaxed build uses the one-instruction
//   relaxed_trunc, the plain build trunc_sat, which V8 lowers to a longer sequence).

import { cAbsMask } from './simd';

/** Max |x| over n f32 values at x, NaN when one of them is NaN. The vector loop keeps the max with
 *  pmax (one instruction; V8 lowers f32x4.max, which propagates NaN, to about eight) and tracks NaN
 *  apart (x != x), and takes |x| with a mask loaded from the constant block (f32x4.abs rebuilds its
 *  mask at every use): a third of the instructions per element. */
function absMax(x: usize, n: i32): f32 {
  const absMask = cAbsMask();
  let m0 = f32x4.splat(0), m1 = f32x4.splat(0), nan = i32x4.splat(0);
  let k = 0;
  for (; k + 8 <= n; k += 8) {
    const p = x + (<usize>k << 2);
    const a = v128.load(p), b = v128.load(p, 16);
    m0 = f32x4.pmax(m0, v128.and(a, absMask));
    m1 = f32x4.pmax(m1, v128.and(b, absMask));
    nan = v128.or(nan, v128.or(f32x4.ne(a, a), f32x4.ne(b, b)));
  }
  for (; k + 4 <= n; k += 4) {
    const a = v128.load(x + (<usize>k << 2));
    m0 = f32x4.pmax(m0, v128.and(a, absMask));
    nan = v128.or(nan, f32x4.ne(a, a));
  }
  if (v128.any_true(nan)) return NaN; // a NaN must reach the result (non-finite weight rows are refused)
  m0 = f32x4.pmax(m0, m1);
  let m = max(max(f32x4.extract_lane(m0, 0), f32x4.extract_lane(m0, 1)), max(f32x4.extract_lane(m0, 2), f32x4.extract_lane(m0, 3)));
  for (; k < n; k++) m = max(m, abs<f32>(load<f32>(x + (<usize>k << 2))));
  return m;
}

/** The activation scale of n values at x. */
@inline function actScale(x: usize, n: i32): f32 {
  const m = max(<f64>1e-5, <f64>absMax(x, n));
  return <f32>(127.0 / m);
}

@inline function q4(x: usize, sv: v128): v128 {
  const r = f32x4.nearest(f32x4.mul(v128.load(x), sv));
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_trunc_f32x4_s(r);
  return i32x4.trunc_sat_f32x4_s(r);
}

@inline function qScalar(v: f32, s: f32): i32 {
  let r = <i32>nearest<f32>(v * s);
  return r > 127 ? 127 : r < -128 ? -128 : r;
}

/** Quantizes n values at x with scale s into int8 at q (16 at a time), returns sum of q. */
function quantRow(x: usize, n: i32, s: f32, q: usize): i32 {
  const sv = f32x4.splat(s);
  let acc = i32x4.splat(0);
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    const p = x + (<usize>k << 2);
    const a = q4(p, sv), b = q4(p + 16, sv), c = q4(p + 32, sv), d = q4(p + 48, sv);
    acc = i32x4.add(acc, i32x4.add(i32x4.add(a, b), i32x4.add(c, d)));
    v128.store(q + k, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d)));
  }
  let sum = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
  for (; k < n; k++) {
    const v = qScalar(load<f32>(x + (<usize>k << 2)), s);
    store<i8>(q + k, <i8>v);
    sum += v;
  }
  return sum;
}

/** acts: q[t*dim + k], scales[t] (f32), sums[t] (i32) for t < nTok. */
export function quantize(x: usize, nTok: i32, dim: i32, q: usize, scales: usize, sums: usize): void {
  for (let t = 0; t < nTok; t++) {
    const xr = x + ((<usize>t * <usize>dim) << 2);
    const s = actScale(xr, dim);
    store<f32>(scales + (<usize>t << 2), s);
    store<i32>(sums + (<usize>t << 2), quantRow(xr, dim, s, q + <usize>t * <usize>dim));
  }
}

/** Quantizes rows of x like quantize() but stores int16 values, each row padded with zeros to
 *  `stride` elements (the int8 matrix kernel reads 16 at a time). scales[t] = s. */
export function quantizeWide(x: usize, nTok: i32, dim: i32, q16: usize, stride: i32, scales: usize): void {
  for (let t = 0; t < nTok; t++) {
    const xr = x + ((<usize>t * <usize>dim) << 2);
    const s = actScale(xr, dim);
    store<f32>(scales + (<usize>t << 2), s);
    const sv = f32x4.splat(s);
    const qr = q16 + ((<usize>t * <usize>stride) << 1);
    let k = 0;
    for (; k + 8 <= dim; k += 8) {
      const p = xr + (<usize>k << 2);
      const v = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q4(p, sv), q4(p + 16, sv)), i32x4.splat(0));
      v128.store(qr + (<usize>k << 1), i16x8.extend_low_i8x16_s(v));
    }
    for (; k < dim; k++) store<i16>(qr + (<usize>k << 1), <i16>qScalar(load<f32>(xr + (<usize>k << 2)), s));
    for (; k < stride; k++) store<i16>(qr + (<usize>k << 1), 0);
  }
}

/** Quantizes one weight row (n f32 at x) with s = f32(127 / max|x|); int8 codes go to q in
 *  16-byte chunks spaced `chunkStride` bytes apart (zero-padded to whole chunks). Returns
 *  d = f32(max|x| / 127), 0 for an all-zero row, -1 for a row with a non-finite value. */
export function quantizeWeightRow(x: usize, n: i32, q: usize, chunkStride: i32, tmp: usize): f32 {
  const m = absMax(x, n);
  if (!(m - m == 0)) return -1; // inf or NaN
  const chunks = (n + 15) >> 4;
  if (m == 0) {
    for (let j = 0; j < chunks; j++) v128.store(q + <usize>j * <usize>chunkStride, i32x4.splat(0));
    return 0;
  }
  const s = <f32>(127.0 / <f64>m);
  // quantize into tmp (contiguous, padded), then scatter the chunks
  v128.store(tmp + ((<usize>chunks - 1) << 4), i32x4.splat(0));
  quantRow(x, n, s, tmp);
  for (let j = 0; j < chunks; j++) v128.store(q + <usize>j * <usize>chunkStride, v128.load(tmp + (<usize>j << 4)));
  return <f32>(<f64>m / 127.0);
}

/** out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w. Sum of squares (f32 products) in f64 over four
 *  lane accumulators (element k goes to lane k % 4 for the first dim & ~3 elements), combined as
 *  (l0 + l2) + (l1 + l3), then the tail in order; mean = f32(sum / dim). */
export function rmsnorm(x: usize, w: usize, nTok: i32, dim: i32, eps: f32, out: usize): void {
  for (let t = 0; t < nTok; t++) {
    const xr = x + ((<usize>t * <usize>dim) << 2);
    const orow = out + ((<usize>t * <usize>dim) << 2);
    let a01 = f64x2.splat(0), a23 = f64x2.splat(0);
    let k = 0;
    for (; k + 4 <= dim; k += 4) {
      const v = v128.load(xr + (<usize>k << 2));
      const sq = f32x4.mul(v, v);
      a01 = f64x2.add(a01, f64x2.promote_low_f32x4(sq));
      a23 = f64x2.add(a23, f64x2.promote_low_f32x4(i32x4.shuffle(sq, sq, 2, 3, 0, 1)));
    }
    const c = f64x2.add(a01, a23);
    let sum = f64x2.extract_lane(c, 0) + f64x2.extract_lane(c, 1);
    for (; k < dim; k++) {
      const v = load<f32>(xr + (<usize>k << 2));
      sum += <f64>(v * v);
    }
    const mean = <f32>(sum / <f64>dim);
    const scale: f32 = <f32>1.0 / sqrt<f32>(mean + eps);
    const sv = f32x4.splat(scale);
    k = 0;
    for (; k + 4 <= dim; k += 4) {
      const o = <usize>k << 2;
      v128.store(orow + o, f32x4.mul(f32x4.mul(v128.load(xr + o), sv), v128.load(w + o)));
    }
    for (; k < dim; k++) {
      const o = <usize>k << 2;
      store<f32>(orow + o, (load<f32>(xr + o) * scale) * load<f32>(w + o));
    }
  }
}

/** Memory-read ceiling probe: sums `bytes` (multiple of 64) at p as i32 lanes. */
export function memsum(p: usize, bytes: usize): i32 {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  const end = p + bytes;
  for (; p < end; p += 64) {
    a = i32x4.add(a, v128.load(p));
    b = i32x4.add(b, v128.load(p, 16));
    c = i32x4.add(c, v128.load(p, 32));
    d = i32x4.add(d, v128.load(p, 48));
  }
  const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}
