// llama-server's own routes and behaviours (llama-routes.ts, llama-completion.ts, cors.ts,
// chat-continue.ts, schema-check.ts): what llama.cpp's server tests check, on the tiny model.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { byteLevelTokenizer } from '../../src/model/synthetic.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { postJson, startTestServer, tinyModel, NO_EOG, EOS } from './helpers.js';
import { vertexAlias } from '../../src/server/vertex.js';

const lm = await tinyModel({ contextLength: 2048 });
const srv = await startTestServer(lm, { ctxSize: 1024, slots: 2, xgrammar: loadXGrammar() });
after(() => srv.close());

/** The SSE events of a streamed POST, parsed. */
async function events(url: string, body: unknown): Promise<any[]> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && !e.includes('[DONE]'))
    .map((e) => JSON.parse(e.slice(6)));
}

test('POST /completion: content, tokens, stop_type, timings with per-token times, generation_settings', async () => {
  const r = await postJson(`${srv.url}/completion`, { prompt: 'the cat', n_predict: 5, logit_bias: NO_EOG, return_tokens: true, seed: 3 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const b = r.json;
  assert.equal(typeof b.content, 'string');
  assert.equal(b.tokens.length, 5);
  assert.ok(b.tokens.every((t: unknown) => Number.isInteger(t)));
  assert.equal(b.stop, true);
  assert.equal(b.stop_type, 'limit');
  assert.equal(b.truncated, false);
  assert.equal(typeof b.has_new_line, 'boolean');
  assert.equal(b.tokens_predicted, 5);
  assert.equal(b.timings.predicted_n, 5);
  assert.ok(b.timings.prompt_n > 0);
  assert.equal(typeof b.timings.prompt_per_token_ms, 'number');
  assert.equal(typeof b.timings.predicted_per_token_ms, 'number');
  assert.equal(b.generation_settings.n_predict, 5);
  assert.equal(b.generation_settings.seed, 3);
  assert.ok(b.prompt.includes('the cat'), b.prompt);
  assert.equal(srv.service.detokenize(b.tokens), b.content);
  // without return_tokens: an empty list; an eos stop says so
  const e = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 3, logit_bias: { [String(EOS)]: 100 } });
  assert.deepEqual(e.json.tokens, []);
  assert.equal(e.json.stop_type, 'eos');
  assert.equal(e.json.timings.predicted_n, 1);
  // a stop word
  const w = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 40, logit_bias: NO_EOG, temperature: 0 });
  const word = w.json.content.slice(1, 3);
  const s = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 40, logit_bias: NO_EOG, temperature: 0, stop: [word] });
  assert.equal(s.json.stop_type, 'word');
  assert.equal(s.json.stopping_word, word);
});

test('POST /completion streamed: one event per token with its id, then stop: true with the whole result', async () => {
  const ev = await events(`${srv.url}/completion`, { prompt: 'the', n_predict: 4, logit_bias: NO_EOG, stream: true, n_probs: 3 });
  const tokens = ev.filter((e) => !e.stop);
  assert.equal(tokens.length, 4);
  for (const t of tokens) {
    assert.equal(t.tokens.length, 1);
    assert.equal(t.completion_probabilities.length, 1);
    assert.equal(t.completion_probabilities[0].top_logprobs.length, 3);
  }
  const last = ev.at(-1);
  assert.equal(last.stop, true);
  assert.equal(last.stop_type, 'limit');
  assert.equal(last.timings.predicted_n, 4);
  assert.ok('generation_settings' in last);
  // the streamed text is the whole one
  const whole = await postJson(`${srv.url}/completion`, { prompt: 'the', n_predict: 4, logit_bias: NO_EOG, temperature: 0 });
  const streamed = await events(`${srv.url}/completion`, { prompt: 'the', n_predict: 4, logit_bias: NO_EOG, temperature: 0, stream: true });
  assert.equal(streamed.map((e) => e.content).join(''), whole.json.content);
});

