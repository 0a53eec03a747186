// GGUF files on disk through the Node FileSource: header parsed from a prefix, tensors read by
// range, headers longer than the first 16 MiB read, close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGGUF, serializeGGUF, metaArray, metaString, GGUFValueType as V, type ByteSource } from '../../src/gguf/index.js';
import { FileSource, openFileSource } from '../../src/node/file-source.js';
import { allTypesMetadata, syntheticTensors } from './synthetic.js';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wf-gguf-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('FileSource: readGGUF from disk, tensors by range, readInto, bounds, close', async () => {
  await withTempDir(async (dir) => {
    const tensors = syntheticTensors();
    const bytes = serializeGGUF({ metadata: allTypesMetadata(), tensors });
    const path = join(dir, 'synthetic.gguf');
    await writeFile(path, bytes);
    const src = await FileSource.open(path);
    assert.equal(src.size, bytes.length);
    const f = await readGGUF(src);
    assert.equal(f.source, src);
    assert.equal(f.get('t.str.utf8'), 'héllo wörld — 日本語 🎉 \u0000 \uFEFFbom');
    assert.equal(f.get('t.u64.max'), 2n ** 64n - 1n);
    for (const [i, t] of tensors.entries()) {
      const r = f.tensors[i];
      assert.deepEqual(await r.read(), t.data, t.name);
      const into = new Uint8Array(r.byteSize + 5).fill(0xee);
      await r.readInto(into);
      assert.deepEqual(into.subarray(0, r.byteSize), t.data);
      assert.equal(into[r.byteSize], 0xee);
      // an arbitrary sub-range straight from the source
      const mid = Math.floor(r.byteSize / 2);
      assert.deepEqual(await src.read(r.offset + mid, r.byteSize - mid), t.data.subarray(mid));
    }
    await assert.rejects(f.tensors[0].readInto(new Uint8Array(1)), RangeError);
    await assert.rejects(src.read(bytes.length - 2, 3), /outside the file/);
    await assert.rejects(src.read(-1, 1), /outside the file/);
    assert.deepEqual(await src.read(bytes.length, 0), new Uint8Array(0));
    await src.close();
    await assert.rejects(f.tensors[0].read()); // closed
  });
});

test('openFileSource: a missing file rejects with the path in the message', async () => {
  await assert.rejects(openFileSource('/nonexistent/dir/x.gguf'), /ENOENT.*x\.gguf/);
});

test('a header longer than the first 16 MiB read: the reader reads more and parses it whole', async () => {
  await withTempDir(async (dir) => {
    const n = 20000;
    const strings = Array.from({ length: n }, (_, i) => `${i}:` + 'abcdefghij'.repeat(110) + 'é'); // ~1.1 KB each, 22 MB in all
    const tensors = syntheticTensors();
    const bytes = serializeGGUF({
      metadata: [['general.architecture', metaString('x')], ['big', metaArray(V.STRING, strings)], ['after', metaString('end')]],
      tensors,
    });
    assert.ok(bytes.length > 20 << 20);
    const path = join(dir, 'big-header.gguf');
    await writeFile(path, bytes);
    const src = await FileSource.open(path);
    const reads: [number, number][] = [];
    const counting: ByteSource = { size: src.size, read: (o, l) => (reads.push([o, l]), src.read(o, l)) };
    try {
      const f = await readGGUF(counting);
      assert.deepEqual(reads, [[0, 16 << 20], [0, bytes.length]]); // 16 MiB, then doubled (capped at the file)
      const got = f.get<string[]>('big')!;
      assert.equal(got.length, n);
      assert.equal(got[0], strings[0]);
      assert.equal(got[n - 1], strings[n - 1]);
      assert.ok(got.every((s, i) => s === strings[i]));
      assert.equal(f.get('after'), 'end');
      assert.deepEqual(await f.tensors.at(-1)!.read(), tensors.at(-1)!.data);
    } finally {
      await src.close();
    }
  });
});
