// Structured outputs and tool calls through the real `openai` client (v6) against the HTTP server,
// on a tiny random-weight model: the grammar, not the model, makes every reply valid, so each
// output is checked with a real JSON Schema validator (ajv). A small logit bias towards the
// closing characters keeps the random model's strings and numbers short; it cannot make anything
// invalid, since the grammar masks every token it does not allow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { postJson, startTestServer, tinyModel, waitFor, type TestServer, weatherTool } from './helpers.js';

const lm = await tinyModel({ contextLength: 2048 });
let srv: TestServer;
let client: OpenAI;
const ajv = new Ajv({ strict: false });

/** logit_bias favouring '"' and '}' (where the grammar allows them) */
const CLOSE: Record<string, number> = {};
for (const ch of ['"', '}', ']']) CLOSE[String(lm.tokenizer.encode(ch, { addBos: false })[0])] = 6;

before(async () => {
  srv = await startTestServer(lm, { ctxSize: 2048, slots: 1, xgrammar: loadXGrammar() });
  client = new OpenAI({ baseURL: srv.base, apiKey: 'sk-test', maxRetries: 0, timeout: 60000 });
});
after(async () => {
  await srv.close();
  lm.dispose();
});

const user = (content: string): OpenAI.Chat.ChatCompletionMessageParam[] => [{ role: 'user', content }];

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    role: { enum: ['admin', 'user', 'guest'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 6 }, maxItems: 3 },
    active: { type: 'boolean' },
  },
  required: ['name', 'age', 'role', 'active'],
  additionalProperties: false,
};

const WEATHER = weatherTool(true);
const TIME: OpenAI.Chat.ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'get_time',
    parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false },
    strict: true,
  },
};
const paramsOf = (name: string) => [WEATHER, TIME].find((t) => t.function.name === name)!.function.parameters!;

test('chat.completions.parse with a JSON schema: message.parsed validates, on several seeds', async () => {
  const validate = ajv.compile(PERSON);
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.parse({
      model: 'tiny-test',
      messages: user('Describe a person.'),
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: true } },
      seed,
      max_tokens: 300,
      logit_bias: CLOSE,
    });
    const c = r.choices[0]!;
    assert.equal(c.finish_reason, 'stop', c.message.content ?? '');
    assert.ok(validate(c.message.parsed), `${c.message.content} ${JSON.stringify(validate.errors)}`);
  }
});

test('json_object: the reply is one JSON object, compact', async () => {
  for (const seed of [4, 5]) {
    const r = await client.chat.completions.create({
      model: 'tiny-test',
      messages: user('Any JSON.'),
      response_format: { type: 'json_object' },
      seed,
      max_tokens: 300,
      logit_bias: CLOSE,
    });
    const text = r.choices[0]!.message.content!;
    assert.equal(r.choices[0]!.finish_reason, 'stop', text);
    const v = JSON.parse(text);
    assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), text);
    assert.doesNotMatch(text, /\n/);
  }
});

test('tool call round trip, not streamed: tool_choice required gives tool_calls with ids, then a tool follow-up', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny-test',
    messages: user('Weather in Paris?'),
    tools: [WEATHER, TIME],
    tool_choice: 'required',
    seed: 7,
    max_tokens: 300,
    logit_bias: CLOSE,
  });
  const c = r.choices[0]!;
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.content, null);
  const calls = c.message.tool_calls!;
  assert.ok(calls.length >= 1);
  const ids = new Set<string>();
  for (const call of calls) {
    assert.equal(call.type, 'function');
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    ids.add(call.id);
    if (call.type !== 'function') continue;
    const args = JSON.parse(call.function.arguments);
    assert.ok(ajv.validate(paramsOf(call.function.name), args), call.function.arguments);
  }
  assert.equal(ids.size, calls.length, 'tool call ids are distinct');
  // the follow-up with the tool's result
  const follow = await client.chat.completions.create({
    model: 'tiny-test',
    messages: [
      ...user('Weather in Paris?'),
      c.message,
      ...calls.map((call) => ({ role: 'tool' as const, tool_call_id: call.id, content: '{"temp": 21}' })),
    ],
    tools: [WEATHER, TIME],
    seed: 8,
    max_tokens: 300,
    logit_bias: CLOSE,
  });
  const f = follow.choices[0]!;
  assert.ok(f.finish_reason === 'tool_calls' || (f.finish_reason === 'stop' && typeof f.message.content === 'string'), JSON.stringify(f));
  // the follow-up prompt holds the first one, the calls (as the envelope) and the results
  const envelope = JSON.stringify({ tool_calls: calls.map((x) => x.type === 'function' && { name: x.function.name, arguments: JSON.parse(x.function.arguments) }) });
  assert.ok(follow.usage!.prompt_tokens >= r.usage!.prompt_tokens + envelope.length, `${follow.usage!.prompt_tokens} vs ${r.usage!.prompt_tokens}`);
});

