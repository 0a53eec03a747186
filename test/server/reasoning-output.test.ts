// Reasoning in replies, as llama-server returns it (reasoning-output.ts, thinking-constraint.ts):
// the reader that splits thinking from content (whole and token by token), then the HTTP routes on a
// tiny byte-level model whose replies a GBNF grammar forces (every marker is 7-8 tokens, so every
// marker arrives split across tokens): chat completions, /v1/messages and /v1/responses, stream and
// not; the formats none / deepseek / deepseek-legacy; a prompt that opens <think>; the thinking budget.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { EOS, EOT, postJson, startTestServer, tinyModel, weatherTool } from './helpers.js';
import { ReasoningReader, THINK, opensThinking, splitReasoning, thinkingMarkers, type ReasoningPiece, type ReasoningPlan } from '../../src/server/reasoning-output.js';
import { reasoningOutputFrom } from '../../src/cli/reasoning-flags.js';
import { serverMain } from '../../src/cli/wf_server.js';

const plan = (p: Partial<ReasoningPlan> = {}): ReasoningPlan => ({ format: 'deepseek', markers: THINK, open: false, budget: -1, budgetMessage: '', ...p });

/** the pieces of `text` pushed in pieces of `size` characters, adjacent pieces of one kind merged */
function piecesOf(text: string, p: ReasoningPlan, size: number): ReasoningPiece[] {
  const r = new ReasoningReader(p);
  const out: ReasoningPiece[] = [];
  const add = (ps: ReasoningPiece[]) => {
    for (const x of ps) {
      const last = out[out.length - 1];
      if (last && last.kind === x.kind) last.text += x.text;
      else out.push({ ...x });
    }
  };
  for (let i = 0; i < text.length; i += size) add(r.push(text.slice(i, i + size)));
  add(r.finish());
  return out;
}

test('reader: thinking apart from content, the same whole or character by character; white space trimmed', () => {
  const text = '\n<think>\nLet me see: 2 < 3.\n</think>\n\nThe answer is <b>yes</b>.';
  for (const size of [1, 2, 3, 5, text.length]) {
    assert.deepEqual(piecesOf(text, plan(), size), [
      { kind: 'reasoning', text: 'Let me see: 2 < 3.' },
      { kind: 'content', text: 'The answer is <b>yes</b>.' },
    ], `pushed ${size} at a time`);
  }
  assert.deepEqual(splitReasoning(text, plan()), { reasoning: 'Let me see: 2 < 3.', content: 'The answer is <b>yes</b>.' });
});

test('reader: a partial marker is held back until decided, never sent as content', () => {
  const r = new ReasoningReader(plan());
  assert.deepEqual(r.push('<th'), []);
  assert.deepEqual(r.push('ink>a'), [{ kind: 'reasoning', text: 'a' }]);
  assert.deepEqual(r.push('b</thi'), [{ kind: 'reasoning', text: 'b' }]);
  assert.deepEqual(r.push('nk>c'), [{ kind: 'content', text: 'c' }]);
  // a start that turns out not to be the marker is content, all of it
  const c = new ReasoningReader(plan());
  assert.deepEqual(c.push('<th'), []);
  assert.deepEqual(c.push('is>'), [{ kind: 'content', text: '<this>' }]);
  // a reply of white space is content once it is longer than a marker's lead could be (it is not held back)
  const w = new ReasoningReader(plan());
  assert.deepEqual(w.push('  '), []);
  assert.deepEqual(w.push(' '.repeat(20)), [{ kind: 'content', text: ' '.repeat(22) }]);
  // "</thi" inside thinking that is not the end marker is reasoning after all
  const t = new ReasoningReader(plan({ open: true }));
  assert.deepEqual(t.push('x</thi'), [{ kind: 'reasoning', text: 'x' }]);
  assert.deepEqual(t.push('s>'), [{ kind: 'reasoning', text: '</this>' }]);
});

