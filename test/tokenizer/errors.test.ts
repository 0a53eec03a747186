// Bad tokenizer input gives clear errors: missing GGUF keys, unsupported models and pre-tokenizers,
// inconsistent arrays, out-of-range ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF } from '../../src/gguf/reader.js';
import { serializeGGUF } from '../../src/gguf/writer.js';
import { metaArray, metaBool, metaString, metaU32 } from '../../src/gguf/meta.js';
import { GGUFValueType } from '../../src/gguf/types.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { byteVocab, tinyTokenizer } from './helpers.js';

/** Metadata lookup over a plain object (what fromGGUF needs of a GGUFFile). */
function meta(entries: Record<string, unknown>) {
  return { get: (k: string) => entries[k] };
}

const good = {
  'tokenizer.ggml.model': 'gpt2',
  'tokenizer.ggml.pre': 'llama-bpe',
  'tokenizer.ggml.tokens': byteVocab(['<|bos|>']),
  'tokenizer.ggml.token_type': [...new Array(256).fill(1), 3],
  'tokenizer.ggml.merges': [] as string[],
  'tokenizer.ggml.bos_token_id': 256,
};

test('a GGUF file without tokenizer keys: "model file has no tokenizer"', async () => {
  const bytes = serializeGGUF({ metadata: [['general.architecture', metaString('bitnet')]], tensors: [] });
  const file = await readGGUF(bytes);
  assert.throws(() => Tokenizer.fromGGUF(file), /^Error: model file has no tokenizer: tokenizer\.ggml\.tokens missing$/);
});

test('a GGUF file written with a tokenizer loads through the reader', async () => {
  const bytes = serializeGGUF({
    metadata: [
      ['general.architecture', metaString('bitnet')],
      ['tokenizer.ggml.model', metaString('gpt2')],
      ['tokenizer.ggml.pre', metaString('llama-bpe')],
      ['tokenizer.ggml.tokens', metaArray(GGUFValueType.STRING, byteVocab(['hi', '<|end|>']))],
      ['tokenizer.ggml.token_type', metaArray(GGUFValueType.INT32, [...new Array(257).fill(1), 3])],
      ['tokenizer.ggml.merges', metaArray(GGUFValueType.STRING, ['h i'])],
      ['tokenizer.ggml.eos_token_id', metaU32(257)],
      ['tokenizer.ggml.add_bos_token', metaBool(false)],
    ],
    tensors: [],
  });
  const tok = Tokenizer.fromGGUF(await readGGUF(bytes));
  assert.deepEqual(tok.encode('hi<|end|>'), [256, 257]);
  assert.equal(tok.bos, undefined);
  assert.ok(tok.isEndOfGeneration(257));
  assert.throws(() => tok.encode('x', { addBos: true }), /cannot add BOS: the vocabulary has no bos token id/);
});

test('missing or malformed keys', () => {
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.model': undefined })), /model file has no tokenizer: tokenizer\.ggml\.model missing/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.merges': undefined })), /tokenizer is incomplete: tokenizer\.ggml\.merges missing \(needed by gpt2 tokenizers\)/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.model': 'llama' })), /tokenizer is incomplete: tokenizer\.ggml\.scores missing \(needed by llama tokenizers\)/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.scores': [1, 2] })), /scores has 2 entries but there are 257 tokens/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.tokens': 'abc' })), /tokenizer\.ggml\.tokens is not an array/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.token_type': [1, 1] })), /token_type has 2 entries but there are 257 tokens/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.bos_token_id': 999 })), /bos token id = 999 is outside the vocabulary \(size 257\)/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.add_bos_token': 'yes' })), /tokenizer\.ggml\.add_bos_token is not a boolean/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.tokens': [] })), /empty vocabulary/);
  // an id of -1 (written by some converters for "none") means absent
  assert.equal(Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.bos_token_id': 0xffffffff })).bos, undefined);
  assert.equal(Tokenizer.fromGGUF(meta(good)).bos, 256);
});

test('unsupported tokenizer models and pre-tokenizers name themselves', () => {
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.model': 'bert' })), /tokenizer model 'bert' \(tokenizer\.ggml\.model\) is not supported; supported: 'gpt2'.*'llama'/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.model': 'rwkv' })), /tokenizer model 'rwkv'/);
  assert.throws(() => Tokenizer.fromGGUF(meta({ ...good, 'tokenizer.ggml.pre': 'qwen2' })), /unsupported tokenizer pre-tokenizer 'qwen2'/);
  assert.throws(() => new Tokenizer({ model: 'bert', tokens: ['a'], merges: [] }), /tokenizer model 'bert' is not supported/);
  assert.throws(() => new Tokenizer({ model: 'llama', tokens: ['a'] }), /a llama \(SentencePiece\) tokenizer needs scores/);
});

test('a vocabulary lacking a byte token cannot encode that byte', () => {
  const tokens = byteVocab();
  tokens[0x7a] = '<|z-less|>'; // no token for "z"
  const tok = new Tokenizer({ tokens, merges: [] });
  assert.deepEqual(tok.encode('ab'), [97, 98]);
  assert.throws(() => tok.encode('z'), /the vocabulary has no token for byte 0x7a/);
});

test('out-of-range ids are refused', () => {
  const tok = tinyTokenizer([], []);
  assert.throws(() => tok.decode([256]), /token id 256 is outside the vocabulary \(0\.\.255\)/);
  assert.throws(() => tok.decode([-1]), RangeError);
  assert.throws(() => tok.decode([1.5]), RangeError);
  assert.throws(() => tok.tokenToPiece(300), RangeError);
  assert.throws(() => tok.encode(42 as never), /encode expects a string/);
});
