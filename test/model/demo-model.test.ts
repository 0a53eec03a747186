// The built-in demo model (models/wrinklefree-demo.gguf, trained by tools/train-demo) against the
// PyTorch float32 reference of tools/train-demo/reference.py: same ternary weights and f16 scale
// as the GGUF holds, per-token int8 activations rounded half to even, exact (f32) tied head.
// Every position must agree within 0.25 (an activation that rounds the other way at x.5 moves a
// logit a little; the int8 head adds its own error); position 0 (BOS alone, no attention mixing)
// within 1e-3 when the head is exact (--lm-head f16).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { loadModel, type LoadOptions } from '../../src/engine.js';
import { getTernaryFormat, i2_sFormat, tq2_0Format } from '../../src/formats/index.js';
import { metaU32 } from '../../src/gguf/meta.js';
import { readGGUF } from '../../src/gguf/reader.js';
import { serializeGGUF } from '../../src/gguf/writer.js';
import { DEMO_MODEL_FILE } from '../../src/node/demo-model.js';
import { loadModelFile } from '../../src/node/model-file.js';
import { demoReference } from '../helpers/demo.js';
import { testKernels } from '../helpers/kernels.js';

async function maxDiffs(opts: LoadOptions): Promise<{ perPrompt: number[][]; lmHead: unknown }> {
  const ref = demoReference();
  const lm = await loadModelFile(DEMO_MODEL_FILE, { kernels: await testKernels(), ...opts });
  try {
    assert.equal(lm.config.vocabSize, ref.vocab_size);
    const V = ref.vocab_size;
    const perPrompt: number[][] = [];
    for (let p = 0; p < ref.prompts.length; p++) {
      const tokens = ref.prompts[p]!;
      const logits = await lm.createSequence({ ctxSize: tokens.length }).forward(tokens, { allLogits: true });
      perPrompt.push(
        tokens.map((_, i) => {
          const want = ref.logits[p]![i]!;
          let m = 0;
          for (let v = 0; v < V; v++) m = Math.max(m, Math.abs(logits[i * V + v]! - want[v]!));
          return m;
        }),
      );
    }
    return { perPrompt, lmHead: (lm.model as unknown as { lmHead?: unknown }).lmHead };
  } finally {
    lm.dispose();
  }
}

test('demo model: logits at every position of the fixture prompts within 0.25 of the PyTorch reference', async () => {
  const { perPrompt } = await maxDiffs({});
  const worst = Math.max(...perPrompt.flat());
  assert.ok(worst < 0.25, `max |engine - reference| = ${worst} (per position: ${JSON.stringify(perPrompt.map((d) => d.map((x) => +x.toFixed(4))))})`);
});

test('demo model: position 0 within 1e-3 of the reference with the exact head', async () => {
  const { perPrompt, lmHead } = await maxDiffs({ lmHead: 'f16' } as LoadOptions);
  assert.equal(lmHead, 'f16');
  for (const d of perPrompt) assert.ok(d[0]! < 1e-3, `position 0: max |engine - reference| = ${d[0]}`);
  const worst = Math.max(...perPrompt.flat());
  assert.ok(worst < 0.25, `max |engine - reference| = ${worst}`);
});

test('demo model: the same ternary weights repacked as TQ2_0 and I2_S give bit-identical logits', async () => {
  const ref = demoReference();
  const kernels = await testKernels();
  const file = await readGGUF(new Uint8Array(await readFile(DEMO_MODEL_FILE)));
  const tensors = await Promise.all(file.tensors.map(async (t) => ({ name: t.name, type: t.type, dims: t.dims, data: (await t.read()).slice() })));
  const logitsOf = async (bytes: Uint8Array) => {
    const lm = await loadModel(bytes, { kernels });
    try {
      const out: Float32Array[] = [];
      for (const p of ref.prompts) out.push(Float32Array.from(await lm.createSequence({ ctxSize: p.length }).forward(p, { allLogits: true })));
      return out;
    } finally {
      lm.dispose();
    }
  };
  const base = await logitsOf(serializeGGUF({ metadata: new Map(file.metadata), tensors }));
  for (const [fmt, fileType] of [[tq2_0Format, 37], [i2_sFormat, 40]] as const) {
    let repacked = 0;
    const moved = tensors.map((t) => {
      const from = getTernaryFormat(t.type);
      if (!from) return t;
      repacked++;
      const n = t.dims.reduce((a, b) => a * b, 1);
      const { codes, scale } = from.unpackTernary(t.data, n, t.dims[0]!);
      return { ...t, type: fmt.type, data: fmt.packTernary(codes, scale, t.dims[0]!) };
    });
    assert.equal(repacked, 21);
    const meta = new Map(file.metadata);
    meta.set('general.file_type', metaU32(fileType));
    const got = await logitsOf(serializeGGUF({ metadata: meta, tensors: moved }));
    got.forEach((g, i) => assert.deepEqual(g, base[i], `${fmt.name}: prompt ${i}`));
  }
});
