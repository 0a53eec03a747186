// Read -> write -> read: the oracle files come back byte-identical; a synthetic file with every
// metadata value type, both versions, a custom alignment and several tensor types survives
// write -> read exactly; the bulk string-array decoder agrees with per-string decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  readGGUF, serializeGGUF, buildGGUFHeader, GGUFValueType as V, GGMLType, GGUFError,
  metaArray, metaString, metaU32, type GGUFMetaValue,
} from '../../src/gguf/index.js';
import { ORACLE_MODELS, oracleBytes } from '../helpers/oracle.js';
import { allTypesMetadata, syntheticTensors, pseudoBytes } from './synthetic.js';
import { Raw } from './raw.js';

test('oracle files: read -> serializeGGUF gives the identical bytes', async () => {
  for (const name of [...ORACLE_MODELS, 'llama3-vocab']) {
    const bytes = oracleBytes(name + '.gguf');
    const f = await readGGUF(bytes);
    const tensors = await Promise.all(f.tensors.map(async (t) => ({ name: t.name, type: t.type, dims: t.dims, data: await t.read() })));
    const out = serializeGGUF({ version: f.version as 2 | 3, metadata: f.metadata, tensors });
    assert.equal(out.length, bytes.length, `${name}: size`);
    const diff = out.findIndex((b, i) => b !== bytes[i]);
    assert.equal(diff, -1, `${name}: first differing byte at ${diff}`);
  }
});

for (const version of [2, 3] as const) {
  for (const alignment of [undefined, 64, 1, 4096]) {
    test(`synthetic file, every value type, v${version}, alignment ${alignment ?? 'default'}: write -> read`, async () => {
      const meta = allTypesMetadata(alignment === undefined ? [] : [['general.alignment', metaU32(alignment)]]);
      const tensors = syntheticTensors();
      const bytes = serializeGGUF({ version, metadata: meta, tensors });
      const f = await readGGUF(bytes);
      const align = alignment ?? 32;
      assert.equal(f.version, version);
      assert.equal(f.alignment, align);
      assert.equal(f.dataOffset % align, 0);
      assert.equal(f.architecture, 'synthetic');
      // metadata: same keys in the same order, same typed values (bigints stay bigints)
      assert.deepEqual([...f.metadata.keys()], meta.map(([k]) => k));
      for (const [k, v] of meta) assert.deepEqual(f.metadata.get(k), v, k);
      // plain values: 64-bit ints become numbers only when exact
      assert.equal(f.get('t.u64.small'), 42);
      assert.equal(f.get('t.u64.max'), 2n ** 64n - 1n);
      assert.equal(f.get('t.u64.2^53+1'), 2n ** 53n + 1n);
      assert.equal(f.get('t.i64.min'), -(2n ** 63n));
      assert.equal(f.get('t.i64.neg'), -5);
      assert.deepEqual(f.get('t.arr.u64'), [0, 2n ** 53n + 1n, 2n ** 64n - 1n]);
      assert.deepEqual(f.get('t.arr.nested.mixed'), [['x', ''], [-7], []]);
      assert.ok(Object.is(f.get('t.f32.neg0'), -0));
      assert.equal(f.get('t.str.bom'), '\uFEFF');
      assert.equal(f.get('t.str.utf8'), 'héllo wörld — 日本語 🎉 \u0000 \uFEFFbom');
      // tensors: same table, aligned, data intact
      assert.equal(f.tensors.length, tensors.length);
      for (const [i, t] of tensors.entries()) {
        const r = f.tensors[i];
        assert.equal(r.name, t.name);
        assert.equal(r.type, t.type);
        assert.deepEqual(r.dims, t.dims);
        assert.equal(r.byteSize, t.data.length);
        assert.equal(r.relativeOffset % align, 0, `${t.name} offset aligned`);
        assert.deepEqual(await r.read(), t.data, `${t.name} data`);
      }
      // and writing what was read gives the same bytes again
      const again = serializeGGUF({
        version, metadata: f.metadata,
        tensors: await Promise.all(f.tensors.map(async (t) => ({ name: t.name, type: t.type, dims: t.dims, data: await t.read() }))),
      });
      assert.deepEqual(again, bytes);
    });
  }
}

