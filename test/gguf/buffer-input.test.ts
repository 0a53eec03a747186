// A model given as a Node Buffer (what fs.readFileSync returns) loads as the same bytes in a plain
// Uint8Array do: Buffer's slice() is a view where Uint8Array's is a copy, which a format reader that
// copies before reinterpreting (f16/f32 tensors) must not see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadModel } from '../../src/engine.js';
import { DEMO_MODEL_FILE } from '../../src/node/demo-model.js';
import { createReferenceKernels } from '../../src/kernels/reference.js';

test('a Node Buffer and a Uint8Array of the same file give the same logits', async () => {
  const buf = readFileSync(DEMO_MODEL_FILE);
  const kernels = createReferenceKernels();
  const out: Float32Array[] = [];
  for (const input of [buf, new Uint8Array(buf)]) {
    const m = await loadModel(input, { kernels });
    const seq = m.createSequence({ ctxSize: 16 });
    out.push(await seq.forward([2045, 461, 428]));
  }
  assert.deepEqual(out[0], out[1]);
  assert.ok(Math.max(...out[0]!.map(Math.abs)) < 100, 'the demo\'s logits are small numbers');
});
