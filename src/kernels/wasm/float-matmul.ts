// Dense float matrix (the output head at full precision) x f32 activations: out[t][r] = M[r] . x[t].
//
// Layout: row-major, each row zero-padded to `chunks` chunks of 16 columns; f16 rows (bits, 32 bytes
// a chunk) or f32 rows (64 bytes a chunk). Activations: f32 rows of chunks*16 (zero-padded) at x.
// No integer quantization anywhere: bitnet.cpp computes its F16 head from f32 activations too.
//
// Summation order (the contract reference.ts reproduces bit for bit): per row, four f32x4
// accumulators a0..a3; column k of chunk c goes to a[(k % 16) >> 2], lane k % 4, as
// a = f32(a + f32(w * x)) (a multiply then an add, never a fused multiply-add, so both builds and
// every CPU give the same bits). At the end v = (a0 + a1) + (a2 + a3) lane-wise and the dot is
// (v0 + v2) + (v1 + v3).
//
// f16 -> f32 without a conversion instruction, eight halves at a time in 16-bit lanes: the f32 bits
// of a half h, scaled by 2^-112, are hi:lo with hi = (h >>s 3) & 0x8fff (sign in bit 15, bits 14..12
// cleared, exponent and top mantissa bits below) and lo = h << 13; two interleaving shuffles make
// the 32-bit lanes. The 2^112 that restores the exponent bias (15 -> 127) is folded into the
// activations by the caller (x * 2^112, exact while |x| < 2^16; wasm-backend.ts falls back to the
// reference otherwise), so each product w * x is the exact product rounded once, as in reference.ts.
// Exact for normal and subnormal halves (WebAssembly keeps subnormals); inf/NaN halves are refused at load.

import { CONST_BASE } from './simd';

/** 8 x 0x8fff, written by wasm-backend.ts writeKernelConstants */
@inline function halfMask(): v128 {
  return v128.load(CONST_BASE, 64);
}

/** halves 0..3 of h as f32 * 2^-112 */
@inline function halfLow(hi: v128, lo: v128): v128 {
  return i16x8.shuffle(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11);
}
/** halves 4..7 of h as f32 * 2^-112 */
@inline function halfHigh(hi: v128, lo: v128): v128 {
  return i16x8.shuffle(lo, hi, 4, 12, 5, 13, 6, 14, 7, 15);
}
@inline function upper(h: v128, mask: v128): v128 {
  return v128.and(i16x8.shr_s(h, 3), mask);
}
@inline function lower(h: v128): v128 {
  return i16x8.shl(h, 13);
}

@inline function madd(acc: v128, w: v128, x: v128): v128 {
  return f32x4.add(acc, f32x4.mul(w, x));
}