test('buildGGUFHeader: layout agrees with the reader (offsets, sizes, padding of every tensor)', async () => {
  const tensors = syntheticTensors();
  const layout = buildGGUFHeader({ metadata: [['general.alignment', metaU32(64)]], tensors });
  assert.equal(layout.alignment, 64);
  assert.equal(layout.header.length, layout.dataOffset);
  assert.equal(layout.dataOffset % 64, 0);
  let expectOff = 0;
  for (const [i, t] of tensors.entries()) {
    assert.equal(layout.tensorSizes[i], t.data.length);
    assert.equal(layout.tensorOffsets[i], expectOff);
    expectOff = Math.ceil((expectOff + t.data.length) / 64) * 64;
  }
  assert.equal(layout.totalSize, layout.dataOffset + expectOff); // the last tensor is padded too
  const file = new Uint8Array(layout.totalSize);
  file.set(layout.header);
  const f = await readGGUF(file);
  assert.deepEqual(f.tensors.map((t) => t.offset - f.dataOffset), layout.tensorOffsets);
});

test('a file with no metadata and no tensors', async () => {
  const bytes = serializeGGUF({ metadata: [], tensors: [] });
  assert.equal(bytes.length, 32); // 24-byte header padded to the default alignment
  const f = await readGGUF(bytes);
  assert.equal(f.metadata.size, 0);
  assert.equal(f.tensors.length, 0);
  assert.equal(f.architecture, undefined);
});

test('I2_S tensors in a bitnet file: n/4 + 32 bytes', async () => {
  const data = pseudoBytes(256 * 3 / 4 + 32, 7);
  const bytes = serializeGGUF({
    metadata: [['general.architecture', metaString('bitnet-b1.58')]],
    tensors: [{ name: 'w', type: GGMLType.I2_S, dims: [256, 3], data }],
  });
  const f = await readGGUF(bytes);
  assert.equal(f.tensors[0].byteSize, 224);
  assert.deepEqual(await f.tensors[0].read(), data);
});

// ---- the bulk string-array path (arrays of >= 256 strings are decoded with one TextDecoder call)

/** strings with 1-, 2-, 3- and 4-byte UTF-8 characters, empty strings, a BOM, a long string */
function trickyStrings(n: number, seed: number): string[] {
  const pieces = ['a', 'Z', ' ', 'é', 'Ġ', 'ß', '€', '日', '\uFEFF', '🦙', '😀', '\u0000', 'ĊĊ', '\u{10FFFF}', '\uFFFD'];
  const out: string[] = [];
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
  for (let i = 0; i < n; i++) {
    if (i % 37 === 0) { out.push(''); continue; }
    if (i % 101 === 5) { out.push('long ' + '日本語🦙é'.repeat(20) + ' string'); continue; } // > 128 bytes
    const len = 1 + Math.floor(rnd() * 6);
    let s = '';
    for (let k = 0; k < len; k++) s += pieces[Math.floor(rnd() * pieces.length)];
    out.push(s);
  }
  out[0] = '\uFEFFfirst'; // a BOM at the very start of the joined bytes
  return out;
}

test('string arrays: bulk decoding (>= 256) equals per-string decoding (< 256) and the written strings', async () => {
  const strings = trickyStrings(1000, 42);
  assert.ok(strings.some((s) => new TextEncoder().encode(s).length >= 128));
  const big = metaArray(V.STRING, strings);
  const meta: [string, GGUFMetaValue][] = [['big', big]];
  for (let i = 0; i < strings.length; i += 250) meta.push([`small.${i}`, metaArray(V.STRING, strings.slice(i, i + 250))]);
  const f = await readGGUF(serializeGGUF({ metadata: meta, tensors: [] }));
  const bulk = f.get<string[]>('big')!;
  const perString: string[] = [];
  for (let i = 0; i < strings.length; i += 250) perString.push(...f.get<string[]>(`small.${i}`)!);
  assert.deepEqual(perString, strings);
  assert.deepEqual(bulk, strings);
  // exactly 256 (the threshold) as well
  const f2 = await readGGUF(serializeGGUF({ metadata: [['x', metaArray(V.STRING, strings.slice(0, 256))]], tensors: [] }));
  assert.deepEqual(f2.get('x'), strings.slice(0, 256));
});

