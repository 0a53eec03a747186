// Pre-tokenizers of byte-level BPE: the regex that cuts text into pieces before BPE runs on each piece,
// chosen by GGUF `tokenizer.ggml.pre` the way llama.cpp names them.
//
// The patterns are the published ones (Oniguruma syntax in tokenizer.json), rewritten for JavaScript's
// `u` mode: `\s` becomes `\p{White_Space}` (JavaScript's `\s` adds U+FEFF and misses U+0085, Oniguruma's
// does neither), and the case-insensitive contraction group `(?i:'s|'t|...)` is spelled out with
// character classes (Node 20 has no inline modifiers). The llama3 and gpt2 patterns always match at
// least one character at any position (every character is a letter, a number, white space or
// "other"), so their global matches are contiguous and cover the whole text. llama.cpp's `default`
// set is several regexes applied one after another, keeping the text between matches.

export type PreTokenizerName = 'llama3' | 'gpt2' | 'default';

export interface PreTokenizer {
  /** Canonical name: 'llama3', 'gpt2' or 'default' (llama.cpp's own four-regex set). */
  readonly name: PreTokenizerName;
  /**
   * Global, unicode regexes applied in order, as llama.cpp does: each one cuts every piece the previous
   * ones left into its matches AND the text between them (nothing is dropped). The llama3 and gpt2
   * patterns are single regexes whose matches already cover any text.
   */
  readonly patterns: readonly RegExp[];
  /** When a whole piece is itself a vocabulary token, emit it without running merges (llama.cpp/HF `ignore_merges`). */
  readonly ignoreMerges: boolean;
  /** Whether a BOS is added when the file has no tokenizer.ggml.add_bos_token (llama.cpp's per-pre default). */
  readonly addBosDefault: boolean;
}

const WS = '\\p{White_Space}';
const CONTRACTIONS = "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])";

/** Llama-3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` */
const LLAMA3_SOURCE =
  `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|${WS}*[\\r\\n]+|${WS}+(?!\\P{White_Space})|${WS}+`;

/** GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (case-sensitive contractions). */
const GPT2_SOURCE =
  `'(?:s|t|re|ve|m|ll|d)| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${WS}+(?!\\P{White_Space})|${WS}+`;

/**
 * llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT set (llama-vocab.cpp, the `default:` case of the BPE
 * tokenizer): runs of punctuation and the symbols $+<=>^~| first, then GPT-2's pattern inside what is
 * left, then digit runs, then ASCII digit triples. Not GPT-2: "a, b" and "x 123" split differently.
 */
const DEFAULT_SOURCES = ['[\\p{P}$+<=>^~|]+', GPT2_SOURCE, '\\p{N}+', '[0-9][0-9][0-9]'];

/** GGUF pre names that mean the Llama-3 pre-tokenizer (llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3 list). */
const LLAMA3_NAMES = new Set([
  'llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'falcon_e', 'pixtral', 'midm-2.0', 'lfm2',
]);
/** GGUF pre names that mean the original GPT-2 pattern (llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2 list, in part). */
const GPT2_NAMES = new Set(['gpt-2', 'gpt2', 'phi-2', 'jina-es', 'jina-de', 'jina-v2-es', 'jina-v2-de', 'jina-v2-code']);

export const SUPPORTED_PRE_NAMES: readonly string[] = [...LLAMA3_NAMES, ...GPT2_NAMES, 'default'];

const regexes = (sources: readonly string[]) => sources.map((s) => new RegExp(s, 'gu'));

/**
 * The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value (see pre-tokenizer-choice.ts for what a
 * missing value means). An unknown name is an error: guessing would give wrong ids silently.
 */
export function preTokenizerFor(pre: string): PreTokenizer {
  if (LLAMA3_NAMES.has(pre)) {
    return { name: 'llama3', patterns: regexes([LLAMA3_SOURCE]), ignoreMerges: true, addBosDefault: true };
  }
  if (GPT2_NAMES.has(pre)) {
    return { name: 'gpt2', patterns: regexes([GPT2_SOURCE]), ignoreMerges: false, addBosDefault: false };
  }
  if (pre === 'default') {
    return { name: 'default', patterns: regexes(DEFAULT_SOURCES), ignoreMerges: false, addBosDefault: false };
  }
  throw new Error(
    `unsupported tokenizer pre-tokenizer '${pre}' (tokenizer.ggml.pre); supported: ${SUPPORTED_PRE_NAMES.join(', ')}`,
  );
}

/**
 * The pre-tokens of `text`, in order; they concatenate back to `text`. (One `match` call is faster than a
 * sticky exec loop. Should the pieces ever not cover the text, which the built-in patterns cannot cause,
 * this says so rather than drop characters.)
 */
export function splitPieces(pre: PreTokenizer, text: string): string[] {
  if (text.length === 0) return [];
  if (pre.patterns.length > 1) {
    try {
      return splitInSteps(pre.patterns, text);
    } catch (e) {
      if (e instanceof RangeError) throw new Error(`text too long to pre-tokenize: a run of characters the ${pre.name} pre-tokenizer cannot cut`);
      throw e;
    }
  }
  const pieces = matchAll(pre.patterns[0]!, text);
  let covered = 0;
  for (let i = 0; i < pieces.length; i++) covered += pieces[i].length;
  if (covered !== text.length) {
    throw new Error(`internal error: the ${pre.name} pre-tokenizer pattern did not cover the text`);
  }
  return pieces;
}

/** How much text one regex call sees when a whole-text match overflowed V8's regex stack. */
const WINDOW = 1 << 16;

/**
 * `text.match(re)`. V8's regex engine runs out of stack on a single match of a few million characters
 * (6 MB of letters without a break, answered "Maximum call stack size exceeded"); then the text is matched
 * WINDOW characters at a time, each window's last piece matched again from its start in the next one, so
 * only a piece longer than WINDOW is cut (llama.cpp would keep it whole; such text fits no context anyway).
 */
function matchAll(re: RegExp, text: string): string[] {
  try {
    return text.match(re) ?? [];
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  const out: string[] = [];
  let pos = 0;
  while (pos < text.length) {
    const end = Math.min(text.length, pos + WINDOW);
    const pieces = text.slice(pos, end).match(re) ?? [];
    const keep = end < text.length && pieces.length > 1 ? pieces.length - 1 : pieces.length;
    for (let i = 0; i < keep; i++) {
      out.push(pieces[i]!);
      pos += pieces[i]!.length;
    }
    if (keep === pieces.length) pos = end;
  }
  return out;
}

/** llama.cpp's sequential split: each regex cuts every current piece into matches and the gaps between them. */
function splitInSteps(patterns: readonly RegExp[], text: string): string[] {
  let pieces = [text];
  for (const re of patterns) {
    const next: string[] = [];
    for (const piece of pieces) {
      let last = 0;
      re.lastIndex = 0;
      for (let m = re.exec(piece); m !== null; m = re.exec(piece)) {
        if (m.index > last) next.push(piece.slice(last, m.index));
        next.push(m[0]);
        last = m.index + m[0].length;
      }
      if (last < piece.length) next.push(last === 0 ? piece : piece.slice(last));
    }
    pieces = next;
  }
  return pieces;
}