test('POST /completion: n_probs, post_sampling_probs, response_fields', async () => {
  const r = await postJson(`${srv.url}/completion`, { prompt: 'a', n_predict: 3, n_probs: 5, logit_bias: NO_EOG, temperature: 0 });
  assert.equal(r.json.completion_probabilities.length, 3);
  for (const t of r.json.completion_probabilities) {
    assert.ok(t.logprob <= 0 && Array.isArray(t.bytes) && typeof t.token === 'string');
    assert.equal(t.top_logprobs.length, 5);
    assert.equal(t.id, t.top_logprobs[0].id, 'greedy: the chosen token is the most likely');
  }
  const p = await postJson(`${srv.url}/completion`, { prompt: 'a', n_predict: 2, n_probs: 4, post_sampling_probs: true, temperature: 1, top_k: 3, min_p: 0 });
  for (const t of p.json.completion_probabilities) {
    assert.ok(t.prob > 0 && t.prob <= 1);
    assert.ok(t.top_probs.length <= 3, 'top_k 3 leaves at most 3 candidates');
    const sum = t.top_probs.reduce((a: number, x: any) => a + x.prob, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6, `post-sampling probabilities of all candidates sum to 1, got ${sum}`);
  }
  const f = await postJson(`${srv.url}/completion`, { prompt: 'a', n_predict: 2, response_fields: ['content', 'generation_settings/n_predict'] });
  assert.deepEqual(Object.keys(f.json).sort(), ['content', 'generation_settings/n_predict']);
  assert.equal(f.json['generation_settings/n_predict'], 2);
});

test('POST /completion: prompt forms (tokens, several prompts, mixed, prompt_string) and refusals', async () => {
  const tokens = srv.service.tokenize('the cat', true);
  const one = await postJson(`${srv.url}/completion`, { prompt: tokens, n_predict: 3, temperature: 0, logit_bias: NO_EOG });
  assert.equal(one.json.tokens_evaluated, tokens.length);
  const many = await postJson(`${srv.url}/completion`, { prompt: [tokens, 'the cat', { prompt_string: 'the cat' }], n_predict: 3, temperature: 0, logit_bias: NO_EOG });
  assert.ok(Array.isArray(many.json));
  assert.deepEqual(many.json.map((x: any) => x.index), [0, 1, 2]);
  assert.ok(many.json.every((x: any) => x.content === one.json.content));
  const mixed = await postJson(`${srv.url}/completion`, { prompt: [tokens[0], 'the', tokens.at(-1)], n_predict: 1 });
  assert.equal(mixed.status, 200);
  assert.equal(mixed.json.tokens_evaluated, 3 - 1 + srv.service.tokenize('the', false).length);
  const mm = await postJson(`${srv.url}/completion`, { prompt: { prompt_string: 'x <__media__>', multimodal_data: ['AAAA'] } });
  assert.equal(mm.status, 400);
  assert.match(mm.json.error.message, /multimodal/);
  for (const bad of [{}, { prompt: 5 }, { prompt: [] }, { prompt: 'x', n_probs: -1 }, { prompt: 'x', n_predict: -2 }, { prompt: 'x', id_slot: 7 }, { prompt: [999999] }]) {
    const r = await postJson(`${srv.url}/completion`, bad);
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.ok(r.json.error.message);
  }
  // n_predict -1: no limit (here the context or an end token ends it)
  const unl = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: -1, logit_bias: { [String(EOS)]: 100 } });
  assert.equal(unl.status, 200);
  assert.equal(unl.json.generation_settings.n_predict, -1);
});

test('POST /completion: logit_bias in llama.cpp forms (strings, [id, false]) bans those tokens', async () => {
  const base = { prompt: 'the', n_predict: 12, temperature: 0 };
  const free = await postJson(`${srv.url}/completion`, { ...base, logit_bias: NO_EOG, return_tokens: true });
  const first = free.json.tokens[0] as number;
  const piece = srv.service.detokenize([first]);
  for (const bias of [[[first, false]], [[piece, -100]], { [piece]: -100 }]) {
    const list = Array.isArray(bias) ? [...bias, [EOS, false], [EOS + 1, false]] : { ...bias, ...NO_EOG };
    const r = await postJson(`${srv.url}/completion`, { ...base, logit_bias: list, return_tokens: true });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(!r.json.tokens.includes(first), `token ${first} banned by ${JSON.stringify(bias)}`);
  }
});

