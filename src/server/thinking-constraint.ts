// The constraint on a reply that may think (reasoning-output.ts has the markers and where a block
// may start). Two jobs, both llama-server's:
// - the thinking budget (--reasoning-budget N, a request's reasoning_budget_tokens or
//   thinking_budget_tokens, /v1/messages' thinking.budget_tokens): after N thinking tokens the
//   template's end-of-thinking marker is forced, token by token, and the model goes on to answer;
// - a grammar (JSON schema, GBNF, tool calls) applies to the answer after the thinking: while the
//   model thinks every token is allowed, from the end marker on the grammar decides. Without an open
//   block (the prompt did not open one) the grammar rules from the first token, so the model does
//   not start thinking.
// The thinking is counted from the token after the start marker (or from the first token when the
// prompt opened the block).
import type { TokenConstraint } from '../generate/constraint.js';
import type { ThinkingMarkers } from './reasoning-output.js';

export interface ThinkingSpec {
  /** most thinking tokens (-1: unlimited; 0: the marker is forced as soon as thinking starts) */
  budget: number;
  markers: ThinkingMarkers;
  /** the prompt opened the thinking block */
  open: boolean;
  /** the tokens forced when the budget is spent: the budget message (if any), then the end marker */
  endTokens: readonly number[];
  vocabSize: number;
  /** a token's text */
  text: (token: number) => string;
  /** the grammar of the answer after the thinking */
  grammar?: TokenConstraint;
}

export class ThinkingConstraint implements TokenConstraint {
  private state: 'start' | 'thinking' | 'forcing' | 'answer';
  private text = '';
  private thought = 0;
  private forced = 0;
  private readonly all: Int32Array;

  constructor(private readonly spec: ThinkingSpec) {
    this.state = spec.open ? 'thinking' : spec.grammar ? 'answer' : 'start';
    this.all = new Int32Array(Math.ceil(spec.vocabSize / 32)).fill(-1);
    if (this.state === 'thinking') this.checkBudget();
  }

  mask(): Int32Array | Promise<Int32Array> {
    if (this.state === 'answer') return this.spec.grammar?.mask() ?? this.all;
    if (this.state !== 'forcing') return this.all;
    const m = new Int32Array(this.all.length);
    const t = this.spec.endTokens[this.forced]!;
    m[t >>> 5] = 1 << (t & 31);
    return m;
  }

  accept(token: number): void {
    const { start, end } = this.spec.markers;
    switch (this.state) {
      case 'answer':
        this.spec.grammar?.accept(token);
        return;
      case 'forcing':
        if (token !== this.spec.endTokens[this.forced]) throw new Error(`thinking budget: token ${token} is not the forced end marker's`);
        if (++this.forced >= this.spec.endTokens.length) this.state = 'answer';
        return;
      case 'start': {
        this.text += this.spec.text(token);
        const body = this.text.trimStart();
        if (body.startsWith(start)) {
          this.state = 'thinking';
          this.text = body.slice(start.length);
          this.checkBudget();
        } else if (!start.startsWith(body)) this.state = 'answer';
        return;
      }
      case 'thinking':
        this.text += this.spec.text(token);
        this.thought++;
        if (this.text.includes(end)) this.state = 'answer';
        else this.checkBudget();
        return;
    }
  }

  dispose(): void {
    this.spec.grammar?.dispose?.();
  }

  private checkBudget(): void {
    if (this.spec.budget >= 0 && this.thought >= this.spec.budget && this.spec.endTokens.length > 0) this.state = 'forcing';
  }
}

/** The constraint of a reply: `grammar` alone, or wrapped when the reply may think or has a budget. */
export function thinkingConstraint(spec: Omit<ThinkingSpec, 'endTokens'> & { endTokens: () => readonly number[] }): TokenConstraint | undefined {
  const { grammar, open, budget } = spec;
  if (grammar ? !open : budget < 0) return grammar;
  return new ThinkingConstraint({ ...spec, endTokens: spec.endTokens() });
}