test('reader: a marker after the start is content; an unclosed block stays reasoning; an opened prompt starts in thinking', () => {
  assert.deepEqual(splitReasoning('Hi <think>x</think>', plan()), { reasoning: null, content: 'Hi <think>x</think>' });
  assert.deepEqual(splitReasoning('<think>still going', plan()), { reasoning: 'still going', content: '' });
  assert.deepEqual(splitReasoning('I thought.</think>Answer', plan({ open: true })), { reasoning: 'I thought.', content: 'Answer' });
  // none leaves the text as it is; legacy keeps it as content and fills reasoning too
  assert.deepEqual(splitReasoning('<think>a</think>b', plan({ format: 'none' })), { reasoning: null, content: '<think>a</think>b' });
  assert.deepEqual(splitReasoning('<think>a</think>b', plan({ format: 'deepseek-legacy' })), { reasoning: 'a', content: '<think>a</think>b' });
  assert.deepEqual(splitReasoning('a</think>b', plan({ format: 'deepseek-legacy', open: true })), { reasoning: 'a', content: '<think>a</think>b' });
});

test('markers come from the template; an open block is found at the prompt\'s end', () => {
  assert.deepEqual(thinkingMarkers('{{ "<think>" }}'), THINK);
  assert.deepEqual(thinkingMarkers('[THINK]{{ x }}[/THINK]'), { start: '[THINK]', end: '[/THINK]' });
  assert.deepEqual(thinkingMarkers('no thinking here'), THINK);
  assert.equal(opensThinking('Assistant: <think>\n', THINK), true);
  assert.equal(opensThinking('Assistant: <think>\n\n</think>\n\n', THINK), false);
  assert.equal(opensThinking('User: <think> me\nAssistant: ', THINK), false);
});

test('wf_server flags: --reasoning-format and --reasoning-budget are checked', () => {
  assert.deepEqual(reasoningOutputFrom({ 'reasoning-format': 'none', 'reasoning-budget': 0 }), { format: 'none', budget: 0 });
  assert.deepEqual(reasoningOutputFrom({ 'reasoning-budget': 5, 'reasoning-budget-message': 'Time is up.' }), { budget: 5, budgetMessage: 'Time is up.' });
  assert.deepEqual(reasoningOutputFrom({}), {});
  assert.throws(() => reasoningOutputFrom({ 'reasoning-format': 'r1' }), /--reasoning-format must be one of none, auto, deepseek, deepseek-legacy, got 'r1'/);
  assert.throws(() => reasoningOutputFrom({ 'reasoning-budget': -2 }), /--reasoning-budget/);
  assert.throws(() => reasoningOutputFrom({ 'reasoning-budget': 1.5 }), /--reasoning-budget/);
});

test('wf_server: a bad --reasoning-format or --reasoning-budget exits 2 naming the flag, before loading anything', async () => {
  for (const [argv, flag] of [[['--reasoning-format', 'r1'], /--reasoning-format must be one of/], [['--reasoning-budget', '-3'], /--reasoning-budget must be/]] as const) {
    const lines: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => void lines.push(a.join(' '));
    let code: number;
    try {
      code = await serverMain([...argv]);
    } finally {
      console.error = orig;
    }
    assert.equal(code, 2, lines.join('\n'));
    assert.match(lines.join('\n'), flag);
  }
});

// ---- over HTTP ----

const lm = await tinyModel({ contextLength: 2048 });
const xgrammar = loadXGrammar();
// a template that shows <think> in earlier turns (so its markers are <think>) and does not open one
const TEMPLATE =
  "{% for m in messages %}{{ m.role }}: {% if m.reasoning_content %}<think>{{ m.reasoning_content }}</think>{% endif %}{{ m.content }}\n{% endfor %}" +
  "{% if add_generation_prompt %}assistant: {% endif %}";
// one that opens the thinking block in the generation prompt (as DeepSeek R1's does), unless enable_thinking is false
const OPENING =
  "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}" +
  "{% if add_generation_prompt %}assistant: <think>\n{% if enable_thinking is false %}</think>{% endif %}{% endif %}";
const srv = await startTestServer(lm, { ctxSize: 2048, chatTemplate: TEMPLATE, xgrammar });
const opening = await startTestServer(lm, { ctxSize: 2048, chatTemplate: OPENING, xgrammar });
after(async () => {
  await srv.close();
  await opening.close();
});

const byte = (ch: string) => String(lm.tokenizer.encode(ch, { addBos: false })[0]);
// the random model's thinking: hardly any white space (it would be trimmed away) or '<', and not
// ending early; disfavoured, not banned: the forced end marker, a grammar's answer and its end need them
const THINK_FREELY = Object.fromEntries([' ', '\n', '\t', '<'].map((c) => [byte(c), -30]).concat([[String(EOS), -30], [String(EOT), -30]]));