test('POST /completion: cache_prompt false evaluates the whole prompt again', async () => {
  const body = { prompt: 'a long enough prompt to be cached', n_predict: 1 };
  await postJson(`${srv.url}/completion`, body);
  const cached = await postJson(`${srv.url}/completion`, body);
  assert.ok(cached.json.timings.cache_n > 0, 'the second identical prompt reuses the cache');
  const fresh = await postJson(`${srv.url}/completion`, { ...body, cache_prompt: false });
  assert.equal(fresh.json.timings.cache_n, 0);
  assert.equal(fresh.json.timings.prompt_n, fresh.json.tokens_evaluated);
});

test('/completions is the native route; /v1/completions stays OpenAI\'s', async () => {
  const native = await postJson(`${srv.url}/completions`, { prompt: 'x', n_predict: 1 });
  assert.equal(typeof native.json.content, 'string');
  const oai = await postJson(`${srv.base}/completions`, { prompt: 'x', max_tokens: 1 });
  assert.equal(oai.json.object, 'text_completion');
  assert.match(oai.json.system_fingerprint, /^b/);
});

test('GET /props, POST /apply-template and /chat/completions/input_tokens', async () => {
  const p = await (await fetch(`${srv.url}/props`)).json();
  assert.equal(p.total_slots, 2);
  assert.equal(p.default_generation_settings.n_ctx, srv.service.slotContext);
  assert.equal(typeof p.chat_template, 'string');
  assert.equal(typeof p.default_generation_settings.params.seed, 'number');
  assert.match(p.build_info, /^b/);
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }];
  const t = await postJson(`${srv.url}/apply-template`, { messages });
  assert.equal(t.status, 200);
  assert.ok(t.json.prompt.endsWith('Assistant: '), t.json.prompt);
  assert.ok(t.json.prompt.includes('System: Be brief.'));
  const no = await postJson(`${srv.url}/apply-template`, { messages, add_generation_prompt: false });
  assert.ok(!no.json.prompt.endsWith('Assistant: '), no.json.prompt);
  const n = await postJson(`${srv.url}/chat/completions/input_tokens`, { messages });
  const chat = await postJson(`${srv.base}/chat/completions`, { messages, max_tokens: 1 });
  assert.equal(n.json.input_tokens, chat.json.usage.prompt_tokens);
  assert.equal((await postJson(`${srv.url}/apply-template`, { messages: 'x' })).status, 400);
});

test('chat: assistant prefill, continue_final_message, and the refusals around them', async () => {
  const messages = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Well' }];
  const pre = await postJson(`${srv.url}/apply-template`, { messages });
  assert.ok(pre.json.prompt.endsWith('User: Hi<|eot_id|>Assistant: Well'), pre.json.prompt);
  const cont = await postJson(`${srv.url}/apply-template`, { messages, continue_final_message: true, add_generation_prompt: false });
  assert.equal(cont.json.prompt, pre.json.prompt);
  const finished = await postJson(`${srv.url}/apply-template`, { messages, continue_final_message: false });
  assert.ok(finished.json.prompt.endsWith('Assistant: Well<|eot_id|>Assistant: '), finished.json.prompt);
  const both = await postJson(`${srv.base}/chat/completions`, { messages, continue_final_message: true, add_generation_prompt: true });
  assert.equal(both.status, 400);
  const two = await postJson(`${srv.base}/chat/completions`, { messages: [...messages, { role: 'assistant', content: 'x' }] });
  assert.equal(two.status, 400);
  assert.match(two.json.error.message, /two assistant messages/);
  // the reply continues the prefill: __verbose shows the prompt
  const v = await postJson(`${srv.base}/chat/completions`, { messages, max_tokens: 1, verbose: true });
  assert.ok(v.json.__verbose.prompt.endsWith('Assistant: Well'), v.json.__verbose.prompt);
  const quiet = await postJson(`${srv.base}/chat/completions`, { messages, max_tokens: 1 });
  assert.ok(!('__verbose' in quiet.json));
  // a continued message's text parts are joined by a blank line (as llama.cpp continues one); other messages' by a newline
  const parts = [{ type: 'text', text: 'Wh' }, { type: 'text', text: 'ill' }];
  const p = await postJson(`${srv.url}/apply-template`, { messages: [{ role: 'user', content: parts }, { role: 'assistant', content: parts }] });
  assert.ok(p.json.prompt.endsWith('User: Wh\nill<|eot_id|>Assistant: Wh\n\nill'), p.json.prompt);
});

