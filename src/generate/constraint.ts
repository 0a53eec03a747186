// A constraint on the next token, owned by one sequence: the token loop asks it for a bitmask of
// the allowed tokens before every draw, hands that bitmask to the sampler (which sees nothing else
// of it), and tells it the chosen token afterwards.
//
// Bitmask layout (XGrammar's): Int32Array of ceil(vocab / 32) words; token id is allowed when bit
// (id & 31) of word (id >> 5) is set. Ids past the end of the mask are not allowed.
//
// A grammar allows end-of-generation tokens only where the text it describes may end, so a
// constrained generation stops at a stop token exactly when its output is complete; max_tokens and
// the context end still cut it short (finish reason 'length').

export interface TokenConstraint {
  /** The tokens allowed next (see the layout above). May be computed asynchronously. */
  mask(): Int32Array | Promise<Int32Array>;
  /** Advances past `token`, which the last mask allowed; throws when it is not allowed. */
  accept(token: number): void;
  /** Releases what the constraint holds (e.g. WebAssembly memory); safe to call twice. */
  dispose?(): void;
}

/** True when the bitmask allows `id`. */
export function maskAllows(mask: Int32Array, id: number): boolean {
  const w = id >>> 5;
  return w < mask.length && ((mask[w]! >>> (id & 31)) & 1) === 1;
}

/** Sets to -Infinity every logit whose token the mask does not allow; returns how many remain. */
export function applyTokenMask(logits: Float32Array, mask: Int32Array): number {
  const n = logits.length;
  let allowed = 0;
  const full = Math.min(mask.length, n >>> 5);
  for (let w = 0; w < full; w++) {
    const bits = mask[w]!;
    const base = w << 5;
    if (bits === -1) {
      allowed += 32;
      continue;
    }
    if (bits === 0) {
      logits.fill(-Infinity, base, base + 32);
      continue;
    }
    for (let b = 0; b < 32; b++) {
      if ((bits >>> b) & 1) allowed++;
      else logits[base + b] = -Infinity;
    }
  }
  for (let i = full << 5; i < n; i++) {
    if (maskAllows(mask, i)) allowed++;
    else logits[i] = -Infinity;
  }
  return allowed;
}

/** Token ids a mask allows, below `vocabSize` (for tests and diagnostics). */
export function allowedTokens(mask: Int32Array, vocabSize: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < vocabSize; i++) if (maskAllows(mask, i)) out.push(i);
  return out;
}
