// The oracle GGUF files (written by gguf-py / bitnet.cpp, not by us) read with the metadata and
// tensor table that test/fixtures/oracle/README.md describes. Expected values come from the README
// (and ggml's block geometry), never from our reader's output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF, typeName, GGMLType, GGUFValueType, type GGUFFile, type GGUFTensor } from '../../src/gguf/index.js';
import { ORACLE_MODELS, oracleBytes } from '../helpers/oracle.js';
import { ggufStringBytes, indexOfBytes } from './raw.js';

const f32 = Math.fround;

// README "Model hyperparameters (tiny)"
const TINY_HPARAMS: Record<string, number> = {
  'bitnet.context_length': 512,
  'bitnet.embedding_length': 256,
  'bitnet.block_count': 2,
  'bitnet.feed_forward_length': 512,
  'bitnet.attention.head_count': 4,
  'bitnet.attention.head_count_kv': 2,
  'bitnet.attention.layer_norm_rms_epsilon': f32(1e-5),
  'bitnet.rope.freq_base': 500000,
  'bitnet.rope.dimension_count': 64,
  'bitnet.vocab_size': 288,
};
// README "Tokenizer oracle": the 2B4T hyperparameters
const VOCAB_HPARAMS: Record<string, number> = {
  'bitnet.context_length': 4096,
  'bitnet.embedding_length': 2560,
  'bitnet.block_count': 30,
  'bitnet.feed_forward_length': 6912,
  'bitnet.attention.head_count': 20,
  'bitnet.attention.head_count_kv': 5,
  'bitnet.attention.layer_norm_rms_epsilon': f32(1e-5),
  'bitnet.rope.freq_base': 500000,
  'bitnet.rope.dimension_count': 128,
  'bitnet.vocab_size': 128256,
};

const EMBD = 256, FF = 512, KV = 128, VOCAB = 288;
/** README shapes are "out x in"; ggml dims are [in, out]. */
const TERNARY: Record<string, [number, number]> = {
  attn_q: [EMBD, EMBD], attn_k: [KV, EMBD], attn_v: [KV, EMBD], attn_output: [EMBD, EMBD],
  ffn_gate: [FF, EMBD], ffn_up: [FF, EMBD], ffn_down: [EMBD, FF],
};
const NORMS: Record<string, number> = { attn_norm: EMBD, attn_sub_norm: EMBD, ffn_norm: EMBD, ffn_sub_norm: FF };
/** README: per-tensor scale 0.125 for q, k, output, gate, up, down; 0.0625 for v */
const SCALE = (kind: string) => (kind === 'attn_v' ? 0.0625 : 0.125);

/** what each weights variant stores: ternary tensor type id, general.file_type (README), token_embd type */
const VARIANT: Record<string, { ternary: number; fileType: number; embd: number }> = {
  f32: { ternary: GGMLType.F32, fileType: 0 /* llama.cpp LLAMA_FTYPE_ALL_F32 */, embd: GGMLType.F32 },
  tq2_0: { ternary: 35, fileType: 37, embd: GGMLType.F32 },
  tq1_0: { ternary: 34, fileType: 36, embd: GGMLType.F32 },
  i2_s: { ternary: 36, fileType: 40, embd: GGMLType.F16 },
};

interface Expected { name: string; type: number; dims: number[] }
function expectedTensors(variant: string): Map<string, Expected> {
  const v = VARIANT[variant];
  const out = new Map<string, Expected>();
  const add = (name: string, type: number, dims: number[]) => out.set(name, { name, type, dims });
  add('token_embd.weight', v.embd, [EMBD, VOCAB]);
  add('output_norm.weight', GGMLType.F32, [EMBD]);
  for (let l = 0; l < 2; l++) {
    for (const [k, n] of Object.entries(NORMS)) add(`blk.${l}.${k}.weight`, GGMLType.F32, [n]);
    for (const [k, [outDim, inDim]] of Object.entries(TERNARY)) add(`blk.${l}.${k}.weight`, v.ternary, [inDim, outDim]);
  }
  return out;
}

