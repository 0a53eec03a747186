// Architecture variants and optional tensors of the model loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/engine.js';
import { readGGUF } from '../../src/gguf/reader.js';
import { serializeGGUF, type GGUFTensorWithData } from '../../src/gguf/writer.js';
import { metaString, type GGUFMetaValue } from '../../src/gguf/meta.js';
import { GGMLType } from '../../src/gguf/types.js';
import { buildSyntheticModel, type SyntheticModelSpec } from '../../src/model/synthetic.js';
import { testKernels } from '../helpers/kernels.js';

const SPEC: SyntheticModelSpec = { nEmbd: 128, nLayers: 1, nFF: 256, nHeads: 2, nKVHeads: 1, contextLength: 64, weightType: 'f32', seed: 11 };
const PROMPT = [260, 65, 66, 67, 68];

async function edit(bytes: Uint8Array, fn: (meta: Map<string, GGUFMetaValue>, tensors: GGUFTensorWithData[]) => void) {
  const f = await readGGUF(bytes);
  const meta = new Map(f.metadata);
  const tensors = await Promise.all(f.tensors.map(async (t) => ({ name: t.name, type: t.type, dims: t.dims, data: (await t.read()).slice() })));
  fn(meta, tensors);
  return serializeGGUF({ metadata: meta, tensors });
}

/** Renames every `${from}.*` key to `${to}.*` and sets the architecture. */
function renameArch(meta: Map<string, GGUFMetaValue>, from: string, to: string): void {
  for (const [k, v] of [...meta]) {
    if (k.startsWith(from + '.')) {
      meta.delete(k);
      meta.set(to + k.slice(from.length), v);
    }
  }
  meta.set('general.architecture', metaString(to));
}

async function logitsOf(bytes: Uint8Array, ffnAct?: 'relu2' | 'silu') {
  const lm = await loadModel(bytes, { kernels: await testKernels(), ffnAct });
  return { act: lm.config.ffnAct, logits: await lm.createSequence({ ctxSize: 16 }).forward(PROMPT) };
}

test('bitnet-25 is bitnet-b1.58 under another name; bitnet is SiLU unless told relu2', async () => {
  const base = buildSyntheticModel(SPEC);
  const b158 = await logitsOf(base);
  assert.equal(b158.act, 'relu2');
  const b25 = await logitsOf(await edit(base, (m) => renameArch(m, 'bitnet-b1.58', 'bitnet-25')));
  assert.equal(b25.act, 'relu2');
  assert.deepEqual(b25.logits, b158.logits);
  const silu = await logitsOf(await edit(base, (m) => renameArch(m, 'bitnet-b1.58', 'bitnet')));
  assert.equal(silu.act, 'silu');
  assert.notDeepEqual(silu.logits, b158.logits);
  const relu2Key = await logitsOf(await edit(base, (m) => { renameArch(m, 'bitnet-b1.58', 'bitnet'); m.set('bitnet.hidden_activation', metaString('relu2')); }));
  assert.equal(relu2Key.act, 'relu2');
  assert.deepEqual(relu2Key.logits, b158.logits);
  const forced = await logitsOf(await edit(base, (m) => renameArch(m, 'bitnet-b1.58', 'bitnet')), 'relu2');
  assert.deepEqual(forced.logits, b158.logits);
});

test('a per-tensor `.scale` tensor (1bitLLM files) multiplies that matmul', async () => {
  const base = buildSyntheticModel(SPEC);
  // A: attn_q holds t*alpha and a separate scale 2; B: attn_q holds t*(2 alpha) and no scale
  const withScale = await edit(base, (_m, tensors) => {
    const i = tensors.findIndex((t) => t.name === 'blk.0.attn_q.weight');
    tensors.splice(i + 1, 0, { name: 'blk.0.attn_q.scale', type: GGMLType.F32, dims: [1], data: new Uint8Array(new Float32Array([2]).buffer) });
  });
  const doubled = await edit(base, (_m, tensors) => {
    const t = tensors.find((x) => x.name === 'blk.0.attn_q.weight')!;
    const v = new Float32Array(t.data.buffer, t.data.byteOffset, t.data.length / 4);
    for (let i = 0; i < v.length; i++) v[i] *= 2;
  });
  const a = await logitsOf(withScale);
  const b = await logitsOf(doubled);
  const c = await logitsOf(base);
  assert.deepEqual(a.logits, b.logits);
  assert.notDeepEqual(a.logits, c.logits);
});

test('a separate output.weight is used instead of the tied embedding', async () => {
  const base = buildSyntheticModel({ ...SPEC, embedType: 'f32' });
  const untied = await edit(base, (_m, tensors) => {
    const emb = tensors.find((t) => t.name === 'token_embd.weight')!;
    const out = emb.data.slice();
    const v = new Float32Array(out.buffer);
    for (let i = 0; i < v.length; i++) v[i] = -v[i]; // negated head: logits negate
    tensors.push({ name: 'output.weight', type: GGMLType.F32, dims: emb.dims, data: out });
  });
  const tied = await logitsOf(base);
  const sep = await logitsOf(untied);
  for (let i = 0; i < tied.logits.length; i++) assert.ok(Math.abs(sep.logits[i] + tied.logits[i]) < 1e-4, `logit ${i}`);
});