test('tool call streamed: the client stream helper assembles a named tool call from OpenAI-shaped deltas', async () => {
  const stream = client.chat.completions.stream({
    model: 'tiny-test',
    messages: user('Time?'),
    tools: [WEATHER, TIME],
    tool_choice: { type: 'function', function: { name: 'get_time' } },
    seed: 9,
    max_tokens: 300,
    logit_bias: CLOSE,
  });
  const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
  stream.on('chunk', (ch) => chunks.push(ch));
  const done = await stream.finalChatCompletion();
  const c = done.choices[0]!;
  assert.equal(c.finish_reason, 'tool_calls');
  const calls = c.message.tool_calls!;
  assert.ok(calls.length >= 1);
  for (const call of calls) {
    assert.equal(call.type, 'function');
    if (call.type !== 'function') continue;
    assert.equal(call.function.name, 'get_time');
    assert.ok(ajv.validate(TIME.function.parameters!, JSON.parse(call.function.arguments)), call.function.arguments);
  }
  // the first delta of each call carries index, id, type and name with empty arguments
  const opening = chunks.flatMap((ch) => ch.choices[0]?.delta.tool_calls ?? []).filter((d) => d.id !== undefined);
  assert.equal(opening.length, calls.length);
  for (const [i, d] of opening.entries()) {
    assert.deepEqual({ index: d.index, type: d.type, name: d.function?.name, arguments: d.function?.arguments }, { index: i, type: 'function', name: 'get_time', arguments: '' });
  }
  // then the arguments, as they are generated (the tiny model writes one byte per token)
  const argDeltas = chunks.flatMap((ch) => ch.choices[0]?.delta.tool_calls ?? []).filter((d) => d.id === undefined);
  assert.ok(argDeltas.length > calls.length, `${argDeltas.length} argument deltas`);
  assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
  assert.equal(chunks[0]!.choices[0]!.delta.content, null);
  assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'tool_calls');
});

test('tool_choice auto, streamed: a text reply streams as content deltas', async () => {
  const stream = client.chat.completions.stream({ model: 'tiny-test', messages: user('Hi'), tools: [WEATHER], seed: 21, max_tokens: 300, logit_bias: CLOSE });
  const done = await stream.finalChatCompletion();
  const c = done.choices[0]!;
  assert.ok(['stop', 'tool_calls'].includes(c.finish_reason!), c.finish_reason!);
  if (c.finish_reason === 'stop') assert.doesNotMatch(c.message.content ?? '', /"response"/);
});

test('chat.completions.parse with strict tools: the client parses the arguments of a named call', async () => {
  const r = await client.chat.completions.parse({
    model: 'tiny-test',
    messages: user('Weather?'),
    tools: [WEATHER],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    seed: 17,
    max_tokens: 300,
    logit_bias: CLOSE,
  });
  const call = r.choices[0]!.message.tool_calls![0]!;
  assert.equal(call.type, 'function');
  if (call.type !== 'function') return;
  assert.equal(call.function.name, 'get_weather');
  assert.ok(ajv.validate(WEATHER.function.parameters!, call.function.parsed_arguments), call.function.arguments);
});

test('parallel_tool_calls false: exactly one call', async () => {
  for (const seed of [11, 12]) {
    const r = await client.chat.completions.create({
      model: 'tiny-test',
      messages: user('Weather and time?'),
      tools: [WEATHER, TIME],
      tool_choice: 'required',
      parallel_tool_calls: false,
      seed,
      max_tokens: 300,
      logit_bias: CLOSE,
    });
    assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(r.choices[0]!.message.tool_calls!.length, 1);
  }
});

test('tool_choice auto: either text or tool calls, never a broken envelope', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny-test',
    messages: user('Hello'),
    tools: [WEATHER],
    seed: 13,
    max_tokens: 300,
    logit_bias: CLOSE,
  });
  const c = r.choices[0]!;
  if (c.finish_reason === 'tool_calls') assert.ok(c.message.tool_calls!.length >= 1);
  else {
    assert.equal(c.finish_reason, 'stop');
    assert.equal(typeof c.message.content, 'string');
    assert.doesNotMatch(c.message.content!, /^\{"response"/);
  }
});

