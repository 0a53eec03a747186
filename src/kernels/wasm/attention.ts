// Causal grouped-query attention over an f32 or f16 KV cache (attnRows / attnRowsF16: one generic
// body, K and V widened to f32 as they are loaded), one (kv head, token, split) triple per work unit.
// For query row t (position pos0 + t) and head h, with kv head g = h / group:
//   s_p = (q[t,h] . K[g,p]) * scale, p = 0 .. pos0 + t;  a = softmax(s);  out[t,h] = sum_p a_p V[g,p]
// Layouts (f32, row-major): q and out (nTok, qStride) with head h at h*headDim; K and V caches
// head-major (nKV, cacheCtx, headDim), so one unit streams one contiguous block (a position-major
// cache made each unit read a strided fifth of every row, at about a quarter of the memory bandwidth).
// Splits: with few units (decode), each (token, kv head) is cut into `splits` position ranges so every
// thread gets work; a split leaves its unnormalized output, max and sum in `part` and attnMerge
// combines them (flash-decoding). `scores` is this thread's scratch (group x (pos0+nTok) + group f32).
// Dots use 4-lane f32 accumulators (lane-order sums), so results differ from the plain reference in
// the last bits only; the model tolerates that (see test/kernels/attention.test.ts for the bound).

import { cBias, cC3, cC4, cC5, cC6, cF16Mask, cF16Scale, cHalf, cLn2, cLog2e, cMagic, cMinus87, cOne, exp4 } from './simd';

/** e^x for x <= 0 (softmax arguments), without the standard library's lookup tables (the module
 *  must have no data segment): x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 Taylor polynomial
 *  (relative error < 2e-7 on that interval), times 2^n built from the exponent bits. */
@inline function expNeg(x: f32): f32 {
  if (x < -87.0) return 0;
  const n = nearest<f32>(x * <f32>1.4426950408889634);
  const r: f32 = x - n * <f32>0.6931471805599453;
  const p: f32 = 1 + r * (1 + r * (0.5 + r * (0.16666667 + r * (0.041666668 + r * (0.008333334 + r * 0.0013888889)))));
  return p * reinterpret<f32>((<i32>n + 127) << 23);
}

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** [sum(a), sum(b), sum(c), sum(d)]: one 4x4 transpose-add of four accumulators. */
@inline function sum4x4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/** Four K/V values at p as f32: an f32 load, or four f16 widened exactly. The f16 bits go to the top
 *  of each 32-bit lane (interleaved with zeros); an arithmetic shift by 3 lines the exponent and
 *  mantissa up with f32's, and the AND clears the three sign copies it left below the sign bit; times
 *  2^112 rebiases the exponent (and turns f16 subnormals into normal f32). f16 inf/NaN are not
 *  expected in a KV cache. z, m, sc: zero, splat(0x8fffffff), splat(2^112), made once by the caller
 *  (V8 rebuilds a splat inside a loop every iteration). */
@inline function kv4<T>(p: usize, z: v128, m: v128, sc: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(p);
  return widen4(v128.load64_zero(p), z, m, sc);
}

