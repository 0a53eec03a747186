// Control tokens in server replies: a generated control token (here BOS 261, which is not an
// end-of-generation token) adds nothing to `content` or streamed deltas unless the server runs with
// --special, yet it counts in usage and appears in logprobs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startTestServer, tinyModel, EOS, EOT } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const BOS = 261;
// every sampled token is BOS (a control token); end-of-generation banned so max_tokens is reached
const forceBos = { temperature: 0, logit_bias: { [String(BOS)]: 100, [String(EOS)]: -100, [String(EOT)]: -100 } };
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hi' }];

async function ask(special: boolean) {
  const srv = await startTestServer(lm, { special });
  const client = new OpenAI({ baseURL: srv.base, apiKey: 'sk-test', maxRetries: 0, timeout: 20000 });
  try {
    const whole = await client.chat.completions.create({ model: 'tiny-test', messages, max_tokens: 3, logprobs: true, ...forceBos });
    const stream = await client.chat.completions.create({ model: 'tiny-test', messages, max_tokens: 3, stream: true, ...forceBos });
    let deltas = '';
    for await (const chunk of stream) deltas += chunk.choices[0]?.delta?.content ?? '';
    const completion = await client.completions.create({ model: 'tiny-test', prompt: 'hi', max_tokens: 2, ...forceBos });
    return { whole, deltas, completion };
  } finally {
    await srv.close();
  }
}

test('without --special: no control-token text in content, deltas or completions; usage and logprobs keep them', async () => {
  const { whole, deltas, completion } = await ask(false);
  const choice = whole.choices[0]!;
  assert.equal(choice.message.content, '');
  assert.equal(whole.usage?.completion_tokens, 3);
  assert.deepEqual(choice.logprobs?.content?.map((l) => l.token), ['<|begin_of_text|>', '<|begin_of_text|>', '<|begin_of_text|>']);
  assert.equal(deltas, '');
  assert.equal(completion.choices[0]!.text, '');
  assert.equal(completion.usage?.completion_tokens, 2);
});

test('with --special: control tokens are rendered as their text', async () => {
  const { whole, deltas, completion } = await ask(true);
  assert.equal(whole.choices[0]!.message.content, '<|begin_of_text|>'.repeat(3));
  assert.equal(deltas, '<|begin_of_text|>'.repeat(3));
  assert.equal(completion.choices[0]!.text, '<|begin_of_text|>'.repeat(2));
});
