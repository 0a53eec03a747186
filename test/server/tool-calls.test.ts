// The tool-call envelope: its schema, the reply parser, and the streaming reader (which must give
// the same calls and text as the whole-reply parser, however the text is split into tokens).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envelopeSchema, parseToolReply, ToolReplyStream, type ToolsRequest, type ToolStreamEvent } from '../../src/server/tool-calls.js';

const TOOLS: ToolsRequest = {
  tools: [
    { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    { name: 'get_time', parameters: { type: 'object' } },
  ],
  choice: 'auto',
  parallel: true,
};

test('envelope schema: auto allows text or calls, named allows one tool, parallel false one call', () => {
  const auto = envelopeSchema(TOOLS) as { anyOf: unknown[] };
  assert.equal(auto.anyOf.length, 2);
  const named = envelopeSchema({ ...TOOLS, choice: { name: 'get_time' }, parallel: false }) as any;
  assert.deepEqual(named.required, ['tool_calls']);
  assert.equal(named.properties.tool_calls.maxItems, 1);
  assert.deepEqual(named.properties.tool_calls.items.properties.name, { const: 'get_time' });
});

test('parseToolReply: calls get ids and JSON-text arguments; text replies; broken envelopes are text', () => {
  const r = parseToolReply('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]}');
  assert.equal(r.kind, 'calls');
  if (r.kind !== 'calls') return;
  assert.deepEqual(r.calls.map((c) => [c.function.name, c.function.arguments]), [['get_weather', '{"city":"Paris"}'], ['get_time', '{}']]);
  assert.notEqual(r.calls[0]!.id, r.calls[1]!.id);
  assert.deepEqual(parseToolReply('{"response": "hi \\"you\\""}'), { kind: 'text', content: 'hi "you"' });
  // cut before a call's name was complete: the text as written
  assert.deepEqual(parseToolReply('{"tool_calls": [{"na'), { kind: 'text', content: '{"tool_calls": [{"na' });
  // cut inside a call: the calls begun, the last one's arguments as far as written (as streamed)
  const cut = parseToolReply('{"tool_calls": [{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {"city": "Pa');
  assert.equal(cut.kind, 'calls');
  if (cut.kind === 'calls') assert.deepEqual(cut.calls.map((c) => [c.function.name, c.function.arguments]), [['get_time', '{}'], ['get_weather', '{"city": "Pa']]);
  // cut inside a text reply: the text so far
  assert.deepEqual(parseToolReply('{"response": "hello wor'), { kind: 'text', content: 'hello wor' });
});

/** Feeds `text` in pieces of `size` characters; returns the events merged per call and the text. */
function streamed(text: string, size: number) {
  const s = new ToolReplyStream();
  const events: ToolStreamEvent[] = [];
  for (let i = 0; i < text.length; i += size) events.push(...s.push(text.slice(i, i + size)));
  events.push(...s.finish());
  const calls: { name: string; args: string; id: string }[] = [];
  let content = '';
  for (const e of events) {
    if (e.kind === 'call') {
      assert.equal(e.index, calls.length);
      calls.push({ name: e.name, args: '', id: e.id });
    } else if (e.kind === 'arguments') calls[e.index]!.args += e.text;
    else content += e.text;
  }
  return { calls, content, events };
}

test('ToolReplyStream: calls and arguments as they are written, split anywhere', () => {
  const text = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "P}a\\"ris", "n": [1, {"x": 2}]}}, {"name": "get_time", "arguments": {}}]}';
  for (const size of [1, 2, 3, 7, 1000]) {
    const r = streamed(text, size);
    assert.deepEqual(r.calls.map((c) => [c.name, c.args]), [['get_weather', '{"city": "P}a\\"ris", "n": [1, {"x": 2}]}'], ['get_time', '{}']], `size ${size}`);
    assert.equal(r.content, '');
    assert.match(r.calls[0]!.id, /^call_/);
  }
  // arguments come out in several deltas when the text arrives in pieces
  assert.ok(streamed(text, 2).events.filter((e) => e.kind === 'arguments' && e.index === 0).length > 5);
});

test('ToolReplyStream: a text reply is decoded as it streams (escapes split across pieces too)', () => {
  const text = '{"response": "line\\nnext \\"q\\" \\u00e9 end"}';
  for (const size of [1, 2, 5, 100]) assert.equal(streamed(text, size).content, 'line\nnext "q" é end', `size ${size}`);
  // cut before the kind showed: the raw text
  assert.equal(streamed('{"tool', 2).content, '{"tool');
});
