// The word-at-a-time ternary decoders: I2_S has a word path (4-byte aligned input) and a byte path
// (any alignment), which must agree and both refuse code 3; TQ2_0 decodes words from unaligned blocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { i2_sFormat } from '../../src/formats/index.js';

function randomCodes(n: number, seed: number): Int8Array {
  const c = new Int8Array(n);
  for (let i = 0; i < n; i++) c[i] = ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) % 3 - 1;
  return c;
}

test('aligned and unaligned I2_S input unpack to the same codes', () => {
  const codes = randomCodes(3 * 256, 5);
  const packed = i2_sFormat.packTernary(codes, 0.25, 256);
  const unaligned = new Uint8Array(packed.length + 1).subarray(1);
  unaligned.set(packed);
  assert.notEqual(unaligned.byteOffset % 4, 0);
  const a = i2_sFormat.unpackTernary(packed, codes.length, 256);
  const b = i2_sFormat.unpackTernary(unaligned, codes.length, 256);
  assert.deepEqual(a.codes, codes);
  assert.deepEqual(b.codes, codes);
  assert.equal(a.scale, 0.25);
  assert.equal(b.scale, 0.25);
});

test('code 3 is refused on both paths', () => {
  const codes = randomCodes(256, 9);
  const packed = i2_sFormat.packTernary(codes, 1, 256);
  packed[40] |= 0xc0; // element 128 + 8 (block 1, byte 8, shift 6) becomes code 3
  const unaligned = new Uint8Array(packed.length + 3).subarray(3);
  unaligned.set(packed);
  assert.throws(() => i2_sFormat.unpackTernary(packed, 256, 256), /element \d+ has code 3/);
  assert.throws(() => i2_sFormat.unpackTernary(unaligned, 256, 256), /element \d+ has code 3/);
});

test('TQ2_0 (word-at-a-time decode): odd blocks are not 4-byte aligned; codes, code 3 and all-zero blocks', async () => {
  const { tq2_0Format } = await import('../../src/formats/index.js');
  const codes = randomCodes(4 * 256, 13);
  codes.fill(0, 256, 512); // block 1 all zero: its d is 0 and must not disturb the common scale
  const packed = tq2_0Format.packTernary(codes, 0.5, 512);
  const t = tq2_0Format.unpackTernary(packed, codes.length, 512);
  assert.deepEqual(t.codes, codes);
  assert.equal(t.scale, 0.5);
  const bad = packed.slice();
  bad[66 + 5] = 0xff; // block 1 (starts at byte 66), byte 5: four elements become code 3
  assert.throws(() => tq2_0Format.unpackTernary(bad, codes.length, 512), /element 261 \(block 1\) has code 3/);
});
