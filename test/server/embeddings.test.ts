// /v1/embeddings, /embedding and /v1/rerank (embeddings.ts): pooled final hidden states of the model.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { normalize, pool } from '../../src/server/embeddings.js';
import { postJson, startTestServer, tinyModel } from './helpers.js';

const lm = await tinyModel({ contextLength: 512 });
const D = lm.config.nEmbd;
const srv = await startTestServer(lm, { ctxSize: 256 }, { llama: { embeddings: { pooling: 'mean', ctx: 128 } } });
after(() => srv.close());

/** The reference: the hidden states of the tokens, straight from a fresh sequence. */
async function states(text: string): Promise<{ h: Float32Array; n: number }> {
  const ids = srv.service.tokenize(text, true, false);
  const seq = lm.createSequence({ ctxSize: 128, cacheType: 'f16' });
  const h = new Float32Array(ids.length * D);
  let at = 0;
  await seq.forward(ids, { allLogits: true, onHidden: (x) => (h.set(x, at), (at += x.length)) });
  return { h, n: ids.length };
}

test('pool and normalize: mean, last, cls; L2 by default, -1 leaves the vector as it is', () => {
  const s = new Float32Array([1, 2, 3, 4, 5, 6]); // 3 tokens of 2
  assert.deepEqual(Array.from(pool(s, 3, 2, 'mean')), [3, 4]);
  assert.deepEqual(Array.from(pool(s, 3, 2, 'last')), [5, 6]);
  assert.deepEqual(Array.from(pool(s, 3, 2, 'cls')), [1, 2]);
  normalize(new Float32Array([3, 4]), 2).forEach((x, i) => assert.ok(Math.abs(x - [0.6, 0.8][i]!) < 1e-7));
  assert.deepEqual(normalize(new Float32Array([3, 4]), -1), [3, 4]);
});

test('/v1/embeddings: one unit vector of nEmbd per input, the mean of the final hidden states', async () => {
  const r = await postJson(`${srv.base}/embeddings`, { input: ['the cat', 'a dog ran'], model: 'x' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.object, 'list');
  assert.equal(r.json.data.length, 2);
  for (const d of r.json.data) {
    assert.equal(d.embedding.length, D);
    const norm = Math.hypot(...d.embedding);
    assert.ok(Math.abs(norm - 1) < 1e-5, String(norm));
  }
  const ref = await states('the cat');
  const want = normalize(pool(ref.h, ref.n, D, 'mean'), 2);
  r.json.data[0].embedding.forEach((x: number, i: number) => assert.ok(Math.abs(x - want[i]!) < 1e-5, `dim ${i}`));
  assert.equal(r.json.usage.prompt_tokens, ref.n + srv.service.tokenize('a dog ran', true, false).length);
  assert.notDeepEqual(r.json.data[0].embedding, r.json.data[1].embedding);
  // base64: the same floats
  const b = await postJson(`${srv.base}/embeddings`, { input: 'the cat', encoding_format: 'base64' });
  const buf = Buffer.from(b.json.data[0].embedding, 'base64');
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  assert.equal(f.length, D);
  assert.ok(Array.from(f).every((x, i) => Math.abs(x - r.json.data[0].embedding[i]) < 1e-6));
  // a generation running beside it is not disturbed, and the same input gives the same vector
  const again = await postJson(`${srv.base}/embeddings`, { input: 'the cat' });
  assert.deepEqual(again.json.data[0].embedding, r.json.data[0].embedding);
});

test('/embedding: llama-server\'s shape; refusals; /v1/rerank 501; off without --embedding', async () => {
  const r = await postJson(`${srv.url}/embedding`, { content: 'the cat', embd_normalize: -1 });
  assert.equal(r.status, 200);
  assert.equal(r.json[0].index, 0);
  assert.equal(r.json[0].embedding.length, 1);
  assert.equal(r.json[0].embedding[0].length, D);
  for (const bad of [{}, { input: '' }, { input: [] }, { input: 5 }, { input: 'x'.repeat(400) }, { input: 'x', encoding_format: 'hex' }, { input: 'x', dimensions: 3 }]) {
    const e = await postJson(`${srv.base}/embeddings`, bad);
    assert.equal(e.status, 400, JSON.stringify(bad).slice(0, 80));
  }
  assert.equal((await postJson(`${srv.base}/rerank`, { query: 'q', documents: ['a'] })).status, 501);
  const plain = await startTestServer(lm, { ctxSize: 64 });
  try {
    const off = await postJson(`${plain.base}/embeddings`, { input: 'x' });
    assert.equal(off.status, 501);
    assert.match(off.json.error.message, /--embedding/);
  } finally {
    await plain.close();
  }
});
