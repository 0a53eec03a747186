// Elementwise steps of the forward pass, f32x4 at a time: the FFN gates and the residual add.
//   relu2Gate: g = max(g, 0)^2 * u   (bit-exact with the reference: the same f32 products)
//   siluGate:  g = g / (1 + e^-g) * u (e^x by range reduction + polynomial: ~2e-7 relative error)
//   addTo:     x = x + y              (bit-exact)

import { exp4 } from './simd';

export function relu2Gate(g: usize, u: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const r = f32x4.max(v128.load(g + o), z);
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
  const lo = f32x4.splat(-87.0), hi = f32x4.splat(88.0), log2e = f32x4.splat(1.4426950408889634), ln2 = f32x4.splat(0.6931471805599453);
  const c6 = f32x4.splat(0.0013888889), c5 = f32x4.splat(0.008333334), c4 = f32x4.splat(0.041666668);
  const c3 = f32x4.splat(0.16666667), c2 = f32x4.splat(0.5), one = f32x4.splat(1), bias = i32x4.splat(127);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(g + o);
    const e = exp4(f32x4.neg(x), lo, hi, log2e, ln2, c6, c5, c4, c3, c2, one, bias);
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
