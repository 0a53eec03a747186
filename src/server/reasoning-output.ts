// Reasoning in the model's reply, as llama-server returns it (--reasoning-format and the request's
// `reasoning_format`): the text a thinking model writes between its template's thinking markers
// (<think>...</think>) is the reply's reasoning, apart from its content.
//
//   none             the reply is left as it is, markers included, all in `content`
//   auto, deepseek   the thinking goes to `reasoning_content` (streamed as `delta.reasoning_content`),
//                    never into `content` (auto is llama-server's default and means deepseek)
//   deepseek-legacy  `reasoning_content` is filled too, but `content` keeps the whole text with its
//                    markers; streamed, everything goes out as content (llama-server's
//                    reasoning_in_content)
//
// A thinking block is recognised only where a reply starts (after a little white space), or from the first
// token when the prompt already opened it (DeepSeek R1's and QwQ's templates end with "<think>\n"):
// a marker later in the text is the model quoting it, and stays content. A block still open when the
// generation ends (max_tokens) stays reasoning. White space around the thinking, and between it and
// the answer, is trimmed. Streaming holds back what could still be the start of a marker (or white
// space that may end up trimmed) until the next text decides it, so no partial marker reaches content.
import { ApiError, invalidParam } from './errors.js';

export type ReasoningFormat = 'none' | 'auto' | 'deepseek' | 'deepseek-legacy';
export const REASONING_FORMATS: readonly ReasoningFormat[] = ['none', 'auto', 'deepseek', 'deepseek-legacy'];

export interface ThinkingMarkers {
  start: string;
  end: string;
}

/** What one request does with the reply's reasoning. */
export interface ReasoningPlan {
  format: ReasoningFormat;
  markers: ThinkingMarkers;
  /** the prompt ends inside an open thinking block: the reply starts as reasoning */
  open: boolean;
  /** most thinking tokens (-1: unlimited); thinking-constraint.ts */
  budget: number;
  /** text forced before the end marker when the budget is spent ("" for none) */
  budgetMessage: string;
}

export const THINK: ThinkingMarkers = { start: '<think>', end: '</think>' };
// markers of templates that do not use <think> (Magistral / Mistral's, MiniMax's)
const OTHER_MARKERS: ThinkingMarkers[] = [
  { start: '[THINK]', end: '[/THINK]' },
  { start: '<mm:think>', end: '</mm:think>' },
];

/** The thinking markers a chat template uses (<think> when it shows none). */
export function thinkingMarkers(templateSource: string): ThinkingMarkers {
  if (templateSource.includes(THINK.start)) return THINK;
  return OTHER_MARKERS.find((m) => templateSource.includes(m.start)) ?? THINK;
}

/** True when the prompt's text ends inside a thinking block it opened (white space may follow the marker). */
export function opensThinking(promptTail: string, markers: ThinkingMarkers): boolean {
  const at = promptTail.lastIndexOf(markers.start);
  if (at < 0 || promptTail.indexOf(markers.end, at) >= 0) return false;
  return promptTail.slice(at + markers.start.length).trim() === '';
}

/** A request's `reasoning_format` (or --reasoning-format's value) checked; `where` names the field. */
export function parseReasoningFormat(v: unknown, where = 'reasoning_format'): ReasoningFormat {
  if (typeof v === 'string' && (REASONING_FORMATS as readonly string[]).includes(v)) return v as ReasoningFormat;
  const got = typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
  throw invalidParam(where, `'${where}' must be one of ${REASONING_FORMATS.join(', ')}, got ${got}`);
}

/** The request body's `reasoning_format`, or undefined when absent. */
export function reasoningFormatField(body: Record<string, unknown>): ReasoningFormat | undefined {
  const v = body.reasoning_format;
  return v === undefined || v === null ? undefined : parseReasoningFormat(v);
}

/**
 * The request body's thinking budget: `reasoning_budget_tokens` (or `thinking_budget_tokens`, what
 * /v1/messages' thinking.budget_tokens becomes), as llama-server reads them; -1 or absent: the server's.
 */
export function reasoningBudgetField(body: Record<string, unknown>): number | undefined {
  for (const key of ['reasoning_budget_tokens', 'thinking_budget_tokens']) {
    const v = body[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -1) throw invalidParam(key, `'${key}' must be -1 (the server's budget), 0 (no thinking) or a positive integer, got ${JSON.stringify(v)}`);
    return v === -1 ? undefined : v;
  }
  return undefined;
}

