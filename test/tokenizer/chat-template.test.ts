// Chat prompts: the Llama-3 template stored in llama3-vocab.gguf, the BitNet 2B4T fallback, overrides,
// no doubled BOS, and template errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF } from '../../src/gguf/reader.js';
import { BITNET_2B4T_TEMPLATE, chatTemplateFor, encodeChat, encodePrompt, renderChat } from '../../src/tokenizer/chat-template.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { Template } from '@huggingface/jinja';
import { HF_2B4T_TEMPLATE } from '../helpers/official-2b4t.js';
import { oracleArrayBuffer } from '../helpers/oracle.js';
import { llama3Tokenizer } from './helpers.js';

const chat = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: ' Hi there! ' },
];

/** The Llama-3 vocabulary without its chat template (as a 2B4T file without tokenizer.chat_template). */
async function llama3WithoutTemplate(): Promise<Tokenizer> {
  const file = await readGGUF(oracleArrayBuffer('llama3-vocab.gguf'));
  return Tokenizer.fromGGUF({ get: (k: string) => (k === 'tokenizer.chat_template' ? undefined : file.get(k)) });
}

test('the Llama-3 template from the GGUF renders the header/eot format', async () => {
  const tok = await llama3Tokenizer();
  assert.equal(chatTemplateFor(tok).origin, 'file');
  const text = renderChat(tok, chat);
  assert.equal(
    text,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  );
});

test('encodeChat: the template writes BOS, so exactly one BOS', async () => {
  const tok = await llama3Tokenizer();
  const ids = encodeChat(tok, chat);
  assert.equal(ids[0], 128000);
  assert.equal(ids.filter((i) => i === 128000).length, 1);
  assert.deepEqual(ids.slice(0, 4), [128000, 128006, 9125, 128007]); // <|begin_of_text|><|start_header_id|>system<|end_header_id|>
  assert.equal(ids.filter((i) => i === 128009).length, 2);
  // a prompt without BOS text gets the tokenizer's BOS (add_bos_token true)
  assert.deepEqual(encodePrompt(tok, 'hello'), [128000, 15339]);
  assert.deepEqual(encodePrompt(tok, '<|begin_of_text|>hello'), [128000, 15339]);
  assert.deepEqual(encodePrompt(tok, 'hello', false), [15339]);
});

test('without a template in the file: the BitNet 2B4T format, with a warning', async () => {
  const tok = await llama3WithoutTemplate();
  const choice = chatTemplateFor(tok);
  assert.equal(choice.origin, 'bitnet-2b4t');
  assert.match(choice.reason, /no tokenizer\.chat_template/);
  assert.match(choice.warning ?? '', /no chat template.*--chat-template/);
  assert.equal(chatTemplateFor(await llama3Tokenizer()).warning, undefined);
  const turns = [...chat, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'Bye' }];
  // contents are not trimmed (HF's template does not trim)
  assert.equal(
    renderChat(tok, turns),
    '<|begin_of_text|>System: Be brief.<|eot_id|>User:  Hi there! <|eot_id|>Assistant: Hello.<|eot_id|>User: Bye<|eot_id|>Assistant: ',
  );
  assert.equal(renderChat(tok, chat, { addGenerationPrompt: false }), '<|begin_of_text|>System: Be brief.<|eot_id|>User:  Hi there! <|eot_id|>');
  // roles HF's template does not name render nothing
  assert.equal(renderChat(tok, [{ role: 'tool', content: 'x' }, { role: 'user', content: 'y' }]), '<|begin_of_text|>User: y<|eot_id|>Assistant: ');
  const ids = encodeChat(tok, [{ role: 'user', content: 'Hi' }]);
  // <|begin_of_text|> "User" ":" " Hi" <|eot_id|> "Assistant" ":" " "
  assert.deepEqual(ids, [128000, 1502, 25, 21694, 128009, 72803, 25, 220]);
});

test('an override template wins over the file', async () => {
  const tok = await llama3Tokenizer();
  const template = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}>{% endif %}";
  assert.equal(renderChat(tok, chat, { template }), '<|begin_of_text|>[system]Be brief.<|end_of_text|>[user] Hi there! <|end_of_text|>>');
  assert.equal(renderChat(tok, chat, { template, addGenerationPrompt: false }), '<|begin_of_text|>[system]Be brief.<|end_of_text|>[user] Hi there! <|end_of_text|>');
  assert.equal(renderChat(tok, [{ role: 'user', content: 'x' }], { template: BITNET_2B4T_TEMPLATE }), '<|begin_of_text|>User: x<|eot_id|>Assistant: ');
  assert.equal(renderChat(tok, [], { template: '{{ greeting }}', variables: { greeting: 'hey' } }), 'hey');
});

test('template errors are clear errors', async () => {
  const tok = await llama3Tokenizer();
  assert.throws(() => renderChat(tok, chat, { template: '{% for x in %}' }), /chat template does not parse/);
  assert.throws(() => renderChat(tok, chat, { template: "{{ raise_exception('roles must alternate') }}" }), /chat template failed to render: roles must alternate/);
  assert.throws(() => renderChat(tok, 'hi' as never), /messages must be an array/);
  assert.throws(() => renderChat(tok, [{ content: 'x' }] as never), /message 0 must be an object with a string role/);
});

test("the built-in 2B4T template renders as HF's template does, conversation by conversation", async () => {
  const tok = await llama3WithoutTemplate();
  const hf = new Template(HF_2B4T_TEMPLATE);
  const conversations = [
    [{ role: 'user', content: 'Hi' }],
    chat,
    [...chat, { role: 'assistant', content: ' Hello. ' }, { role: 'user', content: '' }],
    [{ role: 'assistant', content: 'I start.' }, { role: 'user', content: 'ok\n\nfine' }],
    [{ role: 'system', content: 'S' }, { role: 'tool', content: 'T' }, { role: 'developer', content: 'D' }, { role: 'user', content: 'U' }],
    [],
  ];
  for (const messages of conversations) {
    for (const add of [true, false]) {
      const want = hf.render({ messages, bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', add_generation_prompt: add });
      assert.equal(renderChat(tok, messages, { addGenerationPrompt: add }), want, JSON.stringify(messages));
    }
  }
});
