// Ternary x int8 matmul, layout "R4" (read by the unpack + dot kernel).
//
// Layout: rows in groups of 4 (last group zero-padded), columns in chunks of 64 (zero-padded).
// Group g, chunk j occupies 64 bytes at w + (g * chunks + j) * 64: 16 bytes per row i = 0..3.
// Byte b of row i's 16 bytes holds the 2-bit codes c = T + 1 of columns j*64 + s*16 + b at
// bits 2s..2s+1 (s = 0..3). Padding codes are 0, which adds nothing to sum(c * q); the kernel
// subtracts sum(q) (acts.sums, real columns only) to get sum(T * q).
// One group is one sequential stream: the 4 rows share every activation load.
//
// i16 accumulation: one chunk adds at most 4 * 2 * 2 * 128 = 2048 per lane, so 16 chunks
// (1024 columns) fit i16 before folding into i32.

import { dotCodes, hsum16 } from './simd';

const BLOCK: i32 = 16; // chunks per i16 accumulation block


@inline function finish(sumCQ: i32, sumQ: i32, s: f32, alpha: f32): f32 {
  return (<f32>(sumCQ - sumQ) / s) * alpha;
}

/** One token, one group of 4 rows. */
function gemvGroup(wg: usize, chunks: i32, a: usize, s: f32, sumQ: i32, alpha: f32, out: usize, nValid: i32): void {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let p = wg;
  let ap = a;
  for (let j0 = 0; j0 < chunks; j0 += BLOCK) {
    const jEnd = min(chunks, j0 + BLOCK);
    let c0 = i16x8.splat(0), c1 = i16x8.splat(0), c2 = i16x8.splat(0), c3 = i16x8.splat(0);
    for (let j = j0; j < jEnd; j++) {
      const a0 = v128.load(ap), a1 = v128.load(ap, 16), a2 = v128.load(ap, 32), a3 = v128.load(ap, 48);
      const m = i8x16.splat(3);
      let v = v128.load(p);
      c0 = i16x8.add(c0, i16x8.add(
        i16x8.add(dotCodes(a0, v128.and(v, m)), dotCodes(a1, v128.and(i16x8.shr_u(v, 2), m))),
        i16x8.add(dotCodes(a2, v128.and(i16x8.shr_u(v, 4), m)), dotCodes(a3, v128.and(i16x8.shr_u(v, 6), m)))));
      v = v128.load(p, 16);
      c1 = i16x8.add(c1, i16x8.add(
        i16x8.add(dotCodes(a0, v128.and(v, m)), dotCodes(a1, v128.and(i16x8.shr_u(v, 2), m))),
        i16x8.add(dotCodes(a2, v128.and(i16x8.shr_u(v, 4), m)), dotCodes(a3, v128.and(i16x8.shr_u(v, 6), m)))));
      v = v128.load(p, 32);
      c2 = i16x8.add(c2, i16x8.add(
        i16x8.add(dotCodes(a0, v128.and(v, m)), dotCodes(a1, v128.and(i16x8.shr_u(v, 2), m))),
        i16x8.add(dotCodes(a2, v128.and(i16x8.shr_u(v, 4), m)), dotCodes(a3, v128.and(i16x8.shr_u(v, 6), m)))));
      v = v128.load(p, 48);
      c3 = i16x8.add(c3, i16x8.add(
        i16x8.add(dotCodes(a0, v128.and(v, m)), dotCodes(a1, v128.and(i16x8.shr_u(v, 2), m))),
        i16x8.add(dotCodes(a2, v128.and(i16x8.shr_u(v, 4), m)), dotCodes(a3, v128.and(i16x8.shr_u(v, 6), m)))));
      p += 64;
      ap += 64;
    }
    s0 += hsum16(c0);
    s1 += hsum16(c1);
    s2 += hsum16(c2);
    s3 += hsum16(c3);
  }
  store<f32>(out, finish(s0, sumQ, s, alpha));
  if (nValid > 1) store<f32>(out, finish(s1, sumQ, s, alpha), 4);
  if (nValid > 2) store<f32>(out, finish(s2, sumQ, s, alpha), 8);
  if (nValid > 3) store<f32>(out, finish(s3, sumQ, s, alpha), 12);
}

/** Four tokens (activations at a, a + qStride, ...), one row (16-byte slices every 64 bytes at wr). */

