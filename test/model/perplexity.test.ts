// computePerplexity against a direct statement of llama-perplexity's method on an oracle model:
// chunking, BOS replacing each chunk's first token, the scored half, the NLL and the ± figure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitNetModel } from '../../src/model/model.js';
import { computePerplexity, tokenNll } from '../../src/model/perplexity.js';
import { oracleBytes } from '../helpers/oracle.js';
import { testKernels } from '../helpers/kernels.js';

const model = await BitNetModel.load(oracleBytes('bitnet-tiny-silu-tq2_0.gguf'), { kernels: await testKernels() });
const V = model.config.vocabSize;

let seed = 5;
const tokens = Array.from({ length: 200 }, () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 256);

/** llama-perplexity written out plainly: float64 log-softmax of each scored position. */
async function direct(ctx: number, bos?: number): Promise<{ ppl: number; sd: number; count: number }> {
  const nll: number[] = [];
  for (let c = 0; c + ctx <= tokens.length; c += ctx) {
    const chunk = tokens.slice(c, c + ctx);
    if (bos !== undefined) chunk[0] = bos;
    const logits = await model.createSequence({ ctxSize: ctx }).forward(chunk, { allLogits: true });
    for (let j = Math.floor(ctx / 2); j < ctx - 1; j++) {
      const row = Array.from(logits.subarray(j * V, (j + 1) * V));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      nll.push(lse - row[chunk[j + 1]!]!);
    }
  }
  const mean = nll.reduce((a, b) => a + b, 0) / nll.length;
  const mean2 = nll.reduce((a, b) => a + b * b, 0) / nll.length;
  const ppl = Math.exp(mean);
  return { ppl, sd: Math.sqrt((mean2 - mean * mean) / (nll.length - 1)) * ppl, count: nll.length };
}

test('chunks of -c, second half scored, PPL and its ± as llama-perplexity', async () => {
  for (const ctx of [32, 50, 64]) {
    const r = await computePerplexity(model, tokens, { ctx, batchSize: 16 });
    const d = await direct(ctx);
    assert.equal(r.chunks, Math.floor(200 / ctx));
    assert.equal(r.tokensScored, r.chunks * (ctx - Math.floor(ctx / 2) - 1));
    assert.equal(r.tokensScored, d.count);
    assert.ok(Math.abs(r.ppl / d.ppl - 1) < 1e-5, `ctx ${ctx}: ${r.ppl} vs ${d.ppl}`);
    assert.ok(Math.abs(r.pplStddev / d.sd - 1) < 1e-4, `ctx ${ctx}: ± ${r.pplStddev} vs ${d.sd}`);
    assert.ok(Math.abs(Math.log(r.ppl) - r.meanNll) < 1e-12);
  }
});

test('BOS replaces the first token of every chunk (it is not inserted)', async () => {
  const withBos = await computePerplexity(model, tokens, { ctx: 40, bos: 261 });
  const plain = await computePerplexity(model, tokens, { ctx: 40 });
  const d = await direct(40, 261);
  assert.equal(withBos.tokensScored, plain.tokensScored);
  assert.ok(Math.abs(withBos.ppl / d.ppl - 1) < 1e-5, `${withBos.ppl} vs ${d.ppl}`);
  assert.notEqual(withBos.ppl, plain.ppl);
});

test('tokenNll: -log softmax, hand-worked', () => {
  const l = new Float32Array([0, Math.log(3), 0, 7]);
  // softmax over [1, 3, 1] (the 7 lies outside the row): p(1) = 3/5
  assert.ok(Math.abs(tokenNll(l, 0, 3, 1) - Math.log(5 / 3)) < 1e-6);
});

test('errors: text shorter than one chunk, chunk larger than the context, tiny chunks', async () => {
  await assert.rejects(computePerplexity(model, tokens.slice(0, 100), { ctx: 128 }), /the text has 100 tokens, fewer than one chunk of 128/);
  await assert.rejects(computePerplexity(model, tokens, { ctx: 1024 }), /chunks of 1024 tokens exceed the model's context of 512 tokens/);
  await assert.rejects(computePerplexity(model, tokens, { ctx: 3 }), /at least 4 tokens, got 3/);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(computePerplexity(model, tokens, { ctx: 32, signal: ac.signal }), /abort/i);
});