/** The request body's `reasoning_budget_message` (llama-server's), or undefined when absent. */
export function reasoningBudgetMessageField(body: Record<string, unknown>): string | undefined {
  const v = body.reasoning_budget_message;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidParam('reasoning_budget_message', `'reasoning_budget_message' must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export interface ReasoningPiece {
  kind: 'reasoning' | 'content';
  text: string;
}

/** The length of the longest suffix of `text` that is a proper prefix of `marker`. */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (marker.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}

const WS = /\s/;
/** white space characters a thinking block's start marker may follow (more: the reply is content) */
const MAX_LEADING_SPACE = 8;

/**
 * Splits a reply as it streams into reasoning and content pieces. push() returns the pieces that
 * the text so far decides; finish() the rest. The pieces of a whole reply pushed at once are the
 * same as those of its tokens pushed one by one.
 */
export class ReasoningReader {
  private state: 'start' | 'thinking' | 'after' | 'content';
  private held = '';
  private readonly extract: boolean;
  /** reasoning text, for legacy's non-stream `reasoning_content` */
  reasoning: string | null = null;

  constructor(private readonly plan: ReasoningPlan) {
    this.extract = plan.format !== 'none';
    this.state = !this.extract ? 'content' : plan.open ? 'thinking' : 'start';
    if (plan.open && this.extract) this.reasoning = '';
  }

  /** true once the reply is past any thinking (its content is being read) */
  get inContent(): boolean {
    return this.state === 'after' || this.state === 'content';
  }

  push(text: string): ReasoningPiece[] {
    const out: ReasoningPiece[] = [];
    this.held += text;
    this.step(out, false);
    return out;
  }

  finish(): ReasoningPiece[] {
    const out: ReasoningPiece[] = [];
    this.step(out, true);
    return out;
  }

  private emit(out: ReasoningPiece[], kind: ReasoningPiece['kind'], text: string): void {
    if (!text) return;
    if (kind === 'reasoning') this.reasoning = (this.reasoning ?? '') + text;
    const last = out[out.length - 1];
    if (last && last.kind === kind) last.text += text;
    else out.push({ kind, text });
  }

  private step(out: ReasoningPiece[], end: boolean): void {
    const { start: open, end: close } = this.plan.markers;
    for (;;) {
      const h = this.held;
      switch (this.state) {
        case 'content':
          this.emit(out, 'content', h);
          this.held = '';
          return;
        case 'start': {
          // white space, then the start marker (or a prefix of it), decides whether the reply thinks
          const body = h.trimStart();
          if (body.startsWith(open)) {
            this.held = body.slice(open.length);
            this.state = 'thinking';
            this.reasoning ??= '';
            continue;
          }
          // undecided yet (a few white space characters may come first; a reply of white space is content)
          if (!end && open.startsWith(body) && h.length - body.length <= MAX_LEADING_SPACE) return;
          this.state = 'content';
          continue;
        }
        case 'thinking': {
          const at = h.indexOf(close);
          if (at >= 0) {
            this.emitThinking(out, h.slice(0, at), true);
            this.held = h.slice(at + close.length);
            this.state = 'after';
            continue;
          }
          if (end) {
            this.emitThinking(out, h, true); // unclosed at the end: still reasoning
            this.held = '';
            return;
          }
          // hold back a possible partial end marker, and trailing white space (trimmed if the block ends)
          let keep = h.length - partialSuffix(h, close);
          while (keep > 0 && WS.test(h[keep - 1]!)) keep--;
          this.emitThinking(out, h.slice(0, keep), false);
          this.held = h.slice(keep);
          return;
        }
        case 'after': {
          // white space between the thinking and the answer is dropped
          const body = h.trimStart();
          this.held = body;
          if (body) {
            this.state = 'content';
            continue;
          }
          return;
        }
      }
    }
  }

  /** reasoning text, its leading white space trimmed; `last` trims its end too */
  private emitThinking(out: ReasoningPiece[], text: string, last: boolean): void {
    let t = this.reasoning === '' ? text.trimStart() : text;
    if (last) t = t.trimEnd();
    this.emit(out, 'reasoning', t);
  }
}

/** A whole reply split: the reasoning (null when there was no thinking block) and the content. */
export function splitReasoning(text: string, plan: ReasoningPlan): { reasoning: string | null; content: string } {
  if (plan.format === 'none') return { reasoning: null, content: text };
  const r = new ReasoningReader(plan);
  const pieces = [...r.push(text), ...r.finish()];
  const reasoning = r.reasoning;
  // deepseek-legacy keeps the whole text (markers included) as content
  if (plan.format === 'deepseek-legacy') return { reasoning, content: plan.open ? plan.markers.start + text : text };
  return { reasoning, content: pieces.filter((p) => p.kind === 'content').map((p) => p.text).join('') };
}

/** A reader for streaming, or undefined when the stream is the model's text as it is (none; legacy streams inline). */
export function streamReader(plan: ReasoningPlan | undefined): ReasoningReader | undefined {
  if (!plan || plan.format === 'none' || plan.format === 'deepseek-legacy') return undefined;
  return new ReasoningReader(plan);
}

/** For errors that name the flag at start (wf_server --reasoning-format). */
export function reasoningFormatFlag(v: string): ReasoningFormat {
  try {
    return parseReasoningFormat(v, '--reasoning-format');
  } catch (e) {
    if (e instanceof ApiError) throw new Error(e.message);
    throw e;
  }
}

/** Server-wide settings: --reasoning-format (default auto) and --reasoning-budget (default -1, unlimited). */
export interface ReasoningOutputOptions {
  format?: ReasoningFormat;
  budget?: number;
  /** --reasoning-budget-message */
  budgetMessage?: string;
}

export function reasoningOutputOptions(o: ReasoningOutputOptions = {}): Required<ReasoningOutputOptions> {
  const budget = o.budget ?? -1;
  if (!Number.isInteger(budget) || budget < -1) throw new Error(`the reasoning budget must be -1 (unlimited), 0 (no thinking) or a positive integer, got ${budget}`);
  return { format: o.format ?? 'auto', budget, budgetMessage: o.budgetMessage ?? '' };
}

/** A request's plan: its format, the template's markers, and whether the prompt's end (`promptTail`, decoded) opened a thinking block. */
export function planReasoning(templateSource: string, format: ReasoningFormat, promptTail: string, prefill?: string, budget = -1, budgetMessage = ''): ReasoningPlan {
  const markers = thinkingMarkers(templateSource);
  // a prefilled assistant turn (continue_final_message) may itself be inside its thinking
  const prefillOpen = !!prefill && prefill.lastIndexOf(markers.start) > prefill.lastIndexOf(markers.end);
  return { format, markers, open: opensThinking(promptTail, markers) || prefillOpen, budget, budgetMessage };
}