test('response_format: json_object with a schema follows the schema; a schema with an unknown type is a 400', async () => {
  const r = await postJson(`${srv.base}/chat/completions`, {
    messages: [{ role: 'user', content: 'x' }],
    response_format: { type: 'json_object', schema: { const: 'forty-two' } },
    max_tokens: 20,
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.choices[0].message.content, '"forty-two"');
  for (const rf of [{ type: 'sound' }, { type: 'json_object', schema: 123 }, { type: 'json_object', schema: { type: 123 } }, { type: 'json_object', schema: { type: 'hiccup' } }]) {
    const bad = await postJson(`${srv.base}/chat/completions`, { messages: [{ role: 'user', content: 'x' }], response_format: rf });
    assert.equal(bad.status, 400, JSON.stringify(rf));
  }
  // a property named "type" is not a type keyword
  const named = await postJson(`${srv.base}/chat/completions`, {
    messages: [{ role: 'user', content: 'x' }],
    response_format: { type: 'json_schema', json_schema: { schema: { type: 'object', properties: { type: { const: 'a' } }, required: ['type'] } } },
    max_tokens: 20,
  });
  assert.equal(named.status, 200, JSON.stringify(named.json));
});

test('streamed chat: the first chunk is {role: assistant, content: null}; system_fingerprint starts with b', async () => {
  const ev = await events(`${srv.base}/chat/completions`, { messages: [{ role: 'user', content: 'x' }], max_tokens: 2, stream: true });
  assert.deepEqual(ev[0].choices[0].delta, { role: 'assistant', content: null });
  assert.ok(ev.every((e) => e.system_fingerprint.startsWith('b')));
});

test('POST /infill: 501 naming the missing FIM tokens; with them, the FIM layout; input_extra checked', async () => {
  const r = await postJson(`${srv.url}/infill`, { input_prefix: 'a', input_suffix: 'b', prompt: '' });
  assert.equal(r.status, 501);
  assert.match(r.json.error.message, /fill-in-the-middle/);
  const bad = await postJson(`${srv.url}/infill`, { input_prefix: 'a', input_suffix: 'b', input_extra: [{ filename: 1, text: 'x' }] });
  assert.equal(bad.status, 400);
  // a vocabulary with FIM tokens
  const tok = byteLevelTokenizer(268); // 264 tokens, then reserved (control) ones
  const names = ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'];
  names.forEach((n, i) => (tok.tokens[264 + i] = n));
  const fimLm = await tinyModel({ contextLength: 256, tokenizer: tok });
  const fim = await startTestServer(fimLm, { ctxSize: 256 });
  try {
    const ok = await postJson(`${fim.url}/infill`, { input_prefix: 'ab', input_suffix: 'cd', prompt: 'e', n_predict: 2, temperature: 0 });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.prompt, '<|begin_of_text|><|fim_prefix|>ab<|fim_suffix|>cd<|fim_middle|>e');
    for (const extra of [{}, { filename: 'ok' }, { filename: 123 }, { filename: 123, text: 'abc' }, { filename: 'f', text: 456 }]) {
      const b = await postJson(`${fim.url}/infill`, { input_prefix: 'a', input_suffix: 'b', input_extra: [extra] });
      assert.equal(b.status, 400, JSON.stringify(extra));
    }
    const withExtra = await postJson(`${fim.url}/infill`, { input_prefix: 'a', input_suffix: 'b', input_extra: [{ filename: 'f.h', text: 'int x;' }], n_predict: 1 });
    assert.ok(withExtra.json.prompt.startsWith('<|begin_of_text|>f.h\nint x;\n<|fim_prefix|>a'), withExtra.json.prompt);
  } finally {
    await fim.close();
    fimLm.dispose();
  }
});

