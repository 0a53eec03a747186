// Tool calls on models whose chat template takes `tools`, through the official `openai` client
// against the HTTP server: two tiny random-weight models carry a Llama 3.1-style and a Hermes /
// Qwen 2.5-style template (test/helpers/tool-templates.ts). The prompt the server tokenizes is
// checked against the template rendered here with the tools (its token count, which the tools
// change), the reply is held to the family's own call format by the grammar, and every call's
// arguments are validated with ajv against the tool's schema.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import type { LoadedModel } from '../../src/engine.js';
import { byteLevelTokenizer } from '../../src/model/synthetic.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { parseChatRequest } from '../../src/server/requests.js';
import { encodeChat, renderChat } from '../../src/tokenizer/chat-template.js';
import { continueCachedText } from '../../src/server/prefix-text.js';
import { HERMES_TOOLS_TEMPLATE, LLAMA31_TOOLS_TEMPLATE, OTHER_TOOLS_TEMPLATE } from '../helpers/tool-templates.js';
import { EOS, postJson, startTestServer, tinyModel, type TestServer, weatherTool } from './helpers.js';

interface Setup {
  lm: LoadedModel;
  srv: TestServer;
  client: OpenAI;
}
const models: Record<'llama' | 'hermes' | 'other', Setup> = {} as never;
const ajv = new Ajv({ strict: false });

before(async () => {
  const templates = [['llama', LLAMA31_TOOLS_TEMPLATE], ['hermes', HERMES_TOOLS_TEMPLATE], ['other', OTHER_TOOLS_TEMPLATE]] as const;
  for (const [key, chatTemplate] of templates) {
    const lm = await tinyModel({ contextLength: 2048, tokenizer: { ...byteLevelTokenizer(264), chatTemplate } });
    const srv = await startTestServer(lm, { ctxSize: 2048, slots: 1, xgrammar: loadXGrammar() });
    models[key] = { lm, srv, client: new OpenAI({ baseURL: srv.base, apiKey: 'sk-test', maxRetries: 0, timeout: 60000 }) };
  }
});
after(async () => {
  for (const m of Object.values(models)) {
    await m.srv.close();
    m.lm.dispose();
  }
});

/** logit_bias: short strings and numbers ('"', '}'), and (eos > 0) the end of the reply wherever the grammar allows it */
function bias(lm: LoadedModel, eos = 40): Record<string, number> {
  const b: Record<string, number> = { [String(EOS)]: eos };
  for (const ch of ['"', '}']) b[String(lm.tokenizer.encode(ch, { addBos: false })[0])] = 6;
  return b;
}

const WEATHER = weatherTool();
const TIME: OpenAI.Chat.ChatCompletionFunctionTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false } },
};
const TOOLS = [WEATHER, TIME];
const paramsOf = (name: string) => TOOLS.find((t) => t.function.name === name)!.function.parameters!;
const user = (content: string): OpenAI.Chat.ChatCompletionMessageParam[] => [{ role: 'user', content }];

/** The prompt as the template renders it with these tools (what the server must tokenize). */
function expectedPrompt(m: Setup, body: Record<string, unknown>): { text: string; tokens: number; ids: number[] } {
  const req = parseChatRequest(body, 264, m.srv.service.toolFormat);
  const opts = { variables: req.templateVariables };
  const ids = encodeChat(m.lm.tokenizer, req.messages, opts);
  return { text: renderChat(m.lm.tokenizer, req.messages, opts), tokens: ids.length, ids };
}

function checkCalls(calls: OpenAI.Chat.ChatCompletionMessageToolCall[] | undefined, names?: string[]): OpenAI.Chat.ChatCompletionMessageFunctionToolCall[] {
  assert.ok(calls && calls.length >= 1, 'tool calls');
  const out: OpenAI.Chat.ChatCompletionMessageFunctionToolCall[] = [];
  for (const call of calls) {
    assert.equal(call.type, 'function');
    if (call.type !== 'function') continue;
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    if (names) assert.ok(names.includes(call.function.name), call.function.name);
    const args = JSON.parse(call.function.arguments);
    assert.ok(ajv.validate(paramsOf(call.function.name), args), `${call.function.name} ${call.function.arguments}: ${ajv.errorsText()}`);
    out.push(call);
  }
  assert.equal(new Set(out.map((c) => c.id)).size, out.length, 'distinct ids');
  return out;
}

