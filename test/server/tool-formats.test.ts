// Tool formats from the chat template: detection, the prompt rendered with `tools` and the history
// shaped for the template, the grammar a reply is held to (checked on strings with XGrammar), and
// the reply reader (streamed, split anywhere, giving what the whole-reply parser gives).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectToolFormat, templateReads, TOOL_FORMATS, type ToolFormat } from '../../src/server/tool-formats.js';
import { parseChatRequest } from '../../src/server/requests.js';
import type { ToolsRequest, ToolStreamEvent } from '../../src/server/tool-calls.js';
import { NAMED_TEMPLATES } from '../../src/server/chat-templates.js';
import { BITNET_2B4T_TEMPLATE, renderChat } from '../../src/tokenizer/chat-template.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { byteLevelTokenizer } from '../../src/model/synthetic.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { structuralTagText } from '../../src/generate/grammar.js';
import { HERMES_TOOLS_TEMPLATE, LLAMA31_TOOLS_TEMPLATE, OTHER_TOOLS_TEMPLATE } from '../helpers/tool-templates.js';

test('detection: templates that read the variable tools, by family; others generic', () => {
  assert.equal(detectToolFormat(LLAMA31_TOOLS_TEMPLATE).name, 'llama3-json');
  assert.equal(detectToolFormat(HERMES_TOOLS_TEMPLATE).name, 'hermes');
  assert.equal(detectToolFormat(OTHER_TOOLS_TEMPLATE).name, 'template-generic');
  assert.equal(detectToolFormat(BITNET_2B4T_TEMPLATE).name, 'generic');
  for (const t of Object.values(NAMED_TEMPLATES)) assert.equal(detectToolFormat(t).name, 'generic');
  // the word in text, a member named tools, or a template that does not parse: not a tools variable
  assert.equal(templateReads("{{ 'tools' }}{{ message.tools }}{% for m in messages %}{{ m['content'] }}{% endfor %}", 'tools'), false);
  assert.equal(detectToolFormat('<tool_call>{{ message.tools }}').name, 'generic');
  assert.equal(detectToolFormat('{% if tools %}<tool_call>').name, 'generic');
  assert.equal(templateReads('{% for t in tools %}{{ t.function.name }}{% endfor %}', 'tools'), true);
  assert.equal(templateReads('{{ x if tools is defined else y }}', 'tools'), true);
  // XML calls in <tool_call> (Qwen3-Coder style) are not Hermes: the generic envelope in the template
  assert.equal(detectToolFormat('{% if tools %}<tool_call>\n<function=f>{% endif %}').name, 'template-generic');
});

const TOK = Tokenizer.fromGGUF({
  get: (k: string) => {
    const t = byteLevelTokenizer(264);
    const m: Record<string, unknown> = {
      'tokenizer.ggml.model': 'gpt2',
      'tokenizer.ggml.pre': t.pre,
      'tokenizer.ggml.tokens': t.tokens,
      'tokenizer.ggml.token_type': t.tokenTypes,
      'tokenizer.ggml.merges': t.merges,
      'tokenizer.ggml.bos_token_id': t.bos,
      'tokenizer.ggml.eos_token_id': t.eos,
      'tokenizer.ggml.eot_token_id': t.eot,
      'tokenizer.ggml.add_bos_token': true,
    };
    return m[k];
  },
} as never);

