// Token text -> id lookup that can also look up a slice of a string, or two slices joined, without
// building the substring.
//
// Why not a Map<string, number>: loading Llama-3 means resolving 280k merge lines "left right" into
// three ids each (left, right, left+right). With a Map every side must first become a fresh string
// and be hashed by the engine, which made the merge table several times slower to build than hashing
// the characters in place here. Layout: open addressing, linear probing; slot s is the Int32 pair
// (hash, id) at slots[2s], slots[2s + 1] (id -1: empty), the hash being a 32-bit FNV-1a of the UTF-16
// code units. A hash match is confirmed by comparing characters against one contiguous Uint16Array of
// all token texts, so a collision never gives a wrong id and a probe touches two cache lines at most.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 16777619;

/** Final avalanche so the high bits (used for the slot) depend on every character. */
function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class VocabIndex {
  private readonly slots: Int32Array;
  private readonly shift: number;
  private readonly mask: number;
  /** All token texts' UTF-16 code units, concatenated; token i is chars[start[i] .. start[i + 1]). */
  private readonly chars: Uint16Array;
  private readonly start: Uint32Array;

  /** Indexes tokens[i] -> i; when a text repeats, the first id wins (as in llama.cpp). */
  constructor(tokens: readonly string[]) {
    const n = tokens.length;
    let bits = 4;
    while (1 << bits < n * 2) bits++;
    this.slots = new Int32Array(2 << bits).fill(-1);
    this.shift = 32 - bits;
    this.mask = (1 << bits) - 1;
    const start = new Uint32Array(n + 1);
    let total = 0;
    for (let id = 0; id < n; id++) {
      start[id] = total;
      total += tokens[id].length;
    }
    start[n] = total;
    const chars = new Uint16Array(total);
    this.chars = chars;
    this.start = start;
    for (let id = 0; id < n; id++) {
      const t = tokens[id];
      const o = start[id];
      let h = FNV_OFFSET;
      for (let i = 0; i < t.length; i++) {
        const c = t.charCodeAt(i);
        chars[o + i] = c;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      const hash = finish(h) | 0;
      let s = hash >>> this.shift;
      for (;;) {
        const other = this.slots[2 * s + 1];
        if (other < 0) {
          this.slots[2 * s] = hash;
          this.slots[2 * s + 1] = id;
          break;
        }
        if (this.slots[2 * s] === hash && tokens[other] === t) break; // duplicate text: keep the first id
        s = (s + 1) & this.mask;
      }
    }
  }

  /** Id of the token whose text is exactly `text`, or -1. */
  get(text: string): number {
    let h = FNV_OFFSET;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
    return this.probe(finish(h), text, 0, text.length, -1);
  }

  /** Id of the token whose text is exactly text[start, end), or -1. */
  getRange(text: string, start: number, end: number): number {
    let h = FNV_OFFSET;
    for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
    return this.probe(finish(h), text, start, end, -1);
  }

  /**
   * Ids for the merge line halves text[0, sp) and text[sp + 1, end), and for the two halves joined
   * (the merged token), written to out[0], out[1], out[2] (-1 where absent).
   */
  getMergeParts(text: string, sp: number, out: Int32Array): void {
    let hl = FNV_OFFSET;
    for (let i = 0; i < sp; i++) hl = Math.imul(hl ^ text.charCodeAt(i), FNV_PRIME);
    let hr = FNV_OFFSET;
    let hj = hl;
    for (let i = sp + 1; i < text.length; i++) {
      const c = text.charCodeAt(i);
      hr = Math.imul(hr ^ c, FNV_PRIME);
      hj = Math.imul(hj ^ c, FNV_PRIME);
    }
    out[0] = this.probe(finish(hl), text, 0, sp, -1);
    out[1] = this.probe(finish(hr), text, sp + 1, text.length, -1);
    out[2] = this.probe(finish(hj), text, 0, text.length, sp);
  }

  /** Finds the token equal to text[start, end) with the character at `skip` left out (skip -1: none). */
  private probe(hash: number, text: string, start: number, end: number, skip: number): number {
    const len = end - start - (skip >= 0 ? 1 : 0);
    const h = hash | 0;
    const slots = this.slots;
    const chars = this.chars;
    let s = hash >>> this.shift;
    for (;;) {
      const id = slots[2 * s + 1];
      if (id < 0) return -1;
      if (slots[2 * s] === h) {
        const o = this.start[id];
        if (this.start[id + 1] - o === len) {
          let j = start;
          let k = 0;
          for (; k < len; k++, j++) {
            if (j === skip) j++;
            if (chars[o + k] !== text.charCodeAt(j)) break;
          }
          if (k === len) return id;
        }
      }
      s = (s + 1) & this.mask;
    }
  }
}
