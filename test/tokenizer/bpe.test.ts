// BPE merging and pre-tokenization on small vocabularies built from plain arrays, and the fast merge
// (heap, ids) against a naive string re-implementation of lowest-rank-first merging on the Llama-3 vocabulary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BYTE_TO_CHAR, CHAR_CODE_TO_BYTE } from '../../src/tokenizer/byte-level.js';
import { preTokenizerFor, splitPieces } from '../../src/tokenizer/pre-tokenize.js';
import { llama3Tokenizer, tinyTokenizer } from './helpers.js';

test('byte-level alphabet: 256 distinct printable characters, space is Ġ, newline is Ċ', () => {
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  assert.equal(BYTE_TO_CHAR[0x20], 'Ġ');
  assert.equal(BYTE_TO_CHAR[0x0a], 'Ċ');
  assert.equal(BYTE_TO_CHAR[0x41], 'A');
  for (let b = 0; b < 256; b++) assert.equal(CHAR_CODE_TO_BYTE[BYTE_TO_CHAR[b].charCodeAt(0)], b);
  const tok = tinyTokenizer(['ĠhiĊ'], []);
  assert.deepEqual([...tok.tokenToPiece(256)], [0x20, 0x68, 0x69, 0x0a]);
});

test('lowest rank merges first', () => {
  // "abc": with "b c" ranked first the result is a|bc, with "a b" first it is ab|c
  const v1 = tinyTokenizer(['bc', 'ab'], ['b c', 'a b']);
  assert.deepEqual(v1.encode('abc'), [97, 256]);
  const v2 = tinyTokenizer(['bc', 'ab'], ['a b', 'b c']);
  assert.deepEqual(v2.encode('abc'), [257, 99]);
});

test('equal ranks merge leftmost first', () => {
  const tok = tinyTokenizer(['aa'], ['a a']);
  assert.deepEqual(tok.encode('aaa'), [256, 97]);
  assert.deepEqual(tok.encode('aaaa'), [256, 256]);
  assert.deepEqual(tok.encode('aaaaa'), [256, 256, 97]);
});

test('merges build on merges; a merge whose result is not a token is skipped', () => {
  const tok = tinyTokenizer(['ab', 'abc', 'abcd'], ['a b', 'ab c', 'abc d', 'x y']);
  assert.equal(tok.skippedMerges, 1);
  assert.deepEqual(tok.encode('abcd'), [258]);
  assert.deepEqual(tok.encode('abcx'), [257, 120]);
  assert.deepEqual(tok.encode('xy'), [120, 121]);
});

