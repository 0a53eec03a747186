// Bad checkpoints: each fails with a clear message, and the target path is untouched: not created
// when absent, not overwritten when present, and no temp file is left behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertCheckpoint, type ConvertOptions } from '../../src/convert/hf-to-gguf.js';
import { buildCheckpoint, tempDir, tokenizerJson, TINY, type BuildOptions, type Form } from './helpers.js';

const out = tempDir('wf-conv-err-');
after(() => out.cleanup());
const SENTINEL = 'previous contents, must survive';

async function expectFailure(form: Form, build: BuildOptions, re: RegExp, extra: Partial<ConvertOptions> = {}, tweak?: (dir: string) => void) {
  const ck = buildCheckpoint(form, build);
  try {
    tweak?.(ck.dir);
    for (const preexisting of [false, true]) {
      const target = join(out.dir, `t-${Math.random().toString(36).slice(2)}.gguf`);
      if (preexisting) writeFileSync(target, SENTINEL);
      await assert.rejects(convertCheckpoint({ checkpointDir: ck.dir, outfile: target, outtype: 'tq2_0', ...extra }), (e: Error) => {
        assert.match(e.message, re);
        return true;
      });
      if (preexisting) assert.equal(readFileSync(target, 'utf8'), SENTINEL);
      else assert.equal(existsSync(target), false);
      assert.deepEqual(readdirSync(out.dir).filter((n) => n.includes('.tmp-')), [], 'temp file left behind');
      rmSync(target, { force: true });
    }
  } finally {
    ck.cleanup();
  }
}

test('missing config.json', () => expectFailure('latent-bf16', { omit: ['config.json'] }, /config\.json not found/));

test('unknown architecture', () =>
  expectFailure('latent-bf16', { mutateConfig: (c) => (c.architectures = ['LlamaForCausalLM']) }, /architecture 'LlamaForCausalLM' is not supported/));

