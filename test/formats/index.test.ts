import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dequantize, f16Format, getFormat, getTernaryFormat, q8_0Format, ternaryFromTensor, tq2_0Format,
} from '../../src/formats/index.js';
import { GGMLType, typeGeometry } from '../../src/gguf/types.js';

test('registry: every format by type id, byte sizes agree with the GGUF geometry', () => {
  const ids = [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q6_K, GGMLType.TQ1_0, GGMLType.TQ2_0, GGMLType.I2_S];
  for (const id of ids) {
    const f = getFormat(id);
    assert.equal(f.type, id);
    const g = typeGeometry(id);
    if (g) {
      assert.equal(f.name, g.name);
      assert.equal(f.blockSize, g.blockSize);
      assert.equal(f.byteSize(4 * 1024, 1024), (4 * 1024 / g.blockSize) * g.typeSize);
    } else {
      assert.equal(f.name, 'I2_S');
      assert.equal(f.byteSize(4 * 1024, 1024), 1024 + 32);
    }
  }
  assert.deepEqual([34, 35, 36].map((t) => getTernaryFormat(t)?.name), ['TQ1_0', 'TQ2_0', 'I2_S']);
  assert.equal(getTernaryFormat(8), undefined);
  assert.throws(() => getFormat(12), /no weight format for ggml type id 12/);
});

test('dequantize and ternaryFromTensor dispatch by type', () => {
  const codes = Int8Array.from({ length: 512 }, (_, i) => ((i * 7) % 3) - 1);
  const vals = Float32Array.from(codes, (c) => c * 0.5);
  const f16 = f16Format.pack!(vals, 256);
  assert.deepEqual(dequantize(1, f16, 512, 256), vals);
  assert.deepEqual(ternaryFromTensor(1, f16, 512, 256), { codes, scale: 0.5 });
  const tq2 = tq2_0Format.packTernary(codes, 0.5, 256);
  assert.deepEqual(ternaryFromTensor(35, tq2, 512, 256), { codes, scale: 0.5 });
  assert.deepEqual(dequantize(35, tq2, 512, 256), vals);
  const q8 = q8_0Format.pack!(vals, 256);
  assert.throws(() => ternaryFromTensor(8, q8, 512, 256), /Q8_0 tensors cannot be read as ternary weights/);
  assert.throws(() => ternaryFromTensor(99, q8, 512, 256), /type id 99 tensors cannot be read as ternary/);
  assert.throws(() => dequantize(99, q8, 512, 256), /no weight format for ggml type id 99/);
});