test('errors are 400s naming the field: a schema that does not compile, a bad grammar, a tool without a name', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: 'tiny-test',
      messages: user('x'),
      response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'objekt' } } },
    }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'response_format.json_schema.schema' && /objekt/.test(e.message),
  );
  const g = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: 'root ::= missing' });
  assert.equal(g.status, 400);
  assert.equal(g.json.error.param, 'grammar');
  assert.match(g.json.error.message, /missing/);
  const t = await postJson(`${srv.base}/chat/completions`, { messages: user('x'), tools: [{ type: 'function', function: { parameters: {} } }] });
  assert.equal(t.status, 400);
  assert.equal(t.json.error.param, 'tools[0].function.name');
  const p = await postJson(`${srv.base}/chat/completions`, { messages: user('x'), tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'strng' } } } } }] });
  assert.equal(p.status, 400);
  assert.equal(p.json.error.param, 'tools');
  // the server still answers after the failed compilations
  const ok = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: 'root ::= "ok"', max_tokens: 5 });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.choices[0].text, 'ok');
});

test("llama-server's json_schema and grammar fields on /v1/completions; max_tokens still ends a constrained reply", async () => {
  const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
  const r = await postJson(`${srv.base}/completions`, { prompt: 'x', json_schema: schema, max_tokens: 50, seed: 1 });
  assert.equal(r.status, 200);
  assert.ok(ajv.validate(schema, JSON.parse(r.json.choices[0].text)), r.json.choices[0].text);
  const o = await postJson(`${srv.base}/completions`, { prompt: 'x', response_format: { type: 'json_object' }, max_tokens: 300, seed: 2, logit_bias: CLOSE });
  assert.equal(o.json.choices[0].finish_reason, 'stop');
  assert.equal(typeof JSON.parse(o.json.choices[0].text), 'object');
  const g = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: 'root ::= ("yes" | "no") "."', max_tokens: 10, temperature: 0 });
  assert.match(g.json.choices[0].text, /^(yes|no)\.$/);
  assert.equal(g.json.choices[0].finish_reason, 'stop');
  // a grammar that never ends: max_tokens stops it with 'length'
  const long = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: 'root ::= "a"+', max_tokens: 7 });
  assert.equal(long.json.choices[0].text, 'aaaaaaa');
  assert.equal(long.json.choices[0].finish_reason, 'length');
});

test('two constrained requests at once, each with its own matcher; an aborted one frees its slot', async () => {
  const two = await startTestServer(lm, { ctxSize: 2048, slots: 2, xgrammar: loadXGrammar() });
  try {
    const c2 = new OpenAI({ baseURL: two.base, apiKey: 'sk-test', maxRetries: 0, timeout: 60000 });
    const FLAG = { type: 'object', properties: { flag: { type: 'boolean' }, level: { enum: [1, 2, 3] } }, required: ['flag', 'level'], additionalProperties: false };
    const ask = (schema: object, seed: number) =>
      c2.chat.completions.create({
        model: 'tiny-test',
        messages: user('x'),
        response_format: { type: 'json_schema', json_schema: { name: 's', schema: schema as Record<string, unknown> } },
        seed,
        max_tokens: 300,
        logit_bias: CLOSE,
      });
    const [a, b] = await Promise.all([ask(PERSON, 31), ask(FLAG, 32)]);
    assert.ok(ajv.validate(PERSON, JSON.parse(a.choices[0]!.message.content!)), a.choices[0]!.message.content!);
    assert.ok(ajv.validate(FLAG, JSON.parse(b.choices[0]!.message.content!)), b.choices[0]!.message.content!);
    // a client that goes away mid-generation: the slot is freed, the next request is served
    const ac = new AbortController();
    const gone = fetch(`${two.base}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: user('x'), grammar: 'root ::= "a"+', max_tokens: 1000, stream: true }),
      signal: ac.signal,
    });
    const res = await gone;
    const reader = res.body!.getReader();
    await reader.read();
    assert.equal(two.service.stats().busy, 1);
    ac.abort();
    await reader.read().catch(() => undefined);
    await waitFor(() => two.service.stats().busy === 0, 10000, 'the aborted generation to free its slot');
    const after = await ask(FLAG, 33);
    assert.ok(ajv.validate(FLAG, JSON.parse(after.choices[0]!.message.content!)));
  } finally {
    await two.close();
  }
});
