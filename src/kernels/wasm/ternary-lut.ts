// Ternary x int8 matmul by table lookup (TL1-style), layout "L16" (used by the plain SIMD path).
//
// Layout: rows in groups of 16 (one byte lane per row), columns in pairs. A pair (T0, T1) of one row
// is the index e = 3*(T0+1) + (T1+1) in 0..8 (padding: 4 = both zero). A step is 16 bytes covering
// 4 columns: byte r = row r of the group, low nibble = pair 2m, high nibble = pair 2m+1. Steps are
// padded to an even count (blocks of 8 columns). Group g starts at w + g * steps * 16.
//
// Tables (per token, built by lutTables from the int8 activations): each q is split exactly as
// q = 16*h + l with l = q & 15 in [0, 15] and h = q >> 4 in [-8, 7]. For pair p, 32 bytes at
// tables + p * 32: lo[e] = T0*l0 + T1*l1 (|.| <= 30) then hi[e] = T0*h0 + T1*h1 (|.| <= 16),
// entries 9..15 zero. One swizzle looks up 16 rows at once. Lo/hi sums accumulate in int8 over one
// block (4 pairs: <= 120 and <= 64), then dot = sum(lo) + 16 * sum(hi) is formed in int16
// (<= 1144 per block; 16 blocks per int16 run) and folded into int32.

import { firstInvalidCode, lookup, mask15 } from './simd';

const RUN: i32 = 16; // blocks per int16 run

/** Builds the lookup tables of nTok tokens (int8 rows at q, qStride apart) for `pairs` column pairs. */
export function lutTables(q: usize, qStride: i32, nTok: i32, cols: i32, pairs: i32, tables: usize): void {
  const p0 = i8x16(0, 0, 0, 0, 0, 0, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0); // T0 = +1 at e = 6, 7, 8
  const n0 = i8x16(-1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); // T0 = -1 at e = 0, 1, 2
  const p1 = i8x16(0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0); // T1 = +1 at e = 2, 5, 8
  const n1 = i8x16(-1, 0, 0, -1, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0); // T1 = -1 at e = 0, 3, 6
  for (let t = 0; t < nTok; t++) {
    const qr = q + <usize>t * <usize>qStride;
    let tb = tables + ((<usize>t * <usize>pairs) << 5);
    for (let p = 0; p < pairs; p++) {
      const c = p << 1;
      const q0: i32 = c < cols ? <i32>load<i8>(qr + c) : 0;
      const q1: i32 = c + 1 < cols ? <i32>load<i8>(qr + c + 1) : 0;
      const l0 = i8x16.splat(<i8>(q0 & 15)), l1 = i8x16.splat(<i8>(q1 & 15));
      const h0 = i8x16.splat(<i8>(q0 >> 4)), h1 = i8x16.splat(<i8>(q1 >> 4));
      const lo = i8x16.add(i8x16.sub(v128.and(l0, p0), v128.and(l0, n0)), i8x16.sub(v128.and(l1, p1), v128.and(l1, n1)));
      const hi = i8x16.add(i8x16.sub(v128.and(h0, p0), v128.and(h0, n0)), i8x16.sub(v128.and(h1, p1), v128.and(h1, n1)));
      v128.store(tb, lo);
      v128.store(tb, hi, 16);
      tb += 32;
    }
  }
}

/** int16 rows 0-7 (low) or 8-15 (high) of lo + 16 * hi. */
@inline function combineLow(L: v128, H: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.shuffle(L, H, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), i16x8.splat(0x1001));
  } else {
    return i16x8.add(i16x8.extend_low_i8x16_s(L), i16x8.shl(i16x8.extend_low_i8x16_s(H), 4));
  }
}
@inline function combineHigh(L: v128, H: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.shuffle(L, H, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), i16x8.splat(0x1001));
  } else {
    return i16x8.add(i16x8.extend_high_i8x16_s(L), i16x8.shl(i16x8.extend_high_i8x16_s(H), 4));
  }
}

@inline function storeRows(o: usize, acc: v128, sv: v128, av: v128, n: i32): void {
  const f = f32x4.mul(f32x4.div(f32x4.convert_i32x4_s(acc), sv), av);
  if (n >= 4) { v128.store(o, f); return; }
  if (n > 0) store<f32>(o, f32x4.extract_lane(f, 0));
  if (n > 1) store<f32>(o, f32x4.extract_lane(f, 1), 4);
  if (n > 2) store<f32>(o, f32x4.extract_lane(f, 2), 8);
}

/** The 16 rows of a group (nValid real) from their four i32 accumulators. */
@inline function storeGroup(o: usize, a0: v128, a1: v128, a2: v128, a3: v128, sv: v128, av: v128, nValid: i32): void {
  storeRows(o, a0, sv, av, nValid);
  storeRows(o + 16, a1, sv, av, nValid - 4);
  storeRows(o + 32, a2, sv, av, nValid - 8);
  storeRows(o + 48, a3, sv, av, nValid - 12);
}

