import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ToF32, f16BitsToF32Bits, f16ToF32, f32BitsToBf16Bits, f32BitsToF16Bits, f32ToBf16, f32ToF16,
} from '../../src/formats/half.js';
import { roundHalfAway, roundHalfEven } from '../../src/formats/rounding.js';
import { bitsOf, f16Value, fromBits, refF32ToF16, rng } from './helpers.js';

const hex = (x: number) => '0x' + (x >>> 0).toString(16);

test('f16 -> f32 is exact for all 65536 patterns', () => {
  for (let h = 0; h < 65536; h++) {
    const got = f16ToF32(h);
    const want = f16Value(h);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(got), `h=${hex(h)}`);
      // payload kept: f32 bits are sign | 0x7f800000 | mantissa << 13
      assert.equal(f16BitsToF32Bits(h), (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0);
    } else {
      assert.ok(Object.is(got, want), `h=${hex(h)}: ${got} != ${want}`);
    }
  }
});

test('f32 -> f16 matches ggml portable conversion at every f16 value, midpoint and neighbour', () => {
  let checked = 0;
  for (let h = 0; h < 0x7c00; h++) {
    const lo = f16Value(h);
    const hi = h + 1 === 0x7c00 ? 65520 : f16Value(h + 1); // 65520 = the overflow threshold
    const mid = (lo + hi) / 2; // exact in f32 (f16 midpoints need 12 bits)
    for (const v of [lo, mid, hi]) {
      for (const sgn of [1, -1]) {
        const b = bitsOf(sgn * v);
        for (const w of [b, b + 1, b - 1]) {
          if ((w & 0x7fffffff) === 0x7fffffff) continue;
          const ww = w >>> 0;
          assert.equal(f32BitsToF16Bits(ww), refF32ToF16(ww), `f32 bits ${hex(ww)} (${fromBits(ww)})`);
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 300000);
});

test('f32 -> f16 matches ggml portable conversion on random bit patterns', () => {
  const r = rng(7);
  for (let i = 0; i < 300000; i++) {
    const w = Math.floor(r() * 4294967296) >>> 0;
    assert.equal(f32BitsToF16Bits(w), refF32ToF16(w), `f32 bits ${hex(w)}`);
  }
});

test('f16 edge values', () => {
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65519.99), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00); // tie goes to the even side, which is Inf
  assert.equal(f32ToF16(-1e9), 0xfc00);
  assert.equal(f32ToF16(Infinity), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.equal(f32ToF16(NaN), 0x7e00);
  assert.equal(f32BitsToF16Bits(0xffc00001), 0xfe00); // negative NaN keeps its sign
  assert.equal(f32ToF16(-0), 0x8000);
  assert.equal(f32ToF16(0), 0);
  assert.equal(f32ToF16(2 ** -24), 1); // smallest subnormal
  assert.equal(f32ToF16(2 ** -25), 0); // tie -> even (0)
  assert.equal(f32ToF16(Math.fround(2 ** -25 * 1.0000001)), 1);
  assert.equal(f32ToF16(3 * 2 ** -25), 2); // tie between 1 and 2 -> 2
  assert.equal(f32ToF16(2 ** -14), 0x400); // smallest normal
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie -> even (1.0)
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (odd mantissa 1 rounds up)
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.equal(f16ToF32(0x7c00), Infinity);
});

test('bf16 matches round-to-nearest-even chosen by distance, and ggml NaN handling', () => {
  const r = rng(11);
  const special = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7f7fffff, 0xff7fffff, 0x00000001, 0x00008000, 0x00018000,
    0x3f808000, 0x3f818000, 0x7f7f8000, 0x7fc00000, 0x7f800001, 0xffc12345, 0x7fbfffff];
  for (let i = 0; i < 300000 + special.length; i++) {
    const w = i < special.length ? special[i]! >>> 0 : Math.floor(r() * 4294967296) >>> 0;
    const got = f32BitsToBf16Bits(w);
    const x = fromBits(w);
    let want: number;
    if (Number.isNaN(x)) {
      want = ((w >>> 16) | 0x40) & 0xffff;
    } else {
      const lo = w >>> 16;
      const hi = lo + 1;
      const vLo = fromBits(lo << 16);
      const hiIsInf = (hi & 0x7fff) === 0x7f80;
      const vHi = hiIsInf ? Math.sign(x) * 2 ** 128 : fromBits((hi << 16) >>> 0);
      if (!Number.isFinite(x) || x === vLo) want = lo;
      else {
        const dLo = Math.abs(x - vLo);
        const dHi = Math.abs(vHi - x);
        want = dLo < dHi ? lo : dHi < dLo ? hi : (lo & 1) === 0 ? lo : hi;
      }
    }
    assert.equal(got, want, `f32 bits ${hex(w)}`);
  }
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(-0), 0x8000);
  assert.equal(f32ToBf16(NaN), 0x7fc0);
  assert.equal(f32BitsToBf16Bits(0x7f800001), 0x7fc0); // signalling NaN made quiet
  assert.equal(f32BitsToBf16Bits(0xff800001), 0xffc0);
  assert.equal(f32BitsToBf16Bits(0x7f7fffff), 0x7f80); // max f32 rounds to Inf
  assert.equal(bf16ToF32(0x3fc0), 1.5);
  assert.ok(Object.is(bf16ToF32(0x8000), -0));
});

test('roundHalfEven and roundHalfAway', () => {
  const cases: [number, number, number][] = [
    // x, half-even, half-away
    [0.5, 0, 1], [1.5, 2, 2], [2.5, 2, 3], [-0.5, -0, -1], [-1.5, -2, -2], [-2.5, -2, -3],
    [0.49999999999999994, 0, 0], [12.5, 12, 13], [-60.5, -60, -61], [3.2, 3, 3], [-3.7, -4, -4],
    [4194303.5, 4194304, 4194304], [2 ** 53, 2 ** 53, 2 ** 53], [0, 0, 0],
  ];
  for (const [x, even, away] of cases) {
    assert.ok(Object.is(roundHalfEven(x), even) || roundHalfEven(x) === even, `even(${x}) = ${roundHalfEven(x)}`);
    assert.equal(roundHalfAway(x), away, `away(${x})`);
  }
  const r = rng(3);
  for (let i = 0; i < 100000; i++) {
    const x = Math.round((r() - 0.5) * 2000) / 2 + (r() < 0.5 ? 0 : (r() - 0.5) * 0.999);
    const f = Math.floor(x);
    const frac = x - f;
    const even = frac < 0.5 ? f : frac > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
    const away = frac === 0.5 ? (x > 0 ? f + 1 : f) : even;
    assert.equal(roundHalfEven(x) + 0, even + 0, `even(${x})`);
    assert.equal(roundHalfAway(x) + 0, away + 0, `away(${x})`);
  }
});
