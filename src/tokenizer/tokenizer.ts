// Text <-> token ids for GGUF models: byte-level BPE (tokenizer.ggml.model = gpt2: Llama-3, BitNet b1.58
// 2B4T) and SentencePiece BPE (llama: LLaMA-1/2 vocabularies, the older 1bitLLM BitNet models).
//
// encode: split the text on special-token strings, then hand each plain fragment to the vocabulary
//   family's model (byte-level-bpe.ts or spm.ts), BOS/EOS around it when asked.
// decode: concatenate the raw bytes of each token (computed once at load: special tokens are their
//   literal text, ordinary tokens what the model says) and decode them as UTF-8, keeping a leading BOM.
//
// Byte-level BPE matches llama.cpp's llama_tokenize / llama_detokenize on the oracle cases. Behaviour
// that follows llama.cpp (documented because other tokenizers differ):
// - user-defined tokens (type 4) are always split out, even with parseSpecial false; control (3) and
//   unknown (2) tokens only with parseSpecial true;
// - when special strings overlap, the leftmost match wins and, at one position, the longest;
// - a BOS is added when addBos (default: tokenizer.ggml.add_bos_token, else the family's default).

import { ByteLevelBpe } from './byte-level-bpe.js';
import { choosePreTokenizer } from './pre-tokenizer-choice.js';
import { SentencePieceBpe } from './spm.js';
import type { SubwordModel } from './subword-model.js';
import { writeUtf8 } from './utf8.js';
import { VocabIndex } from './vocab-index.js';

/** GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Everything needed to build a tokenizer without a GGUF file (what fromGGUF reads from tokenizer.ggml.*). */
export interface TokenizerSpec {
  /** Vocabulary family as in GGUF tokenizer.ggml.model: 'gpt2' (byte-level BPE, default) or 'llama' (SentencePiece). */
  model?: string;
  /**
   * gpt2 only: pre-tokenizer name as in GGUF tokenizer.ggml.pre ('llama-bpe', 'gpt-2', 'default', ...).
   * When absent: 'llama3' for the Llama-3 vocabulary or a 2B4T architecture, else llama.cpp's 'default'
   * (pre-tokenizer-choice.ts).
   */
  pre?: string;
  /** GGUF general.architecture, used only to choose the pre-tokenizer when `pre` is absent. */
  architecture?: string;
  /** Token texts (byte-level or '▁'-escaped for ordinary tokens, literal for special ones); index = id. */
  tokens: readonly string[];
  /** Token types (TokenType); default all NORMAL. */
  tokenTypes?: ArrayLike<number>;
  /** gpt2 only: merge lines "left right" in rank order. */
  merges?: readonly string[];
  /** llama only: one score per token (tokenizer.ggml.scores); higher merges first. */
  scores?: ArrayLike<number>;
  /** llama only: put '▁' before each plain-text fragment (tokenizer.ggml.add_space_prefix). Default true. */
  addSpacePrefix?: boolean;
  bosId?: number;
  eosId?: number;
  eotId?: number;
  eomId?: number;
  /** Default for encode's addBos. Default: the family's (true for Llama-3 pre-tokenizers and SentencePiece, false for GPT-2). */
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
  /**
   * The text holds spans made by escapeSpecials (chat content inside template markup): drop LITERAL_MARK
   * from the plain fragments after the special tokens are split out, so those spans read as plain text.
   */
  unescape?: boolean;
}

/**
 * A Unicode noncharacter (reserved for a program's internal use) that escapeSpecials puts inside a
 * special-token string so that no special token matches there; encode with `unescape` removes it.
 */
export const LITERAL_MARK = '\uFDD0';

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

/**
 * Finds special-token strings in a text: the leftmost match, at one position the longest. A set of
 * strings and, per first character, their distinct lengths (longest first), so finding a match costs a
 * few set lookups at the positions that start like a special token. (A RegExp alternation of the
 * strings did the same, but V8 compiles such a pattern on its first use, which took seconds for a
 * vocabulary with 128k reserved tokens: the server's first request waited for it.)
 */
class SpecialMatcher {
  private readonly set: Set<string>;
  private readonly lengths = new Map<number, number[]>();

