// Request validation: what is accepted, the defaults, and that each bad field is a 400 naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChatRequest, parseCompletionRequest, DEFAULT_SAMPLING } from '../../src/server/requests.js';
import { ApiError } from '../../src/server/errors.js';

const V = 264;
const chat = (extra: Record<string, unknown>) => ({ messages: [{ role: 'user', content: 'hi' }], ...extra });

function rejects(fn: () => unknown, param: string | null, code?: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.equal(e.param, param, e.message);
    if (code) assert.equal(e.code, code, e.message);
    assert.deepEqual(Object.keys(e.body().error).sort(), ['code', 'message', 'param', 'type']);
    return;
  }
  assert.fail(`accepted a request that should fail on '${param}'`);
}

test('chat request: fields map to the engine with llama.cpp sampling defaults', () => {
  const r = parseChatRequest(
    chat({
      model: 'x',
      max_tokens: 5,
      max_completion_tokens: 7,
      temperature: 0,
      top_p: 0.5,
      top_k: 3,
      min_p: 0.1,
      repeat_penalty: 1.1,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '10': -100, '11': 2 },
      seed: 42,
      stop: 'END',
      stream: true,
      stream_options: { include_usage: true },
      logprobs: true,
      top_logprobs: 3,
      ignore_eos: true,
    }),
    V,
  );
  assert.equal(r.maxTokens, 7, 'max_completion_tokens wins over max_tokens');
  assert.deepEqual(r.stop, ['END']);
  assert.equal(r.stream, true);
  assert.equal(r.includeUsage, true);
  assert.equal(r.logprobs, 3);
  assert.equal(r.ignoreEos, true);
  assert.deepEqual(r.sampler, {
    temperature: 0, topK: 3, topP: 0.5, minP: 0.1, repeatPenalty: 1.1, presencePenalty: 0.5, frequencyPenalty: -0.5,
    seed: 42, logitBias: { '10': -100, '11': 2 },
  });
  const d = parseChatRequest(chat({}), V);
  assert.deepEqual(d.sampler, { temperature: DEFAULT_SAMPLING.temperature, topK: DEFAULT_SAMPLING.topK, topP: DEFAULT_SAMPLING.topP, minP: DEFAULT_SAMPLING.minP });
  assert.equal(d.maxTokens, undefined);
  assert.equal(d.logprobs, undefined);
  assert.equal(d.stream, false);
  assert.deepEqual(d.stop, []);
});

test('chat messages: roles, content parts, developer -> system, assistant without content', () => {
  const r = parseChatRequest(
    {
      messages: [
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
        { role: 'assistant', content: null },
        { role: 'user', content: 'c', name: 'bob' },
      ],
    },
    V,
  );
  assert.deepEqual(r.messages, [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'a\nb' },
    { role: 'assistant', content: '' },
    { role: 'user', content: 'c', name: 'bob' },
  ]);
});