test('CORS: the origin is echoed with credentials; --cors-origins narrows it (localhost = any port)', async () => {
  const s = await startTestServer(lm, { ctxSize: 64 }, { llama: { corsOrigins: ['localhost', 'https://app.example'] } });
  try {
    const pre = (origin: string) =>
      fetch(`${s.url}/completions`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'Authorization' } });
    for (const o of ['http://localhost', 'http://127.0.0.1:3000', 'http://[::1]:8080', 'https://app.example']) {
      const r = await pre(o);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('access-control-allow-origin'), o);
      assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    }
    for (const o of ['http://evil.com', 'http://localhost.evil.com', 'http://notlocalhost']) {
      const r = await pre(o);
      assert.equal(r.headers.get('access-control-allow-origin'), null, o);
    }
    // every route's answer carries the same rule, the Responses API's included
    for (const path of ['/v1/responses', '/v1/chat/completions']) {
      const body = path === '/v1/responses' ? { input: 'Hi', max_output_tokens: 2 } : { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
      for (const [o, allowed] of [['http://evil.com', null], ['https://app.example', 'https://app.example']] as const) {
        const r = await fetch(`${s.url}${path}`, { method: 'POST', headers: { Origin: o, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal(r.status, 200, path);
        assert.equal(r.headers.get('access-control-allow-origin'), allowed, `${path} from ${o}`);
      }
    }
  } finally {
    await s.close();
  }
  const open = await fetch(`${srv.url}/health`, { headers: { Origin: 'http://any.example' } });
  assert.equal(open.headers.get('access-control-allow-origin'), 'http://any.example');
  assert.match(open.headers.get('process-start-time-unix') ?? '', /^\d+$/);
});

test('x-api-key works as Authorization; --no-metrics answers 501; --no-ui 404; aliases and tags in /v1/models', async () => {
  const s = await startTestServer(lm, { ctxSize: 64 }, { apiKey: 'sek', llama: { metrics: false, ui: false, aliases: ['a', 'b'], tags: ['chat'] } });
  try {
    assert.equal((await postJson(`${s.url}/completion`, { prompt: 'x', n_predict: 1 }, { 'x-api-key': 'sek' })).status, 200);
    assert.equal((await postJson(`${s.url}/completion`, { prompt: 'x', n_predict: 1 }, { 'x-api-key': 'nope' })).status, 401);
    const auth = { Authorization: 'Bearer sek' };
    assert.equal((await fetch(`${s.url}/metrics`, { headers: auth })).status, 501);
    assert.equal((await fetch(`${s.url}/`)).status, 404);
    const models = await (await fetch(`${s.base}/models`, { headers: auth })).json();
    assert.deepEqual(models.data[0].aliases, ['a', 'b']);
    assert.deepEqual(models.data[0].tags, ['chat']);
  } finally {
    await s.close();
  }
});

test('server defaults (--temp, --seed) apply to requests that give none', async () => {
  const s = await startTestServer(lm, { ctxSize: 256 }, { llama: { defaults: { temperature: 1.5, seed: 7 } } });
  try {
    const a = await postJson(`${s.url}/completion`, { prompt: 'x', n_predict: 6, logit_bias: NO_EOG });
    assert.equal(a.json.generation_settings.seed, 7);
    assert.equal(a.json.generation_settings.temperature, 1.5);
    const b = await postJson(`${s.url}/completion`, { prompt: 'x', n_predict: 6, logit_bias: NO_EOG });
    assert.equal(a.json.content, b.json.content, 'the default seed makes them repeat');
    const own = await postJson(`${s.url}/completion`, { prompt: 'x', n_predict: 6, logit_bias: NO_EOG, temperature: 0 });
    assert.equal(own.json.generation_settings.temperature, 0);
  } finally {
    await s.close();
  }
});

test('ignore_eos bans the end tokens (listed with bias null, as llama-server); timings count n - 1 decode steps', async () => {
  const r = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 6, ignore_eos: true, logit_bias: { [String(EOS)]: 100 }, return_tokens: true });
  assert.ok(!r.json.tokens.includes(EOS), 'a banned end token is never drawn');
  assert.ok(r.json.generation_settings.logit_bias.some((e: any) => e.token === EOS && e.bias === null));
  const plain = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 2 });
  assert.deepEqual(plain.json.generation_settings.logit_bias, []);
  const one = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 1, logit_bias: NO_EOG });
  assert.equal(one.json.timings.predicted_per_second, 0);
  const many = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 5, logit_bias: NO_EOG });
  const t = many.json.timings;
  assert.ok(Math.abs(t.predicted_per_second - (1000 * 4) / t.predicted_ms) < 1e-6);
});

