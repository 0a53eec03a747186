// The boundary between the model's users (the scheduler, sessions, perplexity) and the device that
// runs it: one forward step over a ragged batch, the asked-for logits out. Two implementations:
// Forward (forward.ts, the CPU kernels, and the readable statement of the math) and GpuForward
// (src/gpu/forward.ts, WebGPU), which follows it step for step. Nothing above this interface knows
// which one runs.
import { ModelError, type ModelConfig } from './config.js';
import type { Batch } from './forward.js';
import type { KVCache } from './kv-cache.js';

export interface ForwardStep {
  /** 'cpu' or 'webgpu' */
  readonly device: string;
  readonly maxRows: number;
  readonly maxLogitRows: number;
  readonly maxPos: number;
  /**
   * Runs the batch's rows through the model, writing each row's keys/values into caches[row.seq] at
   * row.pos. Returns the logits of the rows flagged in b.logits, in row order: (flagged, vocab), a
   * view of the runner's buffer valid until the next call.
   */
  run(b: Batch, caches: readonly KVCache[]): Promise<Float32Array>;
  /** The final-norm hidden states (rows, nEmbd) of the rows whose logits the last run() returned (embeddings); absent where the device does not expose them. */
  lastHidden?(): Float32Array;
}

/** The checks every implementation makes before a step: rows, tokens, positions, logits rows. */
export function checkBatch(b: Batch, caches: readonly KVCache[], cfg: ModelConfig, maxRows: number, maxPos: number, logitRows: number): void {
  if (b.n < 1) throw new ModelError('forward() needs at least one row');
  if (b.n > maxRows) throw new ModelError(`batch of ${b.n} rows is larger than the ${maxRows} this runner holds`);
  let flagged = 0;
  for (let r = 0; r < b.n; r++) {
    const tok = b.token[r]!, pos = b.pos[r]!, kv = caches[b.seq[r]!];
    if (!(tok >= 0 && tok < cfg.vocabSize)) throw new ModelError(`token ${tok} is outside the vocabulary (0..${cfg.vocabSize - 1})`);
    if (!kv) throw new ModelError(`row ${r} names sequence ${b.seq[r]}, which has no cache`);
    if (!(pos >= 0 && pos < maxPos && pos < kv.capacity)) {
      throw new ModelError(`position ${pos} does not fit the context of ${Math.min(maxPos, kv.capacity)} tokens`);
    }
    if (b.logits[r]) flagged++;
  }
  if (flagged > logitRows) throw new ModelError(`${flagged} rows ask for logits, this runner returns at most ${logitRows}`);
}
