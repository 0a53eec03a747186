// SentencePiece BPE (GGUF tokenizer.ggml.model = llama) as llama.cpp runs it, on small vocabularies
// worked by hand, and the fast merge loop against a naive re-implementation on random input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer, TokenType } from '../../src/tokenizer/tokenizer.js';

const hex = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/** LLaMA-style layout: 0 <unk>, 1 <s>, 2 </s>, 3..258 byte tokens, then `pieces` (text, score). */
function spm(pieces: [string, number][], extra: { addSpacePrefix?: boolean; addBos?: boolean } = {}): Tokenizer {
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => hex(b)), ...pieces.map((p) => p[0])];
  const types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, ...new Array(256).fill(TokenType.BYTE), ...pieces.map(() => TokenType.NORMAL)];
  const scores = [0, 0, 0, ...new Array(256).fill(0), ...pieces.map((p) => p[1])];
  return new Tokenizer({ model: 'llama', tokens, tokenTypes: types, scores, bosId: 1, eosId: 2, ...extra });
}

// ids from 259: single characters first (low score), then merges with falling scores
const PIECES: [string, number][] = [
  ['▁', -100], ['h', -100], ['e', -100], ['l', -100], ['o', -100], ['w', -100], ['r', -100], ['d', -100], ['a', -100],
  ['ll', -1], ['he', -2], ['llo', -3], ['hello', -4], ['▁hello', -5], ['or', -6], ['▁w', -7], ['ld', -8], ['▁wor', -9], ['▁world', -10],
  ['aa', -11],
];
const id = (text: string) => 259 + PIECES.findIndex((p) => p[0] === text);

test('highest score merges first; spaces become ▁ with a prefix', () => {
  const tok = spm(PIECES);
  assert.equal(tok.model, 'llama');
  // ▁hello▁world: ll, he, llo, hello, ▁hello, or, ▁w, ld, ▁wor, ▁world (worked through by hand)
  assert.deepEqual(tok.encode('hello world', { addBos: false }), [id('▁hello'), id('▁world')]);
  assert.deepEqual(tok.encode('hello world'), [1, id('▁hello'), id('▁world')], 'add_bos defaults to true');
  assert.equal(tok.addBosDefault, true);
  const noPrefix = spm(PIECES, { addSpacePrefix: false });
  assert.deepEqual(noPrefix.encode('hello world', { addBos: false }), [id('hello'), id('▁world')]);
});

test('equal scores merge leftmost first', () => {
  const tok = spm(PIECES, { addSpacePrefix: false });
  assert.deepEqual(tok.encode('aaa', { addBos: false }), [id('aa'), id('a')]);
  assert.deepEqual(tok.encode('aaaaa', { addBos: false }), [id('aa'), id('aa'), id('a')]);
});

test('characters without a token fall back to byte tokens; newlines are bytes', () => {
  const tok = spm(PIECES);
  assert.deepEqual(tok.encode('hé', { addBos: false }), [id('▁'), id('h'), 3 + 0xc3, 3 + 0xa9]);
  assert.deepEqual(tok.encode('a\nd', { addBos: false }), [id('▁'), id('a'), 3 + 0x0a, id('d')]);
  assert.deepEqual(tok.encode('😀', { addBos: false }), [id('▁'), 3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x80]);
});

test('special tokens: parsed, and the text after one gets the space prefix again', () => {
  const tok = spm(PIECES);
  assert.deepEqual(tok.encode('hello<s>hello', { addBos: false }), [id('▁hello'), 1, id('▁hello')]);
  assert.deepEqual(tok.encode('<unk>', { addBos: false }), [0]);
  assert.deepEqual(tok.encode('<s>h', { addBos: false, parseSpecial: false }), [id('▁'), 3 + 0x3c, 3 + 0x73, 3 + 0x3e, id('h')]);
});

test('decode: byte tokens are bytes, ▁ is a space, the prefix space is dropped', () => {
  const tok = spm(PIECES);
  for (const text of ['hello world', 'hé 😀\nworld', '  two leading spaces', 'aaa']) {
    assert.equal(tok.decode(tok.encode(text)), '<s>' + ' ' + text, 'BOS kept: the space after it stays');
    assert.equal(tok.decode(tok.encode(text), { skipSpecial: true }), text);
    assert.equal(tok.decode(tok.encode(text, { addBos: false })), text);
  }
  assert.deepEqual([...tok.tokenToPiece(id('▁hello'))], [...new TextEncoder().encode(' hello')]);
  assert.deepEqual([...tok.tokenToPiece(3 + 0xc3)], [0xc3]);
  assert.equal(tok.decode([0]), '▅', 'the unknown token reads as llama.cpp prints it');
  assert.ok(tok.isEndOfGeneration(2));
});

test('a vocabulary without byte tokens cannot fall back', () => {
  const tok = new Tokenizer({ model: 'llama', tokens: ['<unk>', '▁', 'a'], tokenTypes: [2, 1, 1], scores: [0, 0, 0] });
  assert.deepEqual(tok.encode('a a', { addBos: false }), [1, 2, 1, 2]);
  assert.throws(() => tok.encode('b', { addBos: false }), /no byte token <0x62> for byte fallback/);
});

/** Naive SentencePiece BPE: repeatedly merge the adjacent pair forming the best-scored token (leftmost on ties). */
function naive(text: string, vocab: Map<string, number>, scores: number[]): string[] {
  const sym = [...text];
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < sym.length; i++) {
      const t = vocab.get(sym[i] + sym[i + 1]);
      if (t !== undefined && scores[t] > bestScore) {
        bestScore = scores[t];
        best = i;
      }
    }
    if (best < 0) return sym;
    sym.splice(best, 2, sym[best] + sym[best + 1]);
  }
}

test('fast merging equals naive merging on random text and vocabularies (ties included)', () => {
  let seed = 99;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const alphabet = ['▁', 'a', 'b', 'c', 'd'];
  for (let round = 0; round < 20; round++) {
    const set = new Set<string>(alphabet);
    while (set.size < 60) {
      let s = '';
      const len = 2 + rnd(4);
      for (let i = 0; i < len; i++) s += alphabet[rnd(alphabet.length)];
      set.add(s);
    }
    const pieces: [string, number][] = [...set].map((t) => [t, t.length === 1 ? -1000 : -rnd(8)]); // few distinct scores: many ties
    const tok = spm(pieces, { addSpacePrefix: false });
    const vocab = new Map(pieces.map((p, i) => [p[0], 259 + i]));
    const scores = [0, 0, 0, ...new Array(256).fill(0), ...pieces.map((p) => p[1])];
    let text = '';
    const len = 50 + rnd(300);
    for (let i = 0; i < len; i++) text += 'abcd '[rnd(5)];
    const expected = naive(text.replaceAll(' ', '▁'), vocab, scores).map((s) => vocab.get(s)!);
    assert.deepEqual(tok.encode(text, { addBos: false }), expected, `round ${round}`);
  }
});
