// Causal grouped-query attention over an f32 KV cache, one (token, head) pair per work unit.
// For query row t (position pos0 + t) and head h, with kv head g = h / group:
//   s_p = (q[t,h] . K[p,g]) * scale, p = 0 .. pos0 + t;  a = softmax(s);  out[t,h] = sum_p a_p V[p,g]
// Layouts (f32, row-major): q and out (nTok, qStride) with head h at h*headDim; K and V caches
// (ctx, kvStride) with kv head g at g*headDim. `scores` is this thread's scratch (>= pos0+nTok f32).
// Dots use 4-lane f32 accumulators (lane-order sums), so results differ from the plain reference in
// the last bits only; the model tolerates that (see test/kernels/attention.test.ts for the bound).

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

@inline function dot(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  s0 = f32x4.add(s0, s1);
  let s = (f32x4.extract_lane(s0, 0) + f32x4.extract_lane(s0, 2)) + (f32x4.extract_lane(s0, 1) + f32x4.extract_lane(s0, 3));
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

export function attnRows(
  q: usize, k: usize, v: usize, out: usize, u0: i32, u1: i32,
  nHeads: i32, group: i32, headDim: i32, qStride: i32, kvStride: i32, pos0: i32, scale: f32, scores: usize,
): void {
  for (let u = u0; u < u1; u++) {
    const t = u / nHeads;
    const h = u - t * nHeads;
    const last = pos0 + t;
    const qp = q + ((<usize>t * <usize>qStride + <usize>h * <usize>headDim) << 2);
    const kvOff = (<usize>(h / group) * <usize>headDim) << 2;
    const rowBytes = <usize>kvStride << 2;
    let mx: f32 = -Infinity;
    for (let p = 0; p <= last; p++) {
      const s = dot(qp, k + <usize>p * rowBytes + kvOff, headDim) * scale;
      store<f32>(scores + (<usize>p << 2), s);
      if (s > mx) mx = s;
    }
    let sum: f32 = 0;
    for (let p = 0; p <= last; p++) {
      const e = expNeg(load<f32>(scores + (<usize>p << 2)) - mx);
      store<f32>(scores + (<usize>p << 2), e);
      sum += e;
    }
    const inv: f32 = 1 / sum;
    const op = out + ((<usize>t * <usize>qStride + <usize>h * <usize>headDim) << 2);
    memory.fill(op, 0, <usize>headDim << 2);
    const hd4 = headDim & ~3;
    for (let p = 0; p <= last; p++) {
      const a = load<f32>(scores + (<usize>p << 2)) * inv;
      const av = f32x4.splat(a);
      const vp = v + <usize>p * rowBytes + kvOff;
      let i = 0;
      for (; i < hd4; i += 4) {
        const o = <usize>i << 2;
        v128.store(op + o, f32x4.add(v128.load(op + o), f32x4.mul(av, v128.load(vp + o))));
      }
      for (; i < headDim; i++) {
        const o = <usize>i << 2;
        store<f32>(op + o, load<f32>(op + o) + a * load<f32>(vp + o));
      }
    }
  }
}
