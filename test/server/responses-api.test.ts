// OpenAI's Responses API (POST /v1/responses) through the official `openai` client's
// responses.create and responses.stream, against the built-in demo model: text and message-list
// input, instructions, max_output_tokens, the stream's events and sequence numbers, function tools,
// text.format JSON schemas, previous_response_id with the bounded store, and errors in OpenAI's shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { loadModelFile } from '../../src/node/model-file.js';
import { DEMO_MODEL_FILE } from '../../src/node/demo-model.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { ResponseStore } from '../../src/server/response-store.js';
import { testKernels } from '../helpers/kernels.js';
import { NO_EOG, postJson, startTestServer, tinyModel, waitFor, type TestServer } from './helpers.js';
import { finished, listeningUrl, spawnCli } from './spawn.js';

const lm = await loadModelFile(DEMO_MODEL_FILE, { kernels: await testKernels() });
let srv: TestServer;
let client: OpenAI;
const MODEL = 'wrinklefree-demo';

before(async () => {
  srv = await startTestServer(lm, { modelId: MODEL, ctxSize: 256, slots: 2, xgrammar: loadXGrammar() }, { responseStore: new ResponseStore(4, 1 << 20) });
  client = new OpenAI({ baseURL: srv.base, apiKey: 'sk-test', maxRetries: 0, timeout: 60000 });
});
after(async () => {
  await srv.close();
  lm.dispose();
});

/** The prompt tokens of a conversation, as the chat endpoint renders it. */
const promptLength = (messages: { role: string; content: string }[]) => srv.service.chatPrompt({ messages }).length;

const WEATHER = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['C', 'F'] } },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
  strict: true,
};

test('responses.create: text input with instructions; the reply is the chat endpoint\'s greedy reply', async () => {
  const r = await client.responses.create({ model: MODEL, input: 'Tell me of the sea.', instructions: 'Speak plainly.', max_output_tokens: 24, temperature: 0 });
  assert.match(r.id, /^resp_/);
  assert.equal(r.object, 'response');
  assert.equal(r.instructions, 'Speak plainly.');
  assert.equal(r.output.length, 1);
  const msg = r.output[0]!;
  assert.equal(msg.type, 'message');
  assert.ok(r.output_text.length > 0, 'empty reply');
  // the instructions are the system message in front of the input
  assert.equal(r.usage!.input_tokens, promptLength([{ role: 'system', content: 'Speak plainly.' }, { role: 'user', content: 'Tell me of the sea.' }]));
  assert.equal(r.usage!.total_tokens, r.usage!.input_tokens + r.usage!.output_tokens);
  const chat = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'system', content: 'Speak plainly.' }, { role: 'user', content: 'Tell me of the sea.' }],
    max_tokens: 24,
    temperature: 0,
  });
  assert.equal(r.output_text, chat.choices[0]!.message.content);
  assert.equal(r.status, chat.choices[0]!.finish_reason === 'length' ? 'incomplete' : 'completed');
});

test('responses.create: a message list; max_output_tokens cuts the reply (status incomplete)', async () => {
  const input: OpenAI.Responses.ResponseInputItem[] = [
    { role: 'developer', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'input_text', text: 'Hello.' }] },
    { role: 'assistant', content: 'Peace be with thee.' },
    { role: 'user', content: 'And more?' },
  ];
  const r = await client.responses.create({ model: MODEL, input, max_output_tokens: 3, temperature: 0, logit_bias: undefined } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.usage!.output_tokens, 3);
  assert.equal((r.output[0] as OpenAI.Responses.ResponseOutputMessage).status, 'incomplete');
  assert.equal(
    r.usage!.input_tokens,
    promptLength([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello.' },
      { role: 'assistant', content: 'Peace be with thee.' },
      { role: 'user', content: 'And more?' },
    ]),
  );
});