const REPLY = '<think>\nCount: 2 < 3.\n</think>\n\nYes.';
// the grammar writes REPLY, one byte a token
const FORCE = { grammar: `root ::= ${JSON.stringify(REPLY)}` };
const ask = { messages: [{ role: 'user', content: 'is 2 < 3?' }], max_tokens: 60, ...FORCE };

/** an SSE body's data lines as JSON (without [DONE]) */
async function sse(url: string, body: unknown): Promise<any[]> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice(6)));
}

test('chat: the thinking goes to message.reasoning_content, the rest to content (auto, the default)', async () => {
  const r = await postJson(`${srv.base}/chat/completions`, ask);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const m = r.json.choices[0].message;
  assert.equal(m.reasoning_content, 'Count: 2 < 3.');
  assert.equal(m.content, 'Yes.');
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  // deepseek is the same; none leaves the text alone; legacy keeps it and fills reasoning_content
  const ds = await postJson(`${srv.base}/chat/completions`, { ...ask, reasoning_format: 'deepseek' });
  assert.deepEqual([ds.json.choices[0].message.reasoning_content, ds.json.choices[0].message.content], ['Count: 2 < 3.', 'Yes.']);
  const none = await postJson(`${srv.base}/chat/completions`, { ...ask, reasoning_format: 'none' });
  assert.equal(none.json.choices[0].message.content, REPLY);
  assert.equal('reasoning_content' in none.json.choices[0].message, false);
  const legacy = await postJson(`${srv.base}/chat/completions`, { ...ask, reasoning_format: 'deepseek-legacy' });
  assert.equal(legacy.json.choices[0].message.content, REPLY);
  assert.equal(legacy.json.choices[0].message.reasoning_content, 'Count: 2 < 3.');
});

test('chat stream: delta.reasoning_content chunks, then content; no piece of a marker in content', async () => {
  const chunks = await sse(`${srv.base}/chat/completions`, { ...ask, stream: true });
  const deltas = chunks.filter((c) => c.choices?.length).map((c) => c.choices[0].delta);
  assert.equal(deltas[0].role, 'assistant');
  const reasoning = deltas.filter((d) => typeof d.reasoning_content === 'string');
  const content = deltas.filter((d) => typeof d.content === 'string');
  assert.ok(reasoning.length > 3, 'the thinking streams token by token');
  assert.equal(reasoning.map((d) => d.reasoning_content).join(''), 'Count: 2 < 3.');
  assert.equal(content.map((d) => d.content).join(''), 'Yes.');
  for (const d of content) assert.ok(!/[<>]/.test(d.content), `content chunk ${JSON.stringify(d.content)}`);
  // every reasoning chunk comes before the first content chunk
  const firstContent = deltas.findIndex((d) => typeof d.content === 'string');
  const lastReasoning = deltas.map((d) => typeof d.reasoning_content === 'string').lastIndexOf(true);
  assert.ok(lastReasoning < firstContent);
  // none and deepseek-legacy stream the text as it is
  for (const format of ['none', 'deepseek-legacy']) {
    const raw = await sse(`${srv.base}/chat/completions`, { ...ask, stream: true, reasoning_format: format });
    const ds = raw.filter((c) => c.choices?.length).map((c) => c.choices[0].delta);
    assert.equal(ds.map((d) => d.content ?? '').join(''), REPLY, format);
    assert.ok(ds.every((d) => d.reasoning_content === undefined), format);
  }
});

test('bad reasoning_format or budget: a 400 naming the field', async () => {
  for (const [field, value] of [['reasoning_format', 'r1'], ['reasoning_format', 3], ['reasoning_budget_tokens', -5], ['reasoning_budget_tokens', 'x'], ['thinking_budget_tokens', 1.5]] as const) {
    const r = await postJson(`${srv.base}/chat/completions`, { messages: [{ role: 'user', content: 'x' }], max_tokens: 1, [field]: value });
    assert.equal(r.status, 400, `${field} ${value}`);
    assert.equal(r.json.error.param, field);
    assert.match(r.json.error.message, new RegExp(field));
  }
  const a = await postJson(`${srv.url}/v1/messages`, { model: 'x', max_tokens: 1, messages: [{ role: 'user', content: 'x' }], thinking: { type: 'enabled', budget_tokens: 'lots' } });
  assert.equal(a.status, 400);
  assert.match(a.json.error.message, /thinking\.budget_tokens/);
});

