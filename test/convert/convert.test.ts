// wf convert end to end (in-process): every input form x every outtype; the ternary values and scales
// read back through src/formats must be identical across outtypes and equal to an independent
// reference ternarization; metadata and tokenizer arrays as specified.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readGGUF, type GGUFFile } from '../../src/gguf/index.js';
import { FileSource } from '../../src/node/file-source.js';
import { dequantize, ternaryFromTensor } from '../../src/formats/index.js';
import { convertCheckpoint } from '../../src/convert/hf-to-gguf.js';
import { OUT_TYPES, type OutType } from '../../src/convert/tensor-jobs.js';
import { ADDED, byteChars, buildCheckpoint, CHAT_TEMPLATE, FORMS, MERGES, TINY, f16RoundRef, tempDir, type Built } from './helpers.js';

async function load(path: string): Promise<{ file: GGUFFile; close(): Promise<void> }> {
  const src = await FileSource.open(path);
  return { file: await readGGUF(src), close: () => src.close() };
}

const TYPE_ID: Record<OutType, number> = { i2_s: 36, tq2_0: 35, tq1_0: 34, f16: 1, f32: 0 };
const FILE_TYPE: Record<OutType, number> = { i2_s: 40, tq2_0: 37, tq1_0: 36, f16: 1, f32: 0 };

const out = tempDir('wf-conv-out-');
after(() => out.cleanup());