test('chat request errors name the field', () => {
  rejects(() => parseChatRequest(null, V), null, 'invalid_type');
  rejects(() => parseChatRequest([], V), null, 'invalid_type');
  rejects(() => parseChatRequest({}, V), 'messages', 'missing_required_parameter');
  rejects(() => parseChatRequest({ messages: 'hi' }, V), 'messages', 'invalid_type');
  rejects(() => parseChatRequest({ messages: [] }, V), 'messages');
  rejects(() => parseChatRequest({ messages: [{ content: 'x' }] }, V), 'messages[0].role', 'missing_required_parameter');
  rejects(() => parseChatRequest({ messages: [{ role: 'wizard', content: 'x' }] }, V), 'messages[0].role');
  rejects(() => parseChatRequest({ messages: [{ role: 'user', content: 5 }] }, V), 'messages[0].content', 'invalid_type');
  rejects(() => parseChatRequest({ messages: [{ role: 'user' }] }, V), 'messages[0].content', 'missing_required_parameter');
  rejects(() => parseChatRequest({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, V), 'messages[0].content[0].type', 'unsupported_value');
  rejects(() => parseChatRequest(chat({ temperature: 'hot' }), V), 'temperature', 'invalid_type');
  rejects(() => parseChatRequest(chat({ temperature: -1 }), V), 'temperature');
  rejects(() => parseChatRequest(chat({ top_p: 1.5 }), V), 'top_p');
  rejects(() => parseChatRequest(chat({ max_tokens: 1.5 }), V), 'max_tokens', 'invalid_type');
  rejects(() => parseChatRequest(chat({ max_tokens: -1 }), V), 'max_tokens');
  rejects(() => parseChatRequest(chat({ n: 17 }), V), 'n');
  rejects(() => parseChatRequest(chat({ n: 0 }), V), 'n');
  rejects(() => parseChatRequest(chat({ stream: 'yes' }), V), 'stream', 'invalid_type');
  rejects(() => parseChatRequest(chat({ stop: [1] }), V), 'stop', 'invalid_type');
  rejects(() => parseChatRequest(chat({ stop: [''] }), V), 'stop');
  rejects(() => parseChatRequest(chat({ logit_bias: { abc: 1 } }), V), 'logit_bias');
  rejects(() => parseChatRequest(chat({ logit_bias: { '999': 1 } }), V), 'logit_bias');
  rejects(() => parseChatRequest(chat({ logit_bias: { '5': 101 } }), V), 'logit_bias');
  rejects(() => parseChatRequest(chat({ seed: 1.5 }), V), 'seed', 'invalid_type');
  rejects(() => parseChatRequest(chat({ top_logprobs: 2 }), V), 'top_logprobs');
  rejects(() => parseChatRequest(chat({ logprobs: true, top_logprobs: 21 }), V), 'top_logprobs');
  rejects(() => parseChatRequest(chat({ tools: [{ type: 'function' }] }), V), 'tools[0].function', 'missing_required_parameter');
  rejects(() => parseChatRequest(chat({ response_format: { type: 'xml' } }), V), 'response_format', 'unsupported_value');
  rejects(() => parseChatRequest(chat({ model: 3 }), V), 'model', 'invalid_type');
});

test('completion prompts: text, token ids, a batch of one; refusals', () => {
  assert.equal(parseCompletionRequest({ prompt: 'hi' }, V).prompt, 'hi');
  assert.deepEqual(parseCompletionRequest({ prompt: [1, 2, 3] }, V).prompt, [1, 2, 3]);
  assert.equal(parseCompletionRequest({ prompt: ['only'] }, V).prompt, 'only');
  assert.deepEqual(parseCompletionRequest({ prompt: [[4, 5]] }, V).prompt, [4, 5]);
  assert.equal(parseCompletionRequest({ prompt: 'x', logprobs: 2, max_tokens: 3 }, V).logprobs, 2);
  assert.equal(parseCompletionRequest({ prompt: 'x', echo: false, best_of: 1, suffix: '' }, V).prompt, 'x');
  rejects(() => parseCompletionRequest({}, V), 'prompt', 'missing_required_parameter');
  rejects(() => parseCompletionRequest({ prompt: 5 }, V), 'prompt', 'invalid_type');
  rejects(() => parseCompletionRequest({ prompt: [] }, V), 'prompt');
  rejects(() => parseCompletionRequest({ prompt: ['a', 'b'] }, V), 'prompt', 'unsupported_value');
  rejects(() => parseCompletionRequest({ prompt: [1, 264] }, V), 'prompt');
  rejects(() => parseCompletionRequest({ prompt: [1, -1] }, V), 'prompt');
  rejects(() => parseCompletionRequest({ prompt: [1.5] }, V), 'prompt');
  rejects(() => parseCompletionRequest({ prompt: 'x', echo: true }, V), 'echo', 'unsupported_value');
  rejects(() => parseCompletionRequest({ prompt: 'x', best_of: 2 }, V), 'best_of', 'unsupported_value');
  rejects(() => parseCompletionRequest({ prompt: 'x', suffix: 'tail' }, V), 'suffix', 'unsupported_value');
  rejects(() => parseCompletionRequest({ prompt: 'x', logprobs: 21 }, V), 'logprobs');
  rejects(() => parseCompletionRequest({ prompt: 'x', logprobs: true }, V), 'logprobs', 'invalid_type');
  rejects(() => parseCompletionRequest({ prompt: 'x', n: 1.5 }, V), 'n', 'invalid_type');
});

test('an integer past 2^53 is "too large", not "must be >= 0"', () => {
  const message = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    assert.fail('expected an error');
  };
  const m = message(() => parseChatRequest(chat({ max_tokens: 1e20 }), V));
  assert.match(m, /'max_tokens' is too large: 100000000000000000000 is not a safe integer/);
  assert.doesNotMatch(m, />= 0/);
  assert.match(message(() => parseCompletionRequest({ prompt: 'x', max_tokens: 2 ** 53 }, V)), /too large/);
  assert.match(message(() => parseCompletionRequest({ prompt: 'x', max_tokens: -1e20 }, V)), /'max_tokens' must be >= 1/);
  assert.match(message(() => parseCompletionRequest({ prompt: 'x', seed: 1e20 }, V)), /'seed' is too large/);
  assert.equal(parseCompletionRequest({ prompt: 'x', max_tokens: Number.MAX_SAFE_INTEGER }, V).maxTokens, Number.MAX_SAFE_INTEGER);
  rejects(() => parseChatRequest(chat({ max_tokens: 1e20 }), V), 'max_tokens');
});

const TOOL = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

