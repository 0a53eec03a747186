// Adapts a Sequence to the token loop's GenerationModel, keeping the KV cache between calls:
// a new prompt that starts with tokens already in the cache (a chat's earlier turns, a shared
// system prompt) only evaluates what is new.
import type { GenerationModel } from '../generate/generate.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Sequence } from './forward.js';

export class CachedSequence implements GenerationModel {
  /** tokens whose keys/values are in the cache, in order */
  private cached: number[] = [];
  /** prompt tokens that were skipped because they were cached (for timings) */
  reusedTokens = 0;
  /** generate past end-of-generation tokens (`--ignore-eos`) */
  ignoreEndOfGeneration = false;

  constructor(readonly seq: Sequence, private readonly tokenizer: Tokenizer) {}

  get contextLength(): number {
    return this.seq.ctxSize;
  }
  get vocabSize(): number {
    return this.seq.cfg.vocabSize;
  }
  get bosToken(): number | undefined {
    return this.tokenizer.bos;
  }
  tokenBytes(id: number): Uint8Array {
    return this.tokenizer.tokenToPiece(id);
  }
  isEndOfGeneration(id: number): boolean {
    return !this.ignoreEndOfGeneration && this.tokenizer.isEndOfGeneration(id);
  }

  /** the token loop calls this before a new prompt; the cache is kept for prefix reuse */
  reset(): void {
    this.reusedTokens = 0;
  }

  async evaluate(tokens: readonly number[], startPos: number): Promise<Float32Array> {
    let skip = 0;
    if (startPos === 0) {
      // reuse the longest cached prefix, but always evaluate at least the last token (its logits are needed)
      const max = Math.min(this.cached.length, tokens.length - 1);
      while (skip < max && this.cached[skip] === tokens[skip]) skip++;
      this.reusedTokens = skip;
    } else if (startPos > this.cached.length) {
      throw new Error(`evaluate at position ${startPos} but only ${this.cached.length} tokens are cached`);
    }
    const from = startPos + skip;
    this.seq.truncate(from);
    this.cached.length = from;
    const logits = await this.seq.forward(tokens.slice(skip));
    this.cached.push(...tokens.slice(skip));
    return logits;
  }

  /** forgets the cache entirely */
  clear(): void {
    this.cached = [];
    this.seq.truncate(0);
  }
}
