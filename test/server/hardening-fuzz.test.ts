// Short form of the hardening fuzz harness (test/helpers/hardening-fuzz.ts; long form: bench/fuzz.ts):
// seeded chat templates, GGUF headers and HTTP requests. Templates render or fail with our own errors
// within their budget; GGUF headers parse or fail with a GGUFError at once; every HTTP answer is below
// 500, and the server still answers a normal request at the end.
// Reproduce: WF_FUZZ_SEED=<seed> node --test dist/test/server/hardening-fuzz.test.js
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../helpers/random.js';
import { ggufCase, httpCase, runGgufCase, runTemplateCase, send, templateCase } from '../helpers/hardening-fuzz.js';
import { startTestServer, tinyModel, TINY_SPEC } from './helpers.js';

const SEED = Number(process.env.WF_FUZZ_SEED ?? 0x18f022) >>> 0;
const lm = await tinyModel();
after(() => lm.dispose());

test(`templates: 30 seeded cases (seed ${SEED})`, () => {
  const r = mulberry32(SEED);
  for (let i = 0; i < 30; i++) {
    const c = templateCase(r);
    try {
      runTemplateCase(lm.tokenizer, c, 200);
    } catch (e) {
      assert.fail(`case ${i}: ${(e as Error).message}\ntemplate: ${c.template.slice(0, 300)}`);
    }
  }
});

test(`GGUF headers: 60 seeded cases (seed ${SEED})`, async () => {
  const r = mulberry32(SEED + 1);
  for (let i = 0; i < 60; i++) {
    try {
      await runGgufCase(ggufCase(r));
    } catch (e) {
      assert.fail(`case ${i}: ${(e as Error).message}`);
    }
  }
});

test(`HTTP: 60 seeded requests answer below 500, then a normal request works (seed ${SEED})`, async () => {
  const s = await startTestServer(lm, { ctxSize: 256 });
  try {
    const r = mulberry32(SEED + 2);
    for (let i = 0; i < 60; i++) {
      const c = httpCase(r, TINY_SPEC.vocabSize!);
      const res = await send(s.url, c);
      assert.ok(res.status > 0 && res.status < 500, `case ${i}: ${c.method} ${c.path} -> ${res.status} ${res.body.slice(0, 300)}\nbody: ${String(c.body).slice(0, 300)}`);
    }
    const ok = await send(s.url, { path: '/v1/chat/completions', method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) });
    assert.equal(ok.status, 200);
  } finally {
    await s.close();
  }
});