test('responses.stream: events in order with sequence numbers 0, 1, 2...; the deltas make the final text', async () => {
  const params = { model: MODEL, input: 'Sing a song.', max_output_tokens: 20, temperature: 0 } as const;
  const stream = client.responses.stream(params);
  const events: OpenAI.Responses.ResponseStreamEvent[] = [];
  for await (const e of stream) events.push(e);
  const final = await stream.finalResponse();
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const types = events.map((e) => e.type);
  const deltas = events.filter((e): e is OpenAI.Responses.ResponseTextDeltaEvent => e.type === 'response.output_text.delta');
  assert.ok(deltas.length > 1, 'the text should come in several deltas');
  const head = ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'];
  assert.deepEqual(types.slice(0, 4), head);
  const last = final.status === 'completed' ? 'response.completed' : 'response.incomplete';
  assert.deepEqual(types.slice(4 + deltas.length), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', last]);
  assert.equal(deltas.map((d) => d.delta).join(''), final.output_text);
  const whole = await client.responses.create(params);
  assert.equal(final.output_text, whole.output_text);
  assert.equal(final.usage!.output_tokens, whole.usage!.output_tokens);
});

test('previous_response_id continues the stored conversation (instructions not carried over)', async () => {
  const first = await client.responses.create({ model: MODEL, input: 'Who made the light?', instructions: 'Answer well.', max_output_tokens: 12, temperature: 0 });
  const second = await client.responses.create({ model: MODEL, input: 'Why?', previous_response_id: first.id, max_output_tokens: 8, temperature: 0 });
  assert.equal(second.previous_response_id, first.id);
  assert.equal(
    second.usage!.input_tokens,
    promptLength([
      { role: 'user', content: 'Who made the light?' },
      { role: 'assistant', content: first.output_text },
      { role: 'user', content: 'Why?' },
    ]),
  );
  // retrieved and deleted by id
  const got = await client.responses.retrieve(second.id);
  assert.equal(got.output_text, second.output_text);
  await client.responses.delete(second.id);
  await assert.rejects(client.responses.retrieve(second.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
  // store: false keeps nothing
  const unstored = await client.responses.create({ model: MODEL, input: 'Hi', store: false, max_output_tokens: 2 });
  await assert.rejects(
    client.responses.create({ model: MODEL, input: 'Hi', previous_response_id: unstored.id }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'previous_response_id' && e.code === 'previous_response_not_found',
  );
});

test('the store is bounded: the least recently used response is dropped past its count', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await client.responses.create({ model: MODEL, input: `Word ${i}`, max_output_tokens: 1 })).id);
  assert.ok(srv.server.responsesApi.store.size <= 4);
  await assert.rejects(client.responses.retrieve(ids[0]!), (e: unknown) => e instanceof OpenAI.NotFoundError);
  assert.equal((await client.responses.retrieve(ids[4]!)).id, ids[4]);
});

test('ResponseStore: bounded by count and by bytes, least recently used first; oversized entries are not kept', () => {
  const s = new ResponseStore(3, 400);
  const v = (n: number) => ({ response: { pad: 'x'.repeat(n) }, history: [] });
  s.put('a', v(10));
  s.put('b', v(10));
  s.put('c', v(10));
  assert.ok(s.get('a')); // a is now the most recent
  s.put('d', v(10));
  assert.equal(s.get('b'), undefined);
  assert.deepEqual(['a', 'c', 'd'].map((k) => !!s.get(k)), [true, true, true]);
  s.put('e', v(300)); // over 400 bytes with the others: the oldest go
  assert.ok(s.bytes <= 400);
  assert.ok(s.get('e'));
  assert.equal(s.put('f', v(1000)), false);
  assert.equal(s.get('f'), undefined);
});

test('function tools: a required call comes back as a function_call item, whole and streamed; its output continues the conversation', async () => {
  const params = { model: MODEL, input: 'Weather in Paris?', tools: [WEATHER], tool_choice: 'required' as const, max_output_tokens: 100, temperature: 0 };
  const r = await client.responses.create(params);
  const calls = r.output.filter((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call');
  assert.equal(r.status, 'completed', JSON.stringify(r.output));
  assert.equal(calls.length, 1, JSON.stringify(r.output));
  const call = calls[0]!;
  assert.equal(call.name, 'get_weather');
  assert.match(call.call_id, /^call_/);
  const args = JSON.parse(call.arguments);
  assert.ok(new Ajv().validate(WEATHER.parameters, args), call.arguments);
  assert.equal(r.status, 'completed');

  const stream = client.responses.stream(params);
  const argDeltas: string[] = [];
  stream.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
  const final = await stream.finalResponse();
  const sCall = final.output.find((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
  assert.equal(sCall.arguments, argDeltas.join(''));
  assert.deepEqual(JSON.parse(sCall.arguments), args);

  const next = await client.responses.create({
    model: MODEL,
    previous_response_id: r.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp": 21}' }],
    max_output_tokens: 8,
  });
  // the call and its result are in the prompt (as the chat endpoint renders them), the tools' description is not
  const messages = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: call.name, arguments: call.arguments } }] },
    { role: 'tool', tool_call_id: call.call_id, content: '{"temp": 21}' },
  ];
  const chat = await client.chat.completions.create({ model: MODEL, messages: messages as OpenAI.Chat.ChatCompletionMessageParam[], max_tokens: 1 });
  assert.equal(next.usage!.input_tokens, chat.usage!.prompt_tokens);
});

