// Earlier reasoning in a conversation's history reaches the chat template as `reasoning_content`:
// an OpenAI-style assistant message's own field, and Anthropic thinking blocks (as llama-server maps
// them); a template that shows it renders it, and the token counts include it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { postJson, startTestServer, tinyModel } from './helpers.js';
import { reasoningForTemplate } from '../../src/server/reasoning-history.js';

// a template that shows earlier reasoning in <think> tags, as Qwen 3's does
const TEMPLATE =
  "{% for m in messages %}{{ m.role }}: {% if m.reasoning_content %}<think>{{ m.reasoning_content }}</think>{% endif %}{{ m.content }}\n{% endfor %}" +
  "{% if add_generation_prompt %}assistant: {% endif %}";
const lm = await tinyModel({ contextLength: 2048 });
const srv = await startTestServer(lm, { ctxSize: 2048, chatTemplate: TEMPLATE });
after(() => srv.close());

test('/apply-template: an assistant message\'s reasoning_content is rendered by a template that shows it', async () => {
  const r = await postJson(`${srv.url}/apply-template`, {
    messages: [
      { role: 'user', content: 'fix the bug' },
      { role: 'assistant', content: 'done', reasoning_content: 'look at main first' },
      { role: 'user', content: 'thanks' },
    ],
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.ok(r.json.prompt.includes('assistant: <think>look at main first</think>done\n'), r.json.prompt);
  // not a string: a 400 naming the field
  const bad = await postJson(`${srv.url}/apply-template`, { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', reasoning_content: 42 }] });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'messages[1].reasoning_content');
});

test('/v1/messages: thinking blocks become the assistant turn\'s reasoning_content; they count in count_tokens', async () => {
  const turn = (blocks: unknown[]) => ({
    model: 'x',
    max_tokens: 4,
    messages: [
      { role: 'user', content: 'fix the bug' },
      { role: 'assistant', content: blocks },
      { role: 'user', content: 'go on' },
    ],
  });
  const text = { type: 'text', text: 'I will.' };
  const without = await postJson(`${srv.url}/v1/messages/count_tokens`, turn([text]));
  const withThinking = await postJson(`${srv.url}/v1/messages/count_tokens`, turn([
    { type: 'thinking', thinking: 'check the layout ', signature: 'sig' },
    { type: 'thinking', thinking: 'then main.py', signature: 'sig' },
    text,
  ]));
  assert.equal(without.status, 200, JSON.stringify(without.json));
  assert.equal(withThinking.status, 200, JSON.stringify(withThinking.json));
  assert.ok(withThinking.json.input_tokens > without.json.input_tokens + 'check the layout then main.py'.length / 2);
  // the same count as the OpenAI form with the thoughts joined as one reasoning_content
  const openai = await postJson(`${srv.url}/chat/completions/input_tokens`, {
    messages: [
      { role: 'user', content: 'fix the bug' },
      { role: 'assistant', content: 'I will.', reasoning_content: 'check the layout then main.py' },
      { role: 'user', content: 'go on' },
    ],
  });
  assert.equal(openai.status, 200, JSON.stringify(openai.json));
  assert.equal(withThinking.json.input_tokens, openai.json.input_tokens);
  // redacted thinking carries nothing a template could show
  const redacted = await postJson(`${srv.url}/v1/messages/count_tokens`, turn([{ type: 'redacted_thinking', data: 'opaque' }, text]));
  assert.equal(redacted.json.input_tokens, without.json.input_tokens);
  // a thinking block alone still makes the assistant turn
  const only = await postJson(`${srv.url}/v1/messages/count_tokens`, turn([{ type: 'thinking', thinking: 'hmm' }]));
  assert.equal(only.status, 200);
  assert.ok(only.json.input_tokens > 0);
});

test('/v1/messages: thinking in a user turn, or not a string, is a 400 naming the block', async () => {
  const userThinking = await postJson(`${srv.url}/v1/messages`, { model: 'x', max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'thinking', thinking: 'no' }] }] });
  assert.equal(userThinking.status, 400);
  assert.match(userThinking.json.error.message, /messages\[0\]\.content\[0\]/);
  const notText = await postJson(`${srv.url}/v1/messages`, {
    model: 'x',
    max_tokens: 1,
    messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [{ type: 'thinking', thinking: 7 }] }, { role: 'user', content: 'b' }],
  });
  assert.equal(notText.status, 400);
  assert.match(notText.json.error.message, /messages\[1\]\.content\[0\]\.thinking/);
});

test('a template that reads message.thinking (gpt-oss\'s way) gets the reasoning there too; others get the messages as they are', async () => {
  const THINKING = "{% for message in messages %}{{ message.role }}: {% if message.thinking %}[{{ message.thinking }}]{% endif %}{{ message.content }}\n{% endfor %}";
  const s = await startTestServer(lm, { ctxSize: 1024, chatTemplate: THINKING });
  try {
    const r = await postJson(`${s.url}/apply-template`, {
      messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a', reasoning_content: 'because' }, { role: 'user', content: 'more' }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(r.json.prompt.includes('assistant: [because]a\n'), r.json.prompt);
  } finally {
    await s.close();
  }
  const msgs = [{ role: 'assistant', content: 'a', reasoning_content: 'r' }];
  assert.equal(reasoningForTemplate(msgs, TEMPLATE), msgs);
  assert.deepEqual(reasoningForTemplate(msgs, '{{ message.thinking }}'), [{ ...msgs[0], thinking: 'r' }]);
});
