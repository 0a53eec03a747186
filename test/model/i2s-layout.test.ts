// --i2s-layout end to end: the same random model written in each bitnet.cpp I2_S layout gives the
// x86 file's logits when read in its own layout, and other logits (or a clear error) when read in another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/engine.js';
import type { I2SLayout } from '../../src/formats/index.js';
import { buildSyntheticModel, type SyntheticModelSpec } from '../../src/model/synthetic.js';
import { testKernels } from '../helpers/kernels.js';

const SPEC: SyntheticModelSpec = { nEmbd: 128, nLayers: 1, nFF: 256, nHeads: 2, nKVHeads: 1, contextLength: 64, seed: 21 };
const prompt = [261, 72, 105, 32, 116];

async function logits(layoutWritten: I2SLayout, layoutRead?: I2SLayout): Promise<Float32Array> {
  const lm = await loadModel(buildSyntheticModel({ ...SPEC, i2sLayout: layoutWritten }), { kernels: await testKernels(), i2sLayout: layoutRead });
  try {
    const seq = lm.createSequence({ ctxSize: 16 });
    return Float32Array.from(await seq.forward(prompt));
  } finally {
    lm.dispose();
  }
}

test('each layout read as itself gives the same logits as the x86 file', async () => {
  const ref = await logits('x86');
  for (const layout of ['arm', 'x86-interleaved'] as const) {
    assert.deepEqual(await logits(layout, layout), ref, layout);
  }
});

test('an ARM file read with the default x86 layout loads but computes something else', async () => {
  const ref = await logits('x86');
  const wrong = await logits('arm');
  let diff = 0;
  for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i]! - wrong[i]!));
  assert.ok(diff > 0.01, `max diff ${diff}`);
});
