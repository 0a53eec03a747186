// The official 2B4T file's metadata quirks, end to end on a small model that has them
// (test/helpers/official-2b4t.ts): Llama-3 pre-tokenization without tokenizer.ggml.pre, the trained
// chat format instead of the placeholder template (checked against HF's template rendered by
// @huggingface/jinja), <|eot_id|> ending a turn, and the server's prompt_tokens.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Template } from '@huggingface/jinja';
import { loadModel } from '../../src/engine.js';
import { readGGUF } from '../../src/gguf/reader.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { chatTemplateFor, encodeChat, renderChat } from '../../src/tokenizer/chat-template.js';
import { HF_2B4T_TEMPLATE, PLACEHOLDER_TEMPLATE, official2b4tQuirksModel } from '../helpers/official-2b4t.js';
import { testKernels } from '../helpers/kernels.js';
import { tokenizerCases } from '../tokenizer/helpers.js';
import { postJson, startTestServer } from '../server/helpers.js';

const bytes = await official2b4tQuirksModel();
const lm = await loadModel(bytes, { kernels: await testKernels() });
const tok = lm.tokenizer;
after(() => lm.dispose());

const chat = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is 12 + 30? Answer briefly.' },
];

/** HF's rendering of the same conversation: the template string from HF, rendered by @huggingface/jinja. */
function hfRender(messages: { role: string; content: string }[]): string {
  return new Template(HF_2B4T_TEMPLATE).render({ messages, bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', add_generation_prompt: true });
}

test('the file has the quirks: no tokenizer.ggml.pre, arch bitnet-b1.58, the placeholder template, no eot id', async () => {
  const f = await readGGUF(bytes);
  assert.equal(f.get('tokenizer.ggml.pre'), undefined);
  assert.equal(f.get('tokenizer.ggml.eot_token_id'), undefined);
  assert.equal(f.architecture, 'bitnet-b1.58');
  assert.equal(f.get('tokenizer.chat_template'), PLACEHOLDER_TEMPLATE);
  assert.equal(tok.vocabSize, 128256);
});

test('a missing pre on the Llama-3 vocabulary means llama3: Llama-3 ids on every oracle case', () => {
  assert.equal(tok.preTokenizer, 'llama3');
  assert.match(tok.preTokenizerReason, /missing.*Llama-3/);
  for (const c of tokenizerCases().cases) {
    assert.deepEqual(tok.encode(c.text, { addBos: false }), c.ids_parse_special, JSON.stringify(c.text));
  }
});

test("llama.cpp's default set on the same vocabulary would get many cases wrong (the check above can fail)", async () => {
  const f = await readGGUF(bytes);
  const withDefault = Tokenizer.fromGGUF({ get: (k: string) => (k === 'tokenizer.ggml.pre' ? 'default' : f.get(k)) });
  assert.equal(withDefault.preTokenizer, 'default');
  const wrong = tokenizerCases().cases.filter((c) => JSON.stringify(withDefault.encode(c.text, { addBos: false })) !== JSON.stringify(c.ids_parse_special));
  assert.ok(wrong.length >= 5, `only ${wrong.length} cases differ`);
});

test('a missing pre on another vocabulary: llama3 for the bitnet-b1.58/bitnet-25 archs, else llama.cpp default', () => {
  const small = { tokens: ['a', 'b', 'ab'], merges: ['a b'] };
  assert.equal(new Tokenizer({ ...small, architecture: 'bitnet-b1.58' }).preTokenizer, 'llama3');
  assert.equal(new Tokenizer({ ...small, architecture: 'bitnet-25' }).preTokenizer, 'llama3');
  const other = new Tokenizer({ ...small, architecture: 'bitnet' });
  assert.equal(other.preTokenizer, 'default');
  assert.match(other.preTokenizerReason, /llama\.cpp's default/);
  assert.equal(new Tokenizer({ ...small, pre: 'gpt-2', architecture: 'bitnet-b1.58' }).preTokenizer, 'gpt2', 'a pre in the file wins');
});

test('the placeholder template is replaced by the trained format, token for token as HF renders it', () => {
  const choice = chatTemplateFor(tok);
  assert.equal(choice.origin, 'bitnet-2b4t');
  assert.match(choice.reason, /placeholder/);
  const text = renderChat(tok, chat);
  assert.equal(text, hfRender(chat));
  const ids = encodeChat(tok, chat);
  assert.deepEqual(ids, tok.encode(hfRender(chat), { addBos: false }));
  assert.equal(ids.filter((i) => i === 128009).length, 2, 'system and user turns end with <|eot_id|>');
  assert.ok(!ids.includes(128001), 'no <|end_of_text|> before the reply');
  // a user-only chat: <|begin_of_text|> "User" ":" " Hi" <|eot_id|> "Assistant" ":" " " (Llama-3 ids)
  assert.deepEqual(encodeChat(tok, [{ role: 'user', content: 'Hi' }]), [128000, 1502, 25, 21694, 128009, 72803, 25, 220]);
  // the placeholder itself would drop the system message and end on eos
  const placeholder = encodeChat(tok, chat, { template: PLACEHOLDER_TEMPLATE });
  assert.equal(placeholder.at(-1), 128001);
  assert.ok(placeholder.length < ids.length);
});

test('--chat-template still wins over the file (placeholder or not)', () => {
  const chatml = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}";
  const choice = chatTemplateFor(tok, chatml);
  assert.equal(choice.origin, 'override');
  assert.equal(renderChat(tok, chat, { template: chatml }), '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 12 + 30? Answer briefly.<|im_end|>\n');
});

test('<|eot_id|> ends a turn although the file names only eos 128001', () => {
  assert.equal(tok.eos, 128001);
  assert.ok(tok.isEndOfGeneration(128009));
  assert.ok(tok.isEndOfGeneration(128001));
  assert.ok(!tok.isEndOfGeneration(128000));
});

test('server: usage.prompt_tokens of a chat request equals the HF-format prompt', async () => {
  const srv = await startTestServer(lm, { ctxSize: 256 });
  try {
    assert.equal(srv.service.info().chat_template, 'bitnet-2b4t');
    assert.match(srv.service.info().chat_template_reason, /placeholder/);
    const r = await postJson(`${srv.base}/chat/completions`, { messages: chat, max_tokens: 1, temperature: 0 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const expected = tok.encode(hfRender(chat), { addBos: false }).length;
    assert.equal(r.json.usage.prompt_tokens, expected);
  } finally {
    await srv.close();
  }
});
