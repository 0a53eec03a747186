// Constrained generation in a real browser (Debian's Chromium driven by playwright-core): the page
// loads @mlc-ai/web-xgrammar's UMD bundle with a side-effect import (it sets globalThis.xgrammar),
// the built engine from dist/, the demo model, and generates under a JSON schema. The reply must
// validate (ajv) and be the very tokens Node generates with the same seed. Needs `npm run build` and
// /usr/bin/chromium; without a browser the test is skipped with a message saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { loadModel } from '../../src/engine.js';
import { GrammarEngine, grammarVocabulary } from '../../src/generate/grammar.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { launchChromium, NO_BROWSER, REPO_ROOT, serveTestPage } from '../helpers/browser.js';

const root = REPO_ROOT;
const PROMPT = [263, 72, 105];
const SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 10 }, n: { type: 'integer', minimum: 0, maximum: 999 }, ok: { type: 'boolean' } },
  required: ['name', 'n', 'ok'],
  additionalProperties: false,
};
// a bias towards '"' (byte 34) and '}' (125), where the grammar allows them, keeps the demo model's strings short
const OPTIONS = { maxTokens: 120, sampler: { temperature: 0.9, seed: 5, logitBias: { 34: 4, 125: 4 } } };

const page = `<!doctype html><script type="importmap">{"imports":{"@huggingface/jinja":"/node_modules/@huggingface/jinja/dist/index.js"}}</script>
<script type="module">
import '/node_modules/@mlc-ai/web-xgrammar/lib/index.js';
import { loadModel, buildSyntheticModel, DEMO_MODEL_SPEC, GrammarEngine, grammarVocabulary, xgrammarFromGlobal } from '/dist/src/index.js';
try {
  const lm = await loadModel(buildSyntheticModel(DEMO_MODEL_SPEC), { threads: 1 });
  const engine = await GrammarEngine.create(xgrammarFromGlobal(), grammarVocabulary(lm.tokenizer, lm.config.vocabSize));
  const constraint = await (await engine.compile({ type: 'json_schema', schema: ${JSON.stringify(SCHEMA)} })).start();
  const r = await lm.createSession({ ctxSize: 256 }).complete(${JSON.stringify(PROMPT)}, { ...${JSON.stringify(OPTIONS)}, constraint });
  window.result = { tokens: r.tokens, text: r.text, finish: r.finishReason };
  constraint.dispose();
  engine.dispose();
  lm.dispose();
} catch (e) { window.result = { error: String(e && e.stack || e) }; }
</script>`;

test('constrained generation in Chromium: JSON that validates, the same tokens as in Node', async (t) => {
  assert.ok(existsSync(join(root, 'dist/src/index.js')), 'dist is not built: run `npm run build` first');
  // Node first: the reference (and the check that the schema holds here too)
  const lm = await loadModel(buildSyntheticModel(DEMO_MODEL_SPEC), { threads: 1 });
  const engine = await GrammarEngine.create(loadXGrammar(), grammarVocabulary(lm.tokenizer, lm.config.vocabSize));
  const constraint = await (await engine.compile({ type: 'json_schema', schema: SCHEMA })).start();
  const expected = await lm.createSession({ ctxSize: 256 }).complete(PROMPT, { ...OPTIONS, constraint });
  constraint.dispose?.();
  engine.dispose();
  lm.dispose();
  const validate = new Ajv().compile(SCHEMA);
  assert.equal(expected.finishReason, 'stop', expected.text);
  assert.ok(validate(JSON.parse(expected.text)), expected.text);

  const browser = await launchChromium();
  if (!browser) return t.skip(NO_BROWSER);
  const { server, url } = await serveTestPage(page);
  try {
    const p = await browser.newPage();
    await p.goto(url);
    const handle = await p.waitForFunction(() => (window as unknown as { result?: unknown }).result, null, { timeout: 60_000 });
    const r = (await handle.jsonValue()) as { tokens?: number[]; text?: string; finish?: string; error?: string };
    assert.equal(r.error, undefined, `page error: ${r.error}`);
    assert.equal(r.finish, 'stop');
    assert.ok(validate(JSON.parse(r.text!)), r.text);
    assert.deepEqual(r.tokens, expected.tokens);
  } finally {
    server.close();
    await browser.close();
  }
});