test('the tiny model vocabulary (256 bytes + 5 merges), worked by hand', () => {
  // ids: byte b -> b; 256 Ġt, 257 he, 258 Ġthe, 259 in, 260 Ġa
  const tok = tinyTokenizer(['Ġt', 'he', 'Ġthe', 'in', 'Ġa'], ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a']);
  // " the" is a whole token (ignore_merges); " cat" has no merges; " in" merges i+n only; "hethe" merges both "he"
  assert.deepEqual(tok.encode(' the cat in a bin'), [258, 32, 99, 97, 116, 32, 259, 260, 32, 98, 259]);
  assert.deepEqual(tok.encode('hethe'), [257, 116, 257]);
  assert.deepEqual(tok.encode(' thin'), [256, 104, 259]);
  assert.equal(tok.decode(tok.encode(' the cat in a bin')), ' the cat in a bin');
});

test('ignore_merges (Llama-3) emits a whole-piece token even when merges would not reach it', () => {
  // "xyz" is a token but no merge builds it
  const llama = tinyTokenizer(['xyz'], []);
  assert.deepEqual(llama.encode('xyz'), [256]);
  const gpt2 = tinyTokenizer(['xyz'], [], { pre: 'gpt-2' });
  assert.deepEqual(gpt2.encode('xyz'), [120, 121, 122]);
});

test('Llama-3 pre-tokenizer pieces', () => {
  const pre = preTokenizerFor('llama-bpe');
  const cut = (s: string) => splitPieces(pre, s);
  assert.deepEqual(cut('Hello world'), ['Hello', ' world']);
  assert.deepEqual(cut('1234567'), ['123', '456', '7']);
  assert.deepEqual(cut("WE'VE it's"), ['WE', "'VE", ' it', "'s"]);
  assert.deepEqual(cut('a  b'), ['a', ' ', ' b']);
  assert.deepEqual(cut('x\n\n  y'), ['x', '\n\n', ' ', ' y']);
  assert.deepEqual(cut('(hello'), ['(hello']);
  assert.deepEqual(cut('end  '), ['end', '  ']);
  assert.deepEqual(cut('a\u0085b'), ['a', '\u0085b']); // NEL: white space to Oniguruma, not to JS \s
  assert.deepEqual(cut(''), []);
});

test('GPT-2 pre-tokenizer pieces', () => {
  const pre = preTokenizerFor('gpt-2');
  assert.equal(pre.name, 'gpt2');
  assert.deepEqual(splitPieces(pre, "Hello world's 1234567  x"), ['Hello', ' world', "'s", ' 1234567', ' ', ' x']);
  assert.deepEqual(splitPieces(pre, "IT'S"), ['IT', "'", 'S']);
  assert.deepEqual(splitPieces(pre, 'a ,b'), ['a', ' ,', 'b']);
});

// llama.cpp's `default` (what it uses for a missing or 'default' pre): punctuation runs, then GPT-2 inside
// the rest, then digit runs, then ASCII digit triples, each step keeping the text between its matches.
test("llama.cpp's default pre-tokenizer pieces differ from GPT-2's", () => {
  const pre = preTokenizerFor('default');
  assert.equal(pre.name, 'default');
  const cut = (s: string) => splitPieces(pre, s);
  assert.deepEqual(cut("Hello world's 1234567  x"), ['Hello', ' world', "'", 's', ' ', '123', '456', '7', ' ', ' x']);
  assert.deepEqual(cut('a ,b'), ['a', ' ', ',', 'b']);
  assert.deepEqual(cut('x 123'), ['x', ' ', '123']);
  assert.deepEqual(cut('f(x) = $5 + ~y|z'), ['f', '(', 'x', ')', ' ', '=', ' ', '$', '5', ' ', '+', ' ', '~', 'y', '|', 'z']);
  assert.deepEqual(cut('a`b'), ['a', '`', 'b']); // the backtick is neither \p{P} nor in the symbol list
  assert.deepEqual(cut('٣٤٥٦'), ['٣٤٥٦']); // non-ASCII digits are one \p{N} run, not split in threes
  for (const s of ['', 'plain', '  lead', 'x\n\ny', 'emoji 🍕!!', '1,234.5']) assert.equal(cut(s).join(''), s);
});

test('unknown pre-tokenizer names are refused', () => {
  assert.throws(() => preTokenizerFor('qwen2'), /unsupported tokenizer pre-tokenizer 'qwen2' \(tokenizer\.ggml\.pre\)/);
});

/** Naive lowest-rank-first BPE on strings (the textbook loop), with Llama-3's whole-piece rule. */
function naiveEncode(piece: string, rank: Map<string, number>, vocab: Map<string, number>): number[] {
  const bytes = new TextEncoder().encode(piece);
  const whole = Array.from(bytes, (b) => BYTE_TO_CHAR[b]).join('');
  if (vocab.has(whole)) return [vocab.get(whole)!];
  const sym = Array.from(bytes, (b) => BYTE_TO_CHAR[b]);
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < sym.length; i++) {
      const r = rank.get(sym[i] + ' ' + sym[i + 1]);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    sym.splice(best, 2, sym[best] + sym[best + 1]);
  }
  return sym.map((s) => vocab.get(s)!);
}

test('fast BPE equals naive BPE on random long pieces (Llama-3 vocabulary)', async () => {
  const tok = await llama3Tokenizer();
  const vocab = new Map<string, number>();
  for (let i = 0; i < 128000; i++) vocab.set(tok.tokenText(i), i);
  // rebuild the rank map from the vocabulary's merge order is not possible from the tokenizer; read the lines
  const { readGGUF } = await import('../../src/gguf/reader.js');
  const { oracleArrayBuffer } = await import('../helpers/oracle.js');
  const file = await readGGUF(oracleArrayBuffer('llama3-vocab.gguf'));
  const merges = file.get<string[]>('tokenizer.ggml.merges')!;
  const rank = new Map<string, number>();
  merges.forEach((m, i) => rank.set(m, i));

  // deterministic pseudo-random text: letters of several scripts (long \p{L}+ runs), digits, spaces, emoji
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const pool = [...'aeiouthnrslcdmwyzqxj', ...'ÄöüßéñçÀÉ', ...'東京天気日本語中文字', ...'абвгдежз', ...'ㄱ가나다', '😀', '🍕', ' ', ' ', '7', '.', '\n'];
  const pre = preTokenizerFor('llama-bpe');
  let pieces = 0;
  let longest = 0;
  for (let k = 0; k < 40; k++) {
    let s = '';
    const len = 20 + rnd(400);
    for (let i = 0; i < len; i++) s += pool[rnd(pool.length)];
    const expected: number[] = [];
    for (const p of splitPieces(pre, s)) {
      expected.push(...naiveEncode(p, rank, vocab));
      pieces++;
      longest = Math.max(longest, p.length);
    }
    assert.deepEqual(tok.encode(s, { addBos: false, parseSpecial: false }), expected, JSON.stringify(s));
  }
  assert.ok(longest > 30, 'some pieces are long enough to exercise the heap');
  assert.ok(pieces > 100);
});
