// The safetensors reader: valid files read by range; every malformed header refused with a message
// naming the problem (and the tensor, where there is one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayBufferSource } from '../../src/gguf/source.js';
import { SafetensorsFile } from '../../src/convert/safetensors.js';
import { safetensorsBytes } from './helpers.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** A file from a raw header object and a data section. */
function raw(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const hb = enc(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

const open = (b: Uint8Array) => SafetensorsFile.open(new ArrayBufferSource(b), 'x.safetensors');

test('reads tensors, metadata and element ranges', async () => {
  const a = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
  const b = new Uint8Array([7, 8, 9]);
  const f = await open(safetensorsBytes([
    { name: 'a', dtype: 'F32', shape: [2, 3], data: a },
    { name: 'b', dtype: 'U8', shape: [3], data: b },
  ], { format: 'pt' }));
  assert.deepEqual(f.header.metadata, { format: 'pt' });
  const ta = f.tensors.get('a')!;
  assert.deepEqual(ta.shape, [2, 3]);
  assert.equal(ta.nElements, 6);
  assert.deepEqual(new Float32Array((await f.read(ta)).slice().buffer), new Float32Array([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(new Float32Array((await f.read(ta, 3, 3)).slice().buffer), new Float32Array([4, 5, 6]));
  assert.deepEqual(await f.read(f.tensors.get('b')!), b);
  await assert.rejects(f.read(ta, 4, 3), /out of range/);
});

test('a zero-element tensor is fine', async () => {
  const f = await open(raw({ e: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] } }, new Uint8Array(0)));
  assert.equal(f.tensors.get('e')!.byteLength, 0);
});

test('too short for the length field', async () => {
  await assert.rejects(open(new Uint8Array(5)), /too short/);
});

test('header length past the end of the file', async () => {
  const b = raw({}, new Uint8Array(0));
  new DataView(b.buffer).setBigUint64(0, 1000n, true);
  await assert.rejects(open(b), /header length 1000 reaches past the end of the file/);
  new DataView(b.buffer).setBigUint64(0, 1n << 60n, true);
  await assert.rejects(open(b), /larger than the 100000000-byte limit/);
});

test('header that is not JSON / not an object', async () => {
  await assert.rejects(open(raw(null, new Uint8Array(0), '{"a": ')), /not valid JSON/);
  await assert.rejects(open(raw(null, new Uint8Array(0), '[1,2]')), /not a JSON object/);
});

test('unknown and unsupported dtypes name the tensor', async () => {
  await assert.rejects(open(raw({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8))), /tensor 'w' has dtype I64/);
  await assert.rejects(open(raw({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1))), /tensor 'w' has dtype Q4, an unknown dtype/);
});

test('offsets inconsistent with dtype x shape', async () => {
  await assert.rejects(
    open(raw({ w: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 6] } }, new Uint8Array(8))),
    /tensor 'w': data_offsets \[0, 6\] span 6 bytes, but BF16 \[2, 2\] needs 8/,
  );
});

test('offsets past the data section (truncated file / lying header)', async () => {
  await assert.rejects(
    open(raw({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(12))),
    /tensor 'w': data_offsets \[0, 16\] reach past the end of the data section \(12 bytes/,
  );
});

test('overlapping tensors', async () => {
  await assert.rejects(
    open(raw({
      a: { dtype: 'U8', shape: [8], data_offsets: [0, 8] },
      b: { dtype: 'U8', shape: [4], data_offsets: [6, 10] },
    }, new Uint8Array(10))),
    /tensors 'a' and 'b' overlap/,
  );
});

test('malformed entries', async () => {
  const bad = [
    [{ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, /shape must be/],
    [{ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, /data_offsets must be/],
    [{ w: { shape: [1], data_offsets: [0, 4] } }, /missing dtype/],
    [{ w: 3 }, /not an object/],
    [{ __metadata__: { a: 1 } }, /__metadata__ value 'a' is not a string/],
  ] as const;
  for (const [h, re] of bad) await assert.rejects(open(raw(h, new Uint8Array(4))), re);
});