/** out[t * rows + r] for rows of groups [g0, g1), tokens t < nTok. */
export function ternR4(w: usize, g0: i32, g1: i32, chunks: i32, rows: i32,
                       q: usize, qStride: i32, scales: usize, sums: usize, nTok: i32,
                       alpha: f32, out: usize): void {
  const groupBytes = <usize>chunks << 6;
  const outStride = <usize>rows << 2;
  const qs = <usize>qStride;
  let t0 = 0;
  // token tiles of 4: each 16-byte weight slice is unpacked once and serves 4 tokens
  for (; t0 + 4 <= nTok; t0 += 4) {
    const a = q + <usize>t0 * qs;
    const sc = scales + (<usize>t0 << 2);
    const su = sums + (<usize>t0 << 2);
    for (let g = g0; g < g1; g++) {
      const wg = w + <usize>g * groupBytes;
      for (let i = 0; i < 4; i++) {
        const r = (g << 2) + i;
        if (r >= rows) break;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let p = wg + (<usize>i << 4);
        let ap = a;
        for (let j0 = 0; j0 < chunks; j0 += BLOCK) {
          const jEnd = min(chunks, j0 + BLOCK);
          let c0 = i16x8.splat(0), c1 = i16x8.splat(0), c2 = i16x8.splat(0), c3 = i16x8.splat(0);
          for (let j = j0; j < jEnd; j++) {
            const m = i8x16.splat(3);
            const v = v128.load(p);
            const k0 = v128.and(v, m), k1 = v128.and(i16x8.shr_u(v, 2), m);
            const k2 = v128.and(i16x8.shr_u(v, 4), m), k3 = v128.and(i16x8.shr_u(v, 6), m);
            let ar = ap;
            c0 = i16x8.add(c0, i16x8.add(i16x8.add(dotCodes(v128.load(ar), k0), dotCodes(v128.load(ar, 16), k1)),
                                         i16x8.add(dotCodes(v128.load(ar, 32), k2), dotCodes(v128.load(ar, 48), k3))));
            ar += qs;
            c1 = i16x8.add(c1, i16x8.add(i16x8.add(dotCodes(v128.load(ar), k0), dotCodes(v128.load(ar, 16), k1)),
                                         i16x8.add(dotCodes(v128.load(ar, 32), k2), dotCodes(v128.load(ar, 48), k3))));
            ar += qs;
            c2 = i16x8.add(c2, i16x8.add(i16x8.add(dotCodes(v128.load(ar), k0), dotCodes(v128.load(ar, 16), k1)),
                                         i16x8.add(dotCodes(v128.load(ar, 32), k2), dotCodes(v128.load(ar, 48), k3))));
            ar += qs;
            c3 = i16x8.add(c3, i16x8.add(i16x8.add(dotCodes(v128.load(ar), k0), dotCodes(v128.load(ar, 16), k1)),
                                         i16x8.add(dotCodes(v128.load(ar, 32), k2), dotCodes(v128.load(ar, 48), k3))));
            p += 64;
            ap += 64;
          }
          s0 += hsum16(c0);
          s1 += hsum16(c1);
          s2 += hsum16(c2);
          s3 += hsum16(c3);
        }
        const o = out + <usize>t0 * outStride + (<usize>r << 2);
        store<f32>(o, finish(s0, load<i32>(su), load<f32>(sc), alpha));
        store<f32>(o + outStride, finish(s1, load<i32>(su, 4), load<f32>(sc, 4), alpha));
        store<f32>(o + 2 * outStride, finish(s2, load<i32>(su, 8), load<f32>(sc, 8), alpha));
        store<f32>(o + 3 * outStride, finish(s3, load<i32>(su, 12), load<f32>(sc, 12), alpha));
      }
    }
  }
  for (let t = t0; t < nTok; t++) {
    const a = q + <usize>t * qs;
    const s = load<f32>(scales + (<usize>t << 2));
    const sumQ = load<i32>(sums + (<usize>t << 2));
    const ot = out + <usize>t * outStride;
    for (let g = g0; g < g1; g++) {
      gemvGroup(w + <usize>g * groupBytes, chunks, a, s, sumQ, alpha, ot + (<usize>g << 4), min(4, rows - (g << 2)));
    }
  }
}

/** Packs codes (int8 T in {-1,0,1}, row-major rows x cols at src) into layout R4 at dst.
 *  Returns -1 when all codes are valid, else the index of the first invalid code. */
export function packR4(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  // validate: T + 1 must be 0, 1 or 2
  const n = <usize>rows * <usize>cols;
  const one = i8x16.splat(1), two = i8x16.splat(2);
  let k: usize = 0;
  for (; k + 16 <= n; k += 16) {
    if (v128.any_true(i8x16.gt_u(i8x16.add(v128.load(src + k), one), two))) break;
  }
  for (; k < n; k++) {
    const c = load<i8>(src + k);
    if (c < -1 || c > 1) return <i32>k;
  }
  const chunks = (cols + 63) >> 6;
  const full = cols >> 6;
  const groups = (rows + 3) >> 2;
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < 4; i++) {
      const r = (g << 2) + i;
      let o = dst + ((<usize>g * <usize>chunks) << 6) + (<usize>i << 4);
      if (r >= rows) {
        for (let j = 0; j < chunks; j++) { v128.store(o, i32x4.splat(0)); o += 64; }
        continue;
      }
      const row = src + <usize>r * <usize>cols;
      for (let j = 0; j < full; j++) {
        const p = row + (<usize>j << 6);
        const c0 = i8x16.add(v128.load(p), one), c1 = i8x16.add(v128.load(p, 16), one);
        const c2 = i8x16.add(v128.load(p, 32), one), c3 = i8x16.add(v128.load(p, 48), one);
        v128.store(o, v128.or(v128.or(c0, i16x8.shl(c1, 2)), v128.or(i16x8.shl(c2, 4), i16x8.shl(c3, 6))));
        o += 64;
      }
      if (full < chunks) {
        for (let b = 0; b < 16; b++) {
          let byte = 0;
          for (let s = 0; s < 4; s++) {
            const col = (full << 6) + (s << 4) + b;
            if (col < cols) byte |= (<i32>load<i8>(row + col) + 1) << (s << 1);
          }
          store<u8>(o + b, <u8>byte);
        }
      }
    }
  }
  return -1;
}
