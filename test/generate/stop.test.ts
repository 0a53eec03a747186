import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finishReasonOf, StopStringMatcher, StopTokens } from '../../src/generate/stop.js';
import { Xoshiro128 } from '../../src/generate/rng.js';

/** Pushes chunks; returns every shown piece, the stop (if any) and the flushed tail. */
function run(stops: string[], chunks: string[]): { shown: string[]; stop: string | null; tail: string } {
  const m = new StopStringMatcher(stops);
  const shown: string[] = [];
  for (const c of chunks) {
    const r = m.push(c);
    shown.push(r.text);
    if (r.stop !== null) return { shown, stop: r.stop, tail: '' };
  }
  return { shown, stop: null, tail: m.flush() };
}

test('a stop string split across chunks is cut and no part of it is ever shown', () => {
  const r = run(['STOP'], ['Hel', 'lo S', 'T', 'OP and more']);
  assert.deepEqual(r.shown, ['Hel', 'lo ', '', '']);
  assert.equal(r.stop, 'STOP');
  // A false start is released as soon as it stops matching.
  const f = run(['STOP'], ['a ST', 'AR', ' b']);
  assert.deepEqual(f.shown, ['a ', 'STAR', ' b']);
  assert.equal(f.stop, null);
  // Held text at the end comes back through flush().
  const h = run(['STOP'], ['abc S', 'TO']);
  assert.deepEqual(h.shown, ['abc ', '']);
  assert.equal(h.tail, 'STO');
});

test('overlapping prefixes and several stop strings', () => {
  // "aab" inside "aaab": the first "a" is safe once three a's are seen.
  assert.deepEqual(run(['aab'], ['a', 'a', 'a', 'b']), { shown: ['', '', 'a', ''], stop: 'aab', tail: '' });
  // Earliest END wins ("bc" completes before "abcd"), as if the text came one character at a time.
  assert.deepEqual(run(['abcd', 'bc'], ['xabcd']), { shown: ['xa'], stop: 'bc', tail: '' });
  // Same end: the longest (earliest start) wins.
  assert.deepEqual(run(['cd', 'bcd'], ['abcd']), { shown: ['a'], stop: 'bcd', tail: '' });
  // No stop strings: everything passes straight through.
  assert.deepEqual(run([], ['S', 'TOP']), { shown: ['S', 'TOP'], stop: null, tail: '' });
  // Multi-code-unit characters in the stop string.
  assert.deepEqual(run(['😀!'], ['ok 😀', '!x']), { shown: ['ok ', ''], stop: '😀!', tail: '' });
});

test('matches a character-at-a-time reference on random text and random chunking', () => {
  const rng = new Xoshiro128(17);
  const alphabet = 'ab c';
  const stopsPool = ['ab', 'b c', 'ca', 'aaa', 'c c c', 'bb'];
  for (let trial = 0; trial < 400; trial++) {
    const stops = stopsPool.filter(() => rng.nextFloat() < 0.4);
    if (stops.length === 0) stops.push('ab');
    let text = '';
    const len = 1 + Math.floor(rng.nextFloat() * 30);
    for (let i = 0; i < len; i++) text += alphabet[Math.floor(rng.nextFloat() * alphabet.length)];
    // Reference: scan ends left to right; the first end where some stop string ends wins; cut at
    // the start of the longest one ending there.
    let expected = text;
    let expectedStop: string | null = null;
    outer: for (let end = 1; end <= text.length; end++) {
      const ending = stops.filter((s) => text.slice(0, end).endsWith(s)).sort((x, y) => y.length - x.length);
      if (ending.length) {
        expectedStop = ending[0]!;
        expected = text.slice(0, end - expectedStop.length);
        break outer;
      }
    }
    const chunks: string[] = [];
    for (let i = 0; i < text.length; ) {
      const step = 1 + Math.floor(rng.nextFloat() * 4);
      chunks.push(text.slice(i, i + step));
      i += step;
    }
    const r = run(stops, chunks);
    const shown = r.shown.join('');
    assert.equal(r.stop, expectedStop, `stops ${JSON.stringify(stops)} text ${JSON.stringify(text)}`);
    assert.equal(shown + r.tail, expected, `stops ${JSON.stringify(stops)} text ${JSON.stringify(text)} chunks ${JSON.stringify(chunks)}`);
    // Nothing shown is ever taken back: the shown text is a prefix of the final text.
    assert.ok(expected.startsWith(shown));
  }
});

test('bad stop strings and misuse are errors', () => {
  assert.throws(() => new StopStringMatcher(['']), /non-empty/);
  const m = new StopStringMatcher(['x']);
  m.push('x');
  assert.throws(() => m.push('y'), /after a stop string matched/);
});

test('stop tokens: model end-of-generation ids plus extra ones; finish reasons', () => {
  const s = new StopTokens((id) => id === 2, [7]);
  assert.deepEqual([0, 1, 2, 7, 8].map((i) => s.has(i)), [false, false, true, true, false]);
  assert.throws(() => new StopTokens(() => false, [-1]), /not a token id/);
  assert.equal(finishReasonOf({ type: 'stopToken', token: 2 }), 'stop');
  assert.equal(finishReasonOf({ type: 'stopString', stop: 'x' }), 'stop');
  assert.equal(finishReasonOf({ type: 'maxTokens', maxTokens: 3 }), 'length');
  assert.equal(finishReasonOf({ type: 'context', contextLength: 9 }), 'length');
  assert.equal(finishReasonOf({ type: 'abort' }), 'abort');
});