  constructor(list: readonly string[]) {
    this.set = new Set(list);
    for (const s of list) {
      const c = s.charCodeAt(0);
      const ls = this.lengths.get(c) ?? [];
      if (!ls.includes(s.length)) ls.push(s.length);
      this.lengths.set(c, ls);
    }
    for (const ls of this.lengths.values()) ls.sort((a, b) => b - a);
  }

  /** The first match at or after `from`, or null. */
  find(text: string, from: number): { index: number; text: string } | null {
    for (let i = from; i < text.length; i++) {
      const ls = this.lengths.get(text.charCodeAt(i));
      if (ls === undefined) continue;
      for (const len of ls) {
        if (i + len > text.length) continue;
        const piece = text.slice(i, i + len);
        if (this.set.has(piece)) return { index: i, text: piece };
      }
    }
    return null;
  }
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
  /** Special tokens (control, user-defined and unknown), text -> id. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Every id that ends generation (eos, eot, eom and tokens named like them). */
  readonly endOfGenerationIds: ReadonlySet<number>;
  /** Vocabulary family: 'gpt2' (byte-level BPE) or 'llama' (SentencePiece). */
  readonly model: 'gpt2' | 'llama';
  /** Canonical pre-tokenizer of a gpt2 vocabulary ('llama3' | 'gpt2' | 'default'); 'none' for SentencePiece. */
  readonly preTokenizer: string;
  /** Why that pre-tokenizer (the file's tokenizer.ggml.pre, or the rule used when it is missing). */
  readonly preTokenizerReason: string;
  /**
   * The most bytes one token stands for. No token covers more UTF-16 units of input text than bytes, so a
   * text of L units needs at least L / maxTokenBytes tokens: a prompt can be known too long before it is
   * tokenized (which takes seconds for megabytes).
   */
  readonly maxTokenBytes: number;
  /** Merge lines that could not be used (a side or result not in the vocabulary); 0 for a sound file. */
  readonly skippedMerges: number;

  private readonly tokens: readonly string[];
  private readonly types: Uint8Array;
  private readonly impl: SubwordModel;
  /** Raw bytes of every token, concatenated; token i is pieceBytes[pieceStart[i] .. pieceStart[i + 1]). */
  private readonly pieceBytes: Uint8Array;
  private readonly pieceStart: Uint32Array;
  private readonly splitAll: SpecialMatcher | null;
  private readonly splitUserDefined: SpecialMatcher | null;
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(spec: TokenizerSpec) {
    const model = spec.model ?? 'gpt2';
    if (model !== 'gpt2' && model !== 'llama') {
      throw new Error(`tokenizer model '${model}' is not supported (supported: 'gpt2' byte-level BPE, 'llama' SentencePiece)`);
    }
    const tokens = spec.tokens;
    const n = tokens.length;
    if (n === 0) throw new Error('tokenizer has an empty vocabulary');
    if (spec.tokenTypes && spec.tokenTypes.length !== n) {
      throw new Error(`token_type has ${spec.tokenTypes.length} entries but there are ${n} tokens`);
    }
    let first: string | undefined;
    let varied = false;
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      if (typeof t !== 'string') throw new Error(`token ${i} is not a string`);
      if (t === '') continue;
      if (first === undefined) first = t;
      else if (t !== first) varied = true;
    }
    // such a vocabulary loads but can encode nothing: every request would fail
    if (first === undefined) throw new Error(`tokenizer.ggml.tokens: all ${n} tokens are empty strings`);
    if (!varied && n > 1) throw new Error(`tokenizer.ggml.tokens: all ${n} non-empty tokens are the same string ${JSON.stringify(first.slice(0, 40))}`);
    this.vocabSize = n;
    this.tokens = tokens;
    this.model = model;

    const types = new Uint8Array(n).fill(TokenType.NORMAL);
    if (spec.tokenTypes) for (let i = 0; i < n; i++) types[i] = spec.tokenTypes[i];
    this.types = types;

