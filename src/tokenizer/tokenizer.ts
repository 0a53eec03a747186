// Text <-> token ids for GGUF models with a byte-level BPE vocabulary (tokenizer.ggml.model = gpt2,
// e.g. Llama-3 / BitNet b1.58 2B4T).
//
// encode: split the text on special-token strings (control and user-defined tokens), then each
//   remaining fragment is cut into pieces by the pre-tokenizer regex, each piece becomes UTF-8 bytes,
//   the bytes become byte tokens, and BPE merges them (bpe.ts). Pieces repeat a lot in real text, so
//   the ids of short pieces are cached.
// decode: concatenate the raw bytes of each token (byte-level text decoded back to bytes; special
//   tokens are their literal text) and decode them as UTF-8, keeping a leading BOM.
//
// Matches llama.cpp's llama_tokenize / llama_detokenize for these vocabularies on the oracle cases.
// Notes on behaviour that follows llama.cpp (documented because other tokenizers differ):
// - user-defined tokens (type 4) are always split out, even with parseSpecial false; control tokens (type 3)
//   only with parseSpecial true;
// - when special strings overlap, the leftmost match wins and, at one position, the longest.
// - a BOS is added when addBos (default: tokenizer.ggml.add_bos_token, else the pre-tokenizer's default).

import { BYTE_TO_CHAR_CODE, CHAR_CODE_TO_BYTE, pushUtf8 } from './byte-level.js';
import { BpeScratch, MergeTable, bpeMerge } from './bpe.js';
import { type PreTokenizer, preTokenizerFor, splitPieces } from './pre-tokenize.js';
import { VocabIndex } from './vocab-index.js';

/** GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Everything needed to build a byte-level BPE tokenizer without a GGUF file. */
export interface TokenizerSpec {
  /** Tokenizer family; only 'gpt2' (byte-level BPE) is built from arrays. Default 'gpt2'. */
  model?: string;
  /** Pre-tokenizer name as in GGUF tokenizer.ggml.pre ('llama-bpe', 'gpt-2', ...). Default: GPT-2 pattern. */
  pre?: string;
  /** Token texts, byte-level encoded for normal tokens, literal for special ones; index = id. */
  tokens: readonly string[];
  /** Token types (TokenType); default all NORMAL. */
  tokenTypes?: ArrayLike<number>;
  /** Merge lines "left right" in rank order. */
  merges: readonly string[];
  bosId?: number;
  eosId?: number;
  eotId?: number;
  eomId?: number;
  /** Default for encode's addBos. Default: the pre-tokenizer's (true for Llama-3, false for GPT-2). */
  addBos?: boolean;
  /** Default for encode's addEos (tokenizer.ggml.add_eos_token). Default false. */
  addEos?: boolean;
  /** Jinja chat template (tokenizer.chat_template), kept for chat-template.ts. */
  chatTemplate?: string;
}

export interface EncodeOptions {
  /** Prepend the BOS token. Default: the file's add_bos_token. */
  addBos?: boolean;
  /** Append the EOS token. Default: the file's add_eos_token (false when absent). */
  addEos?: boolean;
  /** Turn control-token strings such as "<|eot_id|>" into their ids. Default true. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave control tokens (BOS, EOS, <|eot_id|>, ...) out of the text. Default false. */
  skipSpecial?: boolean;
}

/** Anything with GGUF-style metadata lookup (the reader's GGUFFile has this shape). */
export interface TokenizerMetadata {
  get(key: string): unknown;
}

/** Names of tokens that end a generation turn in common vocabularies (llama.cpp's end-of-generation list). */
const EOG_NAMES = new Set([
  '<|eot_id|>', '<|eom_id|>', '<|end_of_text|>', '<|endoftext|>', '<|im_end|>', '<|end|>', '<end_of_turn>',
  '<|return|>', '<|call|>', '<EOT>', '_<EOT>', '<｜end▁of▁sentence｜>',
]);

