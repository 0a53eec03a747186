import { test } from 'node:test';
import assert from 'node:assert/strict';
import { q6_kFormat } from '../../src/formats/index.js';
import { f16Value, rng } from './helpers.js';

/** dequantize_row_q6_K, element by element from the layout description (a second implementation). */
function refValue(block: Uint8Array, e: number): number {
  const h = e >> 7; // half
  const r = e & 127;
  const l = r & 31;
  const k = r >> 5; // 0..3
  const ql = block[64 * h + l + 32 * (k & 1)]!;
  const low = k >= 2 ? ql >> 4 : ql & 15;
  const high = (block[128 + 32 * h + l]! >> (2 * k)) & 3;
  const q = (low | (high << 4)) - 32;
  const sc = (block[192 + (e >> 4)]! << 24) >> 24;
  const d = f16Value(block[208]! | (block[209]! << 8));
  return Math.fround(Math.fround(d * sc) * q);
}

test('Q6_K unpack matches dequantize_row_q6_K on random blocks', () => {
  const r = rng(9);
  const nb = 6;
  const bytes = new Uint8Array(nb * 210);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  for (let b = 0; b < nb; b++) bytes[b * 210 + 209] = Math.floor(r() * 0x78); // finite d (exponent < 31)
  const y = q6_kFormat.unpack(bytes, nb * 256, 512);
  for (let b = 0; b < nb; b++) {
    const blk = bytes.subarray(210 * b, 210 * b + 210);
    for (let e = 0; e < 256; e++) assert.equal(y[256 * b + e], refValue(blk, e), `block ${b} element ${e}`);
  }
  assert.throws(() => q6_kFormat.unpack(new Uint8Array(210), 256, 128), /row length 128 is not a multiple of the block size 256/);
});

test('Q6_K pack: unpack(pack(x)) is within one quantization step of x', () => {
  const r = rng(11);
  const n = 4 * 256;
  const x = new Float32Array(n);
  // sub-blocks of very different sizes (the int8 scales must tell them apart), and an all-zero one
  for (let i = 0; i < n; i++) x[i] = (r() * 2 - 1) * (1 + ((i >> 4) % 7) * 3) * (i >= 256 && i < 272 ? 0 : 1);
  const bytes = q6_kFormat.pack!(x, 512);
  assert.equal(bytes.length, 4 * 210);
  const y = q6_kFormat.unpack(bytes, n, 512);
  for (let j = 0; j < n / 16; j++) {
    let amax = 0;
    for (let i = 0; i < 16; i++) amax = Math.max(amax, Math.abs(x[16 * j + i]!));
    for (let i = 0; i < 16; i++) {
      const e = 16 * j + i;
      assert.ok(Math.abs(y[e]! - x[e]!) <= amax / 31 + 1e-6, `element ${e}: ${y[e]} vs ${x[e]} (step ${amax / 31})`);
    }
  }
  assert.deepEqual(Array.from(y.subarray(256, 272)), new Array(16).fill(0));
});