test('string arrays with invalid UTF-8: the bulk path falls back and agrees with per-string decoding', async () => {
  const enc = new TextEncoder();
  const dec = new TextDecoder('utf-8', { ignoreBOM: true }); // the WHATWG decode: bad bytes -> U+FFFD
  const items: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) items.push(enc.encode(`tok${i}é`));
  items[10] = new Uint8Array([0xff, 0x41]); // invalid byte
  items[20] = new Uint8Array([0xe6, 0x97]); // a 3-byte char cut short at the end
  items[21] = new Uint8Array([0xa5, 0x42]); // ... whose rest starts the next string
  items[30] = new Uint8Array([0xc0, 0xaf]); // overlong
  items[40] = new Uint8Array([0xed, 0xa0, 0x80]); // a UTF-16 surrogate encoded in UTF-8
  const build = (list: Uint8Array[]) => {
    const r = new Raw().header(0, 1).str('k').u32(V.ARRAY).u32(V.STRING).u64(list.length);
    for (const b of list) r.str(b);
    return r.pad(32).done();
  };
  const expected = items.map((b) => dec.decode(b));
  const bulk = (await readGGUF(build(items))).get<string[]>('k')!;
  assert.deepEqual(bulk, expected);
  const small = (await readGGUF(build(items.slice(0, 100)))).get<string[]>('k')!;
  assert.deepEqual(small, expected.slice(0, 100));
  // a valid array whose joined bytes would decode fine but whose strings split characters
  const split = items.map((b) => b);
  split[0] = new Uint8Array([0xf0, 0x9f]);
  split[1] = new Uint8Array([0xa6, 0x99]); // together: U+1F999, apart: two bad strings
  assert.deepEqual((await readGGUF(build(split))).get<string[]>('k'), split.map((b) => dec.decode(b)));
});

test('writer refuses values it cannot store faithfully', () => {
  const bad: [string, GGUFMetaValue][] = [
    ['u8 too big', { type: V.UINT8, value: 256 }],
    ['i8 too small', { type: V.INT8, value: -129 }],
    ['u32 fraction', { type: V.UINT32, value: 1.5 }],
    ['u32 negative', { type: V.UINT32, value: -1 }],
    ['i32 string', { type: V.INT32, value: '3' }],
    ['u64 negative', { type: V.UINT64, value: -1n }],
    ['u64 too big', { type: V.UINT64, value: 2n ** 64n }],
    ['i64 fraction', { type: V.INT64, value: 0.5 }],
    ['f32 string', { type: V.FLOAT32, value: 'x' }],
    ['bool number', { type: V.BOOL, value: 1 }],
    ['string number', { type: V.STRING, value: 5 }],
    ['unknown type', { type: 13, value: 0 }],
    ['array without item type', { type: V.ARRAY, value: [] }],
    ['array not an array', { type: V.ARRAY, itemType: V.UINT8, value: 3 }],
    ['array bad item', { type: V.ARRAY, itemType: V.UINT16, value: [1, 70000] }],
    ['nested item not an array', { type: V.ARRAY, itemType: V.ARRAY, value: [metaU32(1)] }],
    ['general.alignment', { type: V.UINT32, value: 48 }],
  ];
  for (const [key, v] of bad) {
    assert.throws(() => serializeGGUF({ metadata: [[key, v]], tensors: [] }), (e: Error) => e instanceof GGUFError && e.message.includes(key), key);
  }
  assert.throws(() => serializeGGUF({ metadata: [['general.alignment', metaString('64')]], tensors: [] }), /general\.alignment/);
  const t = { name: 'w', type: GGMLType.F32, dims: [4], data: new Uint8Array(16) };
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [t, t] }), /duplicate tensor name 'w'/);
  assert.throws(() => serializeGGUF({ metadata: [['a', metaU32(1)], ['a', metaU32(2)]], tensors: [] }), /duplicate metadata key 'a'/);
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [{ ...t, data: new Uint8Array(15) }] }), /15 bytes of data given.*need 16/);
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [{ ...t, dims: [] }] }), GGUFError);
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [{ ...t, dims: [1, 1, 1, 1, 4] }] }), /dimensions/);
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [{ ...t, dims: [-4] }] }), /dimension/);
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [{ ...t, dims: [2.5] }] }), /dimension/);
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [{ ...t, type: GGMLType.TQ2_0, dims: [128] }] }), /not a multiple of its block size 256/);
  assert.throws(() => serializeGGUF({ metadata: [], tensors: [{ ...t, type: GGMLType.I2_S, dims: [128] }] }), /bitnet\.cpp/);
  assert.throws(() => serializeGGUF({ version: 1 as 3, metadata: [], tensors: [] }), /version 1/);
});