    // text -> id (the first id wins if a text repeats, as in llama.cpp)
    const index = new VocabIndex(tokens);
    if (model === 'gpt2') {
      if (!spec.merges) throw new Error('a gpt2 (byte-level BPE) tokenizer needs merges');
      const choice = choosePreTokenizer(spec.pre, spec.architecture, tokens);
      const bpe = new ByteLevelBpe(index, types, spec.merges, choice.pre);
      this.impl = bpe;
      this.preTokenizer = bpe.pre.name;
      this.preTokenizerReason = choice.pre === bpe.pre.name ? choice.reason : `${choice.reason} ('${choice.pre}')`;
      this.skippedMerges = bpe.merges.skipped;
    } else {
      if (!spec.scores) throw new Error('a llama (SentencePiece) tokenizer needs scores');
      if (spec.scores.length !== n) throw new Error(`scores has ${spec.scores.length} entries but there are ${n} tokens`);
      this.impl = new SentencePieceBpe(index, spec.scores, spec.addSpacePrefix ?? true);
      this.preTokenizer = 'none';
      this.preTokenizerReason = 'SentencePiece vocabularies have no pre-tokenizer';
      this.skippedMerges = 0;
    }

    // Raw bytes of each token: special tokens are their literal text, ordinary ones what the model says.
    let total = 0;
    for (let i = 0; i < n; i++) total += tokens[i].length;
    const buf = new Uint8Array(total * 3);
    const start = new Uint32Array(n + 1);
    let w = 0;
    for (let i = 0; i < n; i++) {
      start[i] = w;
      const ty = types[i];
      w = ty === TokenType.CONTROL || ty === TokenType.USER_DEFINED
        ? writeUtf8(tokens[i], buf, w)
        : this.impl.writeTokenBytes(tokens[i], ty, buf, w);
    }
    start[n] = w;
    let widest = 1;
    for (let i = 0; i < n; i++) widest = Math.max(widest, start[i + 1] - start[i]);
    this.maxTokenBytes = widest;
    this.pieceBytes = buf.slice(0, w);
    this.pieceStart = start;

    // Special tokens and the matchers that split them out of the text.
    const special = new Map<string, number>();
    const all: string[] = [];
    const userDefined: string[] = [];
    for (let i = 0; i < n; i++) {
      const ty = types[i];
      const isSpecial = ty === TokenType.CONTROL || ty === TokenType.USER_DEFINED || ty === TokenType.UNKNOWN;
      if (isSpecial && tokens[i].length > 0) {
        if (special.has(tokens[i])) continue;
        special.set(tokens[i], i);
        all.push(tokens[i]);
        if (ty === TokenType.USER_DEFINED) userDefined.push(tokens[i]);
      }
    }
    this.specialTokens = special;
    const splitter = (list: string[]): SpecialMatcher | null => (list.length === 0 ? null : new SpecialMatcher(list));
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