/** Pieces this long or longer are not cached (long runs are rare and would bloat the cache). */
const CACHE_MAX_PIECE = 64;
const CACHE_MAX_ENTRIES = 1 << 16;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function optionalId(v: unknown, key: string, vocabSize: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new Error(`${key} is not an integer token id (got ${String(v)})`);
  // llama.cpp writes -1 (as u32 0xFFFFFFFF) for "none".
  if (n < 0 || n === 0xffffffff) return undefined;
  if (n >= vocabSize) throw new Error(`${key} = ${n} is outside the vocabulary (size ${vocabSize})`);
  return n;
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  /** End-of-turn token (<|eot_id|> in Llama-3), when the vocabulary has one. */
  readonly eot: number | undefined;
  readonly addBosDefault: boolean;
  readonly addEosDefault: boolean;
  /** The file's Jinja chat template, if any. */
  readonly chatTemplate: string | undefined;
  /** Special tokens (control and user-defined), text -> id. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Every id that ends generation (eos, eot, eom and tokens named like them). */
  readonly endOfGenerationIds: ReadonlySet<number>;
  /** Canonical pre-tokenizer ('llama3' | 'gpt2'). */
  readonly preTokenizer: string;
  /** Merge lines that could not be used (a side or result not in the vocabulary); 0 for a sound file. */
  readonly skippedMerges: number;

  private readonly tokens: readonly string[];
  private readonly types: Uint8Array;
  private readonly index: VocabIndex;
  private readonly pre: PreTokenizer;
  private readonly merges: MergeTable;
  private readonly byteToId: Int32Array;
  /** Raw bytes of every token, concatenated; token i is pieceBytes[pieceStart[i] .. pieceStart[i + 1]). */
  private readonly pieceBytes: Uint8Array;
  private readonly pieceStart: Uint32Array;
  private readonly splitAll: RegExp | null;
  private readonly splitUserDefined: RegExp | null;
  private readonly cache = new Map<string, number | Int32Array>();
  private readonly scratch = new BpeScratch();
  private work = new Int32Array(256);
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(spec: TokenizerSpec) {
    const model = spec.model ?? 'gpt2';
    if (model !== 'gpt2') {
      throw new Error(
        `tokenizer model '${model}' is not supported (only 'gpt2', byte-level BPE` +
          (model === 'llama' ? '; SentencePiece vocabularies are not implemented' : '') + ')',
      );
    }
    const tokens = spec.tokens;
    const n = tokens.length;
    if (n === 0) throw new Error('tokenizer has an empty vocabulary');
    if (spec.tokenTypes && spec.tokenTypes.length !== n) {
      throw new Error(`token_type has ${spec.tokenTypes.length} entries but there are ${n} tokens`);
    }
    this.vocabSize = n;
    this.tokens = tokens;
    this.pre = preTokenizerFor(spec.pre);
    this.preTokenizer = this.pre.name;

    const types = new Uint8Array(n).fill(TokenType.NORMAL);
    if (spec.tokenTypes) for (let i = 0; i < n; i++) types[i] = spec.tokenTypes[i];
    this.types = types;

    for (let i = 0; i < n; i++) {
      if (typeof tokens[i] !== 'string') throw new Error(`token ${i} is not a string`);
    }
    // text -> id (the first id wins if a text repeats, as in llama.cpp)
    const index = new VocabIndex(tokens);
    this.index = index;

    // Byte tokens: the single-character tokens of the byte-level alphabet.
    this.byteToId = new Int32Array(256).fill(-1);
    for (let b = 0; b < 256; b++) {
      const id = index.get(String.fromCharCode(BYTE_TO_CHAR_CODE[b]));
      if (id >= 0 && types[id] === TokenType.NORMAL) this.byteToId[b] = id;
    }

    this.merges = new MergeTable(spec.merges, index);
    this.skippedMerges = this.merges.skipped;

    // Raw bytes of each token.
    let total = 0;
    for (let i = 0; i < n; i++) total += tokens[i].length;
    let buf = new Uint8Array(total * 3 + 16);
    const start = new Uint32Array(n + 1);
    let w = 0;
    const tmp: number[] = [];
    for (let i = 0; i < n; i++) {
      start[i] = w;
      const t = tokens[i];
      const literal = types[i] === TokenType.CONTROL || types[i] === TokenType.USER_DEFINED;
      if (w + t.length * 4 > buf.length) {
        const bigger = new Uint8Array(Math.max(buf.length * 2, w + t.length * 4));
        bigger.set(buf);
        buf = bigger;
      }
      for (let j = 0; j < t.length; j++) {
        const c = t.charCodeAt(j);
        const b = !literal && c <= 323 ? CHAR_CODE_TO_BYTE[c] : -1;
        if (b >= 0) buf[w++] = b;
        else if (c < 0x80) buf[w++] = c;
        else {
          let cp = c;
          if (c >= 0xd800 && c <= 0xdbff && j + 1 < t.length) {
            const d = t.charCodeAt(j + 1);
            if (d >= 0xdc00 && d <= 0xdfff) {
              cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
              j++;
            }
          }
          tmp.length = 0;
          pushUtf8(cp, tmp);
          for (const x of tmp) buf[w++] = x;
        }
      }
    }
    start[n] = w;
    this.pieceBytes = buf.slice(0, w);
    this.pieceStart = start;

    // Special tokens and the regexes that split them out of the text.
    const special = new Map<string, number>();
    const all: string[] = [];
    const userDefined: string[] = [];
    for (let i = 0; i < n; i++) {
      const ty = types[i];
      if ((ty === TokenType.CONTROL || ty === TokenType.USER_DEFINED) && tokens[i].length > 0) {
        if (special.has(tokens[i])) continue;
        special.set(tokens[i], i);
        all.push(tokens[i]);
        if (ty === TokenType.USER_DEFINED) userDefined.push(tokens[i]);
      }
    }
    this.specialTokens = special;
    const splitter = (list: string[]): RegExp | null => {
      if (list.length === 0) return null;
      const sorted = [...list].sort((a, b) => b.length - a.length);
      return new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
    };
    this.splitAll = splitter(all);
    this.splitUserDefined = splitter(userDefined);

    this.bos = optionalId(spec.bosId, 'bos token id', n);
    this.eos = optionalId(spec.eosId, 'eos token id', n);
    this.eot = optionalId(spec.eotId, 'eot token id', n);
    const eom = optionalId(spec.eomId, 'eom token id', n);
    if (this.eot === undefined) {
      const byName = special.get('<|eot_id|>') ?? special.get('<|im_end|>') ?? special.get('<end_of_turn>');
      if (byName !== undefined) this.eot = byName;
    }
    const eog = new Set<number>();
    for (const id of [this.eos, this.eot, eom]) if (id !== undefined) eog.add(id);
    for (const [text, id] of special) if (EOG_NAMES.has(text)) eog.add(id);
    this.endOfGenerationIds = eog;

    this.addBosDefault = spec.addBos ?? this.pre.addBosDefault;
    this.addEosDefault = spec.addEos ?? false;
    this.chatTemplate = spec.chatTemplate;
  }

  /**
   * Builds the tokenizer from GGUF metadata (tokenizer.ggml.*). Throws a clear error when the file has no
   * tokenizer or one this engine does not implement.
   */
  static fromGGUF(file: TokenizerMetadata): Tokenizer {
    const get = (k: string): unknown => file.get(k);
    const model = get('tokenizer.ggml.model');
    const tokens = get('tokenizer.ggml.tokens');
    if (tokens === undefined) throw new Error('model file has no tokenizer: tokenizer.ggml.tokens missing');
    if (model === undefined) throw new Error('model file has no tokenizer: tokenizer.ggml.model missing');
    if (typeof model !== 'string') throw new Error('tokenizer.ggml.model is not a string');
    if (model !== 'gpt2') {
      throw new Error(
        `tokenizer model '${model}' (tokenizer.ggml.model) is not supported; only 'gpt2' (byte-level BPE, e.g. Llama-3)` +
          (model === 'llama' ? ' is implemented, not SentencePiece' : ' is implemented'),
      );
    }
    if (!Array.isArray(tokens)) throw new Error('tokenizer.ggml.tokens is not an array of strings');
    const merges = get('tokenizer.ggml.merges');
    if (merges === undefined) throw new Error('model file has no tokenizer: tokenizer.ggml.merges missing (needed by gpt2 BPE)');
    if (!Array.isArray(merges)) throw new Error('tokenizer.ggml.merges is not an array of strings');
    const types = get('tokenizer.ggml.token_type');
    if (types !== undefined && !(Array.isArray(types) || ArrayBuffer.isView(types))) {
      throw new Error('tokenizer.ggml.token_type is not an array');
    }
    const pre = get('tokenizer.ggml.pre');
    const bool = (k: string): boolean | undefined => {
      const v = get(k);
      if (v === undefined) return undefined;
      if (typeof v !== 'boolean') throw new Error(`${k} is not a boolean`);
      return v;
    };
    const template = get('tokenizer.chat_template');
    return new Tokenizer({
      model,
      pre: typeof pre === 'string' ? pre : undefined,
      tokens: tokens as string[],
      tokenTypes: types as ArrayLike<number> | undefined,
      merges: merges as string[],
      bosId: get('tokenizer.ggml.bos_token_id') as number | undefined,
      eosId: get('tokenizer.ggml.eos_token_id') as number | undefined,
      eotId: get('tokenizer.ggml.eot_token_id') as number | undefined,
      eomId: get('tokenizer.ggml.eom_token_id') as number | undefined,
      addBos: bool('tokenizer.ggml.add_bos_token'),
      addEos: bool('tokenizer.ggml.add_eos_token'),
      chatTemplate: typeof template === 'string' ? template : undefined,
    });
  }

  /** Text to token ids. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError('encode expects a string');
    const out: number[] = [];
    if (options.addBos ?? this.addBosDefault) {
      if (this.bos === undefined) throw new Error('cannot add BOS: the vocabulary has no bos token id');
      out.push(this.bos);
    }
    const splitter = options.parseSpecial ?? true ? this.splitAll : this.splitUserDefined;
    if (splitter === null) this.encodeFragment(text, out);
    else {
      let last = 0;
      splitter.lastIndex = 0;
      for (let m = splitter.exec(text); m !== null; m = splitter.exec(text)) {
        if (m.index > last) this.encodeFragment(text.slice(last, m.index), out);
        out.push(this.specialTokens.get(m[0])!);
        last = m.index + m[0].length;
      }
      if (last < text.length) this.encodeFragment(last === 0 ? text : text.slice(last), out);
    }
    if (options.addEos ?? this.addEosDefault) {
      if (this.eos === undefined) throw new Error('cannot add EOS: the vocabulary has no eos token id');
      out.push(this.eos);
    }
    return out;
  }

  /** Plain text (no special tokens) to ids, appended to out. */
  private encodeFragment(text: string, out: number[]): void {
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

  /** One pre-token to ids: UTF-8 bytes -> byte tokens -> whole-piece lookup or BPE merges. */
  private encodePiece(piece: string): Int32Array {
    // UTF-8 encode into byte-token ids.
    let ids = this.work;
    if (ids.length < piece.length * 3) ids = this.work = new Int32Array(piece.length * 3 + 16);
    let n = 0;
    for (let i = 0; i < piece.length; i++) {
      let cp = piece.charCodeAt(i);
      if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < piece.length) {
        const d = piece.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // lone surrogate, as TextEncoder
      if (cp < 0x80) ids[n++] = cp;
      else if (cp < 0x800) {
        ids[n++] = 0xc0 | (cp >> 6);
        ids[n++] = 0x80 | (cp & 63);
      } else if (cp < 0x10000) {
        ids[n++] = 0xe0 | (cp >> 12);
        ids[n++] = 0x80 | ((cp >> 6) & 63);
        ids[n++] = 0x80 | (cp & 63);
      } else {
        ids[n++] = 0xf0 | (cp >> 18);
        ids[n++] = 0x80 | ((cp >> 12) & 63);
        ids[n++] = 0x80 | ((cp >> 6) & 63);
        ids[n++] = 0x80 | (cp & 63);
      }
    }
    // ids[0..n) holds bytes now. Whole-piece lookup (ignore_merges) uses the byte-level text.
    if (this.pre.ignoreMerges && n > 1) {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(BYTE_TO_CHAR_CODE[ids[i]]);
      const whole = this.index.get(s);
      if (whole >= 0 && this.types[whole] === TokenType.NORMAL) return Int32Array.of(whole);
    }
    for (let i = 0; i < n; i++) {
      const id = this.byteToId[ids[i]];
      if (id < 0) throw new Error(`the vocabulary has no token for byte 0x${ids[i].toString(16).padStart(2, '0')}`);
      ids[i] = id;
    }
    const count = bpeMerge(ids, n, this.merges, this.scratch);
    return ids.slice(0, count);
  }

  /** Forgets the cached ids of recently seen pieces (for benchmarks; encoding results never depend on it). */
  clearCache(): void {
    this.cache.clear();
  }

  /** Raw bytes of one token (special tokens: their text in UTF-8). A view: do not modify. */
  tokenToPiece(id: number): Uint8Array {
    this.checkId(id);
    return this.pieceBytes.subarray(this.pieceStart[id], this.pieceStart[id + 1]);
  }

  /** The vocabulary text of a token (byte-level form for normal tokens). */
  tokenText(id: number): string {
    this.checkId(id);
    return this.tokens[id];
  }

  /** TokenType of a token. */
  tokenType(id: number): number {
    this.checkId(id);
    return this.types[id];
  }

  /** True for control tokens (BOS, EOS, <|eot_id|>, reserved ...). */
  isControl(id: number): boolean {
    return this.tokenType(id) === TokenType.CONTROL;
  }

  /** True when generation should stop at this token. */
  isEndOfGeneration(id: number): boolean {
    return this.endOfGenerationIds.has(id);
  }

  /** Token ids to text. Bytes that do not form valid UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return this.utf8.decode(this.bytesOf(ids, options.skipSpecial ?? false));
  }

  /** The raw bytes of a token sequence. */
  bytesOf(ids: ArrayLike<number>, skipSpecial = false): Uint8Array {
    let len = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      this.checkId(id);
      if (skipSpecial && this.types[id] === TokenType.CONTROL) continue;
      len += this.pieceStart[id + 1] - this.pieceStart[id];
    }
    const out = new Uint8Array(len);
    let w = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (skipSpecial && this.types[id] === TokenType.CONTROL) continue;
      const a = this.pieceStart[id];
      const b = this.pieceStart[id + 1];
      out.set(this.pieceBytes.subarray(a, b), w);
      w += b - a;
    }
    return out;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
  }
}
