// Pre-tokenizers of byte-level BPE: the regex that cuts text into pieces before BPE runs on each piece,
// chosen by GGUF `tokenizer.ggml.pre` the way llama.cpp names them.
//
// The patterns are the published ones (Oniguruma syntax in tokenizer.json), rewritten for JavaScript's
// `u` mode: `\s` becomes `\p{White_Space}` (JavaScript's `\s` adds U+FEFF and misses U+0085, Oniguruma's
// does neither), and the case-insensitive contraction group `(?i:'s|'t|...)` is spelled out with
// character classes (Node 20 has no inline modifiers). The pattern always matches at least one
// character at any position (every character is a letter, a number, white space or "other"), so
// its global matches are contiguous and cover the whole text.

export interface PreTokenizer {
  /** Canonical name: 'llama3' or 'gpt2'. */
  readonly name: 'llama3' | 'gpt2';
  /** Global, unicode regex; its matches are contiguous and cover the text. */
  readonly pattern: RegExp;
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

/** GGUF pre names that mean the Llama-3 pre-tokenizer (llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3 list). */
const LLAMA3_NAMES = new Set([
  'llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'falcon_e', 'pixtral', 'midm-2.0', 'lfm2',
]);
/** GGUF pre names that mean the original GPT-2 pattern. */
const GPT2_NAMES = new Set(['gpt-2', 'gpt2', 'default', 'phi-2', 'jina-es', 'jina-de', 'jina-v2-es', 'jina-v2-de', 'jina-v2-code']);

export const SUPPORTED_PRE_NAMES: readonly string[] = [...LLAMA3_NAMES, ...GPT2_NAMES];

/**
 * The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value. A file without the key gets the GPT-2 pattern
 * (the documented fallback; llama.cpp also falls back to a default pattern there). An unknown name is an error:
 * guessing would give wrong ids silently.
 */
export function preTokenizerFor(pre: string | undefined): PreTokenizer {
  if (pre === undefined || GPT2_NAMES.has(pre)) {
    return { name: 'gpt2', pattern: new RegExp(GPT2_SOURCE, 'gu'), ignoreMerges: false, addBosDefault: false };
  }
  if (LLAMA3_NAMES.has(pre)) {
    return { name: 'llama3', pattern: new RegExp(LLAMA3_SOURCE, 'gu'), ignoreMerges: true, addBosDefault: true };
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
  const pieces = text.match(pre.pattern) ?? [];
  let covered = 0;
  for (let i = 0; i < pieces.length; i++) covered += pieces[i].length;
  if (covered !== text.length) {
    throw new Error(`internal error: the ${pre.name} pre-tokenizer pattern did not cover the text`);
  }
  return pieces;
}
