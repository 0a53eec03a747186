// The formats against files written by llama.cpp (TQ1_0, TQ2_0) and the bitnet.cpp fork (I2_S):
// every ternary tensor decodes to the same codes and scale as the F32 file's tensor, and packing
// those codes reproduces the file's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF, type GGUFFile } from '../../src/gguf/index.js';
import {
  dequantize, getTernaryFormat, i2_sFormat, ternarizeExact, ternaryFromTensor, type TernaryTensor,
} from '../../src/formats/index.js';
import { oracleArrayBuffer } from '../helpers/oracle.js';

const files = new Map<string, Promise<GGUFFile>>();
function open(name: string): Promise<GGUFFile> {
  let f = files.get(name);
  if (!f) files.set(name, (f = readGGUF(oracleArrayBuffer(name + '.gguf'))));
  return f;
}

async function floatTernary(f32: GGUFFile, name: string): Promise<TernaryTensor> {
  const t = f32.tensor(name);
  assert.ok(t, `${name} in the F32 file`);
  assert.equal(t.type, 0);
  return ternarizeExact(dequantize(0, await t.read(), t.nElements, t.dims[0]!));
}

const PAIRS = [
  ['bitnet-tiny-silu-tq1_0', 'bitnet-tiny-silu-f32', 34],
  ['bitnet-tiny-silu-tq2_0', 'bitnet-tiny-silu-f32', 35],
  ['bitnet-tiny-relu2-tq1_0', 'bitnet-tiny-relu2-f32', 34],
  ['bitnet-tiny-relu2-tq2_0', 'bitnet-tiny-relu2-f32', 35],
  ['bitnet-tiny-silu-i2_s', 'bitnet-tiny-silu-f32', 36],
] as const;

for (const [qName, fName, type] of PAIRS) {
  test(`${qName}: unpackTernary = ternarizeExact(F32), packTernary reproduces the bytes`, async () => {
    const [q, f] = await Promise.all([open(qName), open(fName)]);
    const format = getTernaryFormat(type)!;
    const ternary = q.tensors.filter((t) => t.type === type);
    assert.equal(ternary.length, 14); // 7 per layer, 2 layers
    for (const t of ternary) {
      const bytes = await t.read();
      const rowLength = t.dims[0]!;
      const want = await floatTernary(f, t.name);
      const got = format.unpackTernary(bytes, t.nElements, rowLength);
      assert.deepEqual(got.codes, want.codes, `${t.name} codes`);
      assert.equal(got.scale, want.scale, `${t.name} scale`);
      assert.equal(got.scale, t.name.includes('attn_v') ? 0.0625 : 0.125);
      assert.deepEqual(ternaryFromTensor(type, bytes, t.nElements, rowLength), got);
      const floats = dequantize(0, await f.tensor(t.name)!.read(), t.nElements, rowLength);
      assert.deepEqual(format.unpack(bytes, t.nElements, rowLength), floats, `${t.name} dequantized`);
      if (type !== 36) {
        assert.deepEqual(format.packTernary(want.codes, want.scale, rowLength), bytes, `${t.name} packTernary bytes`);
        assert.deepEqual(format.pack(floats, rowLength), bytes, `${t.name} pack (reference quantizer) bytes`);
      } else {
        // I2_S: packed codes and scale exact; the 28 padding bytes are not written by bitnet.cpp (checked below).
        const n4 = t.nElements / 4 + 4;
        assert.deepEqual(format.packTernary(want.codes, want.scale, rowLength).subarray(0, n4), bytes.subarray(0, n4));
        assert.deepEqual(format.pack(floats, rowLength).subarray(0, n4), bytes.subarray(0, n4));
      }
    }
  });
}

test('I2_S file: padding is stale bytes of the quantizer\'s reused buffer; with it, packTernary is byte-exact', async () => {
  // llama-quantize converts tensors in file order into one reused work buffer; quantize_i2_s writes
  // n/4 + 4 bytes, so bytes n/4+4 .. n/4+31 keep whatever the previous converted tensor left there
  // (token_embd's F16 bytes for the first one). Norms are copied unconverted and do not touch it.
  const [q, f] = await Promise.all([open('bitnet-tiny-silu-i2_s'), open('bitnet-tiny-silu-f32')]);
  const work = new Uint8Array(1 << 20);
  let checked = 0;
  for (const t of q.tensors) {
    const bytes = await t.read();
    if (t.type === 1) work.set(bytes, 0);
    if (t.type !== 36) continue;
    const n4 = t.nElements / 4 + 4;
    const want = await floatTernary(f, t.name);
    const packed = i2_sFormat.packTernary(want.codes, want.scale, t.dims[0]!, work.slice(n4, n4 + 28));
    assert.deepEqual(packed, bytes, `${t.name}`);
    work.set(bytes.subarray(0, n4), 0);
    checked++;
  }
  assert.equal(checked, 14);
});

test('I2_S file: token_embd F16 unpacks to the F32 file\'s values; norms stay F32', async () => {
  const [q, f] = await Promise.all([open('bitnet-tiny-silu-i2_s'), open('bitnet-tiny-silu-f32')]);
  const te = q.tensor('token_embd.weight')!;
  assert.equal(te.type, 1);
  const want = f.tensor('token_embd.weight')!;
  assert.deepEqual(
    dequantize(1, await te.read(), te.nElements, te.dims[0]!),
    dequantize(0, await want.read(), want.nElements, want.dims[0]!),
  );
  const teBytes = await te.read();
  assert.throws(() => ternaryFromTensor(1, teBytes, te.nElements, te.dims[0]!), /not ternary x one scale: element \d+ is/);
});