test('the servers recognise the two template families', async () => {
  for (const [key, want] of [['llama', 'llama3-json'], ['hermes', 'hermes'], ['other', 'template-generic']] as const) {
    const res = await fetch(`${models[key].srv.url}/v1/models`);
    const body = (await res.json()) as { data: { meta: { tool_format: string } }[] };
    assert.equal(body.data[0]!.meta.tool_format, want);
  }
});

for (const key of ['llama', 'hermes'] as const) {
  test(`${key}: tool_choice required, not streamed, then a follow-up with role tool, both rendered through the template`, async () => {
    const m = models[key];
    const first = { model: 'tiny-test', messages: user('Weather in Paris?'), tools: TOOLS, tool_choice: 'required' as const, seed: 7, max_tokens: 300, logit_bias: bias(m.lm) };
    const r = await m.client.chat.completions.create(first);
    const c = r.choices[0]!;
    assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
    const calls = checkCalls(c.message.tool_calls);
    if (key === 'llama') assert.equal(calls.length, 1, 'one call per reply in the Llama 3 format');
    // the prompt the server used is the template's, tools included
    const p1 = expectedPrompt(m, first);
    assert.ok(p1.text.includes('"name": "get_weather", "description": "Current weather in a city"'), p1.text);
    assert.equal(r.usage!.prompt_tokens, p1.tokens);
    // the follow-up: the assistant's calls and the results as the template writes them
    const follow = {
      model: 'tiny-test',
      messages: [...user('Weather in Paris?'), c.message, ...calls.map((call) => ({ role: 'tool' as const, tool_call_id: call.id, content: '{"temp": 21}' }))],
      tools: TOOLS,
      seed: 8,
      max_tokens: 300,
      logit_bias: bias(m.lm),
    };
    // the server keeps the tokens it read and wrote for the first reply (prefix-text.ts), and tokenizes only what follows
    const cachedNow = m.srv.service.scheduler.entries().map((e) => e.tokens);
    const scratch = expectedPrompt(m, follow).ids;
    const continued = continueCachedText(m.lm.tokenizer, scratch, cachedNow);
    const f = await m.client.chat.completions.create(follow);
    const fc = f.choices[0]!;
    if (fc.finish_reason === 'tool_calls') checkCalls(fc.message.tool_calls);
    else assert.equal(typeof fc.message.content, 'string', JSON.stringify(fc));
    const p2 = expectedPrompt(m, follow);
    assert.equal(f.usage!.prompt_tokens, continued.length);
    assert.deepEqual(m.lm.tokenizer.bytesOf(continued), m.lm.tokenizer.bytesOf(scratch), 'the same text as the template renders');
    const args = JSON.stringify(JSON.parse(calls[0]!.function.arguments)).replace(/":/g, '": ').replace(/,"/g, ', "');
    if (key === 'llama') {
      assert.ok(p2.text.includes(`{"name": "${calls[0]!.function.name}", "parameters": ${args}}<|eot_id|>`), p2.text);
      assert.ok(p2.text.includes('<|start_header_id|>ipython<|end_header_id|>\n\n{"temp": 21}<|eot_id|>'), p2.text);
    } else {
      assert.ok(p2.text.includes(`<tool_call>\n{"name": "${calls[0]!.function.name}", "arguments": ${args}}\n</tool_call>`), p2.text);
      assert.ok(p2.text.includes('<tool_response>\n{"temp": 21}\n</tool_response>'), p2.text);
    }
    assert.ok(!p2.text.includes('"tool_calls"'), 'no generic envelope in a template that takes tools');
  });

  test(`${key}: a named tool call, streamed: OpenAI-shaped deltas the client's stream helper assembles`, async () => {
    const m = models[key];
    const stream = m.client.chat.completions.stream({
      model: 'tiny-test',
      messages: user('Time?'),
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
      seed: 9,
      max_tokens: 300,
      logit_bias: bias(m.lm),
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    stream.on('chunk', (ch) => chunks.push(ch));
    const done = await stream.finalChatCompletion();
    const c = done.choices[0]!;
    assert.equal(c.finish_reason, 'tool_calls');
    const calls = checkCalls(c.message.tool_calls, ['get_time']);
    const deltas = chunks.flatMap((ch) => ch.choices[0]?.delta.tool_calls ?? []);
    const opening = deltas.filter((d) => d.id !== undefined);
    assert.equal(opening.length, calls.length);
    for (const [i, d] of opening.entries()) {
      assert.deepEqual({ index: d.index, type: d.type, name: d.function?.name, arguments: d.function?.arguments }, { index: i, type: 'function', name: 'get_time', arguments: '' });
    }
    assert.ok(deltas.filter((d) => d.id === undefined).length > calls.length, 'arguments stream in several deltas');
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    assert.equal(chunks[0]!.choices[0]!.delta.content, null);
    assert.ok(chunks.every((ch) => !ch.choices[0]?.delta.content), 'no format markup leaks into content');
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'tool_calls');
  });

  test(`${key}: tool_choice auto gives text or calls, never the markup; parallel_tool_calls false gives one call`, async () => {
    const m = models[key];
    for (const seed of [1, 2, 3]) {
      const r = await m.client.chat.completions.create({ model: 'tiny-test', messages: user('Hi'), tools: TOOLS, seed, max_tokens: 120, logit_bias: bias(m.lm, 0) });
      const c = r.choices[0]!;
      if (c.finish_reason === 'tool_calls') checkCalls(c.message.tool_calls);
      else {
        assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
        if (c.finish_reason === 'stop') assert.doesNotMatch(c.message.content ?? '', /<tool_call>|"parameters"/);
      }
    }
    const one = await m.client.chat.completions.create({
      model: 'tiny-test',
      messages: user('Both?'),
      tools: TOOLS,
      tool_choice: 'required',
      parallel_tool_calls: false,
      seed: 5,
      max_tokens: 300,
      logit_bias: bias(m.lm, 0),
    });
    assert.equal(one.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(checkCalls(one.choices[0]!.message.tool_calls).length, 1);
  });

  test(`${key}: errors through the template path are 400s naming the field`, async () => {
    const m = models[key];
    const t = await postJson(`${m.srv.base}/chat/completions`, { messages: user('x'), tools: [{ type: 'function', function: { parameters: {} } }] });
    assert.equal(t.status, 400);
    assert.equal(t.json.error.param, 'tools[0].function.name');
    const p = await postJson(`${m.srv.base}/chat/completions`, {
      messages: user('x'),
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'strng' } } } } }],
    });
    assert.equal(p.status, 400);
    assert.equal(p.json.error.param, 'tools');
    assert.match(p.json.error.message, /does not compile/);
  });
}