test('bulk string decoding validates UTF-8 exactly like TextDecoder (every lead class x continuation class)', async () => {
  // candidates: lead bytes at every class boundary, followed by bytes at every range boundary
  // (overlongs, surrogates, > U+10FFFF, cut sequences, stray continuations), 1 to 4 bytes long
  const leads = [0x41, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf8, 0xff];
  const seconds = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];
  const rest = [0x80, 0xbf, 0x41, 0xc2];
  const seen = new Set<string>();
  const cands: Uint8Array[] = [];
  const add = (bytes: number[]) => {
    const k = bytes.join(',');
    if (!seen.has(k)) { seen.add(k); cands.push(new Uint8Array(bytes)); }
  };
  for (const a of leads) {
    add([a]);
    for (const b of seconds) {
      add([a, b]);
      for (const c of rest) {
        add([a, b, c]);
        for (const d of rest) add([a, b, c, d]);
      }
    }
  }
  // each candidate first in its own array of 256 strings (so the bulk decoder sees it alone)
  const filler = new TextEncoder().encode('é');
  const r = new Raw().header(0, cands.length);
  cands.forEach((c, i) => {
    r.str(`k${i}`).u32(V.ARRAY).u32(V.STRING).u64(256).str(c);
    for (let j = 1; j < 256; j++) r.str(filler);
  });
  const f = await readGGUF(r.pad(32).done());
  const dec = new TextDecoder('utf-8', { ignoreBOM: true });
  let valid = 0;
  cands.forEach((c, i) => {
    const got = f.get<string[]>(`k${i}`)!;
    const want = dec.decode(c);
    if (got[0] !== want || got[255] !== 'é') assert.fail(`bytes [${Array.from(c, (x) => x.toString(16))}]: got ${JSON.stringify(got[0])}, TextDecoder gives ${JSON.stringify(want)}`);
    if (!want.includes('\uFFFD')) valid++;
  });
  assert.ok(valid > 100 && valid < cands.length - 1000, `${valid} of ${cands.length} candidates are valid UTF-8`);
});

test('writer encodes strings exactly like TextEncoder (surrogate pairs, lone surrogates, 3-byte after ASCII)', () => {
  const strings = ['', 'abc', 'é', 'aé€', '€abc', '🦙', 'a🦙b', '\uD800', 'x\uDC00y', 'é\uD83D', '\uD83D\uDE00\uD83D', 'ÿĀ߿ࠀ￿', 'x'.repeat(1000) + '日本'];
  for (const s of strings) {
    const got = serializeGGUF({ metadata: [['k', metaString(s)]], tensors: [] });
    const want = new Raw().header(0, 1).str('k').u32(V.STRING).str(s).pad(32).done();
    assert.deepEqual(got, want, JSON.stringify(s));
  }
});