/** The four f16 values in the low half of h as f32 (see kv4). */
@inline function widen4(h: v128, z: v128, m: v128, sc: v128): v128 {
  const w = i8x16.shuffle(z, h, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  return f32x4.mul(v128.and(i32x4.shr_s(w, 3), m), sc);
}

/** Scores of two heads (q rows at qa and qa + 512 bytes) against K rows p, p + 1 (at ka) and
 *  H + p, H + p + 1 (at kb), for head dim 128, stored to sa/sb (lanes 0, 1) and sa/sb + s2 (lanes 2, 3).
 *  Two places in the block at once: two streams keep more cache-line fills in flight than one (a
 *  decode step's K rows come from DRAM: 1 thread, 1024 positions, 250 -> 138 cycles per position
 *  and kv head). Every offset is a constant that V8 folds into its load (a runtime row stride costs an
 *  address computation per load). */
@inline function qkPair128<T>(qa: usize, ka: usize, kb: usize, sa: usize, sb: usize, s2: usize, sv: v128, z: v128, m: v128, sc: v128): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let qp = qa, kp = ka, kq = kb;
  const qEnd = qa + 512;
  for (; qp < qEnd; qp += 16) {
    const qva = v128.load(qp), qvb = v128.load(qp, 512);
    let kv = sizeof<T>() == 4 ? v128.load(kp) : widen4(v128.load64_zero(kp), z, m, sc);
    a0 = madd(qva, kv, a0);
    b0 = madd(qvb, kv, b0);
    kv = sizeof<T>() == 4 ? v128.load(kp, 512) : widen4(v128.load64_zero(kp, 256), z, m, sc);
    a1 = madd(qva, kv, a1);
    b1 = madd(qvb, kv, b1);
    kv = sizeof<T>() == 4 ? v128.load(kq) : widen4(v128.load64_zero(kq), z, m, sc);
    a2 = madd(qva, kv, a2);
    b2 = madd(qvb, kv, b2);
    kv = sizeof<T>() == 4 ? v128.load(kq, 512) : widen4(v128.load64_zero(kq, 256), z, m, sc);
    a3 = madd(qva, kv, a3);
    b3 = madd(qvb, kv, b3);
    kp += sizeof<T>() << 2;
    kq += sizeof<T>() << 2;
  }
  const ra = f32x4.mul(sum4x4(a0, a1, a2, a3), sv), rb = f32x4.mul(sum4x4(b0, b1, b2, b3), sv);
  v128.store64_lane(sa, ra, 0);
  v128.store64_lane(sa + s2, ra, 1);
  v128.store64_lane(sb, rb, 0);
  v128.store64_lane(sb + s2, rb, 1);
}

/** One K/V value at p as f32 (see kv4). */
@inline function kv1<T>(p: usize): f32 {
  if (sizeof<T>() == 4) return load<f32>(p);
  const h = <u32>load<u16>(p);
  const f = reinterpret<f32>((h & 0x7fff) << 13) * <f32>5.192296858534828e33;
  return (h & 0x8000) != 0 ? -f : f;
}

