// Header limits beyond the file-size bounds (reader.ts GGUF_LIMITS), the same for inspect, run and the
// server since all read through readGGUF: a long tensor name, a huge string, an array of 10^8 items, too
// many tensors or entries fail at once with an error naming the key; wf inspect shortens what it prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGGUF, GGUFError, GGUF_LIMITS, GGMLType, GGUFValueType as V, type ByteSource } from '../../src/gguf/index.js';
import { inspectFile, renderText } from '../../src/cli/commands/inspect.js';
import { Raw } from './raw.js';

async function rejects(bytes: Uint8Array, re: RegExp): Promise<number> {
  const t0 = performance.now();
  await assert.rejects(readGGUF(bytes), (e: unknown) => e instanceof GGUFError && re.test(e.message), re.source);
  return performance.now() - t0;
}

test('a tensor name of 64 bytes or more is refused (as llama.cpp does), naming the tensor', async () => {
  const ok = new Raw().header(1, 0).tensorInfo('n'.repeat(63), [4], GGMLType.F32, 0).pad(32).bytes(new Uint8Array(16)).done();
  assert.equal((await readGGUF(ok)).tensors[0]!.name.length, 63);
  const long = new Raw().header(1, 0).tensorInfo('n'.repeat(5 << 20), [4], GGMLType.F32, 0).pad(32).bytes(new Uint8Array(16)).done();
  const ms = await rejects(long, /name of tensor 0 is 5242880 bytes long, more than the 63 allowed/);
  assert.ok(ms < 1000, `${ms} ms`);
});

test('a metadata string over the limit is refused naming its key, before it is decoded', async () => {
  const big = new Raw().header(0, 1).str('general.name').u32(V.STRING).u64(GGUF_LIMITS.string + 1).bytes(new Uint8Array(GGUF_LIMITS.string + 1)).done();
  await rejects(big, /string value of 'general\.name' is \d+ bytes long, more than the 16777216 allowed/);
  const key = new Raw().header(0, 1).str('k'.repeat(GGUF_LIMITS.key + 1)).u32(V.UINT8).u8(1).done();
  await rejects(key, /key of metadata entry 0 is 4097 bytes long/);
});

test('an array of 10^8 strings is refused at once, naming the key', async () => {
  // 10^8 empty strings need 800 MB: a 1 GiB file that exists only as its first bytes (the rest reads as zeros)
  const head = new Raw().header(0, 1).str('tokenizer.ggml.tokens').u32(V.ARRAY).u32(V.STRING).u64(100_000_000).done();
  const source: ByteSource = {
    size: 2 ** 30,
    async read(offset: number, length: number) {
      const out = new Uint8Array(length);
      if (offset < head.length) out.set(head.subarray(offset, Math.min(head.length, offset + length)));
      return out;
    },
  };
  const t0 = performance.now();
  await assert.rejects(readGGUF(source), /metadata 'tokenizer\.ggml\.tokens': array of 100000000 items, more than the 4194304 allowed/);
  const ms = performance.now() - t0;
  assert.ok(ms < 2000, `${ms} ms`);
});

test('tensor and entry counts over the limits are refused', async () => {
  const n = GGUF_LIMITS.tensors + 1;
  const file = new Uint8Array(64 * n);
  file.set(new Raw().header(n, 0).done());
  await rejects(file, /tensor count 131073 is more than the 131072 allowed/);
  const m = GGUF_LIMITS.entries + 1;
  const file2 = new Uint8Array(16 * m);
  file2.set(new Raw().header(0, m).done());
  await rejects(file2, /metadata entry count 65537 is more than the 65536 allowed/);
});

test('wf inspect shortens long names, keys, strings and arrays in what it prints', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wf-limits-'));
  try {
    const f = new Raw().header(1, 4)
      .str('general.architecture').u32(V.STRING).str('a'.repeat(100_000))
      .str('general.name').u32(V.STRING).str('N'.repeat(1_000_000))
      .str('x'.repeat(4000)).u32(V.STRING).str('s'.repeat(1_000_000))
      .str('arr').u32(V.ARRAY).u32(V.STRING).u64(1000);
    for (let i = 0; i < 1000; i++) f.str('e'.repeat(1000));
    const bytes = f.tensorInfo('w', [4], GGMLType.F32, 0).pad(32).bytes(new Uint8Array(16)).done();
    const path = join(dir, 'long.gguf');
    await writeFile(path, bytes);
    const text = renderText(await inspectFile(path));
    assert.ok(text.length < 10_000, `printed ${text.length} characters`);
    assert.match(text, /N{200}\.\.\. \(999800 more characters\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
