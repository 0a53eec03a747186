// Cross-check against files llama.cpp / bitnet.cpp wrote (test/fixtures/oracle): an HF checkpoint made
// from the oracle model's weights (pre-packed uint8 + weight_scale = 1/alpha, as transformers' BitLinear
// stores them), converted with --arch bitnet, must reproduce the oracle GGUFs' tensors byte for byte
// (TQ2_0 / TQ1_0 from gguf-py's quantizer; I2_S from the bitnet.cpp fork's llama-quantize, whose 28
// padding bytes after the scale are stale memory and are not compared) and their tokenizer arrays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGGUF, type GGUFFile } from '../../src/gguf/index.js';
import { FileSource } from '../../src/node/file-source.js';
import { dequantize, ternaryFromTensor } from '../../src/formats/index.js';
import { convertCheckpoint } from '../../src/convert/hf-to-gguf.js';
import { oracleBytes } from '../helpers/oracle.js';
import { hfPack, safetensorsBytes, LLAMA3_REGEX, type StTensor } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'wf-conv-oracle-'));
after(() => rmSync(work, { recursive: true, force: true }));

const TERNARY = /\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;
const HF_NAME: Record<string, string> = {
  attn_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm', attn_sub_norm: 'self_attn.attn_sub_norm', ffn_sub_norm: 'mlp.ffn_sub_norm',
  attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
};

function hfName(gguf: string): string {
  if (gguf === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (gguf === 'output_norm.weight') return 'model.norm.weight';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(gguf)!;
  return `model.layers.${m[1]}.${HF_NAME[m[2]!]}.weight`;
}

/** Writes an HF checkpoint holding the oracle F32 model's weights; returns its directory. */
async function checkpointFromOracle(f32: GGUFFile, relu2: boolean): Promise<string> {
  const dir = mkdtempSync(join(work, relu2 ? 'relu2-' : 'silu-'));
  const tensors: StTensor[] = [];
  for (const t of f32.tensors) {
    const bytes = await t.read();
    const shape = [...t.dims].reverse();
    if (TERNARY.test(t.name)) {
      const { codes, scale } = ternaryFromTensor(t.type, bytes, t.nElements, t.dims[0]!);
      const [m, k] = shape as [number, number];
      tensors.push({ name: hfName(t.name), dtype: 'U8', shape: [m / 4, k], data: hfPack(codes, m, k) });
      const ws = new Float32Array([1 / scale]); // 8 or 16: exact, and 1/ws is alpha exactly
      tensors.push({ name: hfName(t.name).replace(/weight$/, 'weight_scale'), dtype: 'F32', shape: [1], data: new Uint8Array(ws.buffer) });
    } else {
      assert.equal(t.type, 0);
      tensors.push({ name: hfName(t.name), dtype: 'F32', shape, data: bytes.slice() });
    }
  }
  writeFileSync(join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  const g = (k: string) => f32.get(`bitnet.${k}`) as number;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: [relu2 ? 'BitNetForCausalLM' : 'BitnetForCausalLM'], hidden_act: relu2 ? 'relu2' : 'silu',
    hidden_size: g('embedding_length'), intermediate_size: g('feed_forward_length'), num_hidden_layers: g('block_count'),
    num_attention_heads: g('attention.head_count'), num_key_value_heads: g('attention.head_count_kv'),
    max_position_embeddings: g('context_length'), rms_norm_eps: 1e-5, rope_theta: g('rope.freq_base'), vocab_size: g('vocab_size'),
    tie_word_embeddings: true, quantization_config: { quant_method: 'bitnet', linear_class: 'bitlinear' }, // BitLinear: weight_scale divides
  }));
  const tokens = f32.get('tokenizer.ggml.tokens') as string[];
  const types = f32.get('tokenizer.ggml.token_type') as number[];
  const vocab: Record<string, number> = {};
  const added: unknown[] = [];
  tokens.forEach((tok, id) => {
    if (types[id] === 3) added.push({ id, content: tok, special: true });
    else vocab[tok] = id;
  });
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', added_tokens: added, normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: LLAMA3_REGEX }, behavior: 'Isolated', invert: false }, bl] },
    decoder: bl, model: { type: 'BPE', vocab, merges: f32.get('tokenizer.ggml.merges') },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
    add_bos_token: false,
    bos_token: tokens[f32.get('tokenizer.ggml.bos_token_id') as number],
    eos_token: tokens[f32.get('tokenizer.ggml.eos_token_id') as number],
  }));
  return dir;
}

