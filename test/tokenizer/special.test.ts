// Special-token splitting on a vocabulary with 128k reserved (control) tokens, like the synthetic
// 2B4T-shaped models: the leftmost match wins, at one position the longest, and the first encode is
// as quick as the later ones (a RegExp alternation of every special string took seconds to compile on
// its first use, which the server's first request paid).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { byteLevelTokenizer } from '../../src/model/synthetic.js';

test('a vocabulary of 128k special tokens: first encode is fast, matches are leftmost-longest', () => {
  const spec = byteLevelTokenizer(128256);
  const tok = new Tokenizer({ model: 'gpt2', pre: spec.pre ?? undefined, tokens: spec.tokens, tokenTypes: spec.tokenTypes, merges: spec.merges,
    bosId: spec.bos, eosId: spec.eos, addBos: false });
  const t0 = performance.now();
  const ids = tok.encode('hi <|reserved_12345|><|reserved_1234|> <|eot_id|>x<|reserved_1');
  const ms = performance.now() - t0;
  assert.ok(ms < 1500, `first encode took ${ms.toFixed(0)} ms`);
  const id = (s: string) => spec.tokens.indexOf(s);
  // the longest special string at a position wins (<|reserved_12345|>, not a shorter prefix of it);
  // an unfinished one is plain text
  assert.ok(ids.includes(id('<|reserved_12345|>')) && ids.includes(id('<|reserved_1234|>')) && ids.includes(spec.eot!));
  assert.equal(tok.decode(ids), 'hi <|reserved_12345|><|reserved_1234|> <|eot_id|>x<|reserved_1');
  assert.equal(ids.filter((x) => x >= spec.bos).length, 3);
});
