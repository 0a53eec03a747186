// The KV cache's layout: rows written as (token, kvDim) land head-major, (kv head, position, dim),
// which is what Kernels.attention reads; f16 entries are the round-to-nearest-even of the f32 values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceKernels } from '../../src/kernels/reference.js';
import { f32ToF16 } from '../../src/formats/half.js';
import { KVCache } from '../../src/model/kv-cache.js';
import { mulberry32 } from '../helpers/random.js';

const k = createReferenceKernels();

for (const type of ['f32', 'f16'] as const) {
  test(`KV cache (${type}) stores each kv head's positions as one block`, () => {
    const nLayers = 2, ctx = 9, nKV = 3, hd = 4, kvDim = nKV * hd;
    const cache = new KVCache(k, nLayers, ctx, nKV, hd, type);
    assert.equal(cache.byteSize, 2 * nLayers * ctx * kvDim * (type === 'f16' ? 2 : 4));
    const rand = mulberry32(5);
    const rows = (n: number) => Float32Array.from({ length: n * kvDim }, () => rand() * 4 - 2);
    // a batch of 3 at position 0, then one token at 3, in layer 1 (layer 0 stays empty)
    const k0 = rows(3), v0 = rows(3), k1 = rows(1), v1 = rows(1);
    cache.write(1, 0, 3, k0, v0);
    cache.write(1, 3, 1, k1, v1);
    const expect = (x: number) => (type === 'f16' ? f32ToF16(x) : Math.fround(x));
    for (const [src, pos0, n, srcV] of [[k0, 0, 3, v0], [k1, 3, 1, v1]] as const) {
      for (let t = 0; t < n; t++) {
        for (let g = 0; g < nKV; g++) {
          for (let i = 0; i < hd; i++) {
            const at = (g * ctx + pos0 + t) * hd + i;
            assert.equal(cache.keys(1)[at], expect(src[t * kvDim + g * hd + i]!), `key t${pos0 + t} g${g} i${i}`);
            assert.equal(cache.values(1)[at], expect(srcV[t * kvDim + g * hd + i]!), `value t${pos0 + t} g${g} i${i}`);
          }
        }
      }
    }
    assert.ok(cache.keys(0).every((x) => x === 0), 'layer 0 untouched');
    // positions 4 .. ctx-1 of every head untouched
    for (let g = 0; g < nKV; g++) assert.ok(cache.keys(1).subarray((g * ctx + 4) * hd, (g + 1) * ctx * hd).every((x) => x === 0));
  });
}

test('KV cache rejects an unknown type', () => {
  assert.throws(() => new KVCache(k, 1, 4, 1, 4, 'q8_0' as never), /KV cache type must be f32 or f16, got 'q8_0'/);
});
