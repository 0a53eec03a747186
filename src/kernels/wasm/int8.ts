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

@inline function finishRow(c: v128, s: f32, d: usize): f32 {
  return (<f32>hsum32(c) / s) * load<f32>(d);
}

/** One token, one group of 4 rows, 8 columns a step: each row's 8 weights loaded sign-extended to
 *  int16 (vpmovsxbw from memory), one activation vector (8 int16) shared by the 4 rows. 4
 *  accumulators, 4 weight vectors, 1 activation: 9 live vectors. V8 places a step's loads ahead of
 *  its arithmetic, so every load of a step is live at once; the loop this replaces (three groups'
 *  4 rows at a time, 16 columns a step, widened in registers) kept 14 loads and 12 accumulators
 *  live and spilled 6 accumulators and 6 loads every step (read back with --print-wasm-code).
 *  From DRAM (32768 x 2560, 2 threads, 3 alternating runs): 2.01-2.23 -> 1.83-2.13 ms. */
@inline function int8Group1(p: usize, chunks: i32, q16: usize, s: f32, d: usize, o: usize): void {
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
  let ap = q16;
  let inc: usize = 8;
  const steps = chunks << 1;
  for (let k = 0; k < steps; k++) {
    const x = v128.load(ap);
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(v128.load8x8_s(p), x));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(v128.load8x8_s(p, 16), x));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(v128.load8x8_s(p, 32), x));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(v128.load8x8_s(p, 48), x));
    p += inc;
    inc = 64 - inc;
    ap += 16;
  }
  store<f32>(o, finishRow(c0, s, d)); store<f32>(o, finishRow(c1, s, d + 4), 4);
  store<f32>(o, finishRow(c2, s, d + 8), 8); store<f32>(o, finishRow(c3, s, d + 12), 12);
}

/** Interleaves the int16 activations of full tiles of 4 tokens for int8Tiles4: tile i, chunk j,
 *  half h (columns j*16 + h*8 .. +7), token t at dst + (((i * chunks + j) * 2 + h) * 4 + t) * 16, so
 *  one 8-column step of the tile reads 64 contiguous bytes. */
export function interleaveWide(q16: usize, nTok: i32, chunks: i32, dst: usize): void {
  const actBytes = <usize>chunks << 5;
  let o = dst;
  for (let t = 0; t + 4 <= nTok; t += 4) {
    const a = q16 + <usize>t * actBytes;
    for (let j = 0; j < chunks; j++) {
      const c = a + (<usize>j << 5);
      v128.store(o, v128.load(c));
      v128.store(o, v128.load(c + actBytes), 16);
      v128.store(o, v128.load(c + 2 * actBytes), 32);
      v128.store(o, v128.load(c + 3 * actBytes), 48);
      v128.store(o, v128.load(c, 16), 64);
      v128.store(o, v128.load(c + actBytes, 16), 80);
      v128.store(o, v128.load(c + 2 * actBytes, 16), 96);
      v128.store(o, v128.load(c + 3 * actBytes, 16), 112);
      o += 128;
    }
  }
}

/** Two rows (16 bytes apart in each 64-byte chunk, at p) of one group against a tile of 4 tokens, 8
 *  columns a step: each row's 8 weights are loaded sign-extended to int16 (one vpmovsxbw from
 *  memory) and each activation load serves both rows. 8 accumulators, 2 weight and 4 activation
 *  vectors: 14 live vectors, within the 15 V8 allocates (V8 places a step's loads ahead of its
 *  arithmetic, so every load of a step is live at once). The 16-column step it replaces (two
 *  16-byte weight loads widened in registers, 8 activation loads) needed 20 and spilled 4
 *  accumulators and 2 activations each step (read back with --print-wasm-code).
 *  Same integer sums, so the same bits as the token-at-a-time loop. */
@inline function int8Pair4(p: usize, chunks: i32, at: usize, s0: f32, s1: f32, s2: f32, s3: f32,
                           d: usize, r: i32, rows: i32, o: usize): void {
  const outStride = <usize>rows << 2;
  let ap = at;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
  // weights of the step: columns j*16 .. +7 at p, then j*16+8 .. +15 at p + 8, then the next chunk
  let inc: usize = 8;
  const steps = chunks << 1;
  for (let k = 0; k < steps; k++) {
    const v = v128.load8x8_s(p), w = v128.load8x8_s(p, 16);
    let x = v128.load(ap);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v, x));
    b0 = i32x4.add(b0, i32x4.dot_i16x8_s(w, x));
    x = v128.load(ap, 16);
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v, x));
    b1 = i32x4.add(b1, i32x4.dot_i16x8_s(w, x));
    x = v128.load(ap, 32);
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v, x));
    b2 = i32x4.add(b2, i32x4.dot_i16x8_s(w, x));
    x = v128.load(ap, 48);
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v, x));
    b3 = i32x4.add(b3, i32x4.dot_i16x8_s(w, x));
    p += inc;
    inc = 64 - inc;
    ap += 64;
  }
  const da = load<f32>(d + (<usize>r << 2)), db = load<f32>(d + (<usize>(r + 1) << 2));
  store<f32>(o, (<f32>hsum32(a0) / s0) * da);
  store<f32>(o + outStride, (<f32>hsum32(a1) / s1) * da);
  store<f32>(o + 2 * outStride, (<f32>hsum32(a2) / s2) * da);
  store<f32>(o + 3 * outStride, (<f32>hsum32(a3) / s3) * da);
  store<f32>(o, (<f32>hsum32(b0) / s0) * db, 4);
  store<f32>(o + outStride, (<f32>hsum32(b1) / s1) * db, 4);
  store<f32>(o + 2 * outStride, (<f32>hsum32(b2) / s2) * db, 4);
  store<f32>(o + 3 * outStride, (<f32>hsum32(b3) / s3) * db, 4);
}

