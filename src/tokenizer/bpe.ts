// Byte-pair merging on token ids.
//
// MergeTable: the merge list of a byte-level BPE vocabulary ("left right" strings, rank = position in the
// list) turned into an open-addressing hash table keyed by the pair of token ids (left id, right id) and
// holding (rank, id of the merged token). Typed arrays only; the three ids of a line are found by
// hashing its characters in place (vocab-index.ts), so Llama-3's 280k merges build without a single
// substring or per-entry object.
//
// bpeMerge: the classic lowest-rank-first merging of one pre-token. Each step merges the adjacent pair
// with the lowest rank, the leftmost one among equals, until no adjacent pair has a merge. This is what
// llama.cpp (llm_tokenizer_bpe_session) and Hugging Face tokenizers compute; it runs in O(n log n) with a
// binary heap of (rank, position) keys and lazy deletion of stale entries, so a very long piece (a run
// of CJK letters has no spaces) costs no more than its length times a log.

import type { VocabIndex } from './vocab-index.js';

const EMPTY = -1;
/** Heap keys are rank * 2^32 + position: exact in a double for ranks below 2^20 and positions below 2^32. */
const POS_SPAN = 4294967296;

export class MergeTable {
  /** Number of merges stored (duplicates of an earlier pair and unusable lines are not stored). */
  readonly size: number;
  /** Merge lines that could not be used: a side or the merged text is not in the vocabulary, or no space. */
  readonly skipped: number;
  private readonly mask: number;
  private readonly shift: number;
  /** Slot s is entries[4s .. 4s + 4) = (left id, right id, rank, merged id); left id -1 = empty. */
  private readonly entries: Int32Array;

  /**
   * @param merges merge lines "left right" in rank order (GGUF tokenizer.ggml.merges)
   * @param vocab  vocabulary lookup: token text -> id
   */
  constructor(merges: readonly string[], vocab: VocabIndex) {
    if (merges.length >= 1 << 20) throw new Error(`too many BPE merges (${merges.length}); at most 1048575 supported`);
    // load factor at most 2/3
    let bits = 4;
    while (1 << bits < merges.length * 1.5) bits++;
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
    this.entries = new Int32Array(4 << bits).fill(EMPTY);
    let size = 0;
    let skipped = 0;
    const parts = new Int32Array(3);
    for (let rank = 0; rank < merges.length; rank++) {
      const line = merges[rank];
      // The separator is the first space after the first character (a side is never empty; byte-level
      // texts contain no literal space, it is written 'Ġ').
      const sp = typeof line === 'string' ? line.indexOf(' ', 1) : -1;
      if (sp < 0 || sp === line.length - 1) {
        skipped++;
        continue;
      }
      vocab.getMergeParts(line, sp, parts);
      if (parts[0] < 0 || parts[1] < 0 || parts[2] < 0) {
        skipped++;
        continue;
      }
      if (this.insert(parts[0], parts[1], rank, parts[2])) size++;
      else skipped++;
    }
    this.size = size;
    this.skipped = skipped;
  }

  private slot(a: number, b: number): number {
    return Math.imul(a ^ Math.imul(b, 0x85ebca77), 0x9e3779b1) >>> this.shift;
  }

  /** Stores a merge unless the pair is already there (the earlier, lower rank wins). */
  private insert(a: number, b: number, rank: number, result: number): boolean {
    const e = this.entries;
    let s = this.slot(a, b);
    for (;;) {
      const l = e[4 * s];
      if (l === EMPTY) {
        e[4 * s] = a;
        e[4 * s + 1] = b;
        e[4 * s + 2] = rank;
        e[4 * s + 3] = result;
        return true;
      }
      if (l === a && e[4 * s + 1] === b) return false;
      s = (s + 1) & this.mask;
    }
  }

  /** Slot of the pair (a, b), or -1 when the pair has no merge. */
  find(a: number, b: number): number {
    const e = this.entries;
    let s = this.slot(a, b);
    for (;;) {
      const l = e[4 * s];
      if (l === EMPTY) return -1;
      if (l === a && e[4 * s + 1] === b) return s;
      s = (s + 1) & this.mask;
    }
  }

  /** Rank of the pair's merge, or -1. */
  rank(a: number, b: number): number {
    const s = this.find(a, b);
    return s < 0 ? -1 : this.entries[4 * s + 2];
  }

  /** Id of the token the pair merges into, or -1. */
  result(a: number, b: number): number {
    const s = this.find(a, b);
    return s < 0 ? -1 : this.entries[4 * s + 3];
  }

  rankAt(slot: number): number {
    return this.entries[4 * slot + 2];
  }

  resultAt(slot: number): number {
    return this.entries[4 * slot + 3];
  }
}

/** Reusable scratch space for bpeMerge (grown on demand; one per tokenizer, not shared across threads). */
export class BpeScratch {
  next = new Int32Array(64);
  prev = new Int32Array(64);
  heap = new Float64Array(192);

  ensure(n: number): void {
    if (this.next.length < n) {
      const cap = Math.max(n, this.next.length * 2);
      this.next = new Int32Array(cap);
      this.prev = new Int32Array(cap);
    }
    // Each merge pushes at most two new pairs: n - 1 initial pairs + 2 per merge (at most n - 1 merges).
    if (this.heap.length < 3 * n) this.heap = new Float64Array(Math.max(3 * n, this.heap.length * 2));
  }
}

/**
 * Merges ids[0..n) in place (each entry a token id; initially the byte tokens of one pre-token) and
 * returns the number of tokens left in ids[0..count).
 */
export function bpeMerge(ids: Int32Array, n: number, table: MergeTable, scratch: BpeScratch): number {
  if (n < 2) return n;
  if (n === 2) {
    const r = table.result(ids[0], ids[1]);
    if (r < 0) return 2;
    ids[0] = r;
    return 1;
  }
  scratch.ensure(n);
  const next = scratch.next;
  const prev = scratch.prev;
  const heap = scratch.heap;
  let size = 0;

  const push = (key: number): void => {
    // sift up
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pk = heap[parent];
      if (pk <= key) break;
      heap[i] = pk;
      i = parent;
    }
    heap[i] = key;
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap[--size];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && heap[c + 1] < heap[c]) c++;
      if (heap[c] >= last) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = last;
    return top;
  };

  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  for (let i = 0; i + 1 < n; i++) {
    const r = table.rank(ids[i], ids[i + 1]);
    if (r >= 0) push(r * POS_SPAN + i);
  }

  while (size > 0) {
    const key = pop();
    const rank = Math.floor(key / POS_SPAN);
    const pos = key - rank * POS_SPAN;
    if (ids[pos] < 0) continue; // merged away into its left neighbour
    const right = next[pos];
    if (right < 0) continue;
    const slot = table.find(ids[pos], ids[right]);
    // A stale entry: this position's pair changed since it was pushed (ranks identify pairs).
    if (slot < 0 || table.rankAt(slot) !== rank) continue;
    ids[pos] = table.resultAt(slot);
    ids[right] = -1;
    const after = next[right];
    next[pos] = after;
    if (after >= 0) prev[after] = pos;
    const before = prev[pos];
    if (before >= 0) {
      const r = table.rank(ids[before], ids[pos]);
      if (r >= 0) push(r * POS_SPAN + before);
    }
    if (after >= 0) {
      const r = table.rank(ids[pos], ids[after]);
      if (r >= 0) push(r * POS_SPAN + pos);
    }
  }

  let count = 0;
  for (let i = 0; i >= 0; i = next[i]) ids[count++] = ids[i];
  return count;
}
