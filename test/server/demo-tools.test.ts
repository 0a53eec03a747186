// Tools on the built-in demo model (a 256-token context), as a newcomer tries them with the
// `openai` client: two tools fit with room for the reply; a required call ends after one call
// instead of adding calls until max_tokens; a call cut by max_tokens comes back as tool_calls in
// the whole response exactly as the stream shows it; max_tokens 0 is refused, as OpenAI does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { loadModelFile } from '../../src/node/model-file.js';
import { DEMO_MODEL_FILE } from '../../src/node/demo-model.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { testKernels } from '../helpers/kernels.js';
import { postJson, startTestServer, weatherTool, type TestServer } from './helpers.js';

const lm = await loadModelFile(DEMO_MODEL_FILE, { kernels: await testKernels() });
let srv: TestServer;
let client: OpenAI;
const MODEL = 'wrinklefree-demo';

before(async () => {
  srv = await startTestServer(lm, { modelId: MODEL, ctxSize: 256, slots: 1, xgrammar: loadXGrammar() });
  client = new OpenAI({ baseURL: srv.base, apiKey: 'sk-test', maxRetries: 0, timeout: 60000 });
});
after(async () => {
  await srv.close();
  lm.dispose();
});

const TIME: OpenAI.Chat.ChatCompletionFunctionTool = {
  type: 'function',
  function: { name: 'get_time', description: 'Time in a zone', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } },
};
const ask: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

/** The calls of a streamed reply, assembled from its deltas. */
async function streamedCalls(body: OpenAI.Chat.ChatCompletionCreateParamsStreaming) {
  const calls: { name: string; arguments: string }[] = [];
  let finish: string | null = null;
  for await (const chunk of await client.chat.completions.create(body)) {
    const c = chunk.choices[0];
    if (!c) continue;
    for (const d of c.delta.tool_calls ?? []) {
      calls[d.index] ??= { name: '', arguments: '' };
      if (d.function?.name) calls[d.index]!.name = d.function.name;
      calls[d.index]!.arguments += d.function?.arguments ?? '';
    }
    finish = c.finish_reason ?? finish;
  }
  return { calls, finish };
}

test('two tools fit the demo\'s 256-token context, with room for the call', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: ask, tools: [weatherTool(), TIME], tool_choice: 'required', parallel_tool_calls: false, temperature: 0 });
  const c = r.choices[0]!;
  assert.equal(c.finish_reason, 'tool_calls', `prompt ${r.usage!.prompt_tokens} tokens: ${JSON.stringify(c.message)}`);
  assert.ok(r.usage!.total_tokens <= 256);
  // the tools' description is short: about 40% of the context (it was 368 tokens, more than all of it)
  assert.ok(r.usage!.prompt_tokens <= 180, `prompt ${r.usage!.prompt_tokens} tokens`);
});

test('tool_choice required or named: the reply ends after one call per callable tool', async () => {
  for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }] as const) {
    const r = await client.chat.completions.create({ model: MODEL, messages: ask, tools: [weatherTool()], tool_choice, max_tokens: 150, temperature: 0 });
    const c = r.choices[0]!;
    assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c.message));
    assert.equal(c.message.tool_calls!.length, 1);
    assert.ok(r.usage!.completion_tokens < 150);
  }
});

test('a call cut by max_tokens: the whole reply carries the tool_calls the stream shows (not the envelope as content)', async () => {
  const body = { model: MODEL, messages: ask, tools: [weatherTool()], tool_choice: 'required' as const, temperature: 0 };
  const full = await client.chat.completions.create({ ...body, max_tokens: 150 });
  const n = full.usage!.completion_tokens;
  // cut a few tokens before the end: inside the arguments
  for (const max_tokens of [n - 4, n - 7]) {
    const whole = await client.chat.completions.create({ ...body, max_tokens });
    const c = whole.choices[0]!;
    assert.equal(c.finish_reason, 'length');
    assert.equal(c.message.content, null, `the envelope leaked into content: ${c.message.content}`);
    const calls = (c.message.tool_calls ?? []).map((t) => ({ name: (t as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.name, arguments: (t as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.arguments }));
    const streamed = await streamedCalls({ ...body, max_tokens, stream: true });
    assert.equal(streamed.finish, 'length');
    assert.deepEqual(calls, streamed.calls);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.name, 'get_weather');
  }
});

test('max_tokens 0 and max_completion_tokens 0 are refused (OpenAI: at least 1)', async () => {
  for (const key of ['max_tokens', 'max_completion_tokens']) {
    const r = await postJson(`${srv.base}/chat/completions`, { model: MODEL, messages: ask, [key]: 0 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, key);
  }
  const c = await postJson(`${srv.base}/completions`, { model: MODEL, prompt: 'x', max_tokens: 0 });
  assert.equal(c.status, 400);
});