/** Sum over 8 columns (one block: two 16-byte steps) of 16 rows for the tables at tb: the int8 lo
 *  and hi halves (see the layout comment). */
@inline function blockLo(p: usize, tb: usize, m: v128): v128 {
  let v = v128.load(p);
  let L = i8x16.add(lookup(v128.load(tb), v128.and(v, m)), lookup(v128.load(tb, 32), v128.and(i16x8.shr_u(v, 4), m)));
  v = v128.load(p, 16);
  return i8x16.add(L, i8x16.add(lookup(v128.load(tb, 64), v128.and(v, m)), lookup(v128.load(tb, 96), v128.and(i16x8.shr_u(v, 4), m))));
}
@inline function blockHi(p: usize, tb: usize, m: v128): v128 {
  let v = v128.load(p);
  let H = i8x16.add(lookup(v128.load(tb, 16), v128.and(v, m)), lookup(v128.load(tb, 48), v128.and(i16x8.shr_u(v, 4), m)));
  v = v128.load(p, 16);
  return i8x16.add(H, i8x16.add(lookup(v128.load(tb, 80), v128.and(v, m)), lookup(v128.load(tb, 112), v128.and(i16x8.shr_u(v, 4), m))));
}

/** One token, group at wg (nValid real rows), into o. */
function lutGroup(wg: usize, blocks: i32, tb0: usize, m: v128, sv: v128, av: v128, o: usize, nValid: i32): void {
  let p = wg;
  let tb = tb0;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  for (let b0 = 0; b0 < blocks; b0 += RUN) {
    const bEnd = min(blocks, b0 + RUN);
    let lo16 = i16x8.splat(0), hi16 = i16x8.splat(0);
    for (let b = b0; b < bEnd; b++) {
      const L = blockLo(p, tb, m), H = blockHi(p, tb, m);
      lo16 = i16x8.add(lo16, combineLow(L, H));
      hi16 = i16x8.add(hi16, combineHigh(L, H));
      p += 32;
      tb += 128;
    }
    a0 = i32x4.add(a0, i32x4.extend_low_i16x8_s(lo16));
    a1 = i32x4.add(a1, i32x4.extend_high_i16x8_s(lo16));
    a2 = i32x4.add(a2, i32x4.extend_low_i16x8_s(hi16));
    a3 = i32x4.add(a3, i32x4.extend_high_i16x8_s(hi16));
  }
  storeGroup(o, a0, a1, a2, a3, sv, av, nValid);
}

/** One token, two full groups at once (wa, wb: two separate places in the matrix) sharing the table
 *  loads: two streams of cache-line fills in flight (see gemvGroups3 in ternary-r4.ts). */
function lutGroups2(wa: usize, wb: usize, blocks: i32, tb0: usize, m: v128, sv: v128, av: v128, oa: usize, ob: usize): void {
  let p = wa, q = wb;
  let tb = tb0;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let b0s = i32x4.splat(0), b1s = i32x4.splat(0), b2s = i32x4.splat(0), b3s = i32x4.splat(0);
  for (let b0 = 0; b0 < blocks; b0 += RUN) {
    const bEnd = min(blocks, b0 + RUN);
    let lo16 = i16x8.splat(0), hi16 = i16x8.splat(0), lo16b = i16x8.splat(0), hi16b = i16x8.splat(0);
    for (let b = b0; b < bEnd; b++) {
      const L = blockLo(p, tb, m), H = blockHi(p, tb, m);
      lo16 = i16x8.add(lo16, combineLow(L, H));
      hi16 = i16x8.add(hi16, combineHigh(L, H));
      const Lb = blockLo(q, tb, m), Hb = blockHi(q, tb, m);
      lo16b = i16x8.add(lo16b, combineLow(Lb, Hb));
      hi16b = i16x8.add(hi16b, combineHigh(Lb, Hb));
      p += 32;
      q += 32;
      tb += 128;
    }
    a0 = i32x4.add(a0, i32x4.extend_low_i16x8_s(lo16));
    a1 = i32x4.add(a1, i32x4.extend_high_i16x8_s(lo16));
    a2 = i32x4.add(a2, i32x4.extend_low_i16x8_s(hi16));
    a3 = i32x4.add(a3, i32x4.extend_high_i16x8_s(hi16));
    b0s = i32x4.add(b0s, i32x4.extend_low_i16x8_s(lo16b));
    b1s = i32x4.add(b1s, i32x4.extend_high_i16x8_s(lo16b));
    b2s = i32x4.add(b2s, i32x4.extend_low_i16x8_s(hi16b));
    b3s = i32x4.add(b3s, i32x4.extend_high_i16x8_s(hi16b));
  }
  storeGroup(oa, a0, a1, a2, a3, sv, av, 16);
  storeGroup(ob, b0s, b1s, b2s, b3s, sv, av, 16);
}