test('/metrics carries llama-server\'s llamacpp: families (prompt tokens, cached, predicted, decodes)', async () => {
  const s = await startTestServer(lm, { ctxSize: 256, slots: 1 });
  try {
    let processed = 0;
    let cached = 0;
    let predicted = 0;
    for (let i = 0; i < 2; i++) {
      const r = await postJson(`${s.url}/completion`, { prompt: 'the quick brown fox', n_predict: 3, logit_bias: NO_EOG });
      processed += r.json.timings.prompt_n;
      cached += r.json.timings.cache_n;
      predicted += r.json.timings.predicted_n;
    }
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.match(text, /# TYPE llamacpp:prompt_tokens_total counter/);
    assert.equal(value('llamacpp:prompt_tokens_total'), processed);
    assert.ok(cached > 0);
    assert.equal(value('llamacpp:prompt_tokens_cached_total'), cached);
    assert.equal(value('llamacpp:tokens_predicted_total'), predicted);
    assert.ok(value('llamacpp:n_decode_total') > 0);
    assert.equal(value('llamacpp:requests_processing'), 0);
  } finally {
    await s.close();
  }
});

test('Vertex AI predict route (AIP_MODE=PREDICTION): each instance served by the route its @requestFormat names', async () => {
  assert.equal(vertexAlias('/v1/chat/completions'), 'chatCompletions');
  assert.equal(vertexAlias('/apply-template'), 'applyTemplate');
  const s = await startTestServer(lm, { ctxSize: 256, slots: 2 }, { llama: { vertex: { AIP_MODE: 'PREDICTION' } } });
  try {
    const r = await postJson(`${s.url}/predict`, {
      instances: [
        { '@requestFormat': 'chatCompletions', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] },
        { '@requestFormat': 'completion', prompt: 'x', n_predict: 2 },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.predictions.length, 2);
    assert.equal(r.json.predictions[0].object, 'chat.completion');
    assert.equal(typeof r.json.predictions[1].content, 'string');
    const bad = await postJson(`${s.url}/predict`, { instances: [{ '@requestFormat': 'nope' }] });
    assert.equal(bad.status, 400);
    const inner = await postJson(`${s.url}/predict`, { instances: [{ '@requestFormat': 'chatCompletions', messages: [] }] });
    assert.equal(inner.status, 400, 'an instance\'s own error comes back');
  } finally {
    await s.close();
  }
  assert.equal((await postJson(`${srv.url}/predict`, { instances: [] })).status, 404, 'off without AIP_MODE');
});

test('/v1/messages: a tool call cut off by max_tokens comes back as text with stop_reason max_tokens, not a 500', async () => {
  const r = await postJson(`${srv.url}/v1/messages`, {
    max_tokens: 3,
    tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } }],
    tool_choice: { type: 'any' },
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.stop_reason, 'max_tokens');
  assert.equal(r.json.content[0].type, 'text');
  const ok = await postJson(`${srv.url}/v1/messages`, {
    max_tokens: 200,
    tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { location: { type: 'string', maxLength: 8 } }, required: ['location'] } }],
    tool_choice: { type: 'any' },
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
  });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal(ok.json.stop_reason, 'tool_use');
  const call = ok.json.content.find((b: any) => b.type === 'tool_use');
  assert.equal(call.name, 'get_weather');
  assert.equal(typeof call.input.location, 'string');
});