/**
 * Runs `fn` with every generation of `srv` forced to REPLY by a grammar (for routes whose requests
 * cannot carry one: /v1/messages, /v1/responses).
 */
async function forced<T>(fn: () => Promise<T>, on = srv, grammar = FORCE.grammar): Promise<T> {
  const service = on.service;
  const start = service.start.bind(service);
  service.start = (prompt, params, signal) =>
    start(prompt, { ...params, sampler: { ...params.sampler, temperature: 0, logitBias: THINK_FREELY }, constraint: { spec: { type: 'gbnf', grammar }, param: 'grammar' } }, signal);
  try {
    return await fn();
  } finally {
    service.start = start;
  }
}

test('/v1/messages: a thinking block first (with its empty signature), then the text', async () => {
  const body = { model: 'x', max_tokens: 60, messages: [{ role: 'user', content: 'is 2 < 3?' }] };
  const r = await forced(() => postJson(`${srv.url}/v1/messages`, body));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(r.json.content, [
    { type: 'thinking', thinking: 'Count: 2 < 3.', signature: '' },
    { type: 'text', text: 'Yes.' },
  ]);
  assert.equal(r.json.stop_reason, 'end_turn');
  const events = await forced(() => sse(`${srv.url}/v1/messages`, { ...body, stream: true }));
  const starts = events.filter((e) => e.type === 'content_block_start');
  assert.deepEqual(starts.map((e) => [e.index, e.content_block.type]), [[0, 'thinking'], [1, 'text']]);
  const thinking = events.filter((e) => e.delta?.type === 'thinking_delta').map((e) => e.delta.thinking).join('');
  assert.equal(thinking, 'Count: 2 < 3.');
  assert.equal(events.filter((e) => e.delta?.type === 'text_delta').map((e) => e.delta.text).join(''), 'Yes.');
  // the signature comes before the thinking block's stop
  const sig = events.findIndex((e) => e.delta?.type === 'signature_delta');
  const stop0 = events.findIndex((e) => e.type === 'content_block_stop' && e.index === 0);
  assert.ok(sig >= 0 && sig < stop0);
  assert.equal(events[sig].index, 0);
});

test('/v1/responses: a reasoning item before the message, streamed as response.reasoning_text.delta', async () => {
  const body = { input: 'is 2 < 3?', max_output_tokens: 60, store: false };
  const r = await forced(() => postJson(`${srv.base}/responses`, body));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(r.json.output.map((o: any) => o.type), ['reasoning', 'message']);
  assert.deepEqual(r.json.output[0].content, [{ type: 'reasoning_text', text: 'Count: 2 < 3.' }]);
  assert.equal(r.json.output[1].content[0].text, 'Yes.');
  const events = await forced(() => sse(`${srv.base}/responses`, { ...body, stream: true }));
  const deltas = events.filter((e) => e.type === 'response.reasoning_text.delta');
  assert.equal(deltas.map((e) => e.delta).join(''), 'Count: 2 < 3.');
  assert.equal(events.find((e) => e.type === 'response.reasoning_text.done').text, 'Count: 2 < 3.');
  assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'Yes.');
  const done = events.find((e) => e.type === 'response.completed');
  assert.deepEqual(done.response.output.map((o: any) => o.type), ['reasoning', 'message']);
  // llama-server's reasoning_format passes through: none leaves the text in the message
  const none = await forced(() => postJson(`${srv.base}/responses`, { ...body, reasoning_format: 'none' }));
  assert.deepEqual(none.json.output.map((o: any) => o.type), ['message']);
  assert.equal(none.json.output[0].content[0].text, REPLY);
  const bad = await postJson(`${srv.base}/responses`, { ...body, reasoning_format: 'r1' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'reasoning_format');
});

