// The reference kernels against hand-worked values of SPEC.md §2 math.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceKernels, roundHalfEven } from '../../src/kernels/reference.js';

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
