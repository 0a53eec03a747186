// A broken model file gets a clear error that names the problem, never a crash or garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/engine.js';
import { readGGUF } from '../../src/gguf/reader.js';
import { serializeGGUF } from '../../src/gguf/writer.js';
import { metaString } from '../../src/gguf/meta.js';
import { buildSyntheticModel, type SyntheticModelSpec } from '../../src/model/synthetic.js';
import { testKernels } from '../helpers/kernels.js';

const SPEC: SyntheticModelSpec = { nEmbd: 128, nLayers: 1, nFF: 256, nHeads: 2, nKVHeads: 1, contextLength: 64, seed: 7 };

/** Rewrites a GGUF with edited metadata / tensors. */
async function rewrite(bytes: Uint8Array, edit: (meta: Map<string, any>, tensors: any[]) => void): Promise<Uint8Array> {
  const f = await readGGUF(bytes);
  const meta = new Map(f.metadata);
  const tensors = await Promise.all(f.tensors.map(async (t) => ({ name: t.name, type: t.type, dims: t.dims, data: (await t.read()).slice() })));
  edit(meta, tensors);
  return serializeGGUF({ metadata: meta, tensors });
}

test('a valid synthetic model loads and runs', async () => {
  const lm = await loadModel(buildSyntheticModel(SPEC), { kernels: await testKernels() });
  const logits = await lm.createSequence({ ctxSize: 16 }).forward([1, 2, 3]);
  assert.equal(logits.length, lm.config.vocabSize);
  assert.ok(logits.every(Number.isFinite));
});

test('truncated model file: the error names the tensor that runs past the end', async () => {
  const bytes = buildSyntheticModel(SPEC);
  await assert.rejects(loadModel(bytes.subarray(0, bytes.length - 1000), { kernels: await testKernels() }), /runs past the end of the file|outside the file/);
  await assert.rejects(loadModel(bytes.subarray(0, 100), { kernels: await testKernels() }), /truncated GGUF header|more than a 100-byte file can hold/);
});

test('unknown architecture is refused by name', async () => {
  // (I2_S, type 36, cannot even be written outside a bitnet file: use F32 weights)
  const f32 = await rewrite(buildSyntheticModel({ ...SPEC, weightType: 'f32' }), (meta) => meta.set('general.architecture', metaString('llama')));
  await assert.rejects(loadModel(f32, { kernels: await testKernels() }), /unsupported architecture 'llama'/);
});

test('a model without a tokenizer is refused with a clear error', async () => {
  const bytes = await rewrite(buildSyntheticModel(SPEC), (meta) => {
    for (const k of [...meta.keys()]) if (k.startsWith('tokenizer.')) meta.delete(k);
  });
  await assert.rejects(loadModel(bytes, { kernels: await testKernels() }), /tokenizer/i);
});

test('a missing tensor and a float tensor that is not ternary are named', async () => {
  const missing = await rewrite(buildSyntheticModel(SPEC), (_m, tensors) => {
    tensors.splice(tensors.findIndex((t) => t.name === 'blk.0.ffn_up.weight'), 1);
  });
  await assert.rejects(loadModel(missing, { kernels: await testKernels() }), /missing tensor 'blk\.0\.ffn_up\.weight'/);
  const notTernary = await rewrite(buildSyntheticModel({ ...SPEC, weightType: 'f32' }), (_m, tensors) => {
    const t = tensors.find((x) => x.name === 'blk.0.attn_q.weight');
    new Float32Array(t.data.buffer, t.data.byteOffset, 4)[3] = 0.123; // break one value
  });
  await assert.rejects(loadModel(notTernary, { kernels: await testKernels() }), /blk\.0\.attn_q\.weight/);
});

test('tokens outside the vocabulary and prompts past the context are errors', async () => {
  const lm = await loadModel(buildSyntheticModel(SPEC), { kernels: await testKernels() });
  const seq = lm.createSequence({ ctxSize: 8 });
  await assert.rejects(seq.forward([lm.config.vocabSize]), /outside the vocabulary/);
  await assert.rejects(seq.forward(Array(9).fill(1)), /do not fit the context of 8/);
  const session = lm.createSession({ ctxSize: 8 });
  await assert.rejects(session.complete(Array(12).fill(1), { maxTokens: 2 }), /prompt has 12 tokens but the context holds 8/);
});
