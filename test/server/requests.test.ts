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
  rejects(() => parseChatRequest(chat({ n: 2 }), V), 'n', 'unsupported_value');
  rejects(() => parseChatRequest(chat({ stream: 'yes' }), V), 'stream', 'invalid_type');
  rejects(() => parseChatRequest(chat({ stop: [1] }), V), 'stop', 'invalid_type');
  rejects(() => parseChatRequest(chat({ stop: [''] }), V), 'stop');
  rejects(() => parseChatRequest(chat({ logit_bias: { abc: 1 } }), V), 'logit_bias');
  rejects(() => parseChatRequest(chat({ logit_bias: { '999': 1 } }), V), 'logit_bias');
  rejects(() => parseChatRequest(chat({ logit_bias: { '5': 101 } }), V), 'logit_bias');
  rejects(() => parseChatRequest(chat({ seed: 1.5 }), V), 'seed', 'invalid_type');
  rejects(() => parseChatRequest(chat({ top_logprobs: 2 }), V), 'top_logprobs');
  rejects(() => parseChatRequest(chat({ logprobs: true, top_logprobs: 21 }), V), 'top_logprobs');
  rejects(() => parseChatRequest(chat({ tools: [{ type: 'function' }] }), V), 'tools', 'unsupported_value');
  rejects(() => parseChatRequest(chat({ response_format: { type: 'json_object' } }), V), 'response_format', 'unsupported_value');
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
  rejects(() => parseCompletionRequest({ prompt: 'x', n: 3 }, V), 'n', 'unsupported_value');
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
  assert.match(message(() => parseCompletionRequest({ prompt: 'x', max_tokens: -1e20 }, V)), /'max_tokens' must be >= 0/);
  assert.match(message(() => parseCompletionRequest({ prompt: 'x', seed: 1e20 }, V)), /'seed' is too large/);
  assert.equal(parseCompletionRequest({ prompt: 'x', max_tokens: Number.MAX_SAFE_INTEGER }, V).maxTokens, Number.MAX_SAFE_INTEGER);
  rejects(() => parseChatRequest(chat({ max_tokens: 1e20 }), V), 'max_tokens');
});
