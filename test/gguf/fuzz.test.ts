// Mutation fuzz of the GGUF reader: random bit flips, special values, truncations, inserted and
// deleted bytes in a small synthetic file and in a tiny oracle file. Each outcome must be a
// successful parse (which then survives write -> read) or a GGUFError; any other exception
// (RangeError, TypeError, ...) or a parse slower than HANG_MS fails with the seed and case number.
// Reproduce one case: GGUF_FUZZ_SEED=<seed> GGUF_FUZZ_CASE=<n> npx tsx --test test/gguf/fuzz.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF, serializeGGUF, GGUFError, GGUFValueType, metaArray, metaString, type GGUFFile } from '../../src/gguf/index.js';
import { oracleBytes } from '../helpers/oracle.js';
import { mulberry32 } from '../helpers/random.js';
import { allTypesMetadata, syntheticTensors } from './synthetic.js';

/** a hang detector, not a speed check: a good parse of these files takes well under a millisecond */
const HANG_MS = 500;
const SEED = Number(process.env.GGUF_FUZZ_SEED ?? 0x5eed1234) >>> 0;
const ONLY_CASE = process.env.GGUF_FUZZ_CASE === undefined ? undefined : Number(process.env.GGUF_FUZZ_CASE);


const U32_SPECIAL = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 24, 30, 34, 35, 36, 38, 39, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** One mutation of `base`; `hot` is the end of the header region where most mutations go. */
function mutate(base: Uint8Array, hot: number, rnd: () => number): { bytes: Uint8Array; what: string } {
  const int = (n: number) => Math.floor(rnd() * n);
  const pos = () => (rnd() < 0.9 ? int(hot) : int(base.length));
  const kind = int(8);
  let b = base.slice();
  const dv = () => new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (kind) {
    case 0: { // flip bits
      const n = 1 + int(4);
      const at: number[] = [];
      for (let i = 0; i < n; i++) { const p = pos(); b[p] ^= 1 << int(8); at.push(p); }
      return { bytes: b, what: `flip bits at ${at}` };
    }
    case 1: { // special bytes
      const p = pos();
      const v = [0, 1, 0x7f, 0x80, 0xc0, 0xef, 0xff][int(7)];
      b[p] = v;
      return { bytes: b, what: `byte ${p} = ${v}` };
    }
    case 2: { // special u32
      if (b.length < 4) return { bytes: b, what: 'unchanged (too short for a u32)' };
      const p = Math.min(pos(), b.length - 4);
      const v = U32_SPECIAL[int(U32_SPECIAL.length)];
      dv().setUint32(p, v, true);
      return { bytes: b, what: `u32 at ${p} = ${v}` };
    }
    case 3: { // special u64
      if (b.length < 8) return { bytes: b, what: 'unchanged (too short for a u64)' };
      const p = Math.min(pos(), b.length - 8);
      const vals = [0n, 1n, 2n ** 32n, 2n ** 40n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(b.length), BigInt(b.length - p), BigInt(int(b.length))];
      const v = vals[int(vals.length)];
      dv().setBigUint64(p, v, true);
      return { bytes: b, what: `u64 at ${p} = ${v}` };
    }
    case 4: { // truncate
      const n = rnd() < 0.7 ? int(hot + 64) : int(base.length);
      return { bytes: b.subarray(0, n), what: `truncate to ${n}` };
    }
    case 5: { // insert garbage
      const p = pos(), n = 1 + int(16);
      const g = new Uint8Array(n).map(() => int(256));
      const out = new Uint8Array(b.length + n);
      out.set(b.subarray(0, p)); out.set(g, p); out.set(b.subarray(p), p + n);
      return { bytes: out, what: `insert ${n} bytes at ${p}` };
    }
    case 6: { // delete a range
      const p = pos(), n = Math.min(1 + int(16), b.length - p);
      const out = new Uint8Array(b.length - n);
      out.set(b.subarray(0, p)); out.set(b.subarray(p + n), p);
      return { bytes: out, what: `delete ${n} bytes at ${p}` };
    }
    default: { // several at once
      let what = '';
      for (let i = 0; i < 3; i++) {
        const m = mutate(b, Math.min(hot, b.length), rnd);
        b = m.bytes.slice();
        what += (what ? '; ' : '') + m.what;
      }
      return { bytes: b, what: `[${what}]` };
    }
  }
}

