// Ternary x int8 matmul, layout "R4" (read by the unpack + dot kernel).
//
// Layout: rows in groups of 4 (last group zero-padded), columns in chunks of 64 (zero-padded).
// Row r's chunk j occupies 16 bytes at w + (r * chunks + j) * 16, so a row is contiguous and a
// group of 4 rows is chunks * 64 bytes. Byte b of a chunk's 16 bytes holds the 2-bit codes
// c = T + 1 of columns j*64 + s*16 + b at bits 2s..2s+1 (s = 0..3). Padding codes are 0, which
// adds nothing to sum(c * q); the kernel subtracts sum(q) (acts.sums, real columns only) to get
// sum(T * q).
// Rows are contiguous rather than interleaved 16 bytes at a time within each 64-byte line (the
// layout before): the GEMV runs a group's rows one after another, and with interleaved rows its
// first row pulled every line of the group from memory while the next three found them in L1, so
// memory was asked for in bursts at 4x the mean rate. Contiguous rows stream evenly: the 1-token
// pass over 30 layers of 2B4T weights (521 MB) took 8-9% less CPU time on 1 thread (42.0 against
// 46.0 ms, best of 12, interleaved A/B on the dev box) and 9-12% less at 2 threads; 64-token
// GEMM unchanged (0.99).
//
// i16 accumulation: one chunk adds at most 4 * 2 * 2 * 128 = 2048 per lane, so 16 chunks
// (1024 columns) fit i16 before folding into i32.
//
// Tried and measured slower on Node 20 (V8 11.3, x64 with AVX-512 VNNI), so not used:
// i32x4.relaxed_dot_i8x16_i7x16_add_s (lowered without VNNI to 5 instructions, pcmpeqd + psrlw to
// rebuild the ones constant, pmaddubsw, pmaddwd, paddd: 0.65 ns vs 0.32 ns for dot + i16 add, see
// the dot-add probe in bench/kernels.ts; Liftoff also returns wrong sums for it until tier-up;
// scripts/build-wasm.mjs refuses a kernel that uses it);
// in the GEMV, one accumulator per row (14 ops per row and 64 columns, 4 rows x 3 streams: 38 spill
// moves per 768 multiply-adds, 52-55% of the dot-add pair against 53-58% for gemvPair's 13 ops);
// four rows per GEMV loop with the activations loaded per row (no spills, but 5 loads per row and
// chunk: 8% slower); a manually unrolled GEMM step loop or a pointer-bounded one (binaryen hoists
// the unrolled loads and V8 then spills half the loop; V8's own unrolling no longer applies:
// +20-40%, measured again: 47% of the pair against 79% at k/v 64 tokens); touching the stream 1-8 KB
// ahead (no change); a 1-row x 8-token GEMM tile meant to let V8 fold each activation load into
// vpmaddubsw's memory operand (V8 hoists the eight loads ahead of the dots instead and spills three
// vectors per step: 41% of the dot-add pair against 76% for the 2x4 tile, GEMM@64 q/o, 1 thread,
// same run).

import { dotCodes, firstInvalidCode, hsum32, mask12, mask3, sum4 } from './simd';

const BLOCK: i32 = 16; // chunks per i16 accumulation block


@inline function finish(sumCQ: i32, sumQ: i32, s: f32, alpha: f32): f32 {
  return (<f32>(sumCQ - sumQ) / s) * alpha;
}

/** finish() on four tokens' lanes (the same f32 operations in the same order, so the same bits),
 *  stored to o, o + stride, o + 2 stride, o + 3 stride. */
@inline function finish4(sumCQ: v128, sumQ: v128, s: v128, alpha: v128, o: usize, stride: usize): void {
  const y = f32x4.mul(f32x4.div(f32x4.convert_i32x4_s(i32x4.sub(sumCQ, sumQ)), s), alpha);
  store<f32>(o, f32x4.extract_lane(y, 0));
  store<f32>(o + stride, f32x4.extract_lane(y, 1));
  store<f32>(o + 2 * stride, f32x4.extract_lane(y, 2));
  store<f32>(o + 3 * stride, f32x4.extract_lane(y, 3));
}

/** One token, groups [g0, g1): full groups two at a time, group i with group i + half, row by row
 *  (two streams: the hardware prefetcher stops at every 4 KB page, and one stream stalls there while
 *  the other still runs; measured with three streams of the 14-op loop on the dev box: 2 threads
 *  23.4 -> 19.6 ms per 256 MiB of weights); the rest (an odd group, a partial last one) two rows of
 *  one group at a time. */
