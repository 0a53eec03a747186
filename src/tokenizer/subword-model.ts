// The part of a tokenizer that differs between vocabulary families: how plain text (special tokens
// already split out) becomes ids, and what bytes an ordinary token stands for. Tokenizer (tokenizer.ts)
// owns everything shared: special tokens, BOS/EOS, decoding, the public API.

export interface SubwordModel {
  /** GGUF tokenizer.ggml.model value: 'gpt2' (byte-level BPE) or 'llama' (SentencePiece BPE). */
  readonly kind: 'gpt2' | 'llama';
  /** BOS default when the file has no tokenizer.ggml.add_bos_token. */
  readonly addBosDefault: boolean;
  /** Decoding drops one leading space of the first token (SentencePiece's added space prefix). */
  readonly stripLeadingSpace: boolean;
  /**
   * Appends the ids of plain text: a fragment of the input between special tokens (so every fragment
   * starts the input or follows a special token, which is where SentencePiece adds its space prefix).
   */
  encode(text: string, out: number[]): void;
  /**
   * Writes the raw bytes of an ordinary token (not control/user-defined) into buf at `at` and returns the
   * index after them; buf has room for 3 bytes per UTF-16 code unit of text.
   */
  writeTokenBytes(text: string, type: number, buf: Uint8Array, at: number): number;
  /** Forgets cached piece ids (benchmarks only; results never depend on the cache). */
  clearCache(): void;
}
