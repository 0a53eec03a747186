// Client-caused failures are 400s in our own words, never 500s or internal texts (issue 18, finding 9):
// a repeat_penalty so small it overflows float32, a logit_bias that bans every token, a schema whose
// $ref loop admits no value, a 6 MB message of one unbroken word (V8's regex stack).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { splitPieces, preTokenizerFor } from '../../src/tokenizer/pre-tokenize.js';
import { postJson, startTestServer, tinyModel, TINY_SPEC } from './helpers.js';

const lm = await tinyModel();
const s = await startTestServer(lm, { xgrammar: loadXGrammar() });
after(async () => {
  await s.close();
  lm.dispose();
});
const chat = (extra: Record<string, unknown>) => postJson(`${s.base}/chat/completions`, { messages: [{ role: 'user', content: 'hi hi hi' }], max_tokens: 3, ...extra });

test('repeat_penalty 1e-300 generates (logits kept finite), not a 500', async () => {
  const r = await chat({ repeat_penalty: 1e-300, repeat_last_n: 64 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
});

test('a logit_bias that bans every token is a 400 naming logit_bias', async () => {
  const ban: Record<string, number> = {};
  for (let i = 0; i < TINY_SPEC.vocabSize!; i++) ban[i] = -100;
  const r = await chat({ logit_bias: ban });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'logit_bias');
  assert.equal(r.json.error.code, 'no_token_possible');
  assert.doesNotMatch(r.json.error.message, /internal|Infinity/);
});

test('a two-definition $ref loop is a 400, not a 500', async () => {
  const schema = { $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' };
  const r = await chat({ response_format: { type: 'json_schema', json_schema: { name: 'loop', schema } } });
  assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}: ${JSON.stringify(r.json)}`);
  assert.doesNotMatch(r.json.error.message, /internal error/);
});

test('a 6 MB message of one unbroken word is a 400 about the context, not "Maximum call stack size exceeded"', async () => {
  const r = await postJson(`${s.base}/chat/completions`, { messages: [{ role: 'user', content: 'x'.repeat(6_000_000) }], max_tokens: 1 });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'context_length_exceeded');
  // known from the text's length alone (tokenizing 6 MB held the event loop for seconds)
  assert.match(r.json.error.message, /the prompt has at least \d+ tokens/);
  assert.ok((await fetch(`${s.url}/health`)).ok);
  const raw = await postJson(`${s.base}/completions`, { prompt: 'x'.repeat(6_000_000), max_tokens: 1 });
  assert.equal(raw.status, 400);
  assert.match(raw.json.error.message, /at least/);
});

test('a prompt just under the length bound is still tokenized and counted exactly', async () => {
  const r = await postJson(`${s.base}/completions`, { prompt: 'ab '.repeat(300), max_tokens: 1 });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /the prompt has \d+ tokens/);
  assert.doesNotMatch(r.json.error.message, /has at least/);
});

test('the windowed pre-tokenizer fallback gives the same pieces as one match on ordinary text', () => {
  const pre = preTokenizerFor('llama-bpe');
  const text = 'Hello, world! 12345 tabs\t\tand  spaces\n\nnew lines '.repeat(3000);
  const pieces = splitPieces(pre, ' ' + 'y'.repeat(3_000_000) + ' z');
  assert.equal(pieces.join(''), ' ' + 'y'.repeat(3_000_000) + ' z');
  assert.deepEqual(splitPieces(pre, text), text.match(pre.patterns[0]!));
});