function gemvRange(w: usize, g0: i32, g1: i32, chunks: i32, rows: i32, a: usize, s: f32, sumQ: i32, alpha: f32, out: usize): void {
  const groupBytes = <usize>chunks << 6;
  const rowBytes = <usize>chunks << 4;
  const full = min(g1, rows >> 2); // groups below this one have 4 real rows
  const half = max(0, full - g0) >> 1;
  for (let i = 0; i < half; i++) {
    const ga = g0 + i, gb = ga + half;
    const wa = w + <usize>ga * groupBytes, wb = w + <usize>gb * groupBytes;
    const oa = out + (<usize>ga << 4), ob = out + (<usize>gb << 4);
    for (let r: usize = 0; r < 4; r++) gemvPair(wa + r * rowBytes, wb + r * rowBytes, chunks, a, s, sumQ, alpha, oa + (r << 2), ob + (r << 2), true);
  }
  for (let g = g0 + 2 * half; g < g1; g++) {
    const n = min(4, rows - (g << 2));
    const wg = w + <usize>g * groupBytes, o = out + (<usize>g << 4);
    for (let r = 0; r < n; r += 2) {
      const p = wg + <usize>r * rowBytes, op = o + (<usize>r << 2);
      gemvPair(p, p + rowBytes, chunks, a, s, sumQ, alpha, op, op + 4, r + 1 < n);
    }
  }
}

/** One token, two rows: row A's 16 bytes of every 64-byte chunk start at pa, row B's at pb (two
 *  rows of one group, or rows of two groups: two streams), outputs to oa and ob (ob only when
 *  hasB). 13 SIMD ops per row and 64 columns (one shift, four masks, four dots, four adds) instead
 *  of rowDot's 14: each row has two i16 accumulators, lo for the fields at bits 0-1 and 4-5 (codes
 *  x1) and hi for those at bits 2-3 and 6-7 (masked in place: codes x4), so the x4 is divided out
 *  once per 8 chunks (hi >> 2, exact: every lane is a multiple of 4) instead of once per chunk.
 *  Bounds per lane: hi gains at most 2 * 2 * 128 * 8 = 4096 a chunk, so 8 chunks fit i16 (-32768
 *  included); lo with the folded hi gains at most 2048 a chunk, so 16 fit. Two rows keep the loop
 *  at 14 live vectors (2 masks, 4 activations, 4 accumulators, 4 temporaries), within the 15 V8
 *  allocates: nothing spills (read back with --print-wasm-code: per 64 multiply-adds 13 vector
 *  ops, 3 loads, about 3 others). Four rows sharing the activation registers would spill; four
 *  with the activations loaded again per row ran 8% slower. Every 16 chunks lo is widened into an
 *  i32x4 per row, reduced to a number once per row at the end: a horizontal sum per block (lane
 *  extracts and scalar adds) made the GEMV 3-6% slower (bench/kernels, 1 thread, 3 alternating
 *  A/B runs: 53.0-58.2% of the pair -> 55.7-61.7% on Node 26, 51.5-57.3% -> 52.1-59.5% on Node 20). */
function gemvPair(pa: usize, pb: usize, chunks: i32, a: usize, s: f32, sumQ: i32, alpha: f32, oa: usize, ob: usize, hasB: bool): void {
  const m3 = mask3(), m12 = mask12();
  let s0 = i32x4.splat(0), s1 = i32x4.splat(0);
  let p = pa, q = pb;
  let ap = a;
  for (let j0 = 0; j0 < chunks; j0 += BLOCK) {
    const jEnd = min(chunks, j0 + BLOCK);
    let lo0 = i16x8.splat(0), lo1 = i16x8.splat(0);
    for (let h0 = j0; h0 < jEnd; h0 += BLOCK >> 1) {
      const hEnd = min(jEnd, h0 + (BLOCK >> 1));
      let hi0 = i16x8.splat(0), hi1 = i16x8.splat(0);
      for (let j = h0; j < hEnd; j++) {
        const a0 = v128.load(ap), a1 = v128.load(ap, 16), a2 = v128.load(ap, 32), a3 = v128.load(ap, 48);
        let v = v128.load(p);
        let v4 = i16x8.shr_u(v, 4);
        lo0 = i16x8.add(lo0, dotCodes(a0, v128.and(v, m3)));
        hi0 = i16x8.add(hi0, dotCodes(a1, v128.and(v, m12)));
        lo0 = i16x8.add(lo0, dotCodes(a2, v128.and(v4, m3)));
        hi0 = i16x8.add(hi0, dotCodes(a3, v128.and(v4, m12)));
        v = v128.load(q);
        v4 = i16x8.shr_u(v, 4);
        lo1 = i16x8.add(lo1, dotCodes(a0, v128.and(v, m3)));
        hi1 = i16x8.add(hi1, dotCodes(a1, v128.and(v, m12)));
        lo1 = i16x8.add(lo1, dotCodes(a2, v128.and(v4, m3)));
        hi1 = i16x8.add(hi1, dotCodes(a3, v128.and(v4, m12)));
        p += 16;
        q += 16;
        ap += 64;
      }
      lo0 = i16x8.add(lo0, i16x8.shr_s(hi0, 2));
      lo1 = i16x8.add(lo1, i16x8.shr_s(hi1, 2));
    }
    s0 = i32x4.add(s0, i32x4.extadd_pairwise_i16x8_s(lo0));
    s1 = i32x4.add(s1, i32x4.extadd_pairwise_i16x8_s(lo1));
  }
  store<f32>(oa, finish(hsum32(s0), sumQ, s, alpha));
  if (hasB) store<f32>(ob, finish(hsum32(s1), sumQ, s, alpha));
}

