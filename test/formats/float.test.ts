// F32 / F16 / BF16: pack -> unpack equals an independently computed rounding; layout and shape errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16Format, f16Format, f32Format } from '../../src/formats/index.js';
import { bitsOf, f16Value, fromBits, refF32ToF16, rng } from './helpers.js';

function randomBitsFloats(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  const u = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) {
    // mix of arbitrary bit patterns (NaN/Inf/subnormals included) and ordinary magnitudes
    u[i] = i % 3 === 0 ? Math.floor(r() * 4294967296) >>> 0 : bitsOf((r() - 0.5) * 10 ** Math.floor(r() * 12 - 8));
  }
  x.set([0, -0, Infinity, -Infinity, NaN, 65504, 65520, -65519, 2 ** -24, 2 ** -25, 3.4e38, 1e-45], 0);
  return x;
}

test('F32 pack/unpack copies bits exactly, little-endian', () => {
  const x = randomBitsFloats(3 * 100, 1);
  const bytes = f32Format.pack!(x, 100);
  assert.equal(bytes.length, 1200);
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  for (let i = 0; i < x.length; i++) assert.equal(dv.getUint32(4 * i, true), new Uint32Array(x.buffer)[i]);
  const y = f32Format.unpack(bytes, 300, 100);
  assert.deepEqual(new Uint32Array(y.buffer), new Uint32Array(x.buffer));
  // unaligned input bytes are fine
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(new Uint32Array(f32Format.unpack(shifted.subarray(1), 300, 100).buffer), new Uint32Array(x.buffer));
});

test('F16 pack = ggml rounding (independent implementation), unpack exact', () => {
  const x = randomBitsFloats(4 * 512, 2);
  const bytes = f16Format.pack!(x, 512);
  assert.equal(bytes.length, 4 * 512 * 2);
  const xb = new Uint32Array(x.buffer);
  for (let i = 0; i < x.length; i++) {
    const h = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    assert.equal(h, refF32ToF16(xb[i]!), `element ${i} (${x[i]})`);
  }
  const y = f16Format.unpack(bytes, x.length, 512);
  for (let i = 0; i < x.length; i++) {
    const want = f16Value(refF32ToF16(xb[i]!));
    if (Number.isNaN(want)) assert.ok(Number.isNaN(y[i]!));
    else assert.ok(Object.is(y[i], want), `element ${i}: ${y[i]} vs ${want}`);
  }
});

test('BF16 pack = round to nearest even on the top 16 bits, unpack exact', () => {
  const x = randomBitsFloats(2 * 256, 3);
  const bytes = bf16Format.pack!(x, 256);
  const xb = new Uint32Array(x.buffer);
  const y = bf16Format.unpack(bytes, x.length, 256);
  for (let i = 0; i < x.length; i++) {
    const h = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    const v = x[i]!;
    if (Number.isNaN(v)) {
      assert.equal(h & 0x7fc0, 0x7fc0, `NaN stays a quiet NaN at ${i}`);
      assert.equal(h & 0x8000, (xb[i]! >>> 16) & 0x8000);
      continue;
    }
    // the nearest of the two bf16 neighbours, ties to even
    const lo = xb[i]! >>> 16;
    const cand = [lo, lo + 1].filter((c) => (c & 0x7fff) <= 0x7f80);
    let best = lo;
    let bestD = Infinity;
    for (const c of cand) {
      const cv = (c & 0x7fff) === 0x7f80 ? Math.sign(v) * 2 ** 128 : fromBits(c << 16);
      const dd = Math.abs(cv - v);
      if (dd < bestD || (dd === bestD && (c & 1) === 0)) [best, bestD] = [c, dd];
    }
    if (!Number.isFinite(v)) best = lo;
    assert.equal(h, best & 0xffff, `element ${i} (${v})`);
    assert.equal(new Uint32Array(y.buffer)[i], (h << 16) >>> 0);
  }
});

test('float formats: shape and length errors', () => {
  for (const f of [f32Format, f16Format, bf16Format]) {
    assert.throws(() => f.pack!(new Float32Array(10), 3), /10 elements is not a whole number of rows of 3/);
    assert.throws(() => f.unpack(new Uint8Array(7), 3, 3), /3 elements take \d+ bytes, but 7 were given/);
    assert.throws(() => f.unpack(new Uint8Array(8), 2, 0), /row length must be a positive integer/);
    assert.equal(f.byteSize(12, 4), f === f32Format ? 48 : 24);
  }
});
