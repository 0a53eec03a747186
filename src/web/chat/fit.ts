// Which turns of a conversation go into the next request: the newest ones that fit the context,
// leaving room for the reply. Old turns are dropped a user/assistant pair at a time from the
// front; the system prompt and the newest user message always stay. Pure (no DOM), shared by
// the server's chat page and the browser app.

export interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** tokens this turn took, when known (from a tokenizer or the server's usage figures) */
  tokens?: number;
}

/** Rough token count of text nobody has tokenized yet (BPE averages 3-4 characters a token). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3) + 4;
}

/** Positions kept free for the reply: the requested maximum, but at most half the context. */
export function replyReserve(ctx: number, maxTokens: number | undefined): number {
  const half = Math.floor(ctx / 2);
  return Math.max(1, Math.min(maxTokens && maxTokens > 0 ? maxTokens : half, half));
}

/**
 * The index of the first turn to send so that the turns from there (plus `fixed` tokens: system
 * prompt and template overhead) fit in ctx - reserve. Never past the last user turn.
 */
export function firstTurnToKeep(turns: readonly Turn[], ctx: number, reserve: number, fixed = 0): number {
  const cost = (t: Turn) => t.tokens ?? estimateTokens(t.content);
  let total = fixed + turns.reduce((a, t) => a + cost(t), 0);
  let start = 0;
  const lastUser = turns.map((t) => t.role).lastIndexOf('user');
  while (total > ctx - reserve && start < lastUser) {
    // drop a whole exchange: the user turn and the replies that follow it
    do {
      total -= cost(turns[start]!);
      start++;
    } while (start < lastUser && turns[start]!.role !== 'user');
  }
  return start;
}
