// llama.cpp's `default` pre-tokenizer (what it uses for tokenizer.ggml.pre = "default" or a missing
// pre) on the Llama-3 vocabulary. The reference ids were made with the llama.cpp of the oracle pack
// (commit 80fb11a): llama3-vocab.gguf with tokenizer.ggml.pre set to "default", loaded vocab-only by
// libllama, llama_tokenize(vocab, text, add_special = false, parse_special = true). On the oracle's 104
// tokenizer cases plus these 10 strings, WrinkleFree's ids equaled libllama's on all 114.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF } from '../../src/gguf/reader.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { oracleArrayBuffer } from '../helpers/oracle.js';
import { llama3Tokenizer } from './helpers.js';

const LLAMA_CPP_DEFAULT: [string, number[]][] = [
  ["Hello world's 1234567  x", [9906, 1917, 6, 82, 220, 4513, 10961, 22, 220, 865]],
  ['a ,b', [64, 220, 11, 65]],
  ['x 123', [87, 220, 4513]],
  ['f(x) = $5 + ~y|z', [69, 7, 87, 8, 220, 28, 220, 3, 20, 220, 10, 220, 93, 88, 91, 89]],
  ['a`b', [64, 63, 65]],
  ['٣٤٥٦', [117413, 124079, 124043, 149, 99]],
  ['1,234.5', [16, 11, 11727, 13, 20]],
  ["I'm here -- ok?? (yes) [no] {maybe}", [40, 6, 76, 1618, 220, 313, 5509, 7801, 220, 7, 9891, 8, 220, 58, 2201, 60, 220, 90, 37860, 92]],
  ['price: $1,000,000.00!', [6692, 25, 220, 3, 16, 11, 931, 11, 931, 13, 410, 0]],
  ['x\t\ty  \n\n z', [87, 197, 197, 88, 19124, 1167]],
];

async function withPre(pre: string): Promise<Tokenizer> {
  const f = await readGGUF(oracleArrayBuffer('llama3-vocab.gguf'));
  return Tokenizer.fromGGUF({ get: (k: string) => (k === 'tokenizer.ggml.pre' ? pre : f.get(k)) });
}

test("pre 'default' gives llama.cpp's default-set ids, not GPT-2's nor Llama-3's", async () => {
  const def = await withPre('default');
  const gpt2 = await withPre('gpt-2');
  const llama3 = await llama3Tokenizer();
  assert.equal(def.preTokenizer, 'default');
  let notGpt2 = 0;
  let notLlama3 = 0;
  for (const [text, ids] of LLAMA_CPP_DEFAULT) {
    assert.deepEqual(def.encode(text, { addBos: false }), ids, JSON.stringify(text));
    if (JSON.stringify(gpt2.encode(text, { addBos: false })) !== JSON.stringify(ids)) notGpt2++;
    if (JSON.stringify(llama3.encode(text, { addBos: false })) !== JSON.stringify(ids)) notLlama3++;
  }
  assert.ok(notGpt2 >= 5, `GPT-2 differs on ${notGpt2} strings`);
  assert.ok(notLlama3 >= 5, `Llama-3 differs on ${notLlama3} strings`);
});
