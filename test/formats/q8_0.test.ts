import { test } from 'node:test';
import assert from 'node:assert/strict';
import { q8_0Format } from '../../src/formats/index.js';
import { f16At, f16Value, randomFloats, refF32ToF16, bitsOf, rng } from './helpers.js';

const fround = Math.fround;
/** C roundf: ties away from zero (inputs are f32, so |x| + 0.5 is exact). */
const roundf = (x: number) => Math.sign(x) * Math.floor(Math.abs(x) + 0.5);

/** Second small implementation of quantize_row_q8_0_ref: per block { d f16 bits, qs }. */
function refQuantize(x: Float32Array): { d: number; qs: number[] }[] {
  const out = [];
  for (let b = 0; b < x.length / 32; b++) {
    const blk = Array.from(x.subarray(32 * b, 32 * b + 32));
    const amax = blk.reduce((m, v) => (Math.abs(v) > m ? Math.abs(v) : m), 0);
    const d = fround(amax / 127);
    const id = d ? fround(1 / d) : 0;
    out.push({ d: refF32ToF16(bitsOf(d)), qs: blk.map((v) => roundf(fround(v * id)) + 0) });
  }
  return out;
}

test('Q8_0 pack is byte-exact with the reference quantizer; unpack = qs * f16(d)', () => {
  const r = rng(5);
  for (const [rows, rowLength] of [[1, 32], [3, 96], [5, 256]] as const) {
    const x = randomFloats(rows * rowLength, r, 1 + r() * 3);
    // a block whose scale makes x * id land exactly on .5 ties: amax 127 -> d = 1, id = 1
    if (rowLength >= 64) x.set([127, 2.5, -2.5, 0.5, -0.5, 126.5, -3.5, 1.5], 32);
    const bytes = q8_0Format.pack!(x, rowLength);
    assert.equal(bytes.length, (rows * rowLength / 32) * 34);
    const ref = refQuantize(x);
    const y = q8_0Format.unpack(bytes, x.length, rowLength);
    for (let b = 0; b < ref.length; b++) {
      const o = 34 * b;
      assert.equal(f16At(bytes, o), ref[b]!.d, `block ${b} d`);
      for (let j = 0; j < 32; j++) {
        const q = (bytes[o + 2 + j]! << 24) >> 24;
        assert.equal(q, ref[b]!.qs[j], `block ${b} element ${j}`);
        assert.equal(y[32 * b + j], fround(q * f16Value(ref[b]!.d)));
      }
    }
    if (rowLength >= 64) {
      const q = Array.from(bytes.subarray(36, 44), (v) => (v << 24) >> 24);
      assert.deepEqual(q, [127, 3, -3, 1, -1, 127, -4, 2]); // ties away from zero
    }
  }
});

test('Q8_0 zero block, shape errors, non-finite input', () => {
  const bytes = q8_0Format.pack!(new Float32Array(32), 32);
  assert.deepEqual(Array.from(bytes), new Array(34).fill(0));
  assert.throws(() => q8_0Format.pack!(new Float32Array(48), 48), /row length 48 is not a multiple of the block size 32/);
  assert.throws(() => q8_0Format.unpack(new Uint8Array(34 * 3), 96, 48), /row length 48 is not a multiple of the block size 32/);
  const x = new Float32Array(64);
  x[40] = NaN;
  assert.throws(() => q8_0Format.pack!(x, 64), /element 40/);
});
