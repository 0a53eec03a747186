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
  isControl(id: number): boolean {
    return this.tokenizer.isControl(id);
  }
  isEndOfGeneration(id: number): boolean {
    return !this.ignoreEndOfGeneration && this.tokenizer.isEndOfGeneration(id);
  }

  /** the token loop calls this before a new prompt; the cache is kept for prefix reuse */
  reset(): void {
    this.reusedTokens = 0;
  }

  async evaluate(tokens: readonly number[], startPos: number): Promise<Float32Array> {
    if (startPos > this.cached.length) {
      throw new Error(`evaluate at position ${startPos} but only ${this.cached.length} tokens are cached`);
    }
    // Skip tokens already cached at these positions (the token loop sends a long prompt in several
    // batches, so this applies to every batch), but always evaluate the call's last token: its
    // logits are what the caller gets back.
    let skip = 0;
    const max = tokens.length - 1;
    while (skip < max && startPos + skip < this.cached.length && this.cached[startPos + skip] === tokens[skip]) skip++;
    if (startPos === 0) this.reusedTokens = 0;
    this.reusedTokens += skip;
    const from = startPos + skip;
    const rest = tokens.slice(skip);
    // the cache stays valid past this call only if every evaluated token is the cached one
    let same = 0;
    while (same < rest.length && this.cached[from + same] === rest[same]) same++;
    if (same === rest.length) {
      this.seq.seek(from);
    } else {
      this.seq.truncate(from);
      this.cached.length = from;
    }
    const logits = await this.seq.forward(rest);
    if (same !== rest.length) this.cached.push(...rest);
    return logits;
  }

  /** forgets the cache entirely */
  clear(): void {
    this.cached = [];
    this.seq.truncate(0);
  }
}