/** A successful parse must be self-consistent and survive write -> read with equal content. */
async function checkParsed(f: GGUFFile): Promise<void> {
  for (const k of f.metadata.keys()) f.get(k);
  const tensors = [];
  for (const t of f.tensors) {
    assert.ok(Number.isSafeInteger(t.nElements) && t.byteSize >= 0);
    assert.ok(t.offset >= f.dataOffset && t.offset + t.byteSize <= f.size, `tensor '${t.name}' inside the file`);
    const data = await t.read();
    assert.equal(data.length, t.byteSize);
    tensors.push({ name: t.name, type: t.type, dims: t.dims, data });
  }
  const again = await readGGUF(serializeGGUF({ version: f.version as 2 | 3, metadata: f.metadata, tensors }));
  assert.deepEqual(again.metadata, f.metadata);
  assert.deepEqual(again.tensors.map((t) => [t.name, t.type, t.dims, t.byteSize]), f.tensors.map((t) => [t.name, t.type, t.dims, t.byteSize]));
}

async function fuzz(label: string, base: Uint8Array, hot: number, cases: number, seed: number): Promise<{ ok: number; errors: number }> {
  const rnd = mulberry32(seed);
  let ok = 0, errors = 0;
  for (let i = 0; i < cases; i++) {
    const m = mutate(base, hot, rnd);
    if (ONLY_CASE !== undefined && i !== ONLY_CASE) continue;
    const where = `${label} case ${i} (GGUF_FUZZ_SEED=${seed} GGUF_FUZZ_CASE=${i}): ${m.what}`;
    const t0 = performance.now();
    let parsed: GGUFFile | undefined;
    try {
      parsed = await readGGUF(m.bytes);
    } catch (e) {
      if (!(e instanceof GGUFError)) assert.fail(`${where}: threw ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
      if (!e.message) assert.fail(`${where}: GGUFError without a message`);
      errors++;
    }
    const ms = performance.now() - t0;
    if (ms > HANG_MS) assert.fail(`${where}: parse took ${ms.toFixed(0)} ms`);
    if (parsed) {
      try {
        await checkParsed(parsed);
      } catch (e) {
        assert.fail(`${where}: parsed, but ${(e as Error)?.name}: ${(e as Error)?.message}`);
      }
      ok++;
    }
  }
  if (process.env.GGUF_FUZZ_VERBOSE) console.log(`${label}: ${ok} parsed, ${errors} GGUFErrors`);
  return { ok, errors };
}

test('fuzz: synthetic file with every value type and several tensor types', async () => {
  const base = serializeGGUF({ metadata: allTypesMetadata(), tensors: syntheticTensors() });
  const hot = (await readGGUF(base)).dataOffset;
  const r = await fuzz('synthetic', base, hot, 3000, SEED);
  // both outcomes occur, so the fuzzer really exercises the error paths and the success checks
  if (ONLY_CASE === undefined) assert.ok(r.ok > 50 && r.errors > 500, `ok ${r.ok}, errors ${r.errors}`);
});

test('fuzz: tiny oracle file (bitnet.cpp I2_S)', async () => {
  const base = oracleBytes('bitnet-tiny-silu-i2_s.gguf');
  const hot = (await readGGUF(base)).dataOffset;
  const r = await fuzz('oracle i2_s', base, hot, 1500, SEED ^ 0x9e3779b9);
  if (ONLY_CASE === undefined) assert.ok(r.ok > 50 && r.errors > 200, `ok ${r.ok}, errors ${r.errors}`);
});

test('fuzz: a 300-string array (the bulk string decoder) with multi-byte characters', async () => {
  const pieces = ['a', 'Ġ', 'é', '日', '🦙', '', '\uFEFF', 'long ' + '語'.repeat(50)];
  const strings = Array.from({ length: 300 }, (_, i) => pieces[i % pieces.length] + pieces[(i * 7) % pieces.length] + i);
  const base = serializeGGUF({
    metadata: [['general.architecture', metaString('x')], ['tokenizer.ggml.tokens', metaArray(GGUFValueType.STRING, strings)]],
    tensors: syntheticTensors().slice(0, 2),
  });
  const f = await readGGUF(base);
  assert.deepEqual(f.get('tokenizer.ggml.tokens'), strings);
  const r = await fuzz('string array', base, f.dataOffset, 1500, SEED ^ 0x51ed27);
  if (ONLY_CASE === undefined) assert.ok(r.ok > 50 && r.errors > 200, `ok ${r.ok}, errors ${r.errors}`);
});
