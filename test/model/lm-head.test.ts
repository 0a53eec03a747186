// The output head loaded from each stored format: 'f16' computes with the file's own values (F16
// as f16, F32 as is, Q8_0 / Q6_K / BF16 as their exact dequantized f32), 'int8' with int8 rows;
// across load chunks (16384 rows) and for batches, on the test kernels and the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayBufferSource } from '../../src/gguf/source.js';
import type { GGUFTensor } from '../../src/gguf/reader.js';
import { GGMLType } from '../../src/gguf/types.js';
import { dequantize, f32ToF16, getFormat } from '../../src/formats/index.js';
import { createReferenceKernels, floatDot } from '../../src/kernels/reference.js';
import { loadLmHead } from '../../src/model/lm-head.js';
import { testKernels } from '../helpers/kernels.js';

let seed = 3;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;

/** A tensor of `rows` rows of `cols` in `type`, at offset 16 of an in-memory file. */
function tensor(type: number, rows: number, cols: number): { t: GGUFTensor; source: ArrayBufferSource; values: Float32Array } {
  const raw = Float32Array.from({ length: rows * cols }, () => rnd() * 0.2);
  let bytes: Uint8Array;
  if (type === GGMLType.F32) bytes = new Uint8Array(raw.buffer);
  else if (type === GGMLType.F16) bytes = new Uint8Array(Uint16Array.from(raw, (v) => f32ToF16(v)).buffer);
  else bytes = getFormat(type).pack!(raw, cols);
  const file = new Uint8Array(16 + bytes.length);
  file.set(bytes, 16);
  const source = new ArrayBufferSource(file.buffer);
  const t = { name: 'token_embd.weight', type, dims: [cols, rows], nElements: rows * cols, byteSize: bytes.length, offset: 16, relativeOffset: 0,
    read: () => source.read(16, bytes.length), readInto: async () => {} } as GGUFTensor;
  return { t, source, values: dequantize(type, bytes, rows * cols, cols) };
}

for (const [name, type] of [['F16', GGMLType.F16], ['F32', GGMLType.F32], ['Q8_0', GGMLType.Q8_0], ['BF16', GGMLType.BF16]] as const) {
  test(`f16 head from ${name} rows: the stored values, f32 activations, across load chunks and batches`, async () => {
    for (const k of [createReferenceKernels(), await testKernels()]) {
      const rows = 16384 + 37, cols = 64; // two load chunks
      const { t, source, values } = tensor(type, rows, cols);
      const head = await loadLmHead(k, t, source, rows, cols, 'f16');
      assert.equal(head.precision, 'f16');
      const nTok = 3;
      const x = Float32Array.from({ length: nTok * cols }, () => rnd() * 4);
      const out = new Float32Array(nTok * rows);
      head.forward(k, x, nTok, out);
      for (const r of [0, 1, 16383, 16384, rows - 1]) {
        for (let tok = 0; tok < nTok; tok++) {
          const expect = floatDot((i) => values[r * cols + i]!, x, tok * cols, cols);
          assert.equal(out[tok * rows + r], expect, `${k.name} row ${r} token ${tok}`);
        }
      }
      // one token at a time gives the same logits as the batch
      const one = new Float32Array(rows);
      head.forward(k, x.subarray(cols, 2 * cols), 1, one);
      assert.deepEqual(one, out.subarray(rows, 2 * rows));
      // the int8 head of the same rows is close, not equal
      const int8 = await loadLmHead(k, t, source, rows, cols, 'int8');
      const o8 = new Float32Array(nTok * rows);
      int8.forward(k, x, nTok, o8);
      let worst = 0;
      for (let i = 0; i < o8.length; i++) worst = Math.max(worst, Math.abs(o8[i]! - out[i]!));
      assert.ok(worst > 0 && worst < 0.1, `${k.name}: int8 vs f16 head ${worst}`);
    }
  });
}
