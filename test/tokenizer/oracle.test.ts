// The Llama-3 tokenizer against llama.cpp's ids (oracle tokenizer-cases.json, 104 strings): every case,
// with special tokens parsed and as plain text, no BOS; and decode(encode(x)) == x.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { llama3Tokenizer, tokenizerCases } from './helpers.js';

test('Llama-3 vocabulary metadata is read from the GGUF', async () => {
  const tok = await llama3Tokenizer();
  assert.equal(tok.vocabSize, 128256);
  assert.equal(tok.bos, 128000);
  assert.equal(tok.eos, 128001);
  assert.equal(tok.eot, 128009);
  assert.equal(tok.addBosDefault, true);
  assert.equal(tok.preTokenizer, 'llama3');
  assert.equal(tok.skippedMerges, 0);
  assert.equal(tok.specialTokens.size, 256);
  assert.equal(tok.specialTokens.get('<|eot_id|>'), 128009);
  assert.equal(tok.tokenText(128000), '<|begin_of_text|>');
  assert.ok(tok.isEndOfGeneration(128001) && tok.isEndOfGeneration(128009));
  assert.ok(!tok.isEndOfGeneration(128000) && !tok.isEndOfGeneration(13));
});

test('ids equal llama.cpp on every oracle case (parse_special true)', async () => {
  const tok = await llama3Tokenizer();
  const { add_bos, cases } = tokenizerCases();
  assert.equal(add_bos, false);
  assert.ok(cases.length >= 100);
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.text, { addBos: false }), c.ids_parse_special, JSON.stringify(c.text));
  }
});

test('ids equal llama.cpp on every oracle case (parse_special false)', async () => {
  const tok = await llama3Tokenizer();
  const { cases } = tokenizerCases();
  let differing = 0;
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.text, { addBos: false, parseSpecial: false }), c.ids_no_parse_special, JSON.stringify(c.text));
    if (JSON.stringify(c.ids_no_parse_special) !== JSON.stringify(c.ids_parse_special)) differing++;
  }
  assert.ok(differing > 0, 'some cases contain special-token strings');
});

test('decode(encode(x)) == x on every oracle case, both modes', async () => {
  const tok = await llama3Tokenizer();
  for (const c of tokenizerCases().cases) {
    assert.equal(tok.decode(tok.encode(c.text, { addBos: false })), c.text);
    assert.equal(tok.decode(tok.encode(c.text, { addBos: false, parseSpecial: false })), c.text);
    assert.equal(tok.decode(c.ids_parse_special), c.text, 'decoding the oracle ids');
  }
});

test('BOS: added by default (add_bos_token true), not when asked not to', async () => {
  const tok = await llama3Tokenizer();
  assert.deepEqual(tok.encode('hello'), [128000, 15339]);
  assert.deepEqual(tok.encode('hello', { addBos: false }), [15339]);
  assert.deepEqual(tok.encode('', { addBos: false }), []);
  assert.deepEqual(tok.encode(''), [128000]);
  assert.deepEqual(tok.encode('hi', { addBos: false, addEos: true }), [6151, 128001]);
});

test('decode: skipSpecial drops control tokens; a leading BOM survives', async () => {
  const tok = await llama3Tokenizer();
  const ids = tok.encode('<|start_header_id|>user<|end_header_id|>hi<|eot_id|>');
  assert.equal(tok.decode(ids), '<|begin_of_text|><|start_header_id|>user<|end_header_id|>hi<|eot_id|>');
  assert.equal(tok.decode(ids, { skipSpecial: true }), 'userhi');
  assert.equal(tok.decode(tok.encode('\uFEFFx', { addBos: false })), '\uFEFFx');
});

test('tokenToPiece gives raw bytes; a token may hold part of a UTF-8 character', async () => {
  const tok = await llama3Tokenizer();
  assert.deepEqual([...tok.tokenToPiece(15339)], [...new TextEncoder().encode('hello')]);
  assert.deepEqual([...tok.tokenToPiece(220)], [0x20]);
  assert.deepEqual([...tok.tokenToPiece(128009)], [...new TextEncoder().encode('<|eot_id|>')]);
  // the pizza emoji (F0 9F 8D 95) is split over tokens here: some token ends inside the character
  const ids = tok.encode('🍕', { addBos: false });
  const pieces = ids.map((i) => [...tok.tokenToPiece(i)]);
  assert.deepEqual(pieces.flat(), [0xf0, 0x9f, 0x8d, 0x95]);
  assert.ok(ids.length > 1);
});
