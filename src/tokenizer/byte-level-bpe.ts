// Byte-level BPE (GGUF tokenizer.ggml.model = gpt2: GPT-2, Llama-3, BitNet b1.58 2B4T).
//
// Plain text -> pieces by the pre-tokenizer regex (pre-tokenize.ts) -> each piece's UTF-8 bytes ->
// byte tokens -> lowest-rank-first merges (bpe.ts). With Llama-3's ignore_merges a piece that is itself a
// vocabulary token is emitted whole. Pieces repeat a lot in real text, so the ids of short pieces are
// cached. A token's bytes are its text read through the byte-level alphabet (byte-level.ts).

import { BYTE_TO_CHAR_CODE, CHAR_CODE_TO_BYTE, MAX_CODE } from './byte-level.js';
import { BpeScratch, MergeTable, bpeMerge } from './bpe.js';
import { type PreTokenizer, preTokenizerFor, splitPieces } from './pre-tokenize.js';
import type { SubwordModel } from './subword-model.js';
import { writeUtf8 } from './utf8.js';
import type { VocabIndex } from './vocab-index.js';

/** Pieces this long or longer are not cached (long runs are rare and would bloat the cache). */
const CACHE_MAX_PIECE = 64;
const CACHE_MAX_ENTRIES = 1 << 16;
const NORMAL = 1;

export class ByteLevelBpe implements SubwordModel {
  readonly kind = 'gpt2';
  readonly addBosDefault: boolean;
  readonly stripLeadingSpace = false;
  readonly pre: PreTokenizer;
  readonly merges: MergeTable;
  private readonly byteToId = new Int32Array(256).fill(-1);
  private readonly cache = new Map<string, number | Int32Array>();
  private readonly scratch = new BpeScratch();
  private work = new Int32Array(256);

  constructor(
    private readonly index: VocabIndex,
    private readonly types: Uint8Array,
    mergeLines: readonly string[],
    pre: string,
  ) {
    this.pre = preTokenizerFor(pre);
    this.addBosDefault = this.pre.addBosDefault;
    // Byte tokens: the single-character normal tokens of the byte-level alphabet.
    for (let b = 0; b < 256; b++) {
      const id = index.get(String.fromCharCode(BYTE_TO_CHAR_CODE[b]));
      if (id >= 0 && types[id] === NORMAL) this.byteToId[b] = id;
    }
    this.merges = new MergeTable(mergeLines, index);
  }

  encode(text: string, out: number[]): void {
    const pieces = splitPieces(this.pre, text);
    const cache = this.cache;
    for (let p = 0; p < pieces.length; p++) {
      const piece = pieces[p];
      const cached = cache.get(piece);
      if (cached !== undefined) {
        if (typeof cached === 'number') out.push(cached);
        else for (let i = 0; i < cached.length; i++) out.push(cached[i]);
        continue;
      }
      const ids = this.encodePiece(piece);
      if (piece.length < CACHE_MAX_PIECE) {
        if (cache.size >= CACHE_MAX_ENTRIES) cache.clear();
        cache.set(piece, ids.length === 1 ? ids[0] : ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    }
  }

  /** One pre-token to ids: UTF-8 bytes -> whole-piece lookup (ignore_merges) or byte tokens + merges. */
  private encodePiece(piece: string): Int32Array {
    if (this.work.length < piece.length * 3) this.work = new Int32Array(piece.length * 3 + 16);
    const ids = this.work;
    const n = writeUtf8(piece, ids, 0);
    if (this.pre.ignoreMerges && n > 1) {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(BYTE_TO_CHAR_CODE[ids[i]]);
      const whole = this.index.get(s);
      if (whole >= 0 && this.types[whole] === NORMAL) return Int32Array.of(whole);
    }
    for (let i = 0; i < n; i++) {
      const id = this.byteToId[ids[i]];
      if (id < 0) throw new Error(`the vocabulary has no token for byte 0x${ids[i].toString(16).padStart(2, '0')}`);
      ids[i] = id;
    }
    const count = bpeMerge(ids, n, this.merges, this.scratch);
    return ids.slice(0, count);
  }

  writeTokenBytes(text: string, _type: number, buf: Uint8Array, at: number): number {
    let w = at;
    for (let j = 0; j < text.length; j++) {
      const c = text.charCodeAt(j);
      const b = c <= MAX_CODE ? CHAR_CODE_TO_BYTE[c] : -1;
      if (b >= 0) buf[w++] = b;
      else {
        // Not an alphabet character (not expected in a sound vocabulary): keep it as UTF-8.
        const pair = c >= 0xd800 && c <= 0xdbff && j + 1 < text.length ? 2 : 1;
        w = writeUtf8(text, buf, w, j, j + pair);
        j += pair - 1;
      }
    }
    return w;
  }

  clearCache(): void {
    this.cache.clear();
  }
}