test('a prompt that opens <think>: the reply starts as reasoning; the budget forces </think>, then the grammar answers', async () => {
  const body = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 40, temperature: 0, logit_bias: THINK_FREELY, grammar: 'root ::= "done"', reasoning_budget_tokens: 5 };
  const r = await postJson(`${opening.base}/chat/completions`, body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const m = r.json.choices[0].message;
  assert.equal(m.content, 'done');
  assert.equal(typeof m.reasoning_content, 'string');
  assert.ok(m.reasoning_content.length <= 5 * 4, m.reasoning_content);
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  // 5 thinking tokens, </think> (8 byte tokens), "done" (4)
  assert.equal(r.json.usage.completion_tokens, 5 + 8 + 4);
  // streamed alike
  const chunks = await sse(`${opening.base}/chat/completions`, { ...body, stream: true });
  const deltas = chunks.filter((c) => c.choices?.length).map((c) => c.choices[0].delta);
  assert.equal(deltas.map((d) => d.content ?? '').join(''), 'done');
  assert.equal(deltas.map((d) => d.reasoning_content ?? '').join(''), m.reasoning_content, 'greedy: the same thinking');
  // budget 0: the block closes at once
  const zero = await postJson(`${opening.base}/chat/completions`, { ...body, reasoning_budget_tokens: 0 });
  assert.equal(zero.json.choices[0].message.content, 'done');
  assert.equal(zero.json.choices[0].message.reasoning_content, undefined);
  assert.equal(zero.json.usage.completion_tokens, 8 + 4);
  // reasoning_budget_message is forced before the marker, as the thinking's end
  const msg = await postJson(`${opening.base}/chat/completions`, { ...body, reasoning_budget_message: ' Enough.' });
  assert.equal(msg.json.choices[0].message.content, 'done');
  assert.ok(msg.json.choices[0].message.reasoning_content.endsWith('Enough.'), msg.json.choices[0].message.reasoning_content);
  assert.equal(msg.json.choices[0].message.reasoning_content, `${m.reasoning_content} Enough.`, 'greedy: the same 5 tokens first');
  const badMsg = await postJson(`${opening.base}/chat/completions`, { ...body, reasoning_budget_message: 5 });
  assert.equal(badMsg.status, 400);
  assert.equal(badMsg.json.error.param, 'reasoning_budget_message');
  // none: the same reply, as text
  const none = await postJson(`${opening.base}/chat/completions`, { ...body, reasoning_budget_tokens: 0, reasoning_format: 'none' });
  assert.equal(none.json.choices[0].message.content, '</think>done');
});