/** q (f32) . K row (T) over n values, for head dims that are not a multiple of 4. */
@inline function dotKV<T>(a: usize, b: usize, n: i32): f32 {
  let s: f32 = 0;
  for (let i = 0; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * kv1<T>(b + (<usize>i * sizeof<T>()));
  return s;
}

@inline function dot(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    s0 = madd(v128.load(a + o), v128.load(b + o), s0);
    s1 = madd(v128.load(a + o, 16), v128.load(b + o, 16), s1);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    s0 = madd(v128.load(a + o), v128.load(b + o), s0);
  }
  s0 = f32x4.add(s0, s1);
  let s = (f32x4.extract_lane(s0, 0) + f32x4.extract_lane(s0, 2)) + (f32x4.extract_lane(s0, 1) + f32x4.extract_lane(s0, 3));
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/**
 * Units are (kv head, token, split) triples: the `group` query heads that share a kv head are done
 * together, so each K and V row is read from the cache once per group (the other heads find it in
 * L1). `scores` holds group x (pos0 + nTok) + group f32 for this thread; `part` the split records
 * (splits > 1 only), combined afterwards by attnMerge.
 */
export function attnRows(
  q: usize, k: usize, v: usize, out: usize, u0: i32, u1: i32,
  nHeads: i32, group: i32, headDim: i32, qStride: i32, cacheCtx: i32, pos0: i32, scale: f32, scores: usize,
  splits: i32, part: usize, nTok: i32,
): void {
  attn<f32>(q, k, v, out, u0, u1, nHeads, group, headDim, qStride, cacheCtx, pos0, scale, scores, splits, part, nTok);
}

/** attnRows over an f16 cache (k and v hold f16 bits). */
export function attnRowsF16(
  q: usize, k: usize, v: usize, out: usize, u0: i32, u1: i32,
  nHeads: i32, group: i32, headDim: i32, qStride: i32, cacheCtx: i32, pos0: i32, scale: f32, scores: usize,
  splits: i32, part: usize, nTok: i32,
): void {
  attn<u16>(q, k, v, out, u0, u1, nHeads, group, headDim, qStride, cacheCtx, pos0, scale, scores, splits, part, nTok);
}

const VB: i32 = 32; // V positions per block (32 rows of one kv head: 16 KB of f32, 8 KB of f16)

function attn<T>(
  q: usize, k: usize, v: usize, out: usize, u0: i32, u1: i32,
  nHeads: i32, group: i32, headDim: i32, qStride: i32, cacheCtx: i32, pos0: i32, scale: f32, scores: usize,
  splits: i32, part: usize, nTok: i32,
): void {
  const KS: usize = sizeof<T>() == 4 ? 2 : 1; // log2 of the cache's element size
  const zf = f32x4.splat(0), onef = f32x4.splat(1);
  const z = i32x4.splat(0), m = cF16Mask(), sc = cF16Scale(); // kv4's zero, mask, scale
  const nKV = nHeads / group;
  const rowBytes = <usize>headDim << KS; // one position of one kv head
  const headBytes = <usize>headDim << 2;
  const recBytes = headBytes + 8; // a split's record per head: headDim outputs, then max and sum
  const lo = cMinus87(), log2e = cLog2e(), ln2 = cLn2();
  const c6 = cC6(), c5 = cC5(), c4 = cC4(), c3 = cC3(), c2 = cHalf(), one = cOne();
  const magic = cMagic(), bias = cBias();
  for (let u = u0; u < u1; u++) {
    // units kv head by kv head: the threads work through one kv head's block for many tokens in a
    // row, so a prefill finds it in cache (token by token, all heads' blocks competed for it)
    const gt = u / splits;
    const sp = u - gt * splits;
    const g = gt / nTok;
    const t = gt - g * nTok;
    const total = pos0 + t + 1; // positions token t attends to; this unit takes [pa, pb)
    const pa = (sp * total) / splits, pb = ((sp + 1) * total) / splits;
    const last = pb - pa - 1; // positions below are relative to pa
    const len = <usize>(last + 1);
    const q0 = q + ((<usize>t * <usize>qStride + <usize>(g * group) * <usize>headDim) << 2);
    // outputs of head j at o0 + j * oStride: the rows of out, or this split's records in part
    const o0 = splits == 1
      ? out + ((<usize>t * <usize>qStride + <usize>(g * group) * <usize>headDim) << 2)
      : part + (<usize>((t * nHeads + g * group) * splits + sp)) * recBytes;
    const oStride = splits == 1 ? headBytes : <usize>splits * recBytes;
    const kvOff = ((<usize>g * <usize>cacheCtx + <usize>pa) * <usize>headDim) << KS;
    const inv = scores + ((<usize>group * len) << 2); // group f32: 1 / sum of each head's e^(s - max) (1 for a split)
    // scores[j][p] = q_j . K_p * scale; four positions at a time when headDim % 4 == 0 (four
    // independent accumulators, reduced together by one 4x4 transpose-add)
    const sv = f32x4.splat(scale);
    let p0 = 0;
    if (headDim == 128 && (group & 1) == 0) {
      // positions [0, 2H) as two streams, [0, H) and [H, 2H), two of each at a time; the rest below
      const H = ((last + 1) >> 2) << 1;
      for (let p = 0; p < H; p += 2) {
        const ka = k + kvOff + <usize>p * rowBytes;
        for (let j = 0; j < group; j += 2) {
          const sa = scores + ((<usize>j * len + <usize>p) << 2);
          qkPair128<T>(q0 + <usize>j * headBytes, ka, ka + <usize>H * rowBytes, sa, sa + (len << 2), <usize>H << 2, sv, z, m, sc);
        }
      }
      p0 = 2 * H;
    }
    if ((headDim & 3) == 0) {
      for (; p0 + 4 <= last + 1; p0 += 4) {
        const k0 = k + kvOff + <usize>p0 * rowBytes;
        // heads in pairs: eight independent accumulator chains, each K load feeds two heads
        let j = 0;
        for (; j + 2 <= group; j += 2) {
          const qa = q0 + <usize>j * headBytes, qb = qa + headBytes;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
          for (let i = 0; i < headDim; i += 4) {
            const o = <usize>i << 2, ok = <usize>i << KS;
            const qva = v128.load(qa + o), qvb = v128.load(qb + o);
            let kv = kv4<T>(k0 + ok, z, m, sc);
            a0 = madd(qva, kv, a0);
            b0 = madd(qvb, kv, b0);
            kv = kv4<T>(k0 + rowBytes + ok, z, m, sc);
            a1 = madd(qva, kv, a1);
            b1 = madd(qvb, kv, b1);
            kv = kv4<T>(k0 + 2 * rowBytes + ok, z, m, sc);
            a2 = madd(qva, kv, a2);
            b2 = madd(qvb, kv, b2);
            kv = kv4<T>(k0 + 3 * rowBytes + ok, z, m, sc);
            a3 = madd(qva, kv, a3);
            b3 = madd(qvb, kv, b3);
          }
          v128.store(scores + ((<usize>j * len + <usize>p0) << 2), f32x4.mul(sum4x4(a0, a1, a2, a3), sv));
          v128.store(scores + ((<usize>(j + 1) * len + <usize>p0) << 2), f32x4.mul(sum4x4(b0, b1, b2, b3), sv));
        }
        for (; j < group; j++) {
          const qj = q0 + <usize>j * headBytes;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          for (let i = 0; i < headDim; i += 4) {
            const o = <usize>i << 2, ok = <usize>i << KS;
            const qv = v128.load(qj + o);
            a0 = madd(qv, kv4<T>(k0 + ok, z, m, sc), a0);
            a1 = madd(qv, kv4<T>(k0 + rowBytes + ok, z, m, sc), a1);
            a2 = madd(qv, kv4<T>(k0 + 2 * rowBytes + ok, z, m, sc), a2);
            a3 = madd(qv, kv4<T>(k0 + 3 * rowBytes + ok, z, m, sc), a3);
          }
          v128.store(scores + ((<usize>j * len + <usize>p0) << 2), f32x4.mul(sum4x4(a0, a1, a2, a3), sv));
        }
      }
    }
    for (let p = p0; p <= last; p++) {
      const kp = k + kvOff + <usize>p * rowBytes;
      for (let j = 0; j < group; j++) {
        store<f32>(scores + ((<usize>j * len + <usize>p) << 2), (sizeof<T>() == 4 ? dot(q0 + <usize>j * headBytes, kp, headDim) : dotKV<T>(q0 + <usize>j * headBytes, kp, headDim)) * scale);
      }
    }
    // softmax per head: max and e^(s - max) four positions at a time; the 1/sum scales the V pass's output
    for (let j = 0; j < group; j++) {
      const sj = scores + ((<usize>j * len) << 2);
      let mv = f32x4.splat(-Infinity);
      let p = 0;
      for (; p + 4 <= last + 1; p += 4) mv = f32x4.pmax(mv, v128.load(sj + (<usize>p << 2)));
      let mx: f32 = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      for (; p <= last; p++) mx = max(mx, load<f32>(sj + (<usize>p << 2)));
      const mxv = f32x4.splat(mx);
      let sv4 = f32x4.splat(0);
      p = 0;
      for (; p + 4 <= last + 1; p += 4) {
        const e = exp4(f32x4.sub(v128.load(sj + (<usize>p << 2)), mxv), lo, zf, log2e, ln2, c6, c5, c4, c3, c2, one, magic, bias);
        v128.store(sj + (<usize>p << 2), e);
        sv4 = f32x4.add(sv4, e);
      }
      let sum: f32 = (f32x4.extract_lane(sv4, 0) + f32x4.extract_lane(sv4, 1)) + (f32x4.extract_lane(sv4, 2) + f32x4.extract_lane(sv4, 3));
      for (; p <= last; p++) {
        const e = expNeg(load<f32>(sj + (<usize>p << 2)) - mx);
        store<f32>(sj + (<usize>p << 2), e);
        sum += e;
      }
      if (splits == 1) {
        store<f32>(inv + (<usize>j << 2), 1 / sum);
      } else {
        const rec = o0 + <usize>j * oStride + headBytes;
        store<f32>(rec, mx);
        store<f32>(rec, sum, 4);
        store<f32>(inv + (<usize>j << 2), 1);
      }
    }
    // out_j = sum_p a_jp V_p, 16 dims at a time with the accumulators in registers
    const hd16 = headDim & ~15;
    // heads in pairs again: eight accumulator chains, each V load feeds two heads.
    // Positions [0, 2H) as two streams, [0, H) and [H, 2H), a block of VB from each at a time (two
    // places in the cache keep more line fills in flight than one); an odd last position, 2H, goes
    // to the one-head loop below. Every pair of heads walks a block while its V rows are in L1; the
    // running sums wait in the output between blocks.
    const pairs = hd16 > 0 ? group >> 1 : 0;
    const jp = pairs << 1; // heads below jp are paired here; the rest (an odd one, or no 16-value slab) below
    const n = last + 1, H = n >> 1;
    for (let pb = 0; pairs > 0 && pb < H;) {
      const cnt = min(VB, H - pb);
      const next = pb + cnt;
      const fresh = pb == 0, fin = next >= H && (n & 1) == 0;
      // read the block's V rows line by line in address order first: the slab loops below walk them
      // a line per row, a stride the prefetchers follow badly (a decode step from DRAM: -7%)
      const rb = <usize>cnt * rowBytes, ta = v + kvOff + <usize>pb * rowBytes, tb = ta + <usize>H * rowBytes;
      let touched: i32 = 0;
      for (let q: usize = 0; q < rb; q += 64) touched |= load<i32>(ta + q) | load<i32>(tb + q);
      if (splits < 0) store<i32>(scores, touched); // never runs (splits >= 1); it keeps the loads alive
      for (let j = 0; j < jp; j += 2) {
        const sa = scores + ((<usize>j * len) << 2), sb = sa + (len << 2);
        const opa = o0 + <usize>j * oStride, opb = opa + oStride;
        const fa = fin ? f32x4.splat(load<f32>(inv + (<usize>j << 2))) : onef;
        const fb = fin ? f32x4.splat(load<f32>(inv + (<usize>j << 2), 4)) : onef;
        for (let i = 0; i < hd16; i += 16) {
          const oa = opa + (<usize>i << 2), ob = opb + (<usize>i << 2);
          let x0 = fresh ? zf : v128.load(oa), x1 = fresh ? zf : v128.load(oa, 16), x2 = fresh ? zf : v128.load(oa, 32), x3 = fresh ? zf : v128.load(oa, 48);
          let y0 = fresh ? zf : v128.load(ob), y1 = fresh ? zf : v128.load(ob, 16), y2 = fresh ? zf : v128.load(ob, 32), y3 = fresh ? zf : v128.load(ob, 48);
          let vp = v + kvOff + (<usize>i << KS) + <usize>pb * rowBytes;
          let vq = vp + <usize>H * rowBytes;
          let ws = sa + (<usize>pb << 2), wt = sb + (<usize>pb << 2);
          const wEnd = ws + (<usize>cnt << 2), h4 = <usize>H << 2;
          for (; ws < wEnd; ws += 4, wt += 4) {
            const wa = v128.load32_splat(ws), wb = v128.load32_splat(wt);
            const wc = v128.load32_splat(ws + h4), wd = v128.load32_splat(wt + h4);
            let vv = kv4<T>(vp, z, m, sc);
            x0 = madd(wa, vv, x0);
            y0 = madd(wb, vv, y0);
            vv = kv4<T>(vp + (4 << KS), z, m, sc);
            x1 = madd(wa, vv, x1);
            y1 = madd(wb, vv, y1);
            vv = kv4<T>(vp + (8 << KS), z, m, sc);
            x2 = madd(wa, vv, x2);
            y2 = madd(wb, vv, y2);
            vv = kv4<T>(vp + (12 << KS), z, m, sc);
            x3 = madd(wa, vv, x3);
            y3 = madd(wb, vv, y3);
            vv = kv4<T>(vq, z, m, sc);
            x0 = madd(wc, vv, x0);
            y0 = madd(wd, vv, y0);
            vv = kv4<T>(vq + (4 << KS), z, m, sc);
            x1 = madd(wc, vv, x1);
            y1 = madd(wd, vv, y1);
            vv = kv4<T>(vq + (8 << KS), z, m, sc);
            x2 = madd(wc, vv, x2);
            y2 = madd(wd, vv, y2);
            vv = kv4<T>(vq + (12 << KS), z, m, sc);
            x3 = madd(wc, vv, x3);
            y3 = madd(wd, vv, y3);
            vp += rowBytes;
            vq += rowBytes;
          }
          v128.store(oa, f32x4.mul(x0, fa));
          v128.store(oa, f32x4.mul(x1, fa), 16);
          v128.store(oa, f32x4.mul(x2, fa), 32);
          v128.store(oa, f32x4.mul(x3, fa), 48);
          v128.store(ob, f32x4.mul(y0, fb));
          v128.store(ob, f32x4.mul(y1, fb), 16);
          v128.store(ob, f32x4.mul(y2, fb), 32);
          v128.store(ob, f32x4.mul(y3, fb), 48);
        }
      }
      pb = next;
    }
    for (let j = 0; j < group; j++) {
      const sj = scores + ((<usize>j * len) << 2);
      const op = o0 + <usize>j * oStride;
      const invJ = load<f32>(inv + (<usize>j << 2));
      const iv = f32x4.splat(invJ);
      // heads from jp: every position; paired heads: only an odd last position (2H), if any
      for (let pb = j >= jp ? 0 : 2 * H; pb <= last; pb += VB) {
      const pe = min(last + 1, pb + VB), fresh = pb == 0, fin = pe > last;
      for (let i = 0; i < hd16; i += 16) {
        const o = op + (<usize>i << 2);
        let c0 = fresh ? zf : v128.load(o), c1 = fresh ? zf : v128.load(o, 16), c2 = fresh ? zf : v128.load(o, 32), c3 = fresh ? zf : v128.load(o, 48);
        let vp = v + kvOff + (<usize>i << KS) + <usize>pb * rowBytes;
        for (let p = pb; p < pe; p++) {
          const av = v128.load32_splat(sj + (<usize>p << 2));
          c0 = madd(av, kv4<T>(vp, z, m, sc), c0);
          c1 = madd(av, kv4<T>(vp + (4 << KS), z, m, sc), c1);
          c2 = madd(av, kv4<T>(vp + (8 << KS), z, m, sc), c2);
          c3 = madd(av, kv4<T>(vp + (12 << KS), z, m, sc), c3);
          vp += rowBytes;
        }
        const f = fin ? iv : onef;
        v128.store(o, f32x4.mul(c0, f));
        v128.store(o, f32x4.mul(c1, f), 16);
        v128.store(o, f32x4.mul(c2, f), 32);
        v128.store(o, f32x4.mul(c3, f), 48);
      }
      }
      for (let i = hd16; i < headDim; i++) {
        let acc: f32 = 0;
        for (let p = 0; p <= last; p++) acc += load<f32>(sj + (<usize>p << 2)) * kv1<T>(v + kvOff + <usize>p * rowBytes + (<usize>i << KS));
        store<f32>(op + (<usize>i << 2), acc * invJ);
      }
    }
  }
}

/**
 * Combines the splits of every (token, head): with each split's max m_s, sum l_s and unnormalized
 * output o_s (its record in part), M = max m_s and w_s = e^(m_s - M):
 *   out[t,h] = sum_s w_s o_s / sum_s w_s l_s
 */
export function attnMerge(out: usize, part: usize, nTok: i32, nHeads: i32, headDim: i32, qStride: i32, splits: i32): void {
  const headBytes = <usize>headDim << 2;
  const recBytes = headBytes + 8;
  const hd4 = headDim & ~3;
  for (let t = 0; t < nTok; t++) {
    for (let h = 0; h < nHeads; h++) {
      const base = part + <usize>((t * nHeads + h) * splits) * recBytes;
      const o = out + ((<usize>t * <usize>qStride + <usize>h * <usize>headDim) << 2);
      let mx: f32 = -Infinity;
      for (let s = 0; s < splits; s++) mx = max(mx, load<f32>(base + <usize>s * recBytes + headBytes));
      let l: f32 = 0;
      for (let s = 0; s < splits; s++) {
        const r = base + <usize>s * recBytes;
        const w = expNeg(load<f32>(r + headBytes) - mx);
        l += w * load<f32>(r + headBytes, 4);
        const wv = f32x4.splat(w);
        let i = 0;
        for (; i < hd4; i += 4) {
          const oi = o + (<usize>i << 2), ri = r + (<usize>i << 2);
          const x = f32x4.mul(v128.load(ri), wv);
          v128.store(oi, s == 0 ? x : f32x4.add(v128.load(oi), x));
        }
        for (; i < headDim; i++) {
          const oi = o + (<usize>i << 2), x = load<f32>(r + (<usize>i << 2)) * w;
          store<f32>(oi, s == 0 ? x : load<f32>(oi) + x);
        }
      }
      const iv: f32 = 1 / l, ivv = f32x4.splat(iv);
      let i = 0;
      for (; i < hd4; i += 4) v128.store(o + (<usize>i << 2), f32x4.mul(v128.load(o + (<usize>i << 2)), ivv));
      for (; i < headDim; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) * iv);
    }
  }
}

