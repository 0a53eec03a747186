// Which pre-tokenizer a GGUF vocabulary gets, and why (shown by `wf inspect`).
//
// tokenizer.ggml.pre names it. When the key is missing, llama.cpp falls back to its `default` regex
// set, but the official BitNet b1.58 2B4T file has no `pre` although its vocabulary is Llama-3's and
// the model was trained with Llama-3 splitting (SPEC.md §3). So a missing `pre` means `llama3` when
// the vocabulary is Llama-3's (128256 tokens, <|begin_of_text|> at 128000) or the architecture is
// 2B4T's (bitnet-b1.58, or its older name bitnet-25); otherwise llama.cpp's `default`.

export interface PreTokenizerChoice {
  /** the tokenizer.ggml.pre name to use */
  pre: string;
  /** why, in words */
  reason: string;
}

/** Architectures whose files are BitNet b1.58 2B4T (trained with the Llama-3 tokenizer). */
const LLAMA3_TRAINED_ARCHS = new Set(['bitnet-b1.58', 'bitnet-25']);
const LLAMA3_VOCAB_SIZE = 128256;
const LLAMA3_BOS_ID = 128000;

/** True for the Llama-3 vocabulary: 128256 tokens with <|begin_of_text|> at 128000. */
export function isLlama3Vocabulary(tokens: readonly string[]): boolean {
  return tokens.length === LLAMA3_VOCAB_SIZE && tokens[LLAMA3_BOS_ID] === '<|begin_of_text|>';
}

export function choosePreTokenizer(pre: string | undefined, arch: string | undefined, tokens: readonly string[]): PreTokenizerChoice {
  if (pre !== undefined) return { pre, reason: 'tokenizer.ggml.pre' };
  if (isLlama3Vocabulary(tokens)) {
    return { pre: 'llama3', reason: 'tokenizer.ggml.pre missing; the vocabulary is Llama-3\'s (128256 tokens, <|begin_of_text|> at 128000)' };
  }
  if (arch !== undefined && LLAMA3_TRAINED_ARCHS.has(arch)) {
    return { pre: 'llama3', reason: `tokenizer.ggml.pre missing; architecture ${arch} (BitNet b1.58 2B4T) was trained with Llama-3 pre-tokenization` };
  }
  return { pre: 'default', reason: "tokenizer.ggml.pre missing: llama.cpp's default regex set (as llama.cpp does)" };
}