test('missing tensor', () =>
  expectFailure('latent-bf16', { mutate: (ts) => ts.splice(ts.findIndex((t) => t.name === 'model.layers.1.mlp.up_proj.weight'), 1) },
    /missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'/));

test('misnamed tensor', () =>
  expectFailure('latent-bf16', {
    mutate: (ts) => {
      const t = ts.find((x) => x.name === 'model.layers.0.self_attn.k_proj.weight')!;
      t.name = 'model.layers.0.self_attn.key_proj.weight';
    },
  }, /missing tensor 'model\.layers\.0\.self_attn\.k_proj\.weight'/));

test('extra unexpected tensor', () =>
  expectFailure('latent-bf16', {
    mutate: (ts) => ts.push({ name: 'model.layers.0.mlp.extra.weight', dtype: 'F32', shape: [1], data: new Uint8Array(4) }),
  }, /unexpected tensor 'model\.layers\.0\.mlp\.extra\.weight'/));

test('shape mismatch against config.json', () =>
  expectFailure('latent-f32', { mutateConfig: (c) => (c.intermediate_size = 768) },
    /tensor 'model\.layers\.0\.mlp\.ffn_sub_norm\.weight' \(blk\.0\.ffn_sub_norm\.weight\) has shape \[512\], but config\.json implies \[768\]/));

test('truncated safetensors', () =>
  expectFailure('latent-bf16', {}, /model\.safetensors: tensor '.*': data_offsets .* reach past the end of the data section/, {}, (dir) => {
    const p = join(dir, 'model.safetensors');
    truncateSync(p, statSync(p).size - 1000);
  }));

test('header lying about offsets', () =>
  expectFailure('latent-bf16', {}, /span .* bytes, but BF16 \[256\] needs 512/, {}, (dir) => {
    const p = join(dir, 'model.safetensors');
    const b = readFileSync(p);
    const n = Number(b.readBigUInt64LE(0));
    const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
    const e = header['model.norm.weight'];
    e.data_offsets = [e.data_offsets[0], e.data_offsets[1] - 2];
    let text = JSON.stringify(header);
    text = text.padEnd(n, ' ');
    assert.equal(Buffer.byteLength(text), n);
    b.write(text, 8, 'utf8');
    writeFileSync(p, b);
  }));

test('pre-packed tensor with a code 3 (not ternary)', () =>
  expectFailure('prepacked', {
    mutate: (ts) => {
      const t = ts.find((x) => x.name === 'model.layers.1.self_attn.o_proj.weight')!;
      t.data[100] = 0xff;
    },
  }, /tensor 'model\.layers\.1\.self_attn\.o_proj\.weight' is not ternary: .*code 3/));

test('pre-packed checkpoint without its weight_scale', () =>
  expectFailure('prepacked', {
    mutate: (ts) => ts.splice(ts.findIndex((t) => t.name === 'model.layers.0.mlp.gate_proj.weight_scale'), 1),
  }, /missing tensor 'model\.layers\.0\.mlp\.gate_proj\.weight_scale'/));

test('uint8 weights without a quantization_config', () =>
  expectFailure('prepacked', { mutateConfig: (c) => delete c.quantization_config }, /\(pre-quantized BitNet weights\), but config\.json has no quantization_config/));

const qc = (extra: Record<string, unknown>) => (c: Record<string, any>) =>
  (c.quantization_config = { quant_method: 'bitnet', linear_class: 'bitlinear', quantization_mode: 'offline', ...extra });

test('quantization_config.use_rms_norm true is refused (an RMSNorm inside every linear)', () =>
  expectFailure('prepacked', { mutateConfig: qc({ use_rms_norm: true, rms_norm_eps: 1e-6 }) }, /quantization_config\.use_rms_norm is true: transformers then applies an extra RMSNorm/));

test('packed uint8 weights whose quantization_config has no linear_class are refused (scale direction unknown)', () =>
  expectFailure('prepacked', { mutateConfig: (c) => delete (c.quantization_config as Record<string, unknown>).linear_class }, /quantization_config has no linear_class, so the direction of the packed weights' weight_scale would be a guess/));

test('unknown quantization_config keys are refused by name', async () => {
  await expectFailure('prepacked', { mutateConfig: qc({ group_size: 128 }) }, /quantization_config\.group_size is not a key of transformers' BitNetQuantConfig \(known: quant_method, linear_class, quantization_mode, use_rms_norm, rms_norm_eps, modules_to_not_convert\)/);
  await expectFailure('prepacked', { mutateConfig: qc({ weight_bits: 2 }) }, /quantization_config\.weight_bits is not a key/);
});

test('modules_to_not_convert naming a BitNet linear is refused; lm_head is fine', async () => {
  await expectFailure('prepacked', { mutateConfig: qc({ modules_to_not_convert: ['lm_head', 'mlp.down_proj'] }) },
    /modules_to_not_convert entry 'mlp\.down_proj' keeps model\.layers\.0\.mlp\.down_proj in full precision/);
});

test('TQ row length not a multiple of 256', () =>
  expectFailure('latent-bf16', { dims: { ...TINY, ffn: 384 } },
    /tensor 'model\.layers\.0\.mlp\.down_proj\.weight' \(blk\.0\.ffn_down\.weight\) has shape \[256, 384\]: its rows of 384 elements are not a multiple of 256, which TQ2_0 requires/));

test('I2_S row length not a multiple of 128', () =>
  expectFailure('latent-bf16', { dims: { ...TINY, ffn: 320 } }, /rows of 320 elements are not a multiple of 128, which I2_S requires/, { outtype: 'i2_s' }));

test('SentencePiece-only tokenizer', () =>
  expectFailure('latent-bf16', { omit: ['tokenizer.json'] }, /only a SentencePiece tokenizer\.model; SentencePiece tokenizers are not supported/, {}, (dir) =>
    writeFileSync(join(dir, 'tokenizer.model'), 'x')));

test('unsupported pre-tokenizer', () =>
  expectFailure('latent-bf16', { tokenizer: tokenizerJson({ pre: 'other' }) }, /split regex is not Llama-3's/));

test('SiLU model forced to bitnet-b1.58', () =>
  expectFailure('onebit', {}, /--arch bitnet-b1\.58 means a relu2 FFN/, { arch: 'bitnet-b1.58' }));

test('no safetensors at all', () =>
  expectFailure('latent-bf16', { omit: ['model.safetensors'] }, /has neither model\.safetensors nor model\.safetensors\.index\.json/));

test('sharded index naming a tensor its shard lacks', () =>
  expectFailure('sharded', {}, /says tensor 'model\.norm\.weight' is in model-00002-of-00002\.safetensors, but that file has no such tensor/, {}, (dir) => {
    const p = join(dir, 'model.safetensors.index.json');
    const idx = JSON.parse(readFileSync(p, 'utf8'));
    const cur = idx.weight_map['model.norm.weight'];
    idx.weight_map['model.norm.weight'] = cur.includes('00001') ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors';
    if (!cur.includes('00001')) throw new Error('fixture layout changed');
    writeFileSync(p, JSON.stringify(idx));
  }));

// issue 18, finding 10: values the GGUF cannot hold, garbage tokenizer.json, model.safetensors as a directory
test('rope_theta 1e308 (Infinity as float32) and rms_norm_eps 1e-50 (0 as float32) are refused', async () => {
  await expectFailure('latent-bf16', { mutateConfig: (c) => (c.rope_theta = 1e308) }, /'rope_theta' = 1e\+308 does not fit the float32/);
  await expectFailure('latent-bf16', { mutateConfig: (c) => (c.rms_norm_eps = 1e-50) }, /'rms_norm_eps' = 1e-50 does not fit the float32/);
});

test('a tokenizer.json without a pre_tokenizer is a clear error, not "Cannot read properties of undefined"', () =>
  expectFailure('latent-bf16', {}, /pre-tokenizer not supported .*none \(no pre_tokenizer\)/, {}, (dir) => {
    const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    delete tj.pre_tokenizer;
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
  }));

test('model.safetensors that is a directory is a clear error, not a bare EISDIR', () =>
  expectFailure('latent-bf16', {}, /model\.safetensors is not a file/, {}, (dir) => {
    rmSync(join(dir, 'model.safetensors'));
    mkdirSync(join(dir, 'model.safetensors'));
  }));
