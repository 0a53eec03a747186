// SentencePiece BPE as llama.cpp runs it (GGUF tokenizer.ggml.model = llama: LLaMA-1/2 vocabularies,
// e.g. the 1bitLLM bitnet_b1_58 models). No merge list: the vocabulary's scores decide.
//
// encode: spaces become '▁' (U+2581), and a '▁' is put in front of every fragment (the text between
//   special tokens; llama.cpp prefixes a fragment that starts the text or follows a special token, which
//   is every fragment) when add_space_prefix (default on). The fragment is split into characters;
//   repeatedly the adjacent pair whose concatenation is a vocabulary token with the highest score is
//   merged (on equal scores the leftmost), until no adjacent pair forms a token. A final symbol that is
//   not a token is written as byte tokens "<0xXX>" of its UTF-8 bytes (byte fallback).
// bytes of a token: byte tokens "<0xXX>" are that byte; other tokens are their text with '▁' read as
//   a space; the unknown token reads as '▅' (as llama.cpp prints it). Decoding from the start drops
//   the one space the prefix added.

import type { SubwordModel } from './subword-model.js';
import { writeUtf8 } from './utf8.js';
import type { VocabIndex } from './vocab-index.js';

const UNKNOWN = 2;
const BYTE = 6;
const SPACE_MARK = '\u2581';

/** Max-heap of candidate merges: by score, then by the smaller left position. Entries live in typed arrays. */
class BigramQueue {
  score = new Float64Array(64);
  left = new Int32Array(64);
  right = new Int32Array(64);
  /** length (UTF-16 units) of the merged text when queued: tells a stale entry from a live one */
  size = new Int32Array(64);
  private heap = new Int32Array(64);
  private count = 0;
  private used = 0;

  reset(): void {
    this.count = 0;
    this.used = 0;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  private before(a: number, b: number): boolean {
    const sa = this.score[a];
    const sb = this.score[b];
    return sa > sb || (sa === sb && this.left[a] < this.left[b]);
  }

  push(score: number, left: number, right: number, size: number): void {
    if (this.used === this.score.length) {
      const cap = this.used * 2;
      const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(cap);
        b.set(a);
        return b;
      };
      this.score = grow(this.score, (n) => new Float64Array(n));
      this.left = grow(this.left, (n) => new Int32Array(n));
      this.right = grow(this.right, (n) => new Int32Array(n));
      this.size = grow(this.size, (n) => new Int32Array(n));
      this.heap = grow(this.heap, (n) => new Int32Array(n));
    }
    const e = this.used++;
    this.score[e] = score;
    this.left[e] = left;
    this.right[e] = right;
    this.size[e] = size;
    let i = this.count++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(e, this.heap[parent])) break;
      this.heap[i] = this.heap[parent];
      i = parent;
    }
    this.heap[i] = e;
  }

  /** Removes and returns the best entry's index. */
  pop(): number {
    const top = this.heap[0];
    const last = this.heap[--this.count];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= this.count) break;
      if (c + 1 < this.count && this.before(this.heap[c + 1], this.heap[c])) c++;
      if (!this.before(this.heap[c], last)) break;
      this.heap[i] = this.heap[c];
      i = c;
    }
    this.heap[i] = last;
    return top;
  }
}

export class SentencePieceBpe implements SubwordModel {
  readonly kind = 'llama';
  readonly addBosDefault = true;
  readonly stripLeadingSpace: boolean;
  private readonly byteToId = new Int32Array(256).fill(-1);
  private readonly queue = new BigramQueue();
  // per-call symbol arrays (start, length in UTF-16 units, prev, next), grown on demand
  private symStart = new Int32Array(64);
  private symLen = new Int32Array(64);
  private symPrev = new Int32Array(64);
  private symNext = new Int32Array(64);
  private readonly bytes = new Uint8Array(8);

  constructor(
    private readonly index: VocabIndex,
    private readonly scores: ArrayLike<number>,
    private readonly addSpacePrefix: boolean,
  ) {
    this.stripLeadingSpace = addSpacePrefix;
    for (let b = 0; b < 256; b++) {
      let id = index.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      // llama.cpp falls back to the byte itself as a one-character token
      if (id < 0 && b < 0x80) id = index.get(String.fromCharCode(b));
      this.byteToId[b] = id;
    }
  }

  encode(fragment: string, out: number[]): void {
    const text = (this.addSpacePrefix ? ' ' + fragment : fragment).replaceAll(' ', SPACE_MARK);
    if (text.length === 0) return;
    this.ensure(text.length);
    const start = this.symStart;
    const len = this.symLen;
    const prev = this.symPrev;
    const next = this.symNext;
    // one symbol per character (a surrogate pair is one character)
    let n = 0;
    for (let i = 0; i < text.length; ) {
      const c = text.charCodeAt(i);
      const w = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      start[n] = i;
      len[n] = w;
      prev[n] = n - 1;
      next[n] = n + 1;
      n++;
      i += w;
    }
    next[n - 1] = -1;

    const q = this.queue;
    q.reset();
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const id = this.index.getRange(text, start[left], start[left] + len[left] + len[right]);
      if (id < 0) return;
      q.push(this.scores[id], left, right, len[left] + len[right]);
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    while (!q.empty) {
      const e = q.pop();
      const left = q.left[e];
      const right = q.right[e];
      // skip if either side has been merged since (its length changed or it is gone)
      if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== q.size[e]) continue;
      len[left] += len[right];
      len[right] = 0;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryAdd(prev[left], left);
      tryAdd(left, next[left]);
    }

    for (let i = 0; i !== -1; i = next[i]) {
      const id = this.index.getRange(text, start[i], start[i] + len[i]);
      if (id >= 0) {
        out.push(id);
        continue;
      }
      const nb = writeUtf8(text, this.bytes, 0, start[i], start[i] + len[i]);
      for (let k = 0; k < nb; k++) {
        const b = this.bytes[k];
        const bid = this.byteToId[b];
        if (bid < 0) throw new Error(`the vocabulary has no byte token <0x${b.toString(16).toUpperCase().padStart(2, '0')}> for byte fallback`);
        out.push(bid);
      }
    }
  }

  private ensure(n: number): void {
    if (this.symStart.length >= n) return;
    const cap = Math.max(n, this.symStart.length * 2);
    this.symStart = new Int32Array(cap);
    this.symLen = new Int32Array(cap);
    this.symPrev = new Int32Array(cap);
    this.symNext = new Int32Array(cap);
  }

  writeTokenBytes(text: string, type: number, buf: Uint8Array, at: number): number {
    if (type === BYTE) {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
      if (m) {
        buf[at] = parseInt(m[1], 16);
        return at + 1;
      }
    }
    if (type === UNKNOWN) return writeUtf8('\u2585', buf, at);
    return writeUtf8(text.replaceAll(SPACE_MARK, ' '), buf, at);
  }

  clearCache(): void {}
}
