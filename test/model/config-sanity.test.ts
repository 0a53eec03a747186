// Model sanity at load (issue 18, finding 10): a value that would load and then fail every request
// (NaN logits, a 500) is a load error naming its key: epsilon, rope base, context length, block and FFN
// sizes, rope dimensions, and a vocabulary of empty or identical tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF, type GGUFFile } from '../../src/gguf/reader.js';
import { modelConfigFromGGUF } from '../../src/model/config.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { tinyModelBytes } from '../server/helpers.js';

const file = await readGGUF(tinyModelBytes());
const arch = file.architecture!;

/** The tiny model's file with some metadata values replaced. */
function withMeta(over: Record<string, unknown>): GGUFFile {
  const f = Object.create(file) as GGUFFile;
  f.get = (<T>(k: string) => (k in over ? over[k] : file.get(k))) as GGUFFile['get'];
  return f;
}

test('the tiny model passes', () => {
  assert.ok(modelConfigFromGGUF(file).rmsEps > 0);
});

test('bad hyperparameters are load errors that name the key', () => {
  const bad: [string, unknown, RegExp][] = [
    ['attention.layer_norm_rms_epsilon', 0, /layer_norm_rms_epsilon' must be between 0 and 1/],
    ['attention.layer_norm_rms_epsilon', -1e-5, /layer_norm_rms_epsilon/],
    ['rope.freq_base', 0, /rope\.freq_base' must be positive/],
    ['rope.freq_base', -10000, /rope\.freq_base/],
    ['context_length', 0, /context_length' must be a positive integer/],
    ['context_length', 1.5, /context_length/],
    ['block_count', 0, /block_count/],
    ['feed_forward_length', -1, /feed_forward_length/],
    ['rope.dimension_count', 0, /rope\.dimension_count/],
    ['rope.freq_base', Infinity, /rope\.freq_base' must be a number/],
  ];
  for (const [key, value, re] of bad) {
    assert.throws(() => modelConfigFromGGUF(withMeta({ [`${arch}.${key}`]: value })), (e: Error) => re.test(e.message) && e.message.includes(`${arch}.${key}`), `${key} = ${value}`);
  }
});

test('a vocabulary of empty strings or of one repeated string is a load error naming tokenizer.ggml.tokens', () => {
  const n = file.get<string[]>('tokenizer.ggml.tokens')!.length;
  assert.throws(() => Tokenizer.fromGGUF(withMeta({ 'tokenizer.ggml.tokens': new Array(n).fill('') })), /tokenizer\.ggml\.tokens: all \d+ tokens are empty/);
  assert.throws(() => Tokenizer.fromGGUF(withMeta({ 'tokenizer.ggml.tokens': new Array(n).fill('a') })), /tokenizer\.ggml\.tokens: all \d+ non-empty tokens are the same/);
});
