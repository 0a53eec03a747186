// Constrained decoding in the engine core: the bitmask helpers, the sampler and the token loop
// with a constraint, and the XGrammar engine on real vocabularies (Llama-3's byte-level BPE of
// 128256 tokens, and a SentencePiece vocabulary with byte fallback): every token is handed over as
// its exact bytes, control tokens are never allowed, and end-of-generation only where the grammar
// may end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowedTokens, applyTokenMask, maskAllows, type TokenConstraint } from '../../src/generate/constraint.js';
import { generateText } from '../../src/generate/generate.js';
import { Sampler } from '../../src/generate/sampler.js';
import { GrammarEngine, GrammarError, grammarVocabulary } from '../../src/generate/grammar.js';
import { readGGUF } from '../../src/gguf/reader.js';
import { Tokenizer, TokenType } from '../../src/tokenizer/tokenizer.js';
import { loadXGrammar } from '../../src/node/xgrammar.js';
import { oracleBytes } from '../helpers/oracle.js';
import { FakeModel, scripted } from './fake-model.js';

function maskOf(vocab: number, allowed: number[]): Int32Array {
  const m = new Int32Array(Math.ceil(vocab / 32));
  for (const id of allowed) m[id >> 5]! |= 1 << (id & 31);
  return m;
}

test('bitmask helpers: allowed ids, masking logits, ids past the mask are not allowed', () => {
  const m = maskOf(70, [0, 31, 32, 69]);
  assert.deepEqual(allowedTokens(m, 70), [0, 31, 32, 69]);
  assert.equal(maskAllows(m, 31), true);
  assert.equal(maskAllows(m, 30), false);
  assert.equal(maskAllows(m, 200), false);
  const logits = new Float32Array(100).fill(1);
  assert.equal(applyTokenMask(logits, m), 4);
  assert.deepEqual([...logits.keys()].filter((i) => logits[i] === 1), [0, 31, 32, 69]);
});

test('the sampler never draws a token the mask leaves out, greedy or not; nothing allowed is an error', () => {
  const logits = new Float32Array(64).map((_, i) => i); // the best token is 63
  const mask = maskOf(64, [3, 40]);
  assert.equal(new Sampler({ temperature: 0 }).sample(logits, [], mask), 40);
  const s = new Sampler({ temperature: 1.5, seed: 1 });
  for (let i = 0; i < 50; i++) assert.ok([3, 40].includes(s.sample(logits, [], mask)));
  // a ban by logit bias still holds under the mask
  assert.equal(new Sampler({ temperature: 0, logitBias: { 40: -100 } }).sample(logits, [], mask), 3);
  assert.throws(() => new Sampler({ temperature: 0 }).sample(logits, [], maskOf(64, [])), /constraint allows none here/);
});

test('generate: the constraint masks every draw and accepts every chosen token, the stop token too', async () => {
  // the model always prefers token 1 ('b'); the constraint allows "a", "a", then only EOS (3)
  const model = new FakeModel({ pieces: ['a', 'b', 'c', ''], contextLength: 32, logits: scripted(() => 1), eos: [3] });
  const plan = [[0], [0, 2], [3]];
  const accepted: number[] = [];
  const constraint: TokenConstraint = {
    mask: async () => maskOf(4, plan[accepted.length] ?? []),
    accept: (t) => {
      assert.ok(plan[accepted.length]!.includes(t), `token ${t} was not allowed`);
      accepted.push(t);
    },
  };
  const r = await generateText(model, [1], { sampler: { temperature: 0 }, constraint, maxTokens: 10 });
  assert.equal(r.text, 'aa');
  assert.equal(r.finishReason, 'stop');
  assert.deepEqual(accepted, [0, 0, 3]);
});

// ---- XGrammar on real vocabularies

