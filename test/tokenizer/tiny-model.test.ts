// The tokenizer stored in the oracle's tiny model files (256 byte tokens, 5 merges, 27 control tokens).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGGUF } from '../../src/gguf/reader.js';
import { Tokenizer, TokenType } from '../../src/tokenizer/tokenizer.js';
import { ORACLE_MODELS, oracleArrayBuffer, oracleJson } from '../helpers/oracle.js';

async function tiny(name: string = 'bitnet-tiny-silu-f32'): Promise<Tokenizer> {
  return Tokenizer.fromGGUF(await readGGUF(oracleArrayBuffer(`${name}.gguf`)));
}

test('tiny model tokenizer: vocabulary, special tokens, no BOS by default', async () => {
  const tok = await tiny();
  assert.equal(tok.vocabSize, 288);
  assert.equal(tok.bos, 261);
  assert.equal(tok.eos, 262);
  assert.equal(tok.addBosDefault, false);
  assert.equal(tok.skippedMerges, 0);
  assert.equal(tok.specialTokens.size, 27);
  assert.equal(tok.tokenType(261), TokenType.CONTROL);
  assert.equal(tok.tokenType(260), TokenType.NORMAL);
  assert.ok(tok.isEndOfGeneration(262));
  assert.ok(!tok.isEndOfGeneration(261));
});

test('tiny model tokenizer: encode by the 5 merges, control tokens parsed', async () => {
  const tok = await tiny();
  // byte b has id b; 256 Ġt, 257 he, 258 Ġthe, 259 in, 260 Ġa
  assert.deepEqual(tok.encode('in the hat'), [259, 258, 32, 104, 97, 116]);
  assert.deepEqual(tok.encode('<|begin_of_text|> a<|reserved_270|>'), [261, 260, 270]);
  // as plain text: 17 bytes, one "in" merge (in "begin")
  assert.equal(tok.encode('<|begin_of_text|>', { parseSpecial: false }).length, 16);
  assert.deepEqual(tok.encode('x', { addBos: true }), [261, 120]);
});

test('tiny model tokenizer: the oracle prompts decode, and their text round-trips', async () => {
  const tok = await tiny();
  const ref = oracleJson<{ prompts: { tokens: number[] }[] }>('bitnet-tiny-silu-f32.json');
  for (const p of ref.prompts) {
    const text = tok.decode(p.tokens);
    assert.ok(text.startsWith('<|begin_of_text|>'));
    // the prompts are arbitrary ids (bytes need not be valid UTF-8, BPE may pick other ids),
    // but the decoded text must survive encode -> decode
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.equal(tok.bytesOf(p.tokens).length, p.tokens.reduce((n, id) => n + tok.tokenToPiece(id).length, 0));
  }
});

test('every tiny model file carries the same tokenizer', async () => {
  const ref = await tiny();
  const sample = ' the in a <|end_of_text|> ünïcödé 🍕';
  for (const name of ORACLE_MODELS) {
    const tok = await tiny(name);
    assert.equal(tok.vocabSize, 288, name);
    assert.deepEqual(tok.encode(sample), ref.encode(sample), name);
  }
});