const TOOLS = [
  {
    type: 'function',
    function: { name: 'get_weather', description: 'Current weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  },
];
const HISTORY = [
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_a', content: '{"temp": 21}' },
];

function rendered(template: string, format: ToolFormat, body: Record<string, unknown>): string {
  const req = parseChatRequest({ messages: HISTORY, tools: TOOLS, ...body }, 264, format);
  return renderChat(TOK, req.messages, { template, variables: req.templateVariables });
}

test('Llama 3.1 template: the tools through the template, the earlier call as its JSON, the result in an ipython turn', () => {
  const text = rendered(LLAMA31_TOOLS_TEMPLATE, detectToolFormat(LLAMA31_TOOLS_TEMPLATE), {});
  assert.ok(text.includes('{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": {"type": "object"'), text);
  assert.ok(text.includes('<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>'), text);
  assert.ok(text.includes('<|start_header_id|>ipython<|end_header_id|>\n\n{"temp": 21}<|eot_id|>'), text);
  assert.ok(!text.includes('tool_calls'), 'no generic envelope and no system description');
  assert.ok(text.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n'));
  // tool_choice none: no tools for the template
  assert.ok(!rendered(LLAMA31_TOOLS_TEMPLATE, detectToolFormat(LLAMA31_TOOLS_TEMPLATE), { tool_choice: 'none' }).includes('You can call these functions'));
});

test('Hermes template: tools in <tools>, the earlier call in <tool_call>, the result in <tool_response>', () => {
  const text = rendered(HERMES_TOOLS_TEMPLATE, detectToolFormat(HERMES_TOOLS_TEMPLATE), {});
  assert.ok(text.includes('<tools>\n{"type": "function", "function": {"name": "get_weather"'), text);
  assert.ok(text.includes('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'), text);
  assert.ok(text.includes('<tool_response>\n{"temp": 21}\n</tool_response>'), text);
});

test('unrecognised tool template: tools through the template, the envelope described in the system prompt', () => {
  const text = rendered(OTHER_TOOLS_TEMPLATE, detectToolFormat(OTHER_TOOLS_TEMPLATE), {});
  assert.match(text, /^Functions: \[\{"type": "function"/);
  assert.match(text, /\{"tool_calls": \[/);
  assert.ok(!text.includes('get_weather(city: string'), 'the tools are not listed twice');
  // the generic path (template without tools): listed in the system prompt, earlier calls as envelopes
  const generic = rendered(BITNET_2B4T_TEMPLATE, TOOL_FORMATS.generic, {});
  assert.ok(generic.includes('get_weather(city: string'), generic);
  assert.ok(generic.includes('{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}'));
  // 2B4T's template renders no tool turns: the result comes as a user turn the model can read
  assert.ok(generic.includes('User: {"tool_response":{"name":"get_weather","content":"{\\"temp\\": 21}"}}<|eot_id|>'), generic);
});

const REQ: ToolsRequest = {
  tools: [
    { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } },
    { name: 'get_time', parameters: { type: 'object', properties: {}, additionalProperties: false } },
  ],
  choice: 'auto',
  parallel: true,
};

test('grammars: what each format and tool_choice accept', async () => {
  const xg = loadXGrammar() as any;
  const accepts = async (f: ToolFormat, req: ToolsRequest, s: string) => {
    const spec = f.grammar(req);
    assert.equal(spec.type, 'structural_tag');
    if (spec.type !== 'structural_tag') return false;
    const g = await xg.Grammar.fromStructuralTag(await structuralTagText(xg, spec.format));
    try {
      return await xg.Testings.isGrammarAcceptString(g, s);
    } finally {
      g.dispose();
    }
  };
  const L = TOOL_FORMATS['llama3-json'];
  const H = TOOL_FORMATS.hermes;
  const lcall = '{"name": "get_weather", "parameters": {"city": "P"}}';
  // whitespace in the arguments is bounded (compact JSON only)
  assert.equal(await accepts(L, REQ, '{"name": "get_weather", "parameters": {"city":   "P"}}'), false);
  assert.equal(await accepts(L, REQ, lcall), true);
  assert.equal(await accepts(L, REQ, 'Hello'), true);
  assert.equal(await accepts(L, REQ, '{"x": 1}'), false);
  assert.equal(await accepts(L, { ...REQ, choice: 'required' }, 'Hello'), false);
  assert.equal(await accepts(L, { ...REQ, choice: { name: 'get_time' } }, lcall), false);
  assert.equal(await accepts(L, { ...REQ, choice: { name: 'get_time' } }, '{"name": "get_time", "parameters": {}}'), true);
  const hcall = (n: string, a: string) => `<tool_call>\n{"name": "${n}", "arguments": ${a}}\n</tool_call>`;
  const two = hcall('get_weather', '{"city": "P"}') + '\n' + hcall('get_time', '{}');
  assert.equal(await accepts(H, REQ, 'Let me look. ' + two), true);
  assert.equal(await accepts(H, REQ, 'Just text'), true);
  assert.equal(await accepts(H, { ...REQ, choice: 'required' }, two), true);
  assert.equal(await accepts(H, { ...REQ, choice: 'required' }, 'Just text'), false);
  assert.equal(await accepts(H, { ...REQ, choice: 'required', parallel: false }, two), false);
  assert.equal(await accepts(H, { ...REQ, choice: 'required', parallel: false }, hcall('get_time', '{}')), true);
  assert.equal(await accepts(H, { ...REQ, choice: { name: 'get_weather' } }, hcall('get_time', '{}')), false);
});

function streamed(f: ToolFormat, text: string, size: number) {
  const r = f.reader();
  const events: ToolStreamEvent[] = [];
  for (let i = 0; i < text.length; i += size) events.push(...r.push(text.slice(i, i + size)));
  events.push(...r.finish());
  const calls: [string, string][] = [];
  let content = '';
  for (const e of events) {
    if (e.kind === 'call') {
      assert.equal(e.index, calls.length);
      assert.match(e.id, /^call_/);
      calls.push([e.name, '']);
    } else if (e.kind === 'arguments') calls[e.index]![1] += e.text;
    else content += e.text;
  }
  return { calls, content };
}

test('Hermes reader: text then several calls, split anywhere; the whole-reply parser agrees', () => {
  const H = TOOL_FORMATS.hermes;
  const text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "P}a\\"ris <tool_call>"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';
  for (const size of [1, 2, 3, 5, 1000]) {
    const r = streamed(H, text, size);
    assert.deepEqual(r.calls, [['get_weather', '{"city": "P}a\\"ris <tool_call>"}'], ['get_time', '{}']], `size ${size}`);
    assert.equal(r.content, 'Let me check.', `size ${size}`);
  }
  const whole = H.parse(text);
  assert.equal(whole.kind, 'calls');
  if (whole.kind !== 'calls') return;
  assert.equal(whole.content, 'Let me check.');
  assert.deepEqual(whole.calls.map((c) => [c.function.name, c.function.arguments]), [['get_weather', '{"city":"P}a\\"ris <tool_call>"}'], ['get_time', '{}']]);
  // a text reply is the text as written (a '<' that starts no call included); a call cut short
  // keeps its arguments as far as they were written, as the stream shows them (not valid JSON)
  for (const size of [1, 4]) assert.equal(streamed(H, ' a <b> <tool \n', size).content, ' a <b> <tool \n');
  assert.deepEqual(H.parse('plain <tool_ text'), { kind: 'text', content: 'plain <tool_ text' });
  const cut = '<tool_call>\n{"name": "get_weather", "arguments": {"ci';
  const c = H.parse(cut);
  assert.equal(c.kind, 'calls');
  if (c.kind === 'calls') assert.deepEqual(c.calls.map((x) => [x.function.name, x.function.arguments]), [['get_weather', '{"ci']]);
  assert.deepEqual(streamed(H, cut, 3).calls, [['get_weather', '{"ci']]);
});

test('Llama 3 reader: a call is the whole reply (a <|python_tag|> before it skipped); other replies are text', () => {
  const L = TOOL_FORMATS['llama3-json'];
  const call = '{"name": "get_weather", "parameters": {"city": "Paris", "n": [1, {"x": 2}]}}';
  for (const size of [1, 2, 7, 1000]) {
    assert.deepEqual(streamed(L, call, size).calls, [['get_weather', '{"city": "Paris", "n": [1, {"x": 2}]}']], `size ${size}`);
    assert.deepEqual(streamed(L, '<|python_tag|>' + call, size).calls, [['get_weather', '{"city": "Paris", "n": [1, {"x": 2}]}']]);
    assert.equal(streamed(L, 'It is {sunny} "today"', size).content, 'It is {sunny} "today"');
  }
  const r = L.parse(call);
  assert.ok(r.kind === 'calls' && r.calls.length === 1 && r.calls[0]!.function.arguments === '{"city":"Paris","n":[1,{"x":2}]}');
  assert.deepEqual(L.parse('{"name": "get_wea'), { kind: 'text', content: '{"name": "get_wea' });
  assert.deepEqual(L.parse('Hi'), { kind: 'text', content: 'Hi' });
  // as in the grammar, a reply that does not start with '{' is text, even if a call follows
  assert.deepEqual(L.parse(' ' + call), { kind: 'text', content: ' ' + call });
});
