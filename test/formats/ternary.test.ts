// TQ1_0, TQ2_0, I2_S: layouts checked element by element against a second decoder written from the
// layout description; pack/packTernary/unpack/unpackTernary round trips; scale rules and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  i2_sFormat, ternarizeExact, tq1_0Format, tq2_0Format, type TernaryFormat,
} from '../../src/formats/index.js';
import { f16At, f16Value, randomCodes, randomFloats, refF32ToF16, bitsOf, rng } from './helpers.js';

const fround = Math.fround;
const lroundf = (x: number) => Math.sign(x) * Math.floor(Math.abs(x) + 0.5) + 0;

// ---- second decoders: code (0..3) of element e of a block, from the header comments ----

function tq2Code(block: Uint8Array, e: number): number {
  return (block[32 * (e >> 7) + (e & 31)]! >> (2 * ((e >> 5) & 3))) & 3;
}

/** [byte index, trit index] of element e in a TQ1_0 block. */
function tq1Where(e: number): [number, number] {
  if (e < 160) return [e % 32, Math.floor(e / 32)];
  if (e < 240) return [32 + ((e - 160) % 16), Math.floor((e - 160) / 16)];
  return [48 + ((e - 240) % 4), Math.floor((e - 240) / 4)];
}
function tq1Code(block: Uint8Array, e: number): number {
  const [i, n] = tq1Where(e);
  return ((((block[i]! * 3 ** n) % 256) * 3) >> 8);
}

function i2Code(bytes: Uint8Array, e: number): number {
  const blk = Math.floor(e / 128);
  const r = e % 128;
  return (bytes[32 * blk + (r % 32)]! >> (6 - 2 * Math.floor(r / 32))) & 3;
}

interface Case { f: TernaryFormat; block: number; blockBytes: number; dOffset: number; code: (b: Uint8Array, e: number) => number }
const TQ: Case[] = [
  { f: tq1_0Format, block: 256, blockBytes: 54, dOffset: 52, code: tq1Code },
  { f: tq2_0Format, block: 256, blockBytes: 66, dOffset: 64, code: tq2Code },
];

test('TQ1_0 / TQ2_0 packTernary: layout, d per block, round trip', () => {
  const r = rng(21);
  for (const { f, block, blockBytes, dOffset, code } of TQ) {
    for (const [rows, rowLength] of [[1, 256], [3, 512], [2, 1280]] as const) {
      const n = rows * rowLength;
      const codes = randomCodes(n, r);
      codes.fill(0, 256, 512); // one all-zero block
      const scale = 0.125;
      const bytes = f.packTernary(codes, scale, rowLength);
      assert.equal(bytes.length, (n / block) * blockBytes);
      for (let b = 0; b < n / block; b++) {
        const blk = bytes.subarray(b * blockBytes, (b + 1) * blockBytes);
        assert.equal(f16At(blk, dOffset), b === 1 ? 0 : 0x3000, `${f.name} block ${b} d`);
        for (let e = 0; e < block; e++) assert.equal(code(blk, e) - 1, codes[b * block + e], `${f.name} block ${b} element ${e}`);
      }
      const t = f.unpackTernary(bytes, n, rowLength);
      assert.deepEqual(t.codes, codes);
      assert.equal(t.scale, scale);
      const y = f.unpack(bytes, n, rowLength);
      for (let i = 0; i < n; i++) assert.equal(y[i], codes[i]! * scale);
    }
  }
});

test('TQ1_0 / TQ2_0 unpack decodes arbitrary bytes like dequantize_row_*', () => {
  const r = rng(22);
  for (const { f, block, blockBytes, dOffset, code } of TQ) {
    const nb = 4;
    const bytes = new Uint8Array(nb * blockBytes);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
    for (let b = 0; b < nb; b++) bytes[b * blockBytes + dOffset + 1] = Math.floor(r() * 0x78);
    const y = f.unpack(bytes, nb * block, block);
    for (let b = 0; b < nb; b++) {
      const blk = bytes.subarray(b * blockBytes, (b + 1) * blockBytes);
      const d = f16Value(f16At(blk, dOffset));
      for (let e = 0; e < block; e++) assert.equal(y[b * block + e], fround((code(blk, e) - 1) * d), `${f.name} ${b}/${e}`);
    }
  }
});