/** out[t * rows + r] for the rows of groups [g0, g1), tokens t < nTok (tables tableStride bytes apart). */
export function ternLut(w: usize, g0: i32, g1: i32, steps: i32, rows: i32, tables: usize, tableStride: i32,
                        scales: usize, nTok: i32, alpha: f32, out: usize): void {
  const groupBytes = <usize>steps << 4;
  const blocks = steps >> 1;
  const av = f32x4.splat(alpha);
  const m = mask15();
  // tokens in tiles of 8 keep the tiles' tables cache-resident while the weights stream
  for (let tt = 0; tt < nTok; tt += 8) {
    const tEnd = min(nTok, tt + 8);
    if (nTok == 1) {
      // decode: full groups two streams at a time (halves of the range), the rest one at a time
      const sv = f32x4.splat(load<f32>(scales));
      const full = min(g1, rows >> 4);
      const half = max(0, full - g0) >> 1;
      for (let i = 0; i < half; i++) {
        const ga = g0 + i, gb = ga + half;
        lutGroups2(w + <usize>ga * groupBytes, w + <usize>gb * groupBytes, blocks, tables, m, sv, av,
                   out + (<usize>ga << 6), out + (<usize>gb << 6));
      }
      for (let g = g0 + 2 * half; g < g1; g++) {
        lutGroup(w + <usize>g * groupBytes, blocks, tables, m, sv, av, out + (<usize>g << 6), rows - (g << 4));
      }
      return;
    }
    for (let g = g0; g < g1; g++) {
      const wg = w + <usize>g * groupBytes;
      const nValid = rows - (g << 4);
      for (let t = tt; t < tEnd; t++) {
        const sv = f32x4.splat(load<f32>(scales + (<usize>t << 2)));
        lutGroup(wg, blocks, tables + <usize>t * <usize>tableStride, m, sv, av,
                 out + ((<usize>t * <usize>rows + (<usize>g << 4)) << 2), nValid);
      }
    }
  }
}

/** Packs codes (int8 T in {-1,0,1}, row-major rows x cols at src) into layout L16 at dst.
 *  Returns -1 when all codes are valid, else the index of the first invalid code. */
export function packLut(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  const bad = firstInvalidCode(src, <usize>rows * <usize>cols);
  if (bad >= 0) return bad;
  const one = i8x16.splat(1);
  const steps = ((cols + 7) >> 3) << 1;
  const groups = (rows + 15) >> 4;
  const full = cols >> 4; // 16-column blocks packed with SIMD (4 steps each)
  const lowByte = i16x8.splat(0xff), lowHalf = i32x4.splat(0xffff), three = i16x8.splat(3);
  for (let g = 0; g < groups; g++) {
    const wg = dst + ((<usize>g * <usize>steps) << 4);
    for (let r = 0; r < 16; r++) {
      const row = (g << 4) + r;
      const rp = src + <usize>row * <usize>cols;
      let s = 0;
      if (row < rows) {
        for (let j = 0; j < full; j++) {
          const u = i8x16.add(v128.load(rp + (<usize>j << 4)), one); // T + 1 in 0..2
          // pair index e = 3 * u_even + u_odd in the 8 int16 lanes, then two pairs per byte
          const e = i16x8.add(i16x8.mul(v128.and(u, lowByte), three), i16x8.shr_u(u, 8));
          const b = v128.or(v128.and(e, lowHalf), i32x4.shr_u(e, 12));
          const o = wg + (<usize>(j << 2) << 4) + r;
          store<u8>(o, <u8>i32x4.extract_lane(b, 0));
          store<u8>(o, <u8>i32x4.extract_lane(b, 1), 16);
          store<u8>(o, <u8>i32x4.extract_lane(b, 2), 32);
          store<u8>(o, <u8>i32x4.extract_lane(b, 3), 48);
        }
        s = full << 2;
      }
      for (; s < steps; s++) {
        let byte = 0x44; // padding: both pairs zero
        if (row < rows) {
          byte = 0;
          for (let h = 0; h < 2; h++) {
            const c = (s << 2) + (h << 1);
            const t0: i32 = c < cols ? <i32>load<i8>(rp + c) : 0;
            const t1: i32 = c + 1 < cols ? <i32>load<i8>(rp + c + 1) : 0;
            byte |= (3 * (t0 + 1) + (t1 + 1)) << (h << 2);
          }
        }
        store<u8>(wg + (<usize>s << 4) + r, <u8>byte);
      }
    }
  }
  return -1;
}