/** Byte size from the block geometry (ggml type_traits; I2_S: n/4 packed bytes + 32 for the scale). */
function expectedBytes(type: number, n: number): number {
  switch (type) {
    case GGMLType.F32: return n * 4;
    case GGMLType.F16: return n * 2;
    case 35: return (n / 256) * 66;
    case 34: return (n / 256) * 54;
    case 36: return n / 4 + 32;
  }
  throw new Error(`no expectation for type ${type}`);
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function asF32(b: Uint8Array): Float32Array {
  const c = b.slice();
  return new Float32Array(c.buffer, 0, c.length / 4);
}

function checkTinyMetadata(f: GGUFFile, model: string): void {
  const [, , act, weights] = model.split('-');
  assert.equal(f.architecture, 'bitnet');
  assert.equal(f.get('general.architecture'), 'bitnet');
  assert.equal(f.get('general.file_type'), VARIANT[weights].fileType, 'general.file_type');
  for (const [k, v] of Object.entries(TINY_HPARAMS)) assert.equal(f.get(k), v, k);
  // relu2 files carry bitnet.hidden_activation = "relu2"; the SiLU files have no such key
  assert.equal(f.get('bitnet.hidden_activation'), act === 'relu2' ? 'relu2' : undefined);

  // tokenizer (README: gpt2/llama-bpe, 256 byte tokens, 5 merges, bos 261, eos 262, reserved 263..287 control, add_bos false)
  assert.equal(f.get('tokenizer.ggml.model'), 'gpt2');
  assert.equal(f.get('tokenizer.ggml.pre'), 'llama-bpe');
  const tokens = f.get<string[]>('tokenizer.ggml.tokens')!;
  assert.equal(tokens.length, VOCAB);
  assert.deepEqual(new Set(tokens.slice(0, 256)), gpt2ByteAlphabet());
  assert.equal(f.get('tokenizer.ggml.bos_token_id'), 261);
  assert.equal(f.get('tokenizer.ggml.eos_token_id'), 262);
  assert.equal(tokens[261], '<|begin_of_text|>');
  assert.equal(tokens[262], '<|end_of_text|>');
  for (let i = 263; i < VOCAB; i++) assert.match(tokens[i], /^<\|reserved_\d+\|>$/);
  const types = f.get<number[]>('tokenizer.ggml.token_type')!;
  assert.equal(types.length, VOCAB);
  types.forEach((t, i) => assert.equal(t === 3, i >= 261, `token_type of ${i} is ${t}`));
  assert.deepEqual(f.get('tokenizer.ggml.merges'), ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a']);
  assert.equal(f.get('tokenizer.ggml.add_bos_token'), false);
  assert.equal(f.metadata.get('tokenizer.ggml.add_bos_token')!.type, GGUFValueType.BOOL);
  assert.equal(f.metadata.get('tokenizer.ggml.tokens')!.itemType, GGUFValueType.STRING);
}

/** GPT-2's byte-to-unicode alphabet: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order. */
function gpt2ByteAlphabet(): Set<string> {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out = new Set<string>();
  let extra = 0;
  for (let b = 0; b < 256; b++) out.add(String.fromCharCode(keep(b) ? b : 256 + extra++));
  return out;
}

function checkTinyTensors(f: GGUFFile, model: string): void {
  const weights = model.split('-')[3];
  const expected = expectedTensors(weights);
  assert.equal(f.tensors.length, 24);
  assert.deepEqual(new Set(f.tensors.map((t) => t.name)), new Set(expected.keys()));
  let prevEnd = f.dataOffset;
  for (const t of [...f.tensors].sort((a, b) => a.offset - b.offset)) {
    const e = expected.get(t.name)!;
    assert.equal(t.type, e.type, `${t.name} type`);
    assert.deepEqual(t.dims, e.dims, `${t.name} dims`);
    const n = e.dims.reduce((a, b) => a * b, 1);
    assert.equal(t.nElements, n, `${t.name} elements`);
    assert.equal(t.byteSize, expectedBytes(e.type, n), `${t.name} bytes`);
    assert.equal(t.offset % f.alignment, 0, `${t.name} aligned`);
    assert.ok(t.offset >= prevEnd, `${t.name} overlaps the previous tensor`);
    prevEnd = t.offset + t.byteSize;
    assert.equal(f.tensor(t.name), t);
  }
  assert.ok(prevEnd <= f.size);
  if (weights === 'i2_s') {
    assert.equal(typeName(36, f.architecture), 'I2_S');
    assert.equal(typeName(f.tensor('blk.0.attn_q.weight')!.type, f.architecture), 'I2_S');
    assert.equal(typeName(f.tensor('token_embd.weight')!.type, f.architecture), 'F16');
  }
}

test('every oracle model file: metadata and tensor table as the README describes', async () => {
  for (const model of ORACLE_MODELS) {
    const f = await readGGUF(oracleBytes(model + '.gguf'));
    assert.equal(f.version, 3, model);
    assert.equal(f.alignment, 32, model); // no general.alignment key: the default
    assert.equal(f.metadata.has('general.alignment'), false);
    assert.equal(f.dataOffset % 32, 0);
    checkTinyMetadata(f, model);
    checkTinyTensors(f, model);
  }
});

async function values(t: GGUFTensor): Promise<Float32Array> {
  return asF32(await t.read());
}

test('tensor data lands where the table says: ternary x scale, norms near 1 (F32 files)', async () => {
  for (const model of ['bitnet-tiny-silu-f32', 'bitnet-tiny-relu2-f32']) {
    const f = await readGGUF(oracleBytes(model + '.gguf'));
    for (let l = 0; l < 2; l++) {
      for (const kind of Object.keys(TERNARY)) {
        const v = await values(f.tensor(`blk.${l}.${kind}.weight`)!);
        const a = SCALE(kind);
        const counts = [0, 0, 0];
        for (const x of v) {
          if (x !== 0 && x !== a && x !== -a) assert.fail(`${model} blk.${l}.${kind}: value ${x} is not ternary x ${a}`);
          counts[x === 0 ? 1 : x > 0 ? 2 : 0]++;
        }
        assert.ok(counts.every((c) => c > 0), `${kind} uses all three values`);
      }
      for (const kind of Object.keys(NORMS)) {
        const v = await values(f.tensor(`blk.${l}.${kind}.weight`)!);
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        assert.ok(Math.abs(mean - 1) < 0.05, `${kind} mean ${mean}`);
      }
    }
  }
});

test('I2_S file: per-tensor scale after the packed bytes, F16 token_embd equals the F32 file exactly', async () => {
  const q = await readGGUF(oracleBytes('bitnet-tiny-silu-i2_s.gguf'));
  const ref = await readGGUF(oracleBytes('bitnet-tiny-silu-f32.gguf'));
  for (let l = 0; l < 2; l++) {
    for (const kind of Object.keys(TERNARY)) {
      const t = q.tensor(`blk.${l}.${kind}.weight`)!;
      const raw = await t.read();
      const scale = new DataView(raw.buffer, raw.byteOffset + t.nElements / 4, 4).getFloat32(0, true);
      assert.equal(scale, SCALE(kind), `blk.${l}.${kind} scale`);
      // the packed codes are 2-bit {0,1,2} (-1, 0, +1): code 3 never occurs
      for (let i = 0; i < t.nElements / 4; i++) {
        const b = raw[i];
        if ((b & 0xc0) === 0xc0 || (b & 0x30) === 0x30 || (b & 0x0c) === 0x0c || (b & 0x03) === 0x03) assert.fail(`blk.${l}.${kind} byte ${i}: code 3`);
      }
    }
  }
  const h = await q.tensor('token_embd.weight')!.read();
  const e = await values(ref.tensor('token_embd.weight')!);
  const hv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  assert.equal(h.byteLength, e.length * 2);
  for (let i = 0; i < e.length; i++) {
    if (f16ToF32(hv.getUint16(2 * i, true)) !== e[i]) assert.fail(`token_embd[${i}]: F16 ${f16ToF32(hv.getUint16(2 * i, true))} vs F32 ${e[i]}`);
  }
});

test('llama3-vocab: 2B4T hyperparameters, 128256 tokens, 280147 merges, special ids, no tensors', async () => {
  const bytes = oracleBytes('llama3-vocab.gguf');
  const f = await readGGUF(bytes);
  assert.equal(f.architecture, 'bitnet');
  for (const [k, v] of Object.entries(VOCAB_HPARAMS)) assert.equal(f.get(k), v, k);
  assert.equal(f.tensors.length, 0);
  assert.equal(f.get('tokenizer.ggml.model'), 'gpt2');
  assert.equal(f.get('tokenizer.ggml.pre'), 'llama-bpe');
  const tokens = f.get<string[]>('tokenizer.ggml.tokens')!;
  const types = f.get<number[]>('tokenizer.ggml.token_type')!;
  const merges = f.get<string[]>('tokenizer.ggml.merges')!;
  assert.equal(tokens.length, 128256);
  assert.equal(types.length, 128256);
  assert.equal(merges.length, 280147);
  for (let i = 0; i < types.length; i++) {
    if (types[i] !== (i < 128000 ? 1 : 3)) assert.fail(`token_type[${i}] = ${types[i]}`);
  }
  assert.equal(f.get('tokenizer.ggml.bos_token_id'), 128000);
  assert.equal(f.get('tokenizer.ggml.eos_token_id'), 128001);
  assert.equal(f.get('tokenizer.ggml.eot_token_id'), 128009);
  assert.equal(tokens[128000], '<|begin_of_text|>');
  assert.equal(tokens[128001], '<|end_of_text|>');
  assert.equal(tokens[128009], '<|eot_id|>');
  assert.equal(f.get('tokenizer.ggml.add_bos_token'), true);
  const tpl = f.get<string>('tokenizer.chat_template')!;
  assert.equal(typeof tpl, 'string');
  for (const s of ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>']) assert.ok(tpl.includes(s), s);
  const vocab = new Set(tokens);
  assert.equal(vocab.size, tokens.length, 'tokens are distinct');
  assert.ok(vocab.has('/tmp') && vocab.has('/work'));
  // every merge is "left right" of two tokens whose concatenation is a token: a check that each
  // string of the bulk-decoded arrays came out whole (no shifted or split characters)
  for (let i = 0; i < merges.length; i++) {
    const m = merges[i];
    const sp = m.indexOf(' ');
    const a = m.slice(0, sp), b = m.slice(sp + 1);
    if (sp <= 0 || b.includes(' ') || !vocab.has(a) || !vocab.has(b) || !vocab.has(a + b)) assert.fail(`merge ${i} '${m}'`);
  }
  // and the token strings equal a plain per-string decode of the bytes in the file
  assert.deepEqual(tokens, decodeStringArrayAt(bytes, 'tokenizer.ggml.tokens'));
});

/** An independent decode of a string-array metadata value: find the key, then TextDecoder per string. */
function decodeStringArrayAt(bytes: Uint8Array, key: string): string[] {
  let p = indexOfBytes(bytes, ggufStringBytes(key));
  assert.ok(p > 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  p += ggufStringBytes(key).length;
  assert.equal(dv.getUint32(p, true), GGUFValueType.ARRAY);
  assert.equal(dv.getUint32(p + 4, true), GGUFValueType.STRING);
  const n = Number(dv.getBigUint64(p + 8, true));
  p += 16;
  const dec = new TextDecoder('utf-8', { ignoreBOM: true });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = Number(dv.getBigUint64(p, true));
    out.push(dec.decode(bytes.subarray(p + 8, p + 8 + len)));
    p += 8 + len;
  }
  return out;
}
