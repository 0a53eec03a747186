// Int8 matrix (lm_head / embedding) x int8 activations, layout "I4".
//
// Layout: rows in groups of 4 (zero-padded), columns in chunks of 16 (zero-padded). Group g,
// chunk j occupies 64 bytes at m + (g * chunks + j) * 64: 16 bytes per row i = 0..3 (the int8
// codes of columns j*16 .. j*16+15). One f32 scale per row at d + r * 4.
// Activations arrive widened to int16 (quantizeWide, rows chunks*16 long) so each weight vector
// needs only a sign extension and two i32x4.dot_i16x8_s. Weights and activations come from the
// symmetric quantizer and stay in [-127, 127]; int32 sums cannot overflow for any real width.

import { hsum32 } from './simd';

@inline function dotRow(v: v128, lo: v128, hi: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), lo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), hi));
}

/** out[t * rows + r] = f32(f32(dot) / s_t) * d_r for rows of groups [g0, g1), tokens t < nTok. */
export function int8Mm(m: usize, d: usize, g0: i32, g1: i32, chunks: i32, rows: i32, q16: usize,
                       scales: usize, nTok: i32, out: usize): void {
  const groupBytes = <usize>chunks << 6;
  const actBytes = <usize>chunks << 5;
  for (let g = g0; g < g1; g++) {
    const wg = m + <usize>g * groupBytes;
    const r0 = g << 2;
    for (let t = 0; t < nTok; t++) {
      let p = wg;
      let ap = q16 + <usize>t * actBytes;
      let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
      for (let j = 0; j < chunks; j++) {
        const lo = v128.load(ap), hi = v128.load(ap, 16);
        c0 = i32x4.add(c0, dotRow(v128.load(p), lo, hi));
        c1 = i32x4.add(c1, dotRow(v128.load(p, 16), lo, hi));
        c2 = i32x4.add(c2, dotRow(v128.load(p, 32), lo, hi));
        c3 = i32x4.add(c3, dotRow(v128.load(p, 48), lo, hi));
        p += 64;
        ap += 32;
      }
      const s = load<f32>(scales + (<usize>t << 2));
      const o = out + ((<usize>t * <usize>rows + <usize>r0) << 2);
      const dp = d + (<usize>r0 << 2);
      store<f32>(o, (<f32>hsum32(c0) / s) * load<f32>(dp));
      if (r0 + 1 < rows) store<f32>(o, (<f32>hsum32(c1) / s) * load<f32>(dp, 4), 4);
      if (r0 + 2 < rows) store<f32>(o, (<f32>hsum32(c2) / s) * load<f32>(dp, 8), 8);
      if (r0 + 3 < rows) store<f32>(o, (<f32>hsum32(c3) / s) * load<f32>(dp, 12), 12);
    }
  }
}

/** out[k] = f32(M[row][k] * d[row]) for k < cols. */
export function int8Row(m: usize, d: usize, row: i32, chunks: i32, cols: i32, out: usize): void {
  const g = row >> 2;
  let p = m + ((<usize>g * <usize>chunks) << 6) + (<usize>(row & 3) << 4);
  const dv = load<f32>(d + (<usize>row << 2));
  const sv = f32x4.splat(dv);
  let k = 0;
  for (; k + 16 <= cols; k += 16) {
    const v = v128.load(p);
    const lo = i16x8.extend_low_i8x16_s(v), hi = i16x8.extend_high_i8x16_s(v);
    const o = out + (<usize>k << 2);
    v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), sv));
    v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), sv), 16);
    v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), sv), 32);
    v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), sv), 48);
    p += 64;
  }
  for (let b = 0; k < cols; k++, b++) store<f32>(out + (<usize>k << 2), <f32>load<i8>(p + b) * dv);
}