/** Interleaves the int8 activations of full tiles of 4 tokens for the GEMM: tile i, 16-column step k,
 *  token j at dst + (i * steps + k) * 64 + j * 16 (steps = chunks * 4; reads past cols are harmless:
 *  their codes are 0). */
export function interleaveActs(q: usize, qStride: i32, nTok: i32, chunks: i32, dst: usize): void {
  const steps = chunks << 2;
  const qs = <usize>qStride;
  let o = dst;
  for (let t = 0; t + 4 <= nTok; t += 4) {
    const a = q + <usize>t * qs;
    for (let k = 0; k < steps; k++) {
      const c = <usize>k << 4;
      v128.store(o, v128.load(a + c));
      v128.store(o, v128.load(a + qs + c), 16);
      v128.store(o, v128.load(a + 2 * qs + c), 32);
      v128.store(o, v128.load(a + 3 * qs + c), 48);
      o += 64;
    }
  }
}

/** Many tokens. Each group of 4 rows is unpacked once into U (one code byte per column, rows paired:
 *  pair p, step k, row r of the pair at U + (p * steps + k) * 32 + r * 16; L1-resident), then every
 *  tile of 4 tokens (interleaved by interleaveActs) runs a 2-row x 4-token register tile: per 16
 *  columns 2 code loads and 4 activation loads feed 8 dots, one pointer each. Tokens past the last
 *  full tile are not done here (ternR4 runs them as GEMVs). A block's 8 i16 accumulators end in two
 *  i32x4 (sum4: one lane per token) and finish4 runs the four lanes at once: eight horizontal sums
 *  per block and eight scalar finishes per tile cost 4-8% (1 thread, same A/B runs as gemvPair: GEMM@64
 *  80.9-84.9% of the pair -> 86.0-89.7% on Node 26, 77.4-81.5% -> 83.9-86.8% on Node 20). */
function gemm(w: usize, g0: i32, g1: i32, chunks: i32, rows: i32, A: usize,
              scales: usize, sums: usize, nTok: i32, alpha: f32, out: usize, U: usize): void {
  const m = mask3();
  const av = f32x4.splat(alpha);
  const groupBytes = <usize>chunks << 6;
  const steps = chunks << 2;
  const pairBytes = <usize>steps << 5;
  const tileBytes = <usize>steps << 6;
  const outStride = <usize>rows << 2;
  const tiles = nTok >> 2;
  for (let g = g0; g < g1; g++) {
    const wg = w + <usize>g * groupBytes;
    for (let i = 0; i < 4; i++) {
      let p = wg + <usize>i * (<usize>chunks << 4);
      let u = U + <usize>(i >> 1) * pairBytes + (<usize>(i & 1) << 4);
      for (let j = 0; j < chunks; j++) {
        const v = v128.load(p);
        v128.store(u, v128.and(v, m));
        v128.store(u, v128.and(i16x8.shr_u(v, 2), m), 32);
        v128.store(u, v128.and(i16x8.shr_u(v, 4), m), 64);
        v128.store(u, v128.and(i16x8.shr_u(v, 6), m), 96);
        p += 16;
        u += 128;
      }
    }
    for (let tt = 0; tt < tiles; tt++) {
      const t = tt << 2;
      for (let pr = 0; pr < 2; pr++) {
        const row = (g << 2) + (pr << 1);
        if (row >= rows) break;
        const up = U + <usize>pr * pairBytes;
        const at = A + <usize>tt * tileBytes;
        let r0 = i32x4.splat(0), r1 = i32x4.splat(0); // rows row and row + 1: one lane per token
        for (let k0 = 0; k0 < steps; k0 += 4 * BLOCK) {
          const kEnd = min(steps, k0 + 4 * BLOCK);
          let c00 = i16x8.splat(0), c01 = i16x8.splat(0), c02 = i16x8.splat(0), c03 = i16x8.splat(0);
          let c10 = i16x8.splat(0), c11 = i16x8.splat(0), c12 = i16x8.splat(0), c13 = i16x8.splat(0);
          let cp = up + (<usize>k0 << 5);
          let ap = at + (<usize>k0 << 6);
          for (let k = k0; k < kEnd; k++) {
            const x0 = v128.load(cp), x1 = v128.load(cp, 16);
            const a0 = v128.load(ap), a1 = v128.load(ap, 16), a2 = v128.load(ap, 32), a3 = v128.load(ap, 48);
            c00 = i16x8.add(c00, dotCodes(a0, x0));
            c10 = i16x8.add(c10, dotCodes(a0, x1));
            c01 = i16x8.add(c01, dotCodes(a1, x0));
            c11 = i16x8.add(c11, dotCodes(a1, x1));
            c02 = i16x8.add(c02, dotCodes(a2, x0));
            c12 = i16x8.add(c12, dotCodes(a2, x1));
            c03 = i16x8.add(c03, dotCodes(a3, x0));
            c13 = i16x8.add(c13, dotCodes(a3, x1));
            cp += 32;
            ap += 64;
          }
          r0 = i32x4.add(r0, sum4(c00, c01, c02, c03));
          r1 = i32x4.add(r1, sum4(c10, c11, c12, c13));
        }
        const qv = v128.load(sums + (<usize>t << 2)), fv = v128.load(scales + (<usize>t << 2));
        const o = out + <usize>t * outStride + (<usize>row << 2);
        finish4(r0, qv, fv, av, o, outStride);
        if (row + 1 < rows) finish4(r1, qv, fv, av, o + 4, outStride);
      }
    }
  }
}

