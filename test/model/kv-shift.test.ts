// Context shift (model/kv-shift.ts): rows after the dropped span move down and their keys end up
// rotated for their new positions, as if RoPE had been applied there; values only move.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceKernels } from '../../src/kernels/reference.js';
import { f16ToF32 } from '../../src/formats/half.js';
import { KVCache } from '../../src/model/kv-cache.js';
import { shiftKV } from '../../src/model/kv-shift.js';
import { shiftSpan } from '../../src/generate/generate.js';
import { mulberry32 } from '../helpers/random.js';

const k = createReferenceKernels();

/** NEOX RoPE of one head's vector at position p (pairs i, i + half), in float64. */
function rope(x: Float64Array, p: number, half: number, theta: number): Float64Array {
  const y = Float64Array.from(x);
  for (let i = 0; i < half; i++) {
    const a = p * Math.pow(theta, (-2 * i) / (2 * half));
    y[i] = x[i]! * Math.cos(a) - x[i + half]! * Math.sin(a);
    y[i + half] = x[i]! * Math.sin(a) + x[i + half]! * Math.cos(a);
  }
  return y;
}

for (const type of ['f32', 'f16'] as const) {
  test(`shiftKV (${type}): keys re-rotated to their new positions, values moved, the first rows untouched`, () => {
    const nLayers = 2, ctx = 32, nKV = 2, hd = 8, half = 4, theta = 10000, kvDim = nKV * hd, n = 20, keep = 3, discard = 7;
    const cache = new KVCache(k, nLayers, ctx, nKV, hd, type);
    const rand = mulberry32(9);
    // unrotated keys per (layer, position, head), written rotated at their position, as the forward pass does
    const raw: Float64Array[][][] = [];
    for (let l = 0; l < nLayers; l++) {
      raw.push([]);
      const kRows = new Float32Array(n * kvDim), vRows = new Float32Array(n * kvDim);
      for (let p = 0; p < n; p++) {
        raw[l]!.push([]);
        for (let g = 0; g < nKV; g++) {
          const x = Float64Array.from({ length: hd }, () => rand() * 2 - 1);
          raw[l]![p]!.push(x);
          kRows.set(rope(x, p, half, theta), p * kvDim + g * hd);
          for (let i = 0; i < hd; i++) vRows[p * kvDim + g * hd + i] = rand() * 2 - 1;
        }
      }
      cache.write(l, 0, n, kRows, vRows);
    }
    const before = [0, 1].map((l) => Float32Array.from(cache.values(l), (x) => (type === 'f16' ? f16ToF32(x) : x)));
    assert.equal(shiftKV(cache, keep, discard, n, { half, theta }), n - discard);
    const read = (x: number) => (type === 'f16' ? f16ToF32(x) : x);
    const tol = type === 'f16' ? 4e-3 : 1e-5;
    for (let l = 0; l < nLayers; l++) {
      for (let g = 0; g < nKV; g++) {
        for (let p = 0; p < n - discard; p++) {
          const from = p < keep ? p : p + discard;
          const want = rope(raw[l]![from]![g]!, p, half, theta);
          for (let i = 0; i < hd; i++) {
            const at = (g * ctx + p) * hd + i;
            assert.ok(Math.abs(read(cache.keys(l)[at]!) - want[i]!) < tol, `key l${l} g${g} p${p} i${i}: ${read(cache.keys(l)[at]!)} vs ${want[i]}`);
            assert.equal(read(cache.values(l)[at]!), before[l]![(g * ctx + from) * hd + i]);
          }
        }
      }
    }
  });
}

test('shiftKV refuses spans outside the cache', () => {
  const cache = new KVCache(k, 1, 16, 1, 4, 'f32');
  assert.throws(() => shiftKV(cache, 4, 10, 12, { half: 2, theta: 10000 }), /context shift: keep 4, discard 10 of 12/);
  assert.equal(shiftKV(cache, 4, 0, 12, { half: 2, theta: 10000 }), 12);
});

test("shiftSpan: llama-server's n_keep (+ BOS, at most ctx - 4) and half of the rest, or n_discard", () => {
  assert.deepEqual(shiftSpan({ keep: 0 }, 255, 256, true), { keep: 1, n: 127 });
  assert.deepEqual(shiftSpan({ keep: 10 }, 255, 256, false), { keep: 10, n: 122 });
  assert.deepEqual(shiftSpan({ keep: 0, discard: 16 }, 255, 256, true), { keep: 1, n: 16 });
  assert.deepEqual(shiftSpan({ keep: 1000 }, 255, 256, true), { keep: 252, n: 1 });
  assert.equal(shiftSpan({ keep: 300 }, 5, 8, false), null); // keep 4, one position left: nothing can go
});