    this.addBosDefault = spec.addBos ?? this.impl.addBosDefault;
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
    if (model !== 'gpt2' && model !== 'llama') {
      throw new Error(
        `tokenizer model '${model}' (tokenizer.ggml.model) is not supported; supported: 'gpt2' (byte-level BPE, e.g. Llama-3) and 'llama' (SentencePiece)`,
      );
    }
    if (!Array.isArray(tokens)) throw new Error('tokenizer.ggml.tokens is not an array of strings');
    const array = (k: string, what: string, needed: boolean): ArrayLike<unknown> | undefined => {
      const v = get(k);
      if (v === undefined) {
        if (needed) throw new Error(`model file's tokenizer is incomplete: ${k} missing (needed by ${model} tokenizers)`);
        return undefined;
      }
      if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw new Error(`${k} is not an array of ${what}`);
      return v as ArrayLike<unknown>;
    };
    const merges = array('tokenizer.ggml.merges', 'strings', model === 'gpt2');
    const scores = array('tokenizer.ggml.scores', 'numbers', model === 'llama');
    const types = array('tokenizer.ggml.token_type', 'numbers', false);
    const pre = get('tokenizer.ggml.pre');
    const bool = (k: string): boolean | undefined => {
      const v = get(k);
      if (v === undefined) return undefined;
      if (typeof v !== 'boolean') throw new Error(`${k} is not a boolean`);
      return v;
    };
    const template = get('tokenizer.chat_template');
    const arch = get('general.architecture');
    return new Tokenizer({
      model,
      pre: typeof pre === 'string' ? pre : undefined,
      architecture: typeof arch === 'string' ? arch : undefined,
      tokens: tokens as string[],
      tokenTypes: types as ArrayLike<number> | undefined,
      merges: model === 'gpt2' ? (merges as string[]) : undefined,
      scores: model === 'llama' ? (scores as ArrayLike<number>) : undefined,
      addSpacePrefix: bool('tokenizer.ggml.add_space_prefix'),
      bosId: get('tokenizer.ggml.bos_token_id') as number | undefined,
      eosId: get('tokenizer.ggml.eos_token_id') as number | undefined,
      eotId: get('tokenizer.ggml.eot_token_id') as number | undefined,
      eomId: get('tokenizer.ggml.eom_token_id') as number | undefined,
      addBos: bool('tokenizer.ggml.add_bos_token'),
      addEos: bool('tokenizer.ggml.add_eos_token'),
      chatTemplate: typeof template === 'string' ? template : undefined,
    });
  }

  /**
   * Marks `text` as plain text that may sit inside text tokenized with parseSpecial: every control or
   * unknown token string in it gets LITERAL_MARK after its first character, so encode({ unescape: true })
   * reads it as encode(text, { parseSpecial: false }) would. Any LITERAL_MARK already in the text is
   * dropped. (A special token one character long cannot be broken this way and stays special.)
   */
  escapeSpecials(text: string): string {
    if (text.includes(LITERAL_MARK)) text = text.replaceAll(LITERAL_MARK, '');
    if (this.splitAll === null) return text;
    let out = '';
    let last = 0;
    for (let m = this.splitAll.find(text, 0); m !== null; m = this.splitAll.find(text, m.index + 1)) {
      if (this.types[this.specialTokens.get(m.text)!] === TokenType.USER_DEFINED) continue; // split out either way
      out += text.slice(last, m.index + 1) + LITERAL_MARK;
      last = m.index + 1;
    }
    return last === 0 ? text : out + text.slice(last);
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
    const plain = options.unescape && text.includes(LITERAL_MARK)
      ? (s: string) => this.impl.encode(s.replaceAll(LITERAL_MARK, ''), out)
      : (s: string) => this.impl.encode(s, out);
    if (splitter === null) plain(text);
    else {
      let last = 0;
      for (let m = splitter.find(text, 0); m !== null; m = splitter.find(text, last)) {
        if (m.index > last) plain(text.slice(last, m.index));
        out.push(this.specialTokens.get(m.text)!);
        last = m.index + m.text.length;
      }
      if (last < text.length) plain(last === 0 ? text : text.slice(last));
    }
    if (options.addEos ?? this.addEosDefault) {
      if (this.eos === undefined) throw new Error('cannot add EOS: the vocabulary has no eos token id');
      out.push(this.eos);
    }
    return out;
  }

  /** Forgets the cached ids of recently seen pieces (for benchmarks; encoding results never depend on it). */
  clearCache(): void {
    this.impl.clearCache();
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

  /**
   * Token ids to text. Bytes that do not form valid UTF-8 become U+FFFD. For SentencePiece vocabularies
   * the space that encoding put before the text is dropped from the first piece.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return this.utf8.decode(this.collect(ids, options.skipSpecial ?? false, this.impl.stripLeadingSpace));
  }

  /** The raw bytes of a token sequence (every token's piece, nothing dropped but skipped control tokens). */
  bytesOf(ids: ArrayLike<number>, skipSpecial = false): Uint8Array {
    return this.collect(ids, skipSpecial, false);
  }

  private collect(ids: ArrayLike<number>, skipSpecial: boolean, stripFirstSpace: boolean): Uint8Array {
    let len = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      this.checkId(id);
      if (skipSpecial && this.types[id] === TokenType.CONTROL) continue;
      len += this.pieceStart[id + 1] - this.pieceStart[id];
    }
    const out = new Uint8Array(len);
    let w = 0;
    let first = true;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (skipSpecial && this.types[id] === TokenType.CONTROL) continue;
      let a = this.pieceStart[id];
      const b = this.pieceStart[id + 1];
      if (first && stripFirstSpace && a < b && this.pieceBytes[a] === 0x20) a++;
      first = false;
      out.set(this.pieceBytes.subarray(a, b), w);
      w += b - a;
    }
    return w === len ? out : out.subarray(0, w);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
  }
}