/** out[t * rows + r] for rows of groups [g0, g1), tokens t < nTok. For nTok >= 4: scratch of
 *  chunks * 256 bytes per thread (the unpacked group) and A = the activations interleaved by
 *  interleaveActs. */
export function ternR4(w: usize, g0: i32, g1: i32, chunks: i32, rows: i32,
                       q: usize, qStride: i32, scales: usize, sums: usize, nTok: i32,
                       alpha: f32, out: usize, scratch: usize, A: usize): void {
  const outStride = <usize>rows << 2;
  const qs = <usize>qStride;
  let t0 = 0;
  if (nTok >= 4) {
    gemm(w, g0, g1, chunks, rows, A, scales, sums, nTok, alpha, out, scratch);
    t0 = (nTok >> 2) << 2;
  }
  // tokens one at a time: all of them below 4, else the 1-3 left over after the tiles of 4 (the GEMV
  // costs one token; a row-by-row pass over the unpacked group cost about two: 5, 6, 7 decoding
  // sequences took longer per step than 8)
  for (let t = t0; t < nTok; t++) {
    const a = q + <usize>t * qs;
    const s = load<f32>(scales + (<usize>t << 2));
    const sumQ = load<i32>(sums + (<usize>t << 2));
    gemvRange(w, g0, g1, chunks, rows, a, s, sumQ, alpha, out + <usize>t * outStride);
  }
}

/** Packs codes (int8 T in {-1,0,1}, row-major rows x cols at src) into layout R4 at dst.
 *  Returns -1 when all codes are valid, else the index of the first invalid code. */
export function packR4(src: usize, rows: i32, cols: i32, dst: usize): i32 {
  const bad = firstInvalidCode(src, <usize>rows * <usize>cols);
  if (bad >= 0) return bad;
  const one = i8x16.splat(1);
  const chunks = (cols + 63) >> 6;
  const full = cols >> 6;
  const groups = (rows + 3) >> 2;
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < 4; i++) {
      const r = (g << 2) + i;
      let o = dst + ((<usize>g * <usize>chunks) << 6) + ((<usize>i * <usize>chunks) << 4);
      if (r >= rows) {
        for (let j = 0; j < chunks; j++) { v128.store(o, i32x4.splat(0)); o += 16; }
        continue;
      }
      const row = src + <usize>r * <usize>cols;
      for (let j = 0; j < full; j++) {
        const p = row + (<usize>j << 6);
        const c0 = i8x16.add(v128.load(p), one), c1 = i8x16.add(v128.load(p, 16), one);
        const c2 = i8x16.add(v128.load(p, 32), one), c3 = i8x16.add(v128.load(p, 48), one);
        v128.store(o, v128.or(v128.or(c0, i16x8.shl(c1, 2)), v128.or(i16x8.shl(c2, 4), i16x8.shl(c3, 6))));
        o += 16;
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
