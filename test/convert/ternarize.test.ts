// The one ternarization: absmean with torch.round (half to even) semantics, the 1e-5 clamp, the
// f16-rounded scale, HF's stacked-row-block unpacking and the refusal of code 3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ternarizeLatent, unpackPrepacked, roundScaleToF16, exactTernaryCodes, scalarOf } from '../../src/convert/ternarize.js';
import { hfPack, referenceTernary, rng, f16RoundRef } from './helpers.js';

test('exact ties W*s = +-0.5 round to even (0); +-1.5 and beyond clamp to +-1', () => {
  // mean |W| = (0.5+0.5+1.5+1.5+0.25+3.75) / 6 = 8/6... choose values with mean exactly 1:
  const w = new Float32Array([0.5, -0.5, 1.5, -1.5, 0.25, -1.75]); // sum |w| = 6, mean 1, s = 1
  const r = ternarizeLatent(w, 't');
  assert.deepEqual([...r.codes], [0, 0, 1, -1, 0, -1]);
  assert.equal(r.scale, 1);
  // just above a tie goes up (JavaScript's Math.round would also send exact ties up: we must not)
  const w2 = new Float32Array([0.5000001, -0.5000001, 1, -1, 1, -1]);
  assert.deepEqual([...ternarizeLatent(w2, 't').codes].slice(0, 2), [1, -1]);
});

test('beta is clamped at 1e-5 (all-zero / tiny tensors)', () => {
  const r = ternarizeLatent(new Float32Array(8), 'z');
  assert.deepEqual([...r.codes], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(r.scale, f16RoundRef(Math.fround(1e-5)));
  const tiny = new Float32Array([1e-6, -1e-6, 8e-6, 0]);
  assert.deepEqual([...ternarizeLatent(tiny, 'tiny').codes], [0, 0, 1, 0]);
});

test('matches the reference on random tensors and keeps about a third zeros', () => {
  const r = rng(7);
  const w = new Float32Array(4096);
  for (let i = 0; i < w.length; i++) w[i] = r.normal() * 0.03;
  const got = ternarizeLatent(w, 'w');
  const want = referenceTernary(w);
  assert.deepEqual(got.codes, want.codes);
  assert.equal(got.scale, want.scale);
  const zeros = got.codes.filter((c) => c === 0).length / w.length;
  assert.ok(zeros > 0.25 && zeros < 0.45, `zeros ${zeros}`);
});

test('non-finite weights are refused naming the tensor', () => {
  assert.throws(() => ternarizeLatent(new Float32Array([1, NaN, 2]), 'blk.q'), /tensor 'blk.q': element 1 is NaN/);
  assert.throws(() => ternarizeLatent(new Float32Array([1, Infinity]), 'blk.q'), /element 1 is Infinity/);
});

test('scale rounding to f16 and its limits', () => {
  assert.equal(roundScaleToF16(0.1, 's'), f16RoundRef(0.1));
  assert.notEqual(roundScaleToF16(0.1, 's'), Math.fround(0.1));
  assert.equal(roundScaleToF16(0.125, 's'), 0.125);
  assert.throws(() => roundScaleToF16(1e6, 'big'), /tensor 'big': scale 1000000 is too large/);
  assert.throws(() => roundScaleToF16(1e-9, 'small'), /rounds to 0/);
});

test('pre-packed unpacking follows transformers (four stacked row blocks), checked against its packer', () => {
  const m = 8, k = 3;
  const r = rng(3);
  const codes = new Int8Array(m * k);
  for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(r.next() * 3) - 1;
  const packed = hfPack(codes, m, k);
  assert.deepEqual(unpackPrepacked(packed, m / 4, k, 'p'), codes);
  // explicit layout: byte [r, c] bits 2i..2i+1 hold row i*(m/4)+r
  const one = new Uint8Array(2 * 1);
  one[1] = (2 << 0) | (0 << 2) | (1 << 4) | (2 << 6); // rows 1, 3, 5, 7 of an 8x1 tensor
  one[0] = 0x55; // rows 0, 2, 4, 6 all code 1 (0)
  assert.deepEqual([...unpackPrepacked(one, 2, 1, 'p')], [0, 1, 0, -1, 0, 0, 0, 1]);
});

test('a pre-packed code 3 is refused naming the tensor and the element', () => {
  const packed = new Uint8Array([0x55, 0x55, 0x55 | (3 << 4), 0x55]); // [2, 2] packed -> [8, 2]
  assert.throws(
    () => unpackPrepacked(packed, 2, 2, 'model.layers.0.mlp.up_proj.weight'),
    /tensor 'model.layers.0.mlp.up_proj.weight' is not ternary: packed element \[5, 0\].*code 3/,
  );
});

test('exact ternary floats and scalar weight scales', () => {
  assert.deepEqual([...exactTernaryCodes(new Float32Array([1, 0, -1, -0]), 'e')], [1, 0, -1, 0]);
  assert.throws(() => exactTernaryCodes(new Float32Array([1, 0.5]), 'e'), /tensor 'e' should hold ternary values.*element 1 is 0.5/);
  assert.equal(scalarOf(new Float32Array([2.5]), 's'), 2.5);
  assert.throws(() => scalarOf(new Float32Array([0]), 's'), /finite and nonzero/);
  assert.throws(() => scalarOf(new Float32Array([1, 2]), 's'), /single scalar/);
});

test('the 16-bit table path gives exactly the float path results (BF16 and F16)', async () => {
  const { ternarize16 } = await import('../../src/convert/ternarize.js');
  const { encode, bf16Exact } = await import('./helpers.js');
  const r = rng(11);
  const w = new Float32Array(3000);
  for (let i = 0; i < w.length; i++) w[i] = bf16Exact(r.normal() * 0.02);
  w[5] = 0;
  w[6] = -0;
  const bits = new Uint16Array(encode(w, 'BF16').buffer);
  const a = ternarize16(bits, 'BF16', 'b');
  const b = ternarizeLatent(w, 'b');
  assert.deepEqual(a.codes, b.codes);
  assert.equal(a.scale, b.scale);
  // F16 patterns: decode them independently (f16 -> f32 exact), compare
  const h = new Uint16Array(2000);
  for (let i = 0; i < h.length; i++) h[i] = (Math.floor(r.next() * 0x7800)) | (r.next() < 0.5 ? 0x8000 : 0) ; // finite f16
  const { f16ToF32 } = await import('../../src/formats/index.js');
  const hv = Float32Array.from(h, (x) => f16ToF32(x));
  const c = ternarize16(h, 'F16', 'h');
  const d = ternarizeLatent(hv, 'h');
  assert.deepEqual(c.codes, d.codes);
  assert.equal(c.scale, d.scale);
  // non-finite patterns are refused
  assert.throws(() => ternarize16(new Uint16Array([0x3f80, 0x7fc0]), 'BF16', 'n'), /tensor 'n': element 1 is NaN/);
  assert.throws(() => ternarize16(new Uint16Array([0x7c00]), 'F16', 'i'), /element 0 is infinite/);
});