test('hermes: several calls in one reply, streamed: one opening delta per call, indexes in order, each validated', async () => {
  const m = models.hermes;
  const stream = m.client.chat.completions.stream({
    model: 'tiny-test',
    messages: user('Weather and time?'),
    tools: TOOLS,
    tool_choice: 'required',
    seed: 7,
    max_tokens: 1200,
    logit_bias: bias(m.lm, 12),
  });
  const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
  stream.on('chunk', (ch) => chunks.push(ch));
  const done = await stream.finalChatCompletion();
  const c = done.choices[0]!;
  assert.equal(c.finish_reason, 'tool_calls');
  const calls = checkCalls(c.message.tool_calls);
  assert.ok(calls.length >= 2, `${calls.length} calls`);
  const opening = chunks.flatMap((ch) => ch.choices[0]?.delta.tool_calls ?? []).filter((d) => d.id !== undefined);
  assert.deepEqual(opening.map((d) => d.index), calls.map((_, i) => i));
  assert.equal(c.message.content ?? '', '');
});

test('a template that takes tools in a format not recognised: tools through the template, the generic envelope as the reply', async () => {
  const m = models.other;
  const body = { model: 'tiny-test', messages: user('Weather?'), tools: TOOLS, tool_choice: 'required' as const, seed: 3, max_tokens: 300, logit_bias: bias(m.lm), stream_options: { include_usage: true } };
  const stream = m.client.chat.completions.stream(body);
  const done = await stream.finalChatCompletion();
  assert.equal(done.choices[0]!.finish_reason, 'tool_calls');
  checkCalls(done.choices[0]!.message.tool_calls);
  const p = expectedPrompt(m, { ...body, stream: true });
  assert.match(p.text, /^Functions: \[\{"type": "function", "function": \{"name": "get_weather"/);
  assert.match(p.text, /\{"tool_calls": \[/);
  assert.equal(done.usage?.prompt_tokens, p.tokens);
});
