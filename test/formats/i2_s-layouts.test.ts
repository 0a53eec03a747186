// bitnet.cpp's three I2_S byte orders (x86, arm, x86-interleaved): pack in each and read back, the
// positions bitnet.cpp's quantize_i2_s gives a few elements, and what reading in the wrong layout does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkI2SLayout, i2_sFormat, I2S_LAYOUTS, packI2S, ternaryFromTensor, unpackI2STernary, type I2SLayout,
} from '../../src/formats/index.js';
import { i2sPosition } from '../../src/formats/i2_s-layouts.js';
import { randomCodes, rng } from './helpers.js';

const ROWS = 8;
const K = 256;

test('pack in each layout, read back the same codes and scale', () => {
  const r = rng(3);
  for (const layout of I2S_LAYOUTS) {
    const codes = randomCodes(ROWS * K, r);
    const bytes = packI2S(codes, 0.75, K, layout);
    assert.equal(bytes.length, (ROWS * K) / 4 + 32, layout);
    const back = unpackI2STernary(bytes, ROWS * K, K, layout);
    assert.deepEqual(back.codes, codes, layout);
    assert.equal(back.scale, 0.75);
    assert.deepEqual(ternaryFromTensor(i2_sFormat.type, bytes, ROWS * K, K, layout).codes, codes, `${layout} via the registry`);
  }
});

test('x86 is the layout of i2_s.ts (the official file), byte for byte', () => {
  const codes = randomCodes(ROWS * K, rng(4));
  assert.deepEqual(packI2S(codes, 1.5, K, 'x86'), i2_sFormat.packTernary(codes, 1.5, K));
});

/** The byte and shift a single +1 lands at when packed alone (every other element 0 = code 1). */
function whereIs(layout: I2SLayout, e: number): { byte: number; shift: number } {
  const codes = new Int8Array(ROWS * K);
  codes[e] = 1; // code 2 = binary 10, every other code 01
  const bytes = packI2S(codes, 1, K, layout);
  for (let b = 0; b < (ROWS * K) / 4; b++) {
    if (bytes[b] === 0x55) continue;
    for (const shift of [6, 4, 2, 0]) if (((bytes[b]! >> shift) & 3) === 2) return { byte: b, shift };
  }
  throw new Error('not found');
}

test("element positions follow bitnet.cpp's quantize_i2_s in each build", () => {
  // x86 ACT_PARALLEL: 128-element blocks of 32 bytes, element j of a block at byte j % 32, shift 6 - 2 * (j / 32)
  assert.deepEqual(whereIs('x86', 0), { byte: 0, shift: 6 });
  assert.deepEqual(whereIs('x86', 33), { byte: 1, shift: 4 });
  assert.deepEqual(whereIs('x86', 128 + 127), { byte: 32 + 31, shift: 0 });
  // ARM: 64-element blocks of 16 bytes, element j at byte j % 16, shift 6 - 2 * (j / 16)
  assert.deepEqual(whereIs('arm', 16), { byte: 0, shift: 4 });
  assert.deepEqual(whereIs('arm', 63), { byte: 15, shift: 0 });
  assert.deepEqual(whereIs('arm', 64 + 20), { byte: 16 + 4, shift: 4 });
  // x86 without ACT_PARALLEL: rows 4g..4g+3 share byte g*K + col, at shifts 6, 4, 2, 0
  assert.deepEqual(whereIs('x86-interleaved', 0 * K + 5), { byte: 5, shift: 6 });
  assert.deepEqual(whereIs('x86-interleaved', 1 * K + 5), { byte: 5, shift: 4 });
  assert.deepEqual(whereIs('x86-interleaved', 3 * K + 9), { byte: 9, shift: 0 });
  assert.deepEqual(whereIs('x86-interleaved', 4 * K + 0), { byte: K, shift: 6 });
  for (const layout of I2S_LAYOUTS) {
    for (const e of [0, 1, 31, 64, 200, 511, 1000, ROWS * K - 1]) assert.deepEqual(i2sPosition(layout, e, K), whereIs(layout, e), `${layout} ${e}`);
  }
});

test('reading one layout as another gives other codes (nothing in the bytes tells them apart)', () => {
  const codes = randomCodes(ROWS * K, rng(5));
  for (const written of I2S_LAYOUTS) {
    const bytes = packI2S(codes, 1, K, written);
    for (const read of I2S_LAYOUTS) {
      if (read === written) continue;
      const got = unpackI2STernary(bytes, ROWS * K, K, read); // no error: every byte is valid in every layout
      assert.notDeepEqual(got.codes, codes, `${written} read as ${read}`);
    }
  }
});

test('layout errors are clear', () => {
  assert.throws(() => checkI2SLayout('neon'), /unknown I2_S layout 'neon'; known: x86, arm, x86-interleaved/);
  assert.throws(() => packI2S(new Int8Array(6 * K), 1, K, 'x86-interleaved'), /6 rows is not a multiple of 4/);
  const bad = packI2S(new Int8Array(ROWS * K), 1, K, 'arm');
  bad[3] = 0xff; // four code-3 pairs
  assert.throws(() => unpackI2STernary(bad, ROWS * K, K, 'arm'), /I2_S \(arm\): element \d+ has code 3/);
});
