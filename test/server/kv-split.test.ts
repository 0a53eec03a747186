// --kv-split (each slot holds at most ctx / slots tokens, llama-server's default without --kv-unified)
// and llama.cpp's error types on its own routes (llama-errors.ts).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadedModel } from '../../src/engine.js';
import { GenerationService } from '../../src/server/service.js';
import { kvSplitFrom } from '../../src/cli/llama-flags.js';
import { parseArgs } from '../../src/cli/args.js';
import { SERVER_OPTIONS } from '../../src/cli/wf_server.js';
import { NO_EOG, postJson, startTestServer, tinyModel } from './helpers.js';

let lm: LoadedModel;
before(async () => {
  lm = await tinyModel();
});

/** `n` tokens of text in the tiny model's byte-level vocabulary (one token per byte, BOS first). */
const text = (n: number) => 'a'.repeat(n);

test('--kv-split: a slot holds ctx / slots tokens; /props, /slots and the context error say so', async () => {
  const srv = await startTestServer(lm, { ctxSize: 128, slots: 2, kvSplit: true });
  try {
    assert.equal(srv.service.slotContext, 64);
    const props = (await (await fetch(`${srv.url}/props`)).json()) as any;
    assert.equal(props.default_generation_settings.n_ctx, 64);
    const slots = (await (await fetch(`${srv.url}/slots`)).json()) as any[];
    assert.deepEqual(slots.map((s) => s.n_ctx), [64, 64]);
    // 70 prompt tokens fit the pool of 128 but not a slot's 64
    const long = await postJson(`${srv.url}/completion`, { prompt: text(70), n_predict: 1 });
    assert.equal(long.status, 400);
    assert.equal(long.json.error.type, 'exceed_context_size_error');
    assert.equal(long.json.error.n_ctx, 64);
    assert.ok(long.json.error.n_prompt_tokens >= 64, JSON.stringify(long.json));
    assert.match(long.json.error.message, /exceeds the available context size \(64 tokens\)/);
    // a prompt that fits its slot runs, and generation stops at the slot's end ('length'), not the pool's
    const fits = await postJson(`${srv.url}/v1/completions`, { prompt: text(50), max_tokens: 100, logit_bias: NO_EOG, temperature: 0 });
    assert.equal(fits.status, 200, JSON.stringify(fits.json));
    assert.equal(fits.json.choices[0].finish_reason, 'length');
    assert.ok(fits.json.usage.prompt_tokens + fits.json.usage.completion_tokens <= 64, JSON.stringify(fits.json.usage));
  } finally {
    await srv.close();
  }
  // without it (the default), the same prompt may use the whole pool
  const shared = await startTestServer(lm, { ctxSize: 128, slots: 2 });
  try {
    assert.equal(shared.service.slotContext, 128);
    const r = await postJson(`${shared.url}/completion`, { prompt: text(70), n_predict: 1 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  } finally {
    await shared.close();
  }
});

test('--kv-split: a share under 8 tokens is refused at start', () => {
  assert.throws(() => new GenerationService(lm, { modelId: 't', ctxSize: 16, slots: 4, kvSplit: true }), /leaves 4 tokens per slot/);
});

test('--kv-split flags: --no-kv-unified / -no-kvu are the same, --kv-unified with either is refused', () => {
  const of = (argv: string[]) => kvSplitFrom(parseArgs(argv, SERVER_OPTIONS).options);
  assert.equal(of([]), false);
  assert.equal(of(['--kv-unified']), false);
  assert.equal(of(['-kvu']), false);
  assert.equal(of(['--kv-split']), true);
  assert.equal(of(['--no-kv-unified']), true);
  assert.equal(of(['-no-kvu']), true);
  assert.throws(() => of(['--kv-split', '--kv-unified']), /not both/);
});

test("error types: llama.cpp's on routes without /v1, OpenAI's on /v1", async () => {
  const srv = await startTestServer(lm, { ctxSize: 64, slots: 1 }, { apiKey: 'sekrit' });
  try {
    const key = { Authorization: 'Bearer sekrit' };
    const chat = { messages: [{ role: 'user', content: text(200) }] };
    const native = await postJson(`${srv.url}/chat/completions`, chat, key);
    assert.equal(native.status, 400);
    assert.equal(native.json.error.type, 'exceed_context_size_error');
    assert.equal(native.json.error.code, 'context_length_exceeded'); // OpenAI's code stays beside it
    assert.equal(native.json.error.n_ctx, 64);
    assert.ok(native.json.error.n_prompt_tokens > 64);
    const oai = await postJson(`${srv.url}/v1/chat/completions`, chat, key);
    assert.equal(oai.status, 400);
    assert.equal(oai.json.error.type, 'invalid_request_error');
    assert.equal(oai.json.error.code, 'context_length_exceeded');
    assert.equal('n_ctx' in oai.json.error, false);
    assert.match(oai.json.error.message, /maximum context length is 64 tokens/);

    for (const headers of [{}, { Authorization: "Bearer wrong" }] as Record<string, string>[]) {
      const llama = await postJson(`${srv.url}/completions`, { prompt: 'x' }, headers);
      assert.equal(llama.status, 401);
      assert.equal(llama.json.error.type, 'authentication_error');
      const openai = await postJson(`${srv.url}/v1/completions`, { prompt: 'x' }, headers);
      assert.equal(openai.status, 401);
      assert.equal(openai.json.error.type, 'invalid_request_error');
      assert.equal(openai.json.error.code, 'invalid_api_key');
    }
    // other errors keep their type on either route
    const bad = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 'many' }, key);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.type, 'invalid_request_error');
  } finally {
    await srv.close();
  }
});
