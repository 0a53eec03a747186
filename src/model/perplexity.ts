// Perplexity over a token stream, by the method of llama.cpp's `llama-perplexity` (its default mode),
// so the figures compare with the ones users quote:
// - the text is tokenized once, with BOS in front when the model adds one (the caller does this);
// - it is cut into floor(n / ctx) non-overlapping chunks of ctx tokens (the tail is dropped), each
//   evaluated from an empty KV cache; when the model adds BOS, the chunk's FIRST token is replaced
//   by BOS for evaluation (not inserted: the chunk stays ctx tokens long);
// - only the second half is scored: with first = floor(ctx / 2), the logits at positions
//   first .. ctx-2 predict tokens first+1 .. ctx-1 (ctx - first - 1 tokens per chunk);
// - nll = max + log(sum exp(logit - max)) - logit[target] (max and differences in f32, sum in double);
//   PPL = exp(mean nll), and its ± = PPL * sqrt((mean(nll^2) - mean(nll)^2) / (count - 1)).
import type { BitNetModel } from './model.js';
import { ModelError } from './config.js';

export interface PerplexityOptions {
  /** tokens per chunk (llama-perplexity's -c; default 512) */
  ctx?: number;
  /** replace the first token of every chunk by this id (the model's BOS when it adds one) */
  bos?: number;
  /** tokens per forward batch (default 64) */
  batchSize?: number;
  /** called after each chunk with the running figures */
  onChunk?: (p: PerplexityProgress) => void;
  signal?: AbortSignal;
}

export interface PerplexityProgress {
  chunk: number; // chunks done
  chunks: number;
  ppl: number; // running estimate
}

export interface PerplexityResult {
  ppl: number;
  /** llama-perplexity's "±" */
  pplStddev: number;
  tokensScored: number;
  chunks: number;
  /** mean negative log-likelihood (nats per scored token) */
  meanNll: number;
}

/** -log softmax(logits)[target] as llama-perplexity computes it. */
export function tokenNll(logits: Float32Array, off: number, n: number, target: number): number {
  let max = logits[off]!;
  for (let i = 1; i < n; i++) if (logits[off + i]! > max) max = logits[off + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.fround(Math.exp(Math.fround(logits[off + i]! - max)));
  return -(Math.fround(logits[off + target]! - max) - Math.log(sum));
}

/** Chunks a token stream of n tokens gives at ctx tokens per chunk. */
export function perplexityChunks(n: number, ctx: number): number {
  return Math.floor(n / ctx);
}

export async function computePerplexity(model: BitNetModel, tokens: readonly number[], opts: PerplexityOptions = {}): Promise<PerplexityResult> {
  const ctx = opts.ctx ?? 512;
  if (!Number.isInteger(ctx) || ctx < 4) throw new ModelError(`perplexity: the chunk size must be an integer of at least 4 tokens, got ${ctx}`);
  if (ctx > model.config.contextLength) {
    throw new ModelError(`perplexity: chunks of ${ctx} tokens exceed the model's context of ${model.config.contextLength} tokens`);
  }
  const chunks = perplexityChunks(tokens.length, ctx);
  if (chunks < 1) {
    throw new ModelError(`perplexity: the text has ${tokens.length} tokens, fewer than one chunk of ${ctx} (give a longer text or a smaller chunk size)`);
  }
  const V = model.config.vocabSize;
  const first = Math.floor(ctx / 2);
  const seq = model.createSequence({ ctxSize: ctx, batchSize: opts.batchSize });
  let nll = 0, nll2 = 0, count = 0;
  for (let c = 0; c < chunks; c++) {
    opts.signal?.throwIfAborted();
    const chunk = tokens.slice(c * ctx, (c + 1) * ctx);
    if (opts.bos !== undefined) chunk[0] = opts.bos;
    seq.truncate(0);
    // the first half only fills the cache; the second half's logits are all wanted
    await seq.forward(chunk.slice(0, first));
    const logits = await seq.forward(chunk.slice(first), { allLogits: true });
    for (let j = 0; j < ctx - first - 1; j++) {
      const v = tokenNll(logits, j * V, V, chunk[first + j + 1]!);
      nll += v;
      nll2 += v * v;
      count++;
    }
    opts.onChunk?.({ chunk: c + 1, chunks, ppl: Math.exp(nll / count) });
  }
  const mean = nll / count;
  const ppl = Math.exp(mean);
  const variance = nll2 / count - mean * mean;
  const pplStddev = variance > 0 && count > 1 ? Math.sqrt(variance / (count - 1)) * ppl : 0;
  return { ppl, pplStddev, tokensScored: count, chunks, meanNll: mean };
}
