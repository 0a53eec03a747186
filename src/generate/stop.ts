// Stop conditions of a generation, and the finish reasons reported for them.
//
//   stop tokens   ids that end generation (the model's end-of-generation tokens plus any the
//                 request adds). The stop token itself produces no text and is not part of the
//                 output tokens.
//   stop strings  matched on the decoded text, across token boundaries. Text that could still be
//                 the start of a stop string is held back, so a stream never shows any part of a
//                 stop string; when one completes, the output is cut right before it. If several
//                 could match, the one that completes first (earliest end, as if the text arrived
//                 one character at a time) wins; among those ending at the same place, the longest.
//   max tokens    'length' after that many output tokens.
//   context end   'length' with detail 'context' when the context window is full.
//
// Finish reasons use OpenAI's names ('stop', 'length'); 'abort' is ours (see generate.ts).

export type FinishReason = 'stop' | 'length' | 'abort';

export type FinishDetail =
  | { type: 'stopToken'; token: number }
  | { type: 'stopString'; stop: string }
  | { type: 'maxTokens'; maxTokens: number }
  | { type: 'context'; contextLength: number }
  | { type: 'abort' };

/** The finish reason that goes with a detail. */
export function finishReasonOf(detail: FinishDetail): FinishReason {
  switch (detail.type) {
    case 'stopToken':
    case 'stopString':
      return 'stop';
    case 'maxTokens':
    case 'context':
      return 'length';
    case 'abort':
      return 'abort';
  }
}

export interface StopPush {
  /** Text that is safe to show now (never part of a stop string). */
  text: string;
  /** The stop string that just completed, or null. Once set, later pushes are an error. */
  stop: string | null;
}

/**
 * Incremental stop-string matcher over streamed text. push() returns what may be shown now;
 * flush() releases the held-back tail at the end of a generation that did not stop on a string.
 */
export class StopStringMatcher {
  readonly stops: readonly string[];
  private held = '';
  private done = false;

  constructor(stops: readonly string[] = []) {
    for (const s of stops) {
      if (typeof s !== 'string' || s.length === 0) throw new Error('stop strings must be non-empty strings');
    }
    this.stops = [...new Set(stops)];
  }

  /** The text currently held back (a possible start of a stop string). */
  get pending(): string {
    return this.held;
  }

  push(text: string): StopPush {
    if (this.done) throw new Error('StopStringMatcher: push() after a stop string matched');
    if (this.stops.length === 0) return { text, stop: null };
    const buf = this.held + text;
    // Earliest-completing stop string.
    let bestStart = -1;
    let bestEnd = Infinity;
    let best: string | null = null;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at < 0) continue;
      const end = at + s.length;
      if (end < bestEnd || (end === bestEnd && at < bestStart)) {
        bestStart = at;
        bestEnd = end;
        best = s;
      }
    }
    if (best !== null) {
      this.done = true;
      this.held = '';
      return { text: buf.slice(0, bestStart), stop: best };
    }
    const keep = longestPrefixSuffix(buf, this.stops);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stop: null };
  }

  /** Releases the held-back text (the generation ended for another reason). */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }
}

/** Length of the longest suffix of `buf` that is a proper prefix of one of the stop strings. */
function longestPrefixSuffix(buf: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let len = Math.min(s.length - 1, buf.length); len > best; len--) {
      if (buf.endsWith(s.slice(0, len))) {
        best = len;
        break;
      }
    }
  }
  return best;
}

/** Token-level stop test: the model's end-of-generation ids plus extra ones from the request. */
export class StopTokens {
  private readonly extra: ReadonlySet<number>;
  constructor(
    private readonly isEndOfGeneration: (id: number) => boolean,
    extra: Iterable<number> = [],
  ) {
    const set = new Set<number>();
    for (const t of extra) {
      if (!Number.isInteger(t) || t < 0) throw new Error(`stop token ${String(t)} is not a token id`);
      set.add(t);
    }
    this.extra = set;
  }

  has(id: number): boolean {
    return this.extra.has(id) || this.isEndOfGeneration(id);
  }
}
