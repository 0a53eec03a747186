// Bad GGUF input: each case must throw a GGUFError whose message names the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF, GGUFError, GGUFValueType as V, GGMLType, MAX_HEADER_BYTES, type ByteSource } from '../../src/gguf/index.js';
import { oracleBytes } from '../helpers/oracle.js';
import { Raw, patchU32, patchU64 } from './raw.js';

async function rejects(bytes: Uint8Array, re: RegExp, what = re.source): Promise<void> {
  await assert.rejects(readGGUF(bytes), (e: unknown) => {
    assert.ok(e instanceof GGUFError, `${what}: expected a GGUFError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.match(e.message, re, what);
    return true;
  });
}

/**
 * A small valid file built field by field, so every offset is known:
 * 2 kv (general.architecture = arch, k = u32 7), 2 tensors a (F32 [8]) and b (F32 [4, 2]).
 */
function baseFile(opts: { arch?: string; version?: number } = {}) {
  const r = new Raw().header(2, 2, opts.version ?? 3);
  const countsAt = { tensors: 8, kv: 16 };
  r.str('general.architecture').u32(V.STRING).str(opts.arch ?? 'llama');
  r.str('k');
  const kTypeAt = r.pos;
  r.u32(V.UINT32).u32(7);
  const tensorA = r.pos;
  r.tensorInfo('a', [8], GGMLType.F32, 0);
  const tensorB = r.pos;
  r.tensorInfo('b', [4, 2], GGMLType.F32, 32);
  const headerEnd = r.pos;
  r.pad(32);
  const dataOffset = r.pos;
  r.bytes(new Uint8Array(64)); // a: 32 bytes, b: 32 bytes
  const bytes = r.done();
  // offsets of fields inside tensor infos: name (8 + len), n_dims u32, dims u64 each, type u32, offset u64
  const bOffsetAt = tensorB + 8 + 1 + 4 + 2 * 8 + 4;
  const bTypeAt = bOffsetAt - 4;
  const bNDimsAt = tensorB + 9;
  return { bytes, countsAt, kTypeAt, tensorA, tensorB, bOffsetAt, bTypeAt, bNDimsAt, headerEnd, dataOffset };
}

test('the base file is valid (so each case below fails for its own reason)', async () => {
  const b = baseFile();
  const f = await readGGUF(b.bytes);
  assert.equal(f.tensors.length, 2);
  assert.equal(f.dataOffset, b.dataOffset);
  assert.equal(f.tensor('b')!.offset, b.dataOffset + 32);
  assert.equal(f.get('k'), 7);
});

test('magic: wrong, too short, big-endian', async () => {
  const b = baseFile().bytes;
  const ggml = b.slice();
  ggml.set([0x47, 0x47, 0x4d, 0x4c]);
  await rejects(ggml, /not a GGUF file: bad magic "GGML"/);
  const bin = b.slice();
  bin.set([0x00, 0xff, 0x7f, 0x0a]);
  await rejects(bin, /bad magic "\\x00\\xff\\x7f\\x0a"/);
  await rejects(new Uint8Array(0), /not a GGUF file: 0 bytes/);
  await rejects(new Uint8Array([0x47, 0x47, 0x55]), /not a GGUF file: 3 bytes, too short/);
  const fugg = b.slice();
  fugg.set([0x46, 0x55, 0x47, 0x47]);
  await rejects(fugg, /big-endian GGUF files are not supported/);
  // gguf-py / ggml big-endian files: "GGUF" bytes, then version 3 stored big-endian
  const be = b.slice();
  be.set([0, 0, 0, 3], 4);
  await rejects(be, /big-endian GGUF files are not supported/);
});

test('unsupported versions', async () => {
  for (const v of [0, 1, 4, 0xffffffff]) await rejects(baseFile({ version: v }).bytes, new RegExp(`unsupported GGUF version ${v}\\b`));
  // version 2 is accepted
  assert.equal((await readGGUF(baseFile({ version: 2 }).bytes)).version, 2);
});

test('truncated header: every cut point of the small file, every 3rd of the i2_s oracle header', async () => {
  const b = baseFile();
  const headerMsg = /truncated GGUF header: .+ at offset \d+ needs \d+ bytes but the file ends at \d+|too short for the magic|more than a \d+-byte file can hold/;
  for (let cut = 0; cut < b.headerEnd; cut++) await rejects(b.bytes.slice(0, cut), headerMsg, `cut at ${cut}`);
  // from the end of the tensor infos on, the header parses and the tensors are missing
  for (let cut = b.headerEnd; cut < b.bytes.length; cut++) {
    await rejects(b.bytes.slice(0, cut), /tensor '[ab]' .* (starts outside the file|runs past the end of the file)/, `cut at ${cut}`);
  }
  const o = oracleBytes('bitnet-tiny-silu-i2_s.gguf');
  const dataOffset = (await readGGUF(o)).dataOffset;
  for (let cut = 0; cut < dataOffset; cut += 3) {
    await rejects(o.subarray(0, cut), /truncated GGUF header|too short|more than a \d+-byte file can hold|starts outside the file/, `oracle cut at ${cut}`);
  }
});

test('truncated tensor data names the tensor', async () => {
  const b = baseFile();
  await rejects(b.bytes.slice(0, b.bytes.length - 1), /tensor 'b' \(F32, 32 bytes at offset \d+\) runs past the end of the file \(truncated tensor data\?\): the file has \d+ bytes/);
  const o = oracleBytes('bitnet-tiny-silu-i2_s.gguf');
  await rejects(o.subarray(0, o.length - 100), /tensor 'blk\.1\.ffn_down\.weight' \(I2_S, 32800 bytes .*truncated tensor data/);
});

test('tensor offsets: outside the file, past the u64 range of the file, not aligned', async () => {
  const b = baseFile();
  const size = b.bytes.length;
  const outside = Math.ceil((size - b.dataOffset) / 32) * 32;
  await rejects(patchU64(b.bytes, b.bOffsetAt, outside), /tensor 'b' .* starts outside the file: the file has \d+ bytes/);
  await rejects(patchU64(b.bytes, b.bOffsetAt, 2n ** 40n), /data offset of tensor 'b' at offset \d+ is 2\^40\.0, more than a \d+-byte file can hold/);
  await rejects(patchU64(b.bytes, b.bOffsetAt, 2n ** 64n - 32n), /data offset of tensor 'b' .*more than a/);
  await rejects(patchU64(b.bytes, b.bOffsetAt, 4), /tensor 'b' data offset 4 is not a multiple of the alignment 32/);
});

test('absurd counts: metadata entries, tensors, array length', async () => {
  const b = baseFile();
  await rejects(patchU64(b.bytes, b.countsAt.kv, 2n ** 40n), /metadata entry count at offset 16 is 2\^40\.0, more than a \d+-byte file can hold/);
  await rejects(patchU64(b.bytes, b.countsAt.tensors, 2n ** 40n), /tensor count at offset 8 is 2\^40\.0/);
  await rejects(patchU64(b.bytes, b.countsAt.tensors, 2n ** 64n - 1n), /tensor count at offset 8 is about 2\^64\.0/);
  await rejects(patchU64(b.bytes, b.countsAt.kv, 1000), /metadata entry count at offset 16 is 1000, more than/);
  for (const [itemType, name] of [[V.UINT8, 'u8'], [V.STRING, 'string'], [V.UINT64, 'u64'], [V.ARRAY, 'array']] as const) {
    const r = new Raw().header(0, 1).str('arr').u32(V.ARRAY).u32(itemType).u64(2n ** 40n).bytes(new Uint8Array(64));
    await rejects(r.done(), /array length of 'arr' at offset \d+ is 2\^40\.0, more than/, `array of ${name}`);
  }
  // a count that fits the file size but not the bytes that remain after it
  const r = new Raw().header(0, 1).str('arr').u32(V.ARRAY).u32(V.UINT32).u64(10).u32(1).u32(2);
  await rejects(r.done(), /array length of 'arr' at offset \d+ is 10, more than|truncated GGUF header: array 'arr'/);
});

test('string lengths past the end of the file', async () => {
  await rejects(new Raw().header(0, 1).u64(1000).bytes([0x61, 0x62]).done(), /length of key of metadata entry 0 at offset 24 is 1000, more than a 34-byte file can hold/);
  await rejects(new Raw().header(0, 1).str('k').u32(V.STRING).u64(2n ** 63n).bytes([0x61]).done(), /length of string value of 'k' .* is about 2\^63\.0/);
  await rejects(new Raw().header(1, 0).u64(50).done(), /length of name of tensor 0/);
  const strArr = new Raw().header(0, 1).str('k').u32(V.ARRAY).u32(V.STRING).u64(2).str('ok').u64(99).bytes([0x61]);
  await rejects(strArr.done(), /length of item 1 of 'k' at offset \d+ is 99, more than/);
});

test('unknown value types, bad bools, deep nesting', async () => {
  await rejects(new Raw().header(0, 1).str('k').u32(13).u32(0).done(), /metadata 'k': unknown value type 13/);
  await rejects(new Raw().header(0, 1).str('k').u32(0xffffffff).u32(0).done(), /metadata 'k': unknown value type 4294967295/);
  await rejects(new Raw().header(0, 1).str('k').u32(V.ARRAY).u32(13).u64(0).done(), /metadata 'k': unknown array item type 13/);
  await rejects(new Raw().header(0, 1).str('flag').u32(V.BOOL).u8(2).done(), /metadata 'flag': bool value 2 is neither 0 nor 1/);
  await rejects(new Raw().header(0, 1).str('flags').u32(V.ARRAY).u32(V.BOOL).u64(3).bytes([1, 7, 0]).done(), /metadata 'flags': item 1 is bool value 7, neither 0 nor 1/);
  let r = new Raw().header(0, 1).str('deep').u32(V.ARRAY);
  for (let i = 0; i < 12; i++) r = r.u32(V.ARRAY).u64(1);
  r.u32(V.UINT8).u64(0);
  await rejects(r.bytes(new Uint8Array(32)).done(), /metadata 'deep': arrays nested deeper than 8/);
});

test('tensor infos: dimension counts, huge dims, unknown types', async () => {
  const b = baseFile();
  // n_dims: 5 and 0 (the dims that follow are then misread, but the count is checked first)
  await rejects(patchU32(b.bytes, b.bNDimsAt, 5), /tensor 'b' has 5 dimensions \(1\.\.4 allowed\)/);
  await rejects(patchU32(b.bytes, b.bNDimsAt, 0), /tensor 'b' has 0 dimensions/);
  await rejects(patchU32(b.bytes, b.bTypeAt, 99), /tensor 'b' has unknown ggml type id 99/);
  await rejects(patchU32(b.bytes, b.bTypeAt, 4), /tensor 'b' has unknown ggml type id 4/); // removed Q4_2
  await rejects(patchU64(b.bytes, b.bNDimsAt + 4, 2n ** 41n), /dimension 0 of tensor 'b' at offset \d+ is 2\^41\.0, more than/);
  // each dim within bounds, their product not: a GGUFError, not a RangeError or a bogus size
  const big = new Raw().header(1, 0).tensorInfo('w', [2n ** 40n, 2n ** 40n, 2n ** 40n, 2n ** 40n], GGMLType.F32, 0).pad(32).done();
  await rejects(big, /tensor 'w' has dims \[1099511627776, 1099511627776, 1099511627776, 1099511627776\]: about 2\^160\.0 elements, more than a \d+-byte file can hold/);
  const big2 = new Raw().header(1, 0).tensorInfo('w', [2n ** 30n, 2n ** 30n], GGMLType.TQ1_0, 0).pad(32).done();
  await rejects(big2, /tensor 'w' has dims .*elements, more than a \d+-byte file can hold/);
});

test('bitnet.cpp type ids outside bitnet files, unsupported bitnet types', async () => {
  const b = baseFile({ arch: 'llama' });
  const i2s = patchU32(b.bytes, b.bTypeAt, 36);
  await rejects(i2s, /tensor 'b' has type id 36, which only the bitnet\.cpp fork defines \(I2_S.*architecture is 'llama'/);
  await rejects(patchU32(b.bytes, b.bTypeAt, 39), /type id 39.*bitnet\.cpp.*MXFP4/);
  // no architecture key at all
  const noArch = new Raw().header(1, 0).tensorInfo('w', [128], 36, 0).pad(32).bytes(new Uint8Array(64)).done();
  await rejects(noArch, /tensor 'w' has type id 36, .*bitnet\.cpp.*I2_S.*'\(none\)'/);
  // in a bitnet file 36 is I2_S, but TL1/TL2 are refused
  const bn = baseFile({ arch: 'bitnet' });
  await rejects(patchU32(bn.bytes, bn.bTypeAt, 38), /tensor 'b' uses bitnet\.cpp type TL1 \(38\), which is not supported/);
});

test('duplicates, alignment, row lengths', async () => {
  const dupKey = new Raw().header(0, 2).str('k').u32(V.UINT8).u8(1).str('k').u32(V.UINT8).u8(2).done();
  await rejects(dupKey, /duplicate metadata key 'k'/);
  const dupT = new Raw().header(2, 0).tensorInfo('w', [8], GGMLType.F32, 0).tensorInfo('w', [8], GGMLType.F32, 32).pad(32).bytes(new Uint8Array(64)).done();
  await rejects(dupT, /duplicate tensor name 'w'/);
  for (const a of [0, 3, 48, 0xffffffff]) {
    const f = new Raw().header(0, 1).str('general.alignment').u32(V.UINT32).u32(a).done();
    await rejects(f, new RegExp(`general\\.alignment ${a} is not a power of two`));
  }
  const wrongType = new Raw().header(0, 1).str('general.alignment').u32(V.UINT64).u64(32).done();
  await rejects(wrongType, /general\.alignment must be a uint32/);
  const rows: [number, number[], string, RegExp][] = [
    [GGMLType.TQ2_0, [128, 2], 'llama', /tensor 'w' is TQ2_0 with row length 128, which is not a multiple of its block size 256/],
    [GGMLType.Q8_0, [33], 'llama', /tensor 'w' is Q8_0 with row length 33, which is not a multiple of its block size 32/],
    [GGMLType.I2_S, [64, 4], 'bitnet', /tensor 'w' is I2_S with row length 64, which is not a multiple of 128/],
  ];
  for (const [type, dims, arch, re] of rows) {
    const f = new Raw().header(1, 1).str('general.architecture').u32(V.STRING).str(arch).tensorInfo('w', dims, type, 0).pad(32).bytes(new Uint8Array(4096)).done();
    await rejects(f, re);
  }
});

test('a corrupt count in a huge file fails at once instead of reading the file into memory', async () => {
  const size = 64 * 2 ** 30; // a 64 GiB file that exists only as its first bytes (the rest reads as zeros)
  const reads: number[] = [];
  const virtual = (head: Uint8Array): ByteSource => ({
    size,
    async read(offset: number, length: number) {
      reads.push(length);
      if (length > 64 << 20) throw new Error(`test source: read of ${length} bytes`);
      const out = new Uint8Array(length);
      if (offset < head.length) out.set(head.subarray(offset, Math.min(head.length, offset + length)));
      return out;
    },
  });
  const cases: [Uint8Array, RegExp][] = [
    [new Raw().header(0, 1).str('arr').u32(V.ARRAY).u32(V.UINT8).u64(2n ** 33n).done(), /array length of 'arr' at offset \d+ is 2\^33\.0, more than a GGUF header can hold \(at most 1073741824 bytes\)/],
    [new Raw().header(0, 1).str('arr').u32(V.ARRAY).u32(V.STRING).u64(2n ** 31n).done(), /array length of 'arr' .* more than a GGUF header can hold/],
    [new Raw().header(0, 2n ** 31n).done(), /metadata entry count at offset 16 is 2147483648, more than a GGUF header can hold/],
    [new Raw().header(0, 1).u64(2n ** 31n).done(), /length of key of metadata entry 0 .* more than a GGUF header can hold/],
  ];
  for (const [head, re] of cases) {
    reads.length = 0;
    await assert.rejects(readGGUF(virtual(head)), (e: unknown) => e instanceof GGUFError && re.test(e.message), re.source);
    assert.deepEqual(reads, [16 << 20], 'one 16 MiB prefix read');
  }
  assert.equal(MAX_HEADER_BYTES, 2 ** 30);
  // offsets may still point anywhere in the big file
  const ok = new Raw().header(1, 0).tensorInfo('w', [1024], GGMLType.F32, 2n ** 35n).pad(32).done();
  const f = await readGGUF(virtual(ok));
  assert.equal(f.tensor('w')!.offset, f.dataOffset + 2 ** 35);
});