test('constrained output: response_format, json_schema and grammar become one grammar naming its field', () => {
  assert.deepEqual(parseChatRequest(chat({ response_format: { type: 'json_object' } }), V).constraint, {
    spec: { type: 'json_object' },
    param: 'response_format',
  });
  const schema = { type: 'object', properties: { a: { type: 'integer' } } };
  assert.deepEqual(parseChatRequest(chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema, strict: true } } }), V).constraint, {
    spec: { type: 'json_schema', schema },
    param: 'response_format.json_schema.schema',
  });
  assert.equal(parseChatRequest(chat({ response_format: { type: 'text' } }), V).constraint, undefined);
  assert.deepEqual(parseCompletionRequest({ prompt: 'x', json_schema: schema }, V).constraint?.param, 'json_schema');
  assert.deepEqual(parseCompletionRequest({ prompt: 'x', grammar: 'root ::= "a"' }, V).constraint?.spec, { type: 'gbnf', grammar: 'root ::= "a"' });
  rejects(() => parseChatRequest(chat({ response_format: { type: 'json_schema' } }), V), 'response_format.json_schema', 'missing_required_parameter');
  rejects(() => parseChatRequest(chat({ response_format: { type: 'json_schema', json_schema: { schema: 3 } } }), V), 'response_format.json_schema.schema', 'invalid_type');
  rejects(() => parseChatRequest(chat({ grammar: 5 }), V), 'grammar', 'invalid_type');
  rejects(() => parseChatRequest(chat({ grammar: ' ' }), V), 'grammar');
  rejects(() => parseChatRequest(chat({ grammar: 'root ::= "a"', json_schema: {} }), V), 'grammar');
  rejects(() => parseChatRequest(chat({ json_schema: {}, ignore_eos: true }), V), 'ignore_eos');
});

test('tools: parsed with tool_choice and parallel_tool_calls; the envelope grammar and the tool prompt are added', () => {
  const r = parseChatRequest(chat({ tools: [TOOL], tool_choice: 'required', parallel_tool_calls: false }), V);
  assert.equal(r.tools?.choice, 'required');
  assert.equal(r.tools?.parallel, false);
  assert.equal(r.constraint?.param, 'tools');
  assert.equal(r.messages[0]!.role, 'system');
  assert.match(r.messages[0]!.content, /get_weather/);
  assert.deepEqual(parseChatRequest(chat({ tools: [TOOL], tool_choice: { type: 'function', function: { name: 'get_weather' } } }), V).tools?.choice, { name: 'get_weather' });
  // tool_choice none: no tools, no constraint
  const none = parseChatRequest(chat({ tools: [TOOL], tool_choice: 'none' }), V);
  assert.equal(none.tools, undefined);
  assert.equal(none.constraint, undefined);
  rejects(() => parseChatRequest(chat({ tools: [{ type: 'function', function: { description: 'x' } }] }), V), 'tools[0].function.name', 'missing_required_parameter');
  rejects(() => parseChatRequest(chat({ tools: [{ type: 'function', function: { name: 'a b' } }] }), V), 'tools[0].function.name');
  rejects(() => parseChatRequest(chat({ tools: [TOOL, TOOL] }), V), 'tools[1].function.name');
  rejects(() => parseChatRequest(chat({ tools: [TOOL], tool_choice: 'sometimes' }), V), 'tool_choice');
  rejects(() => parseChatRequest(chat({ tools: [TOOL], tool_choice: { type: 'function', function: { name: 'nope' } } }), V), 'tool_choice');
  rejects(() => parseChatRequest(chat({ tool_choice: 'required' }), V), 'tool_choice');
  rejects(() => parseChatRequest(chat({ tools: [TOOL], parallel_tool_calls: 1 }), V), 'parallel_tool_calls', 'invalid_type');
  rejects(() => parseChatRequest(chat({ tools: [TOOL], response_format: { type: 'json_object' } }), V), 'response_format');
  rejects(() => parseChatRequest(chat({ functions: [] }), V), 'functions');
});

test('tool follow-ups: assistant tool_calls are shown as the envelope, tool results as user turns; tool messages need tool_call_id', () => {
  const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } };
  const r = parseChatRequest(
    { messages: [{ role: 'user', content: 'w?' }, { role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: 'call_1', content: '21 C' }] },
    V,
  );
  assert.equal(r.messages[1]!.content, '{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}');
  // the generic format's template shows no tool turns: the result is a user turn naming its tool
  assert.deepEqual(r.messages[2], { role: 'user', content: '{"tool_response":{"name":"get_weather","content":"21 C"}}' });
  rejects(() => parseChatRequest({ messages: [{ role: 'tool', content: 'x' }] }, V), 'messages[0].tool_call_id', 'missing_required_parameter');
  const bad = { ...call, function: { name: 'get_weather', arguments: '{nope' } };
  rejects(() => parseChatRequest({ messages: [{ role: 'assistant', content: null, tool_calls: [bad] }] }, V), 'messages[0].tool_calls[0].function.arguments');
});
