// A session reuses the cached prefix of a new prompt: the logits must equal a fresh evaluation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/engine.js';
import { buildSyntheticModel } from '../../src/model/synthetic.js';
import { testKernels } from '../helpers/kernels.js';

test('prefix reuse gives the same tokens as a fresh session and skips the shared prefix', async () => {
  const lm = await loadModel(buildSyntheticModel({ nEmbd: 128, nLayers: 2, nFF: 256, nHeads: 4, nKVHeads: 2, seed: 3 }), { kernels: await testKernels() });
  const a = lm.createSession({ ctxSize: 64 });
  const first = await a.complete([260, 10, 20, 30, 40], { maxTokens: 5, sampler: { temperature: 0 } });
  // second prompt extends the first conversation
  const prompt2 = [260, 10, 20, 30, 40, ...first.tokens, 50, 60];
  const reused = await a.complete(prompt2, { maxTokens: 6, sampler: { temperature: 0 } });
  assert.ok(a.cache.reusedTokens >= 5, `reused ${a.cache.reusedTokens} tokens`);
  const fresh = await lm.createSession({ ctxSize: 64 }).complete(prompt2, { maxTokens: 6, sampler: { temperature: 0 } });
  assert.deepEqual(reused.tokens, fresh.tokens);
  // a prompt that diverges early drops the stale tail
  const other = await a.complete([260, 10, 99], { maxTokens: 4, sampler: { temperature: 0 } });
  const otherFresh = await lm.createSession({ ctxSize: 64 }).complete([260, 10, 99], { maxTokens: 4, sampler: { temperature: 0 } });
  assert.deepEqual(other.tokens, otherFresh.tokens);
  assert.equal(a.cache.reusedTokens, 2);
});

test('prefix reuse spans the prompt batches of the token loop', async () => {
  const lm = await loadModel(buildSyntheticModel({ nEmbd: 128, nLayers: 1, nFF: 256, nHeads: 4, nKVHeads: 2, seed: 4 }), { kernels: await testKernels() });
  const s = lm.createSession({ ctxSize: 128 });
  const prompt = Array.from({ length: 70 }, (_, i) => (i * 13) % 250);
  const a = await s.complete(prompt, { maxTokens: 3, sampler: { temperature: 0 }, promptBatchSize: 16 });
  const b = await s.complete([...prompt, ...a.tokens, 7], { maxTokens: 3, sampler: { temperature: 0 }, promptBatchSize: 16 });
  // everything but the last token of each 16-token batch is reused: at least the 70 prompt tokens minus one per batch
  assert.ok(s.cache.reusedTokens >= 70 - 5, `reused ${s.cache.reusedTokens}`);
  const fresh = await lm.createSession({ ctxSize: 128 }).complete([...prompt, ...a.tokens, 7], { maxTokens: 3, sampler: { temperature: 0 } });
  assert.deepEqual(b.tokens, fresh.tokens);
});