test('TQ1_0 / TQ2_0 pack is the reference quantizer (block absmax, lroundf)', () => {
  const r = rng(23);
  for (const { f, block, blockBytes, dOffset, code } of TQ) {
    const n = 3 * 512;
    const x = randomFloats(n, r, 0.3);
    x.set([1, 0.5, -0.5, 0.49999997, -0.50000006], 512); // amax 1 -> id 1: ties go away from zero
    x.fill(0, 1024, 1280); // all-zero block: d = 0, codes 0
    const bytes = f.pack(x, 512);
    for (let b = 0; b < n / block; b++) {
      const blk = bytes.subarray(b * blockBytes, (b + 1) * blockBytes);
      const xs = x.subarray(b * block, (b + 1) * block);
      const amax = xs.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const id = amax ? fround(1 / amax) : 0;
      assert.equal(f16At(blk, dOffset), refF32ToF16(bitsOf(amax)), `${f.name} block ${b} d`);
      for (let e = 0; e < block; e++) assert.equal(code(blk, e) - 1, lroundf(fround(xs[e]! * id)), `${f.name} ${b}/${e}`);
    }
    const tie = bytes.subarray(2 * blockBytes, 3 * blockBytes);
    assert.deepEqual([0, 1, 2, 3, 4].map((e) => code(tie, e) - 1), [1, 1, -1, 0, -1]);
    // codes * scale through pack gives the same bytes as packTernary
    const codes = randomCodes(n, r);
    const vals = Float32Array.from(codes, (c) => c * 0.0625);
    assert.deepEqual(f.pack(vals, 512), f.packTernary(codes, 0.0625, 512));
  }
});

test('TQ unpackTernary: one common scale, zero blocks may carry any d, mismatches are refused', () => {
  const r = rng(24);
  for (const { f, blockBytes, dOffset } of TQ) {
    const n = 20 * 256;
    const codes = randomCodes(n, r);
    codes.fill(0, 3 * 256, 4 * 256); // block 3 all zero
    const bytes = f.packTernary(codes, 0.25, 1280);
    bytes[3 * blockBytes + dOffset] = 0x55; // an arbitrary d on the zero block is fine
    bytes[3 * blockBytes + dOffset + 1] = 0x3c;
    const t = f.unpackTernary(bytes, n, 1280);
    assert.equal(t.scale, 0.25);
    assert.deepEqual(t.codes, codes);
    bytes[17 * blockBytes + dOffset + 1] ^= 0x04; // block 17 gets another d
    assert.throws(() => f.unpackTernary(bytes, n, 1280), /not ternary x one scale: block 17 has d=.* while others have 0\.25/);
    // all-zero tensor: scale 0
    const z = f.unpackTernary(f.packTernary(new Int8Array(512), 0.5, 256), 512, 256);
    assert.equal(z.scale, 0);
    assert.ok(z.codes.every((c) => c === 0));
    // scale rounded to f16 (the format has nothing finer), and refused when f16 cannot hold it
    assert.equal(f.unpackTernary(f.packTernary(Int8Array.of(...new Array(256).fill(1)), 0.1, 256), 256, 256).scale, f16Value(refF32ToF16(bitsOf(0.1))));
    assert.throws(() => f.packTernary(new Int8Array(256).fill(1), 1e6, 256), /does not fit/);
    assert.throws(() => f.packTernary(new Int8Array(256).fill(1), 1e-9, 256), /rounds to 0/);
    assert.throws(() => f.packTernary(Int8Array.of(...new Array(255).fill(0), 2), 1, 256), /code 255 is 2/);
    // shape errors name the row length and the block size
    assert.throws(() => f.packTernary(new Int8Array(512), 1, 128), /row length 128 is not a multiple of the block size 256/);
    assert.throws(() => f.unpackTernary(new Uint8Array(2 * blockBytes), 512, 128), /row length 128 is not a multiple of the block size 256/);
    assert.throws(() => f.unpackTernary(new Uint8Array(blockBytes + 1), 256, 256), /256 elements take \d+ bytes, but \d+ were given/);
  }
  // TQ2_0 code 3 is not ternary
  const bytes = tq2_0Format.packTernary(new Int8Array(256), 1, 256);
  bytes[33] = 0b00110000; // element 128 + 64 + 1 = 193
  assert.throws(() => tq2_0Format.unpackTernary(bytes, 256, 256), /element 193 \(block 0\) has code 3/);
});