@inline function finish(a0: v128, a1: v128, a2: v128, a3: v128): f32 {
  const v = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** f16 rows: rows of groups [g0, g1) (4 rows a group), tokens t < nTok; for one token two rows at a
 *  time, from the two halves of the range (two weight streams in flight), each activation vector
 *  loaded once for both. x holds the
 *  activations times 2^112 (see above). */
export function floatMmF16(m: usize, g0: i32, g1: i32, chunks: i32, rows: i32, x: usize, nTok: i32, out: usize): void {
  const rowBytes = <usize>chunks << 5;
  const mask = halfMask();
  const rEnd = min(rows, g1 << 2);
  if (nTok > 1) {
    floatMmF16Batch(m, g0 << 2, rEnd, chunks, rows, x, nTok, out, mask);
    return;
  }
  // one token: rows i and i + half of the range together, two separate weight streams in flight
  const r0 = g0 << 2;
  const half = (rEnd - r0 + 1) >> 1;
  for (let i = 0; i < half; i++) {
    const ra = r0 + i, rb = ra + half;
    const pair = rb < rEnd;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let pa = m + <usize>ra * rowBytes;
    let pb = pair ? m + <usize>rb * rowBytes : pa;
    let px = x;
    for (let j = 0; j < chunks; j++) {
      const x0 = v128.load(px), x1 = v128.load(px, 16), x2 = v128.load(px, 32), x3 = v128.load(px, 48);
      const ha = v128.load(pa), ha2 = v128.load(pa, 16);
      const hb = v128.load(pb), hb2 = v128.load(pb, 16);
      const ua = upper(ha, mask), la = lower(ha), ua2 = upper(ha2, mask), la2 = lower(ha2);
      const ub = upper(hb, mask), lb = lower(hb), ub2 = upper(hb2, mask), lb2 = lower(hb2);
      a0 = madd(a0, halfLow(ua, la), x0);
      a1 = madd(a1, halfHigh(ua, la), x1);
      a2 = madd(a2, halfLow(ua2, la2), x2);
      a3 = madd(a3, halfHigh(ua2, la2), x3);
      b0 = madd(b0, halfLow(ub, lb), x0);
      b1 = madd(b1, halfHigh(ub, lb), x1);
      b2 = madd(b2, halfLow(ub2, lb2), x2);
      b3 = madd(b3, halfHigh(ub2, lb2), x3);
      pa += 32;
      pb += 32;
      px += 64;
    }
    store<f32>(out + (<usize>ra << 2), finish(a0, a1, a2, a3));
    if (pair) store<f32>(out + (<usize>rb << 2), finish(b0, b1, b2, b3));
  }
}

/** A batch: each row's halves are widened once for two tokens (the widening costs more than the
 *  multiply-adds), one row at a time. */
function floatMmF16Batch(m: usize, r0: i32, r1: i32, chunks: i32, rows: i32, x: usize, nTok: i32, out: usize, mask: v128): void {
  const rowBytes = <usize>chunks << 5;
  const xBytes = <usize>chunks << 6;
  for (let r = r0; r < r1; r++) {
    const row = m + <usize>r * rowBytes;
    for (let t = 0; t < nTok; t += 2) {
      const pair = t + 1 < nTok;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let p = row;
      let pa = x + <usize>t * xBytes;
      let pb = pair ? pa + xBytes : pa;
      for (let j = 0; j < chunks; j++) {
        const h = v128.load(p), h2 = v128.load(p, 16);
        const u = upper(h, mask), l = lower(h), u2 = upper(h2, mask), l2 = lower(h2);
        const w0 = halfLow(u, l), w1 = halfHigh(u, l), w2 = halfLow(u2, l2), w3 = halfHigh(u2, l2);
        a0 = madd(a0, w0, v128.load(pa));
        a1 = madd(a1, w1, v128.load(pa, 16));
        a2 = madd(a2, w2, v128.load(pa, 32));
        a3 = madd(a3, w3, v128.load(pa, 48));
        b0 = madd(b0, w0, v128.load(pb));
        b1 = madd(b1, w1, v128.load(pb, 16));
        b2 = madd(b2, w2, v128.load(pb, 32));
        b3 = madd(b3, w3, v128.load(pb, 48));
        p += 32;
        pa += 64;
        pb += 64;
      }
      const o = out + ((<usize>t * <usize>rows + <usize>r) << 2);
      store<f32>(o, finish(a0, a1, a2, a3));
      if (pair) store<f32>(o + (<usize>rows << 2), finish(b0, b1, b2, b3));
    }
  }
}

/** f32 rows: rows i and i + half of the range together (two weight streams), each pair for every token. */
export function floatMmF32(m: usize, g0: i32, g1: i32, chunks: i32, rows: i32, x: usize, nTok: i32, out: usize): void {
  const rowBytes = <usize>chunks << 6;
  const rEnd = min(rows, g1 << 2);
  const r0 = g0 << 2;
  const half = (rEnd - r0 + 1) >> 1;
  for (let i = 0; i < half; i++) {
    const r = r0 + i, s = r + half;
    const pair = s < rEnd;
    const ra = m + <usize>r * rowBytes;
    const rb = pair ? m + <usize>s * rowBytes : ra;
    for (let t = 0; t < nTok; t++) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let pa = ra, pb = rb;
      let px = x + <usize>t * rowBytes;
      for (let j = 0; j < chunks; j++) {
        const x0 = v128.load(px), x1 = v128.load(px, 16), x2 = v128.load(px, 32), x3 = v128.load(px, 48);
        a0 = madd(a0, v128.load(pa), x0);
        a1 = madd(a1, v128.load(pa, 16), x1);
        a2 = madd(a2, v128.load(pa, 32), x2);
        a3 = madd(a3, v128.load(pa, 48), x3);
        b0 = madd(b0, v128.load(pb), x0);
        b1 = madd(b1, v128.load(pb, 16), x1);
        b2 = madd(b2, v128.load(pb, 32), x2);
        b3 = madd(b3, v128.load(pb, 48), x3);
        pa += 64;
        pb += 64;
        px += 64;
      }
      const o = out + ((<usize>t * <usize>rows) << 2);
      store<f32>(o + (<usize>r << 2), finish(a0, a1, a2, a3));
      if (pair) store<f32>(o + (<usize>s << 2), finish(b0, b1, b2, b3));
    }
  }
}