const xg = loadXGrammar();
const llama3 = Tokenizer.fromGGUF(await readGGUF(oracleBytes('llama3-vocab.gguf').slice().buffer));
let engine3: GrammarEngine | undefined;
async function llama3Engine(): Promise<GrammarEngine> {
  engine3 ??= await GrammarEngine.create(xg, grammarVocabulary(llama3));
  return engine3;
}

test('Llama-3 vocabulary: a schema accepts its text token by token (split UTF-8 included); at the end only EOG', async () => {
  const engine = await llama3Engine();
  const schema = { type: 'object', properties: { name: { type: 'string' }, n: { type: 'integer' } }, required: ['name', 'n'] };
  const c = await (await engine.compile({ type: 'json_schema', schema })).start();
  const text = '{"name": "naïve 名前🦜ꙮ \\"q\\"", "n": -12}';
  const ids = llama3.encode(text, { addBos: false });
  // the encoding has a token that is not whole UTF-8 on its own (a split character)
  const dec = new TextDecoder('utf-8', { fatal: true });
  assert.ok(ids.some((id) => { try { dec.decode(llama3.tokenToPiece(id)); return false; } catch { return true; } }), 'the text splits a character');
  for (const id of ids) {
    const m = await c.mask();
    assert.ok(maskAllows(m, id), `token ${id} ${JSON.stringify(llama3.tokenText(id))} not allowed`);
    assert.ok(!maskAllows(m, llama3.bos!), 'BOS is never allowed');
    c.accept(id);
  }
  const end = allowedTokens(await c.mask(), llama3.vocabSize);
  assert.deepEqual(end, [...llama3.endOfGenerationIds].sort((a, b) => a - b));
  // a token the grammar does not allow is refused
  const c2 = await (await engine.compile({ type: 'json_schema', schema })).start();
  assert.throws(() => c2.accept(llama3.encode('x', { addBos: false })[0]!), /not allowed/);
  c.dispose?.();
  c2.dispose?.();
});

test('compile errors are GrammarErrors with XGrammar\'s reason; compiled grammars are cached', async () => {
  const engine = await llama3Engine();
  await assert.rejects(engine.compile({ type: 'json_schema', schema: { type: 'objekt' } }), (e: unknown) => e instanceof GrammarError && /Unsupported type "objekt"/.test(e.message));
  await assert.rejects(engine.compile({ type: 'gbnf', grammar: 'root ::= nothing' }), (e: unknown) => e instanceof GrammarError && /nothing/.test(e.message));
  await assert.rejects(engine.compile({ type: 'json_schema', schema: '{not json' }), /not valid JSON/);
  const first = await engine.compile({ type: 'gbnf', grammar: 'root ::= "ok"' });
  const again = await engine.compile({ type: 'gbnf', grammar: 'root ::= "ok"' });
  assert.equal(again.compileMs, 0);
  assert.ok(first.compileMs >= 0);
});

test('SentencePiece vocabulary with byte fallback: "▁" pieces are spaces, <0xXX> tokens are their byte', async () => {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
  }
  const pieces = ['▁b', '{', '}', 'b', '▁'];
  for (const p of pieces) {
    tokens.push(p);
    types.push(TokenType.NORMAL);
  }
  const spm = new Tokenizer({ model: 'llama', tokens, tokenTypes: types, scores: tokens.map(() => 0), bosId: 1, eosId: 2 });
  const id = (p: string) => tokens.indexOf(p);
  const engine = await GrammarEngine.create(xg, grammarVocabulary(spm));
  const c = await (await engine.compile({ type: 'gbnf', grammar: 'root ::= "{" " b" "é" "}"' })).start();
  const path = [id('{'), id('▁b'), id('<0xC3>'), id('<0xA9>'), id('}')];
  for (const t of path) {
    const m = await c.mask();
    assert.ok(maskAllows(m, t), `token ${tokens[t]} not allowed`);
    assert.ok(!maskAllows(m, id('b')) || t === id('b'));
    c.accept(t);
  }
  assert.deepEqual(allowedTokens(await c.mask(), tokens.length), [2]);
  engine.dispose();
});
