// Older JSON Schema drafts' tuple form (items: [...]) is compiled as 2020-12's prefixItems
// (schema-draft.ts), so llama-server's accepted schemas are accepted here too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { modernSchema } from '../../src/server/schema-draft.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { postJson, startTestServer, tinyModel } from './helpers.js';

test('modernSchema: items [..] becomes prefixItems, exact unless additionalItems says more; nested ones too; data untouched', () => {
  assert.deepEqual(modernSchema({ items: [{ type: 'integer' }] }), { prefixItems: [{ type: 'integer' }], items: false });
  assert.deepEqual(modernSchema({ type: 'array', items: [{ type: 'string' }], additionalItems: { type: 'boolean' } }), {
    type: 'array',
    prefixItems: [{ type: 'string' }],
    items: { type: 'boolean' },
  });
  const nested = { type: 'object', properties: { items: { items: [{ type: 'null' }] } }, const: { items: [1] }, anyOf: [{ items: [true] }] };
  const before = JSON.stringify(nested);
  assert.deepEqual(modernSchema(nested), {
    type: 'object',
    properties: { items: { prefixItems: [{ type: 'null' }], items: false } },
    const: { items: [1] },
    anyOf: [{ prefixItems: [true], items: false }],
  });
  assert.equal(JSON.stringify(nested), before, 'the caller\'s schema is not changed');
  // the 2020-12 forms and other schemas pass as they are
  for (const s of [{ prefixItems: [{ type: 'integer' }], items: { type: 'string' } }, { items: { type: 'integer' } }, true, { enum: [[1]] }]) assert.deepEqual(modernSchema(s), s);
});

test('response_format with a draft-4 tuple schema: accepted, and the output is that tuple', async () => {
  const lm = await tinyModel({ contextLength: 1024 });
  const srv = await startTestServer(lm, { xgrammar: loadXGrammar() });
  after(() => srv.close());
  const r = await postJson(`${srv.base}/chat/completions`, {
    messages: [{ role: 'user', content: 'an example' }],
    max_tokens: 60,
    seed: 5,
    response_format: { type: 'json_object', schema: { items: [{ type: 'boolean' }, { enum: ['a', 'b'] }] } },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.choices[0].finish_reason, 'stop', r.json.choices[0].message.content);
  const v = JSON.parse(r.json.choices[0].message.content);
  assert.ok(Array.isArray(v) && v.length === 2 && typeof v[0] === 'boolean' && ['a', 'b'].includes(v[1]), JSON.stringify(v));
});
