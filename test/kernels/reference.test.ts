// The reference kernels against hand-worked values of SPEC.md §2 math.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceKernels, floatDot, roundHalfEven } from '../../src/kernels/reference.js';

test('roundHalfEven sends ties to the even integer', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6].map((v) => roundHalfEven(v) + 0), [0, 2, 2, 0, -2, -2, 2, 3, -3]);
});

test('quantize: scale, half-even rounding, sums', () => {
  const k = createReferenceKernels();
  const acts = k.allocActs(2, 4);
  // token 0: max 127 -> s = 1; 2.5 -> 2, 3.5 -> 4, -0.5 -> -0
  // token 1: all zero -> s = 127/1e-5, q = 0
  const x = new Float32Array([127, 2.5, 3.5, -0.5, 0, 0, 0, 0]);
  k.quantize(x, 2, 4, acts);
  assert.deepEqual(Array.from(acts.q), [127, 2, 4, 0, 0, 0, 0, 0]);
  assert.equal(acts.scales[0], 1);
  assert.equal(acts.scales[1], Math.fround(127 / 1e-5));
  assert.deepEqual(Array.from(acts.sums), [133, 0]);
});

test('ternaryMatmul: scale / s * integer dot', () => {
  const k = createReferenceKernels();
  const acts = k.allocActs(1, 4);
  k.quantize(new Float32Array([1, -0.5, 0.25, 0]), 1, 4, acts); // s = 127 -> q = [127, -64 (63.5 -> 64), 32 (31.75), 0]
  assert.deepEqual(Array.from(acts.q), [127, -64, 32, 0]);
  const w = k.ternaryMatrix(new Int8Array([1, 1, 1, 1, -1, 0, 1, 0]), 2, 4, 0.5);
  const out = new Float32Array(2);
  k.ternaryMatmul(w, acts, 1, out);
  assert.equal(out[0], Math.fround((95 / 127) * 0.5));
  assert.equal(out[1], Math.fround(Math.fround(-95 / 127) * 0.5));
  assert.throws(() => k.ternaryMatrix(new Int8Array([2, 0]), 1, 2, 1), /not -1, 0 or \+1/);
});

test('int8Matrix / int8Row / int8Matmul', () => {
  const k = createReferenceKernels();
  const rows = [[1, -2, 0.5, 0], [0, 0, 0, 0]];
  const m = k.int8Matrix(2, 4, (r, out) => out.set(rows[r]!));
  const row = new Float32Array(4);
  k.int8Row(m, 0, row);
  const d = Math.fround(2 / 127);
  assert.deepEqual(Array.from(row), [64, -127, 32, 0].map((q) => Math.fround(q * d)));
  k.int8Row(m, 1, row);
  assert.deepEqual(Array.from(row), [0, 0, 0, 0]);
  const out = new Float32Array(2);
  k.int8Matmul(m, new Float32Array([0, 1, 0, 0]), 1, out); // q = [0,127,0,0], s = 127
  assert.equal(out[0], Math.fround(Math.fround((-127 * 127) / 127) * d));
  assert.equal(out[1], 0);
  assert.throws(() => k.int8Row(m, 2, row), /out of range/);
});

test('rmsnorm', () => {
  const k = createReferenceKernels();
  const x = new Float32Array([3, 4, 0, 0]);
  const out = new Float32Array(4);
  k.rmsnorm(x, new Float32Array([1, 2, 1, 1]), 1, 4, 0, out);
  const scale = Math.fround(1 / Math.fround(Math.sqrt(25 / 4)));
  assert.deepEqual(Array.from(out), [Math.fround(3 * scale), Math.fround(Math.fround(4 * scale) * 2), 0, 0]);
});

test('floatMatmul (the lm_head at full precision): f16 and f32 rows, no quantization', () => {
  const k = createReferenceKernels();
  // f16 bits: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800, the smallest subnormal 2^-24 = 0x0001
  const half = [[0x3c00, 0xc000, 0x3800, 0x0001], [0, 0, 0, 0x8000]];
  const m16 = k.f16Matrix(2, 4, (r, out) => out.set(half[r]!));
  const x = new Float32Array([3, 0.25, -8, 2 ** 20, 1, 1, 1, 1]);
  const out = new Float32Array(4);
  k.floatMatmul(m16, x, 2, out);
  // token 0: 3 - 0.5 - 4 + 2^-24 * 2^20 = -1.5 + 1/16; token 1: (1 + 0.5) + f32(-2 + 2^-24) = -0.5
  // (the summation order pairs columns 0 with 2 and 1 with 3, and -2 + 2^-24 rounds to -2 in f32)
  assert.deepEqual(Array.from(out), [-1.5 + 1 / 16, 0, -0.5, 0]);
  assert.equal(m16.type, 'f16');
  // f32 rows keep values an int8 row could not (1e-3 next to 100 would round to 0 in int8)
  const m32 = k.f32Matrix(1, 3, (_r, o) => o.set([100, 1e-3, -7]));
  const o1 = new Float32Array(1);
  k.floatMatmul(m32, new Float32Array([0, 1000, 0]), 1, o1);
  assert.equal(o1[0], Math.fround(Math.fround(1e-3) * 1000));
  // inf/NaN halves are refused, naming the row
  assert.throws(() => k.f16Matrix(2, 2, (r, o) => o.set(r ? [0, 0x7c00] : [0, 0])), /row 1 holds a non-finite value at column 1/);
  assert.throws(() => k.floatMatmul(m32, new Float32Array(2), 1, o1), /x holds 2 values, needs at least 3/);
});

test('floatDot: within float32 rounding of the float64 dot, summed in sixteen partial sums', () => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  for (const cols of [1, 15, 16, 17, 100, 2560]) {
    const w = Float32Array.from({ length: cols }, rnd), x = Float32Array.from({ length: cols }, rnd);
    let exact = 0, mag = 0;
    for (let i = 0; i < cols; i++) {
      exact += w[i]! * x[i]!;
      mag += Math.abs(w[i]! * x[i]!);
    }
    const d = floatDot((i) => w[i]!, x, 0, cols);
    assert.ok(Math.abs(d - exact) <= mag * 2 ** -22, `cols ${cols}: ${d} vs ${exact}`);
  }
  // the order is the contract: 16 partial sums, so 1 + 2^-24 (lost when added to 1 in sequence) survives in partial 1
  const w = new Float32Array(32).fill(0);
  w[0] = 1;
  w[16] = 2 ** -24;
  w[1] = 2 ** -24;
  w[17] = 2 ** -24;
  const ones = new Float32Array(32).fill(1);
  assert.equal(floatDot((i) => w[i]!, ones, 0, 32), Math.fround(1 + 2 ** -23));
});