test('text.format json_schema: the output text validates', async () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 8 }, good: { type: 'boolean' } },
    required: ['name', 'good'],
    additionalProperties: false,
  };
  const r = await client.responses.create({
    model: MODEL,
    input: 'Describe a man.',
    text: { format: { type: 'json_schema', name: 'man', schema, strict: true } },
    max_output_tokens: 40,
    temperature: 0,
  });
  assert.equal(r.status, 'completed', r.output_text);
  assert.ok(new Ajv().validate(schema, JSON.parse(r.output_text)), r.output_text);
});

test('errors in OpenAI\'s shape, naming the Responses field', async () => {
  const url = `${srv.base}/responses`;
  const cases: [unknown, string][] = [
    [{ model: MODEL }, 'input'],
    [{ model: MODEL, input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
    [{ model: MODEL, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] }, 'input[0].content[0].type'],
    [{ model: MODEL, input: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: '{' }] }, 'input[0].arguments'],
    [{ model: MODEL, input: 'x', tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    [{ model: MODEL, input: 'x', tools: [{ type: 'function', name: 'bad name!' }] }, 'tools[0].name'],
    [{ model: MODEL, input: 'x', text: { format: { type: 'json_schema', name: 'n' } } }, 'text.format.schema'],
    [{ model: MODEL, input: 'x', text: { format: { type: 'json_schema', name: 'n', schema: { type: 'object', properties: { a: { type: 'nonsense' } } } } } }, 'text.format.schema'],
    [{ model: MODEL, input: 'x', temperature: -1 }, 'temperature'],
    [{ model: MODEL, input: 'x', background: true }, 'background'],
    [{ model: MODEL, input: 'x'.repeat(2000) }, 'input'],
  ];
  for (const [body, param] of cases) {
    const r = await postJson(url, body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 200));
    assert.equal(r.json.error.param, param, JSON.stringify(r.json));
    assert.equal(typeof r.json.error.message, 'string');
  }
  // the server still answers
  const ok = await postJson(url, { model: MODEL, input: 'x', max_output_tokens: 1 });
  assert.equal(ok.status, 200);
});

test('a stream left by its client frees the slot; a server closing mid-stream sends error then response.failed', async () => {
  const tiny = await tinyModel();
  const s = await startTestServer(tiny, { ctxSize: 1024, slots: 1 });
  try {
    const c = new OpenAI({ baseURL: s.base, apiKey: 'sk-test', maxRetries: 0, timeout: 60000 });
    const body = { model: 'tiny-test', input: 'go', max_output_tokens: 900, logit_bias: NO_EOG } as unknown as OpenAI.Responses.ResponseCreateParamsStreaming;
    const stream = c.responses.stream(body);
    for await (const e of stream) if (e.type === 'response.output_text.delta') break;
    stream.abort();
    await waitFor(() => s.service.stats().busy === 0, 10_000, 'the slot to be freed');

    // raw SSE: the server closes while the reply streams
    const res = await fetch(`${s.base}/responses`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
    const reader = res.body!.getReader();
    let text = '';
    let closing: Promise<void> | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      if (!closing && text.includes('response.output_text.delta')) closing = s.server.close();
    }
    await closing;
    const events = text.split('\n\n').filter(Boolean).map((block) => JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6)));
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(-2), ['error', 'response.failed']);
    assert.equal(events.at(-2).code, 'server_shutting_down');
    assert.equal(events.at(-1).response.status, 'failed');
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  } finally {
    await s.close();
    tiny.dispose();
  }
});

test('wf_server --responses-store N bounds the store; --responses-store 0 keeps none; a bad value is refused', async () => {
  const child = spawnCli('wf_server', ['--port', '0', '-t', '1', '--responses-store', '1', '-q']);
  const done = finished(child);
  try {
    const url = await listeningUrl(child);
    const ask = async () => (await postJson(`${url}/v1/responses`, { input: 'Hi', max_output_tokens: 1 })).json.id as string;
    const first = await ask();
    assert.equal((await fetch(`${url}/v1/responses/${first}`)).status, 200);
    await ask();
    assert.equal((await fetch(`${url}/v1/responses/${first}`)).status, 404, 'only one response is kept');
  } finally {
    child.kill('SIGTERM');
    await done;
  }
  const bad = await finished(spawnCli('wf_server', ['--port', '0', '-t', '1', '--responses-store', '-1']));
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--responses-store must be an integer >= 0/);
});
