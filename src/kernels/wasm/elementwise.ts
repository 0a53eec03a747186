// Elementwise steps of the forward pass, f32x4 at a time: the FFN gates and the residual add.
//   relu2Gate: g = max(g, 0)^2 * u   (bit-exact with the reference: the same f32 products)
//   siluGate:  g = g / (1 + e^-g) * u (e^x by range reduction + polynomial: ~2e-7 relative error)
//   addTo:     x = x + y              (bit-exact)
//   rope:      NEOX rotation in f64x2, rounded once to f32 (bit-exact with the f64 TypeScript)

import { cBias, cC3, cC4, cC5, cC6, cHalf, cLn2, cLog2e, cMagic, cMinus87, cOne, cPlus88, cSign, exp4 } from './simd';

export function relu2Gate(g: usize, u: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const r = f32x4.pmax(v128.load(g + o), z);
    v128.store(g + o, f32x4.mul(f32x4.mul(r, r), v128.load(u + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const r = max(load<f32>(g + o), <f32>0);
    store<f32>(g + o, r * r * load<f32>(u + o));
  }
}

/** e^x for x in [-87, 88] (clamped outside): x = n ln2 + r, e^r by a degree-6 polynomial, times 2^n. */
@inline function expF(x: f32): f32 {
  x = min(max(x, <f32>-87.0), <f32>88.0);
  const n = nearest<f32>(x * <f32>1.4426950408889634);
  const r: f32 = x - n * <f32>0.6931471805599453;
  const p: f32 = 1 + r * (1 + r * (0.5 + r * (0.16666667 + r * (0.041666668 + r * (0.008333334 + r * 0.0013888889)))));
  return p * reinterpret<f32>((<i32>n + 127) << 23);
}

export function siluGate(g: usize, u: usize, n: i32): void {
  const lo = cMinus87(), hi = cPlus88(), log2e = cLog2e(), ln2 = cLn2();
  const c6 = cC6(), c5 = cC5(), c4 = cC4(), c3 = cC3(), c2 = cHalf(), one = cOne();
  const magic = cMagic(), bias = cBias(), sign = cSign();
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(g + o);
    const e = exp4(v128.xor(x, sign), lo, hi, log2e, ln2, c6, c5, c4, c3, c2, one, magic, bias); // -x
    v128.store(g + o, f32x4.mul(f32x4.div(x, f32x4.add(one, e)), v128.load(u + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const x = load<f32>(g + o);
    store<f32>(g + o, (x / (1 + expF(-x))) * load<f32>(u + o));
  }
}

export function addTo(x: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.add(v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) + load<f32>(y + o));
  }
}

/** Rotary embedding of nTok rows of nHeads heads (x: (nTok, nHeads * headDim)) in place; cs and sn
 *  point at the table rows of the first token (half f32 each, one row per position). */
export function rope(x: usize, nTok: i32, nHeads: i32, headDim: i32, half: i32, cs: usize, sn: usize): void {
  const halfBytes = <usize>half << 2;
  for (let t = 0; t < nTok; t++) {
    const cp = cs + <usize>t * halfBytes, sp = sn + <usize>t * halfBytes;
    for (let h = 0; h < nHeads; h++) {
      const o = x + ((<usize>(t * nHeads + h) * <usize>headDim) << 2);
      const ob = o + halfBytes;
      let i = 0;
      for (; i + 2 <= half; i += 2) {
        const off = <usize>i << 2;
        const a = f64x2.promote_low_f32x4(v128.load64_zero(o + off));
        const b = f64x2.promote_low_f32x4(v128.load64_zero(ob + off));
        const c = f64x2.promote_low_f32x4(v128.load64_zero(cp + off));
        const s = f64x2.promote_low_f32x4(v128.load64_zero(sp + off));
        v128.store64_lane(o + off, f32x4.demote_f64x2_zero(f64x2.sub(f64x2.mul(a, c), f64x2.mul(b, s))), 0);
        v128.store64_lane(ob + off, f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(a, s), f64x2.mul(b, c))), 0);
      }
      for (; i < half; i++) {
        const off = <usize>i << 2;
        const a = <f64>load<f32>(o + off), b = <f64>load<f32>(ob + off);
        const c = <f64>load<f32>(cp + off), s = <f64>load<f32>(sp + off);
        store<f32>(o + off, <f32>(a * c - b * s));
        store<f32>(ob + off, <f32>(a * s + b * c));
      }
    }
  }
}