for (const form of FORMS) {
  describe(`input form ${form}`, () => {
    const ck: Built = buildCheckpoint(form);
    after(() => ck.cleanup());
    const seen = new Map<string, { codes: Int8Array; scale: number }>();

    for (const outtype of OUT_TYPES) {
      test(`-> ${outtype}: ternary codes and scales equal the reference`, async () => {
        const path = join(out.dir, `${form}-${outtype}.gguf`);
        const r = await convertCheckpoint({ checkpointDir: ck.dir, outfile: path, outtype, validate: outtype === 'tq1_0' });
        assert.equal(r.outfile, path);
        const notes = r.notes.join('\n');
        if (form === 'onebit') {
          assert.match(notes, /mainline llama\.cpp's bitnet graph .* refuses a file with output\.weight/);
          assert.equal(/I2_S/.test(notes), outtype === 'i2_s');
        } else {
          assert.match(notes, /arch 'bitnet-b1\.58' loads in bitnet\.cpp and WrinkleFree/);
        }
        const { file, close } = await load(path);
        try {
          assert.equal(file.get('general.file_type'), FILE_TYPE[outtype]);
          let checked = 0;
          for (const [name, want] of ck.ternary) {
            const t = file.tensor(name);
            assert.ok(t, `missing ${name}`);
            assert.equal(t.type, TYPE_ID[outtype], name);
            const got = ternaryFromTensor(t.type, await t.read(), t.nElements, t.dims[0]!);
            assert.equal(got.scale, want.scale, `${name} scale`);
            assert.deepEqual(got.codes, want.codes, `${name} codes`);
            // identical across outtypes
            const prev = seen.get(name);
            if (prev) {
              assert.equal(got.scale, prev.scale);
              assert.deepEqual(got.codes, prev.codes);
            } else seen.set(name, got);
            checked++;
          }
          assert.equal(checked, TINY.layers * 7);
          // codes really are ternary with a healthy share of each value (catches an all-zero quantizer)
          const c = ck.ternary.get('blk.0.attn_q.weight')!.codes;
          const zeros = c.filter((x) => x === 0).length / c.length;
          assert.ok(zeros > 0.15 && zeros < 0.6, `zero fraction ${zeros}`);
        } finally {
          await close();
        }
      });
    }

    test('norms are F32 and equal the source; embedding F16 equals the f16-rounded source', async () => {
      const path = join(out.dir, `${form}-i2_s.gguf`);
      const { file, close } = await load(path);
      try {
        for (const [name, src] of ck.floats) {
          const t = file.tensor(name)!;
          assert.ok(t, name);
          const values = dequantize(t.type, await t.read(), t.nElements, t.dims[0]!);
          if (name === 'token_embd.weight' || name === 'output.weight') {
            assert.equal(t.type, 1, name);
            for (let i = 0; i < src.length; i += 97) assert.equal(values[i], f16RoundRef(src[i]!), `${name}[${i}]`);
          } else {
            assert.equal(t.type, 0, name);
            assert.deepEqual(values, src, name);
          }
        }
        assert.equal(file.tensor('output.weight') !== undefined, form === 'onebit', 'output.weight only when untied');
        // ggml dims are HF shapes reversed
        assert.deepEqual(file.tensor('token_embd.weight')!.dims, [TINY.hidden, TINY.vocab]);
        assert.deepEqual(file.tensor('blk.1.attn_k.weight')!.dims, [TINY.hidden, 128]);
        assert.deepEqual(file.tensor('blk.1.ffn_down.weight')!.dims, [TINY.ffn, TINY.hidden]);
        assert.deepEqual(file.tensor('blk.0.ffn_sub_norm.weight')!.dims, [TINY.ffn]);
      } finally {
        await close();
      }
    });

    test('metadata and tokenizer', async () => {
      const { file, close } = await load(join(out.dir, `${form}-tq2_0.gguf`));
      try {
        const arch = form === 'onebit' ? 'bitnet' : 'bitnet-b1.58';
        assert.equal(file.architecture, arch);
        assert.equal(file.get('general.name'), ck.dir.split('/').pop());
        const keys: Record<string, unknown> = {
          context_length: 512, embedding_length: 256, block_count: 2, feed_forward_length: 512,
          'attention.head_count': 4, 'attention.head_count_kv': 2, 'rope.dimension_count': 64, vocab_size: 300,
          'rope.freq_base': form === 'onebit' ? 10000 : 500000,
        };
        for (const [k, v] of Object.entries(keys)) assert.equal(file.get(`${arch}.${k}`), v, k);
        assert.equal(file.get(`${arch}.attention.layer_norm_rms_epsilon`), Math.fround(1e-5));
        assert.equal(file.get('bitnet.hidden_activation'), undefined);
        assert.equal(file.get('general.alignment'), 32);
        assert.equal(file.get('tokenizer.ggml.model'), 'gpt2');
        assert.equal(file.get('tokenizer.ggml.pre'), 'llama-bpe');
        const tokens = file.get('tokenizer.ggml.tokens') as string[];
        const types = file.get('tokenizer.ggml.token_type') as number[];
        assert.equal(tokens.length, 300);
        assert.deepEqual(tokens.slice(0, 256), byteChars());
        assert.deepEqual(tokens.slice(256, 261), ['Ġt', 'he', 'Ġthe', 'in', 'Ġa']);
        for (const a of ADDED) {
          assert.equal(tokens[a.id], a.content);
          assert.equal(types[a.id], a.special ? 3 : 4, a.content);
        }
        assert.equal(tokens[299], '[PAD299]');
        assert.equal(types[299], 4);
        assert.ok(types.slice(0, 261).every((t) => t === 1));
        assert.deepEqual(file.get('tokenizer.ggml.merges'), MERGES); // pair form (sharded) joined too
        assert.equal(file.get('tokenizer.ggml.bos_token_id'), 261);
        assert.equal(file.get('tokenizer.ggml.eos_token_id'), 262);
        assert.equal(file.get('tokenizer.ggml.eot_token_id'), 263);
        assert.equal(file.get('tokenizer.ggml.add_bos_token'), true);
        assert.equal(file.get('tokenizer.chat_template'), CHAT_TEMPLATE);
      } finally {
        await close();
      }
    });
  });
}

test('--arch bitnet on a relu2 model writes bitnet.* keys and hidden_activation relu2', async () => {
  const ck = buildCheckpoint('latent-bf16');
  try {
    const path = join(out.dir, 'arch-bitnet.gguf');
    const r = await convertCheckpoint({ checkpointDir: ck.dir, outfile: path, outtype: 'tq2_0', arch: 'bitnet' });
    const { file, close } = await load(path);
    try {
      assert.equal(file.architecture, 'bitnet');
      assert.equal(file.get('bitnet.hidden_activation'), 'relu2');
      assert.equal(file.get('bitnet.block_count'), 2);
      assert.equal(file.get('bitnet-b1.58.block_count'), undefined);
      assert.deepEqual(r.notes, [], 'tq2_0 under arch bitnet: no compatibility caveat');
    } finally {
      await close();
    }
  } finally {
    ck.cleanup();
  }
});

test('embed types q8_0 and f32; untied lm_head; gpt2 pre-tokenizer', async () => {
  const { tokenizerJson } = await import('./helpers.js');
  const ck = buildCheckpoint('latent-f32', { untied: true, tokenizer: tokenizerJson({ pre: 'gpt2' }) });
  try {
    for (const embedType of ['q8_0', 'f32'] as const) {
      const path = join(out.dir, `embed-${embedType}.gguf`);
      await convertCheckpoint({ checkpointDir: ck.dir, outfile: path, outtype: 'f32', embedType, validate: true });
      const { file, close } = await load(path);
      try {
        assert.equal(file.get('tokenizer.ggml.pre'), 'gpt2');
        for (const name of ['token_embd.weight', 'output.weight']) {
          const t = file.tensor(name)!;
          assert.equal(t.type, embedType === 'q8_0' ? 8 : 0, name);
          const v = dequantize(t.type, await t.read(), t.nElements, t.dims[0]!);
          const src = ck.floats.get(name)!;
          let maxErr = 0;
          for (let i = 0; i < src.length; i++) maxErr = Math.max(maxErr, Math.abs(v[i]! - src[i]!));
          if (embedType === 'f32') assert.equal(maxErr, 0);
          else assert.ok(maxErr > 0 && maxErr < 2e-3, `q8_0 error ${maxErr}`);
        }
      } finally {
        await close();
      }
    }
  } finally {
    ck.cleanup();
  }
});

test('autobitlinear offline checkpoints multiply by weight_scale; online ones are latent', async () => {
  const packed = buildCheckpoint('prepacked', {
    mutateConfig: (c) => (c.quantization_config = { quant_method: 'bitnet', linear_class: 'autobitlinear', quantization_mode: 'offline' }),
  });
  try {
    const path = join(out.dir, 'autobit.gguf');
    await convertCheckpoint({ checkpointDir: packed.dir, outfile: path, outtype: 'i2_s' });
    const { file, close } = await load(path);
    try {
      const t = file.tensor('blk.0.attn_v.weight')!;
      const got = ternaryFromTensor(t.type, await t.read(), t.nElements, t.dims[0]!);
      const want = packed.ternary.get('blk.0.attn_v.weight')!;
      assert.deepEqual(got.codes, want.codes);
      // helper's expected scale is f16(1/ws); the multiplier form must give f16(ws) instead
      const ws = packed.tensors.find((x) => x.name === 'model.layers.0.self_attn.v_proj.weight_scale')!;
      const wsValue = new Float32Array(new Uint32Array([new DataView(ws.data.buffer).getUint16(0, true) << 16]).buffer)[0]!;
      assert.equal(got.scale, f16RoundRef(wsValue));
      assert.notEqual(got.scale, want.scale);
    } finally {
      await close();
    }
  } finally {
    packed.cleanup();
  }
});

test('the same packed bytes: bitlinear divides by weight_scale, autobitlinear offline multiplies', async () => {
  const ck = buildCheckpoint('prepacked');
  try {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const cfgPath = join(ck.dir, 'config.json');
    const scaleOf = async (linearClass: string) => {
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
      cfg.quantization_config = { quant_method: 'bitnet', linear_class: linearClass, quantization_mode: 'offline' };
      writeFileSync(cfgPath, JSON.stringify(cfg));
      const path = join(out.dir, `same-bytes-${linearClass}.gguf`);
      await convertCheckpoint({ checkpointDir: ck.dir, outfile: path, outtype: 'i2_s' });
      const { file, close } = await load(path);
      try {
        const t = file.tensor('blk.1.ffn_up.weight')!;
        return ternaryFromTensor(t.type, await t.read(), t.nElements, t.dims[0]!);
      } finally {
        await close();
      }
    };
    const ws = ck.tensors.find((x) => x.name === 'model.layers.1.mlp.up_proj.weight_scale')!;
    const wsValue = new Float32Array(new Uint32Array([new DataView(ws.data.buffer, ws.data.byteOffset).getUint16(0, true) << 16]).buffer)[0]!;
    assert.ok(wsValue !== 1 && wsValue > 0, 'a weight_scale that tells the directions apart');
    const divide = await scaleOf('bitlinear');
    const multiply = await scaleOf('autobitlinear');
    assert.deepEqual(divide.codes, multiply.codes, 'same codes from the same bytes');
    assert.deepEqual(divide.codes, ck.ternary.get('blk.1.ffn_up.weight')!.codes);
    assert.equal(divide.scale, f16RoundRef(Math.fround(1 / wsValue)));
    assert.equal(multiply.scale, f16RoundRef(wsValue));
  } finally {
    ck.cleanup();
  }
});

test('a latent checkpoint with the demo trainer\'s quantization_config (autobitlinear, online) converts', async () => {
  const ck = buildCheckpoint('latent-bf16', {
    mutateConfig: (c) => (c.quantization_config = { quant_method: 'bitnet', linear_class: 'autobitlinear', quantization_mode: 'online' }),
  });
  try {
    const path = join(out.dir, 'online.gguf');
    await convertCheckpoint({ checkpointDir: ck.dir, outfile: path, outtype: 'tq2_0' });
    const { file, close } = await load(path);
    try {
      const t = file.tensor('blk.0.attn_q.weight')!;
      assert.deepEqual(ternaryFromTensor(t.type, await t.read(), t.nElements, t.dims[0]!), ck.ternary.get('blk.0.attn_q.weight'));
    } finally {
      await close();
    }
  } finally {
    ck.cleanup();
  }
});

test('eos named <|eot_id|> in tokenizer_config: eot keeps it, eos comes from generation_config', async () => {
  const { writeFileSync } = await import('node:fs');
  const ck = buildCheckpoint('latent-bf16', { mutateConfig: (c) => delete c.eos_token_id });
  try {
    writeFileSync(join(ck.dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' }));
    const path = join(out.dir, 'eot.gguf');
    await convertCheckpoint({ checkpointDir: ck.dir, outfile: path, outtype: 'tq2_0' });
    const { file, close } = await load(path);
    try {
      assert.equal(file.get('tokenizer.ggml.eos_token_id'), 262);
      assert.equal(file.get('tokenizer.ggml.eot_token_id'), 263);
      assert.equal(file.get('tokenizer.ggml.add_bos_token'), true, 'from the TemplateProcessing post-processor');
      assert.equal(file.get('tokenizer.chat_template'), undefined);
    } finally {
      await close();
    }
  } finally {
    ck.cleanup();
  }
});