for (const act of ['silu', 'relu2'] as const) {
  test(`--arch bitnet reproduces the oracle ${act} TQ2_0 / TQ1_0 files tensor for tensor`, async () => {
    const f32 = await readGGUF(oracleBytes(`bitnet-tiny-${act}-f32.gguf`));
    const dir = await checkpointFromOracle(f32, act === 'relu2');
    for (const outtype of ['tq2_0', 'tq1_0'] as const) {
      const oracle = await readGGUF(oracleBytes(`bitnet-tiny-${act}-${outtype}.gguf`));
      const path = join(work, `${act}-${outtype}.gguf`);
      await convertCheckpoint({ checkpointDir: dir, outfile: path, outtype, embedType: 'f32', arch: 'bitnet' });
      const src = await FileSource.open(path);
      try {
        const ours = await readGGUF(src);
        assert.deepEqual(ours.tensors.map((t) => [t.name, t.type, t.dims]), oracle.tensors.map((t) => [t.name, t.type, t.dims]));
        for (const t of oracle.tensors) assert.deepEqual(await ours.tensor(t.name)!.read(), await t.read(), `${outtype} ${t.name}`);
        for (const key of [
          'general.architecture', 'general.file_type', 'bitnet.hidden_activation', 'bitnet.embedding_length', 'bitnet.block_count',
          'bitnet.feed_forward_length', 'bitnet.attention.head_count', 'bitnet.attention.head_count_kv', 'bitnet.rope.dimension_count',
          'bitnet.rope.freq_base', 'bitnet.attention.layer_norm_rms_epsilon', 'bitnet.context_length', 'bitnet.vocab_size',
          'tokenizer.ggml.model', 'tokenizer.ggml.pre', 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges',
          'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.add_bos_token',
        ]) {
          assert.deepEqual(ours.get(key), oracle.get(key), key);
        }
      } finally {
        await src.close();
      }
    }
  });
}

test('I2_S matches the bitnet.cpp fork\'s own I2_S file (codes, scale; F16 token_embd; F32 norms)', async () => {
  const f32 = await readGGUF(oracleBytes('bitnet-tiny-silu-f32.gguf'));
  const dir = await checkpointFromOracle(f32, false);
  const oracle = await readGGUF(oracleBytes('bitnet-tiny-silu-i2_s.gguf'));
  const path = join(work, 'silu-i2_s.gguf');
  await convertCheckpoint({ checkpointDir: dir, outfile: path, outtype: 'i2_s', embedType: 'f16', arch: 'bitnet', validate: true });
  const src = await FileSource.open(path);
  try {
    const ours = await readGGUF(src);
    assert.equal(ours.get('general.file_type'), 40);
    assert.deepEqual(ours.tensors.map((t) => [t.name, t.type, t.dims]), oracle.tensors.map((t) => [t.name, t.type, t.dims]));
    for (const t of oracle.tensors) {
      const a = await ours.tensor(t.name)!.read();
      const b = await t.read();
      if (t.type === 36) {
        const keep = t.nElements / 4 + 4; // packed codes + f32 scale; the fork leaves 28 stale bytes after it
        assert.deepEqual(a.subarray(0, keep), b.subarray(0, keep), t.name);
        assert.deepEqual(a.subarray(keep), new Uint8Array(28), `${t.name}: our padding is zeros`);
      } else {
        assert.deepEqual(a, b, t.name);
      }
    }
    // and the values are what the F32 model holds
    const q = ours.tensor('blk.1.attn_v.weight')!;
    const v = dequantize(q.type, await q.read(), q.nElements, q.dims[0]!);
    const ref = f32.tensor('blk.1.attn_v.weight')!;
    assert.deepEqual(v, dequantize(ref.type, await ref.read(), ref.nElements, ref.dims[0]!));
  } finally {
    await src.close();
  }
});
