// Repetition penalties applied to a logits vector in place, the way llama.cpp's penalties
// sampler does it, over the last `lastN` tokens of the history (prompt + generated so far):
//
//   for every distinct token t in the window, with c = its count in the window:
//     repeat:    l = l <= 0 ? l * repeatPenalty : l / repeatPenalty      (llama.cpp; 1 = off)
//     then       l = l - c * frequencyPenalty - (c > 0 ? 1 : 0) * presencePenalty
//                                                     (OpenAI's formula; 0 = off)
//
// lastN: -1 = the whole history, 0 = no penalties at all. Results are stored in the Float32Array,
// so every step rounds to float32 like llama.cpp's float arithmetic does.
// Cost: O(min(lastN, history.length)) per call; nothing proportional to the vocabulary.

/** The largest finite float32. */
const F32_MAX = 3.4028234663852886e38;

export interface PenaltyOptions {
  repeatPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** Window size in tokens; -1 = whole history, 0 = off. */
  lastN: number;
}

/** True when these options change nothing, so callers can skip the work. */
export function penaltiesAreNeutral(o: PenaltyOptions): boolean {
  return o.lastN === 0 || (o.repeatPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0);
}

/**
 * Applies the penalties to `logits` in place. `counts` is an optional scratch map reused between
 * calls (cleared here). Token ids outside the logits vector are an error.
 */
export function applyPenalties(
  logits: Float32Array,
  history: readonly number[],
  o: PenaltyOptions,
  counts: Map<number, number> = new Map(),
): void {
  if (penaltiesAreNeutral(o) || history.length === 0) return;
  const n = logits.length;
  const start = o.lastN < 0 ? 0 : Math.max(0, history.length - o.lastN);
  counts.clear();
  for (let i = start; i < history.length; i++) {
    const t = history[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= n) {
      throw new Error(`history token ${t} at index ${i} is outside the vocabulary (0..${n - 1})`);
    }
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  const rp = o.repeatPenalty;
  const fp = o.frequencyPenalty;
  const pp = o.presencePenalty;
  for (const [t, c] of counts) {
    let l = logits[t]!;
    if (rp !== 1) l = l <= 0 ? l * rp : l / rp;
    // a tiny repeat_penalty (1e-300) would push a logit past float32's range: keep it at the edge
    l = Math.fround(Math.max(-F32_MAX, Math.min(F32_MAX, l)));
    if (fp !== 0 || pp !== 0) l = l - (c * fp + pp);
    logits[t] = l;
  }
}
