// Streaming detokenization: ids fed one at a time never yield half a UTF-8 character.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamDecoder } from '../../src/tokenizer/stream-decoder.js';
import { llama3Tokenizer, tinyTokenizer, tokenizerCases } from './helpers.js';

/** True when s has no unpaired surrogate (i.e. is whole characters). */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

test('emoji split over several tokens come out whole, only once complete', async () => {
  const tok = await llama3Tokenizer();
  const text = '😀😀😀 I love pizza 🍕!';
  const ids = tok.encode(text, { addBos: false });
  // 😀 is F0 9F 98 | 80 and " 🍕" is 20 F0 9F | 8D | 95 in Llama-3's tokens
  assert.equal(ids.length, 13);
  const dec = new StreamDecoder(tok);
  const chunks = ids.map((id) => dec.push(id));
  assert.deepEqual(chunks, ['', '😀', '', '😀', '', '😀', ' I', ' love', ' pizza', ' ', '', '🍕', '!']);
  assert.equal(dec.flush(), '');
});

test('CJK characters split across tokens come out whole', async () => {
  const tok = await llama3Tokenizer();
  for (const text of ['盧', '龘', '𠀀', 'ab 齉鬱 cd']) {
    const ids = tok.encode(text, { addBos: false });
    const dec = new StreamDecoder(tok);
    const chunks = ids.map((id) => dec.push(id));
    chunks.push(dec.flush());
    assert.equal(chunks.join(''), text);
    assert.ok(chunks.includes(''), `${text}: some token ends inside a character`);
    for (const c of chunks) assert.ok(wellFormed(c) && !c.includes('\uFFFD'), JSON.stringify(c));
  }
});

test('every oracle case streams to the same text as decode', async () => {
  const tok = await llama3Tokenizer();
  const dec = new StreamDecoder(tok);
  for (const c of tokenizerCases().cases) {
    let out = '';
    for (const id of c.ids_parse_special) {
      const piece = dec.push(id);
      assert.ok(wellFormed(piece) && !piece.includes('\uFFFD'), JSON.stringify(c.text));
      out += piece;
    }
    out += dec.flush();
    assert.equal(out, c.text);
  }
});

test('bytes of one character fed one token at a time (tiny byte vocabulary)', () => {
  const tok = tinyTokenizer([], []); // byte b has id b
  const dec = new StreamDecoder(tok);
  const bytes = [...new TextEncoder().encode('a東😀b')];
  const out = bytes.map((b) => dec.push(b));
  assert.deepEqual(out, ['a', '', '', '東', '', '', '', '😀', 'b']);
  assert.equal(dec.flush(), '');
});

test('invalid or unfinished bytes become U+FFFD instead of being held forever', () => {
  const tok = tinyTokenizer([], []);
  const dec = new StreamDecoder(tok);
  assert.equal(dec.push(0xf0), '');
  assert.equal(dec.push(0x9f), '');
  assert.equal(dec.push(0x41), '\uFFFDA'); // 'A' cannot continue the sequence
  assert.equal(dec.push(0xe6), '');
  assert.equal(dec.flush(), '\uFFFD'); // stream ended inside a character
  assert.equal(dec.push(0x62), 'b'); // flush started a fresh stream
  assert.equal(dec.push(0xff), '\uFFFD');
});

test('skipSpecial leaves control tokens out; reset drops held bytes', async () => {
  const tok = await llama3Tokenizer();
  const ids = tok.encode('Hi<|eot_id|>');
  const plain = new StreamDecoder(tok);
  assert.equal(plain.pushAll(ids) + plain.flush(), '<|begin_of_text|>Hi<|eot_id|>');
  const skip = new StreamDecoder(tok, { skipSpecial: true });
  assert.equal(skip.pushAll(ids) + skip.flush(), 'Hi');
  const tiny = new StreamDecoder(tinyTokenizer([], []));
  tiny.push(0xe6);
  tiny.reset();
  assert.equal(tiny.push(0x61), 'a');
});