/** Fields of one row in attnBatch's row table (i32 each): its query row, its output row, its
 *  sequence's K and V caches and their stride between kv heads, its position, its splits, the byte
 *  offset of its split records, and the splits of the rows before it (a running sum). */
export const ROW_FIELDS: i32 = 9;

/**
 * Attention of a ragged batch in one job: row r is one query row at its own position over its own
 * cache (row table at `rows`, ROW_FIELDS i32 per row). Units are (kv head, row, split), kv head
 * major as in attn; `perHead` = the sum of every row's splits. Each unit runs attn's code for that
 * row alone (nTok = 1), so a row's result has the bits of attention() called for it by itself.
 */
export function attnBatch(
  rows: usize, nRows: i32, perHead: i32, u0: i32, u1: i32, f16: i32,
  nHeads: i32, group: i32, headDim: i32, qStride: i32, scale: f32, scores: usize,
): void {
  let r = 0;
  for (let u = u0; u < u1; u++) {
    const g = u / perHead, w = u - g * perHead;
    // the row that holds w by the running sums of splits (units come in order, so r only moves
    // forward, except when the next kv head starts again from row 0)
    if (w < load<i32>(rows + <usize>(r * ROW_FIELDS) * 4, 32)) r = 0;
    while (r + 1 < nRows && load<i32>(rows + <usize>((r + 1) * ROW_FIELDS) * 4, 32) <= w) r++;
    const row = rows + <usize>(r * ROW_FIELDS) * 4;
    const splits = load<i32>(row, 24);
    const local = g * splits + (w - load<i32>(row, 32));
    if (f16) {
      attn<u16>(load<u32>(row), load<u32>(row, 8), load<u32>(row, 12), load<u32>(row, 4), local, local + 1,
        nHeads, group, headDim, qStride, load<i32>(row, 16), load<i32>(row, 20), scale, scores, splits, load<u32>(row, 28), 1);
    } else {
      attn<f32>(load<u32>(row), load<u32>(row, 8), load<u32>(row, 12), load<u32>(row, 4), local, local + 1,
        nHeads, group, headDim, qStride, load<i32>(row, 16), load<i32>(row, 20), scale, scores, splits, load<u32>(row, 28), 1);
    }
  }
}