test('I2_S: layout, scale tail, padding, round trip', () => {
  const r = rng(31);
  for (const [rows, rowLength] of [[1, 128], [4, 384], [3, 2560]] as const) {
    const n = rows * rowLength;
    const codes = randomCodes(n, r);
    const scale = fround(0.01 + r());
    const bytes = i2_sFormat.packTernary(codes, scale, rowLength);
    assert.equal(bytes.length, n / 4 + 32);
    for (let e = 0; e < n; e++) assert.equal(i2Code(bytes, e) - 1, codes[e], `element ${e}`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(dv.getFloat32(n / 4, true), scale);
    assert.ok(bytes.subarray(n / 4 + 4).every((b) => b === 0));
    const t = i2_sFormat.unpackTernary(bytes, n, rowLength);
    assert.deepEqual(t.codes, codes);
    assert.equal(t.scale, scale);
    const y = i2_sFormat.unpack(bytes, n, rowLength);
    for (let i = 0; i < n; i++) assert.equal(y[i], fround(codes[i]! * scale));
    // pack(codes * scale) = quantize_i2_s: same bytes
    assert.deepEqual(i2_sFormat.pack(Float32Array.from(codes, (c) => c * scale), rowLength), bytes);
  }
  const pad = Uint8Array.from({ length: 28 }, (_, i) => i + 1);
  const p = i2_sFormat.packTernary(new Int8Array(128), 1, 128, pad);
  assert.deepEqual(p.subarray(36), pad);
  assert.throws(() => i2_sFormat.packTernary(new Int8Array(128), 1, 128, new Uint8Array(3)), /padding must be 28 bytes/);
});

test('I2_S pack = quantize_i2_s: tensor absmax scale, sign codes, |x| < 1e-6 is zero', () => {
  const r = rng(32);
  const x = randomFloats(512, r, 2);
  x.set([9e-7, -9e-7, 1.01e-6, -1.01e-6, 1e-6, -0], 0); // f32(1e-6) is just below 1e-6: zero
  const bytes = i2_sFormat.pack(x, 256);
  const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.equal(new DataView(bytes.buffer).getFloat32(128, true), amax);
  for (let e = 0; e < 512; e++) {
    const want = Math.abs(x[e]!) < 1e-6 ? 0 : Math.sign(x[e]!);
    assert.equal(i2Code(bytes, e) - 1, want, `element ${e} (${x[e]})`);
  }
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((e) => i2Code(bytes, e) - 1), [0, 0, 1, -1, 0, 0]);
});

test('I2_S errors: row length, code 3, byte length', () => {
  assert.throws(() => i2_sFormat.packTernary(new Int8Array(256), 1, 64), /row length 64 is not a multiple of the block size 128/);
  assert.throws(() => i2_sFormat.unpackTernary(new Uint8Array(96), 256, 64), /row length 64 is not a multiple of the block size 128/);
  assert.throws(() => i2_sFormat.unpackTernary(new Uint8Array(63), 128, 128), /128 elements take 64 bytes, but 63 were given/);
  const bytes = i2_sFormat.packTernary(new Int8Array(256), 1, 128);
  bytes[32 + 5] = 0b00001100; // block 1, byte 5, shift 2 -> element 128 + 64 + 5 = 197
  assert.throws(() => i2_sFormat.unpackTernary(bytes, 256, 128), /element 197 has code 3/);
});

test('ternarizeExact: codes and scale of {-a, 0, +a}; names the first offending value', () => {
  const r = rng(41);
  const codes = randomCodes(1000, r);
  codes[0] = 0;
  const x = Float32Array.from(codes, (c) => c * 0.375);
  x[0] = -0;
  const t = ternarizeExact(x);
  assert.deepEqual(t.codes, codes);
  assert.equal(t.scale, 0.375);
  x[700] = 0.37;
  assert.throws(() => ternarizeExact(x), /not ternary x one scale: element 700 is 0\.37/);
  x[700] = NaN;
  assert.throws(() => ternarizeExact(x), /element 700 is NaN/);
  assert.equal(ternarizeExact(new Float32Array(8)).scale, 0);
  assert.throws(() => ternarizeExact(Float32Array.of(0, Infinity)), /element 1 is Infinity/);
});