test('a prompt that opens <think> and a length stop: the unclosed thinking stays reasoning', async () => {
  const r = await postJson(`${opening.base}/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, logit_bias: THINK_FREELY });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.choices[0].finish_reason, 'length');
  assert.equal(r.json.choices[0].message.content, '');
  assert.ok(r.json.choices[0].message.reasoning_content.length > 0);
});

test('--reasoning-budget 0: the template renders with thinking off (enable_thinking false)', async () => {
  const s = await startTestServer(lm, { ctxSize: 512, chatTemplate: OPENING, reasoningOutput: { budget: 0 } });
  try {
    const r = await postJson(`${s.url}/apply-template`, { messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200);
    assert.ok(r.json.prompt.endsWith('assistant: <think>\n</think>'), r.json.prompt);
    const on = await postJson(`${opening.url}/apply-template`, { messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(on.json.prompt.endsWith('assistant: <think>\n'), on.json.prompt);
  } finally {
    await s.close();
  }
});

test('thinking, then a tool call or a JSON answer: the grammar applies after the thinking the prompt opened', async () => {
  const base = { messages: [{ role: 'user', content: 'weather?' }], max_tokens: 120, temperature: 0, logit_bias: THINK_FREELY, reasoning_budget_tokens: 3 };
  const r = await postJson(`${opening.base}/chat/completions`, { ...base, tools: [weatherTool()], tool_choice: 'required' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const m = r.json.choices[0].message;
  assert.ok(m.reasoning_content.length > 0);
  assert.equal(m.tool_calls?.length, 1, JSON.stringify(m));
  assert.equal(m.tool_calls[0].function.name, 'get_weather');
  assert.ok(['C', 'F'].includes(JSON.parse(m.tool_calls[0].function.arguments).unit));
  assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
  // streamed: reasoning deltas, then the call's deltas
  const chunks = await sse(`${opening.base}/chat/completions`, { ...base, tools: [weatherTool()], tool_choice: 'required', stream: true });
  const deltas = chunks.filter((c) => c.choices?.length).map((c) => c.choices[0].delta);
  assert.equal(deltas.map((d) => d.reasoning_content ?? '').join(''), m.reasoning_content);
  const streamed = deltas.flatMap((d) => d.tool_calls ?? []).map((t: any) => t.function?.arguments ?? '').join('');
  assert.deepEqual(JSON.parse(streamed), JSON.parse(m.tool_calls[0].function.arguments));
  // a JSON schema answer after the thinking
  const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
  const j = await postJson(`${opening.base}/chat/completions`, { ...base, response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } });
  assert.equal(j.status, 200, JSON.stringify(j.json));
  assert.ok(j.json.choices[0].message.reasoning_content.length > 0);
  assert.equal(typeof JSON.parse(j.json.choices[0].message.content).ok, 'boolean');
  // without an opened block the grammar rules from the first token: no thinking
  const plain = await postJson(`${srv.base}/chat/completions`, { ...base, response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } });
  assert.equal(plain.json.choices[0].message.reasoning_content, undefined);
  assert.equal(typeof JSON.parse(plain.json.choices[0].message.content).ok, 'boolean');
});

test('reasoning_effort: to the template as reasoning_effort; "none" turns thinking off (an open <think> closed); reasoning.effort on /v1/responses', async () => {
  // a template that prints what it is given
  const SHOWS =
    "{% for m in messages %}{{ m.role }}: {% if m.reasoning_content %}<think>{{ m.reasoning_content }}</think>{% endif %}{{ m.content }}\n{% endfor %}" +
    "{% if add_generation_prompt %}[effort={{ reasoning_effort | default('unset') }}] assistant: <think>\n{% endif %}";
  const s = await startTestServer(lm, { ctxSize: 1024, chatTemplate: SHOWS });
  try {
    const msgs = [{ role: 'user', content: 'hi' }];
    const render = async (body: Record<string, unknown>) => (await postJson(`${s.url}/apply-template`, { messages: msgs, ...body })).json.prompt as string;
    assert.ok((await render({})).endsWith('[effort=unset] assistant: <think>\n'));
    assert.ok((await render({ reasoning_effort: 'high' })).endsWith('[effort=high] assistant: <think>\n'), 'the effort is rendered');
    assert.ok((await render({ reasoning_effort: 'none' })).endsWith('[effort=unset] assistant: <think>\n</think>'), 'none closes the open block');
    assert.ok((await render({ chat_template_kwargs: { enable_thinking: false } })).endsWith('<think>\n</think>'));
    const tokens = async (body: Record<string, unknown>) => (await postJson(`${s.url}/chat/completions/input_tokens`, { messages: msgs, ...body })).json.input_tokens as number;
    // a reply under "none" does not start as reasoning
    const r = await postJson(`${s.base}/chat/completions`, { messages: msgs, max_tokens: 4, reasoning_effort: 'none', logit_bias: THINK_FREELY });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.choices[0].message.reasoning_content, undefined);
    // bad values: a 400 naming the field
    const bad = await postJson(`${s.base}/chat/completions`, { messages: msgs, max_tokens: 1, reasoning_effort: 3 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'reasoning_effort');
    const str = await postJson(`${s.base}/chat/completions`, { messages: msgs, max_tokens: 1, chat_template_kwargs: { enable_thinking: 'false' } });
    assert.equal(str.status, 400);
    assert.equal(str.json.error.param, 'chat_template_kwargs.enable_thinking');
    // /v1/responses: reasoning.effort is echoed and reaches the template; a bad one names reasoning.effort
    const resp = await postJson(`${s.base}/responses`, { input: 'hi', max_output_tokens: 2, reasoning: { effort: 'low' }, store: false });
    assert.equal(resp.status, 200, JSON.stringify(resp.json));
    assert.equal(resp.json.reasoning.effort, 'low');
    assert.equal(resp.json.usage.input_tokens, await tokens({ reasoning_effort: 'low' }));
    assert.notEqual(await tokens({ reasoning_effort: 'low' }), await tokens({}));
    const badResp = await postJson(`${s.base}/responses`, { input: 'hi', max_output_tokens: 2, reasoning: { effort: 7 } });
    assert.equal(badResp.status, 400);
    assert.equal(badResp.json.error.param, 'reasoning.effort');
  } finally {
    await s.close();
  }
});

test('/v1/responses: a reasoning item in the input is the next assistant turn\'s reasoning_content; the stored conversation keeps it', async () => {
  const input = (items: unknown[]) => ({ input: [{ role: 'user', content: 'q' }, ...items, { role: 'user', content: 'more' }], max_output_tokens: 1, store: false });
  const answer = { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'A.' }] };
  const thought = { type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'think it over' }] };
  const without = await postJson(`${srv.base}/responses`, input([answer]));
  const withIt = await postJson(`${srv.base}/responses`, input([thought, answer]));
  assert.equal(withIt.status, 200, JSON.stringify(withIt.json));
  // the template shows it as <think>think it over</think>, as the chat form with reasoning_content
  const chat = await postJson(`${srv.url}/chat/completions/input_tokens`, {
    messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'A.', reasoning_content: 'think it over' }, { role: 'user', content: 'more' }],
  });
  assert.equal(withIt.json.usage.input_tokens, chat.json.input_tokens);
  assert.ok(withIt.json.usage.input_tokens > without.json.usage.input_tokens + 10);
  // an item with no readable text (another model's encrypted reasoning) adds nothing
  const opaque = await postJson(`${srv.base}/responses`, input([{ type: 'reasoning', id: 'rs_2', summary: [], encrypted_content: 'xyz' }, answer]));
  assert.equal(opaque.json.usage.input_tokens, without.json.usage.input_tokens);
  const bad = await postJson(`${srv.base}/responses`, input([{ type: 'reasoning', summary: [], content: 'text' }, answer]));
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'input[1].content');
  // a stored response's reasoning goes with it into the next turn
  const first = await forced(() => postJson(`${srv.base}/responses`, { input: 'is 2 < 3?', max_output_tokens: 60 }));
  assert.equal(first.status, 200);
  const next = await postJson(`${srv.base}/responses`, { previous_response_id: first.json.id, input: 'ok', max_output_tokens: 1, store: false });
  const replay = await postJson(`${srv.base}/responses`, {
    input: [{ role: 'user', content: 'is 2 < 3?' }, { type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'Count: 2 < 3.' }] }, { role: 'assistant', content: 'Yes.' }, { role: 'user', content: 'ok' }],
    max_output_tokens: 1,
    store: false,
  });
  assert.equal(next.json.usage.input_tokens, replay.json.usage.input_tokens);
});

test('/v1/messages: thinking.budget_tokens is the thinking budget; thinking and text blocks, streamed alike', async () => {
  const body = (budget: number) => ({ model: 'x', max_tokens: 60, messages: [{ role: 'user', content: 'hi' }], thinking: { type: 'enabled', budget_tokens: budget } });
  const r = await forced(() => postJson(`${opening.url}/v1/messages`, body(4)), opening, 'root ::= "done"');
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.deepEqual(r.json.content.map((b: any) => b.type), ['thinking', 'text']);
  assert.ok(r.json.content[0].thinking.length > 0);
  assert.equal(r.json.content[1].text, 'done');
  // 4 thinking tokens, </think> (8 byte tokens), "done" (4)
  assert.equal(r.json.usage.output_tokens, 4 + 8 + 4);
  const events = await forced(() => sse(`${opening.url}/v1/messages`, { ...body(4), stream: true }), opening, 'root ::= "done"');
  assert.equal(events.filter((e) => e.delta?.type === 'thinking_delta').map((e) => e.delta.thinking).join(''), r.json.content[0].thinking);
  assert.equal(events.filter((e) => e.delta?.type === 'text_delta').map((e) => e.delta.text).join(''), 'done');
  // budget 0: no thinking block
  const zero = await forced(() => postJson(`${opening.url}/v1/messages`, body(0)), opening, 'root ::= "done"');
  assert.deepEqual(zero.json.content, [{ type: 'text', text: 'done' }]);
});

test('/v1/messages: thinking "disabled" renders the template with thinking off; chat_template_kwargs pass through; a bad type is a 400', async () => {
  const body = (extra: Record<string, unknown>) => ({ model: 'x', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }], ...extra });
  const count = async (extra: Record<string, unknown>) => (await postJson(`${opening.url}/v1/messages/count_tokens`, body(extra))).json.input_tokens as number;
  const open = await count({});
  const closedBy = await postJson(`${opening.url}/chat/completions/input_tokens`, { messages: [{ role: 'user', content: 'hi' }], chat_template_kwargs: { enable_thinking: false } });
  assert.notEqual(closedBy.json.input_tokens, open);
  assert.equal(await count({ thinking: { type: 'disabled' } }), closedBy.json.input_tokens);
  assert.equal(await count({ chat_template_kwargs: { enable_thinking: false } }), closedBy.json.input_tokens);
  assert.equal(await count({ thinking: { type: 'enabled', budget_tokens: 100 } }), open);
  const bad = await postJson(`${opening.url}/v1/messages`, body({ thinking: { type: 'sometimes' } }));
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /thinking\.type/);
});