/** One group of rows, every full tile of 4 tokens (interleaved by interleaveWide at A): each row's
 *  weights are widened once per step and dotted with the four tokens' activations, so the widening
 *  is shared by 4 tokens (the token-at-a-time loop below widens every weight per token). Rows go in
 *  pairs (int8Pair4); an odd last row alone. Integer sums are exact, so the outputs are the same bits
 *  as that loop's. */
function int8Tiles4(wg: usize, r0: i32, nValid: i32, chunks: i32, A: usize, tiles: i32, scales: usize,
                    d: usize, rows: i32, out: usize): void {
  const tileBytes = <usize>chunks << 7;
  const outStride = <usize>rows << 2;
  const steps = chunks << 1;
  for (let tt = 0; tt < tiles; tt++) {
    const at = A + <usize>tt * tileBytes;
    const sc = scales + (<usize>tt << 4);
    const s0 = load<f32>(sc), s1 = load<f32>(sc, 4), s2 = load<f32>(sc, 8), s3 = load<f32>(sc, 12);
    let i = 0;
    for (; i + 2 <= nValid; i += 2) int8Pair4(wg + (<usize>i << 4), chunks, at, s0, s1, s2, s3, d, r0 + i, rows, out + ((<usize>(tt << 2) * <usize>rows + <usize>(r0 + i)) << 2));
    for (; i < nValid; i++) {
      let p = wg + (<usize>i << 4);
      let ap = at;
      let inc: usize = 8;
      let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
      for (let k = 0; k < steps; k++) {
        const v = v128.load8x8_s(p);
        c0 = i32x4.add(c0, i32x4.dot_i16x8_s(v, v128.load(ap)));
        c1 = i32x4.add(c1, i32x4.dot_i16x8_s(v, v128.load(ap, 16)));
        c2 = i32x4.add(c2, i32x4.dot_i16x8_s(v, v128.load(ap, 32)));
        c3 = i32x4.add(c3, i32x4.dot_i16x8_s(v, v128.load(ap, 48)));
        p += inc;
        inc = 64 - inc;
        ap += 64;
      }
      const r = r0 + i;
      const dr = load<f32>(d + (<usize>r << 2));
      const o = out + ((<usize>(tt << 2) * <usize>rows + <usize>r) << 2);
      store<f32>(o, (<f32>hsum32(c0) / s0) * dr);
      store<f32>(o + outStride, (<f32>hsum32(c1) / s1) * dr);
      store<f32>(o + 2 * outStride, (<f32>hsum32(c2) / s2) * dr);
      store<f32>(o + 3 * outStride, (<f32>hsum32(c3) / s3) * dr);
    }
  }
}

/** out[t * rows + r] = f32(f32(dot) / s_t) * d_r for rows of groups [g0, g1), tokens t < nTok.
 *  For nTok >= 4, A holds the full tiles of 4 tokens interleaved by interleaveWide. */
export function int8Mm(m: usize, d: usize, g0: i32, g1: i32, chunks: i32, rows: i32, q16: usize,
                       scales: usize, nTok: i32, out: usize, A: usize): void {
  const groupBytes = <usize>chunks << 6;
  const actBytes = <usize>chunks << 5;
  const tiles = nTok >> 2;
  let gStart = g0;
  if (nTok == 1) {
    // decode: full groups one at a time (a single stream: two or three groups at once, each its own
    // stream, were no faster from DRAM, 84 MB matrix, 1 and 2 threads); a partial last group below
    const full = min(g1, rows >> 2);
    const s = load<f32>(scales);
    for (let g = g0; g < full; g++) int8Group1(m + <usize>g * groupBytes, chunks, q16, s, d + (<usize>g << 4), out + (<usize>g << 4));
    gStart = max(g0, full);
  }
  for (let g = gStart; g < g1; g++) {
    const wg = m + <usize>g * groupBytes;
    const r0 = g << 2;
    if (tiles > 0) int8Tiles4(wg, r0, min(4, rows - r0), chunks, A, tiles, scales, d, rows, out);
    for (let t = tiles << 2; t < nTok; t++) {
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
