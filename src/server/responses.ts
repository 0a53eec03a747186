// OpenAI response objects: chat.completion, chat.completion.chunk and text_completion (whole and
// streamed), usage, logprobs in both endpoints' formats, plus llama.cpp-style `timings`.
import type { FinishReason } from '../generate/stop.js';
import type { GenerationResult } from '../generate/generate.js';
import type { TokenLogprobs } from '../generate/sampler.js';
import type { ToolReply } from './tool-calls.js';

export interface Piece {
  text: string;
  bytes: number[];
}

export type PieceOf = (id: number) => Piece;

let counter = 0;
/** A response id: prefix + time + counter, unique within the process. */
export function responseId(prefix: string): string {
  counter = (counter + 1) % 0x100000;
  return `${prefix}-${Date.now().toString(36)}${counter.toString(36).padStart(4, '0')}${Math.floor(Math.random() * 0x10000).toString(36)}`;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** OpenAI has only 'stop' and 'length'; an aborted generation that still answers reports 'stop'. */
export function finishReason(r: FinishReason): 'stop' | 'length' {
  return r === 'length' ? 'length' : 'stop';
}

/** JSON has no -Infinity: a banned token's logprob is reported as -9999 (OpenAI's floor). */
function lp(v: number): number {
  return Number.isFinite(v) ? v : -9999;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/**
 * Tokens the model generated for usage.completion_tokens: every sampled token, the end-of-generation
 * token included (it is not in the text, but it was sampled). llama-server counts the same way, so
 * completion_tokens equals timings.predicted_n, and it never exceeds max_tokens (a generation cut
 * by max_tokens samples no stop token).
 */
export function completionTokens(result: GenerationResult): number {
  return result.timings.generatedTokens;
}

export function usage(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** llama.cpp's `timings` object (prompt figures count only the prompt tokens not found in the cache). */
export function timings(result: GenerationResult, cachedTokens: number) {
  const t = result.timings;
  // prompt_n: the prompt tokens actually evaluated (the cached ones were not)
  const evaluated = Math.max(0, t.promptTokens - cachedTokens);
  return {
    cache_n: cachedTokens,
    prompt_n: evaluated,
    prompt_ms: r2(t.promptMs),
    prompt_per_second: t.promptMs > 0 ? r2((evaluated * 1000) / t.promptMs) : 0,
    predicted_n: t.generatedTokens,
    predicted_ms: r2(t.generateMs),
    predicted_per_second: r2(t.tokensPerSecond),
  };
}

// ---- chat logprobs: { content: [{ token, logprob, bytes, top_logprobs: [...] }] }

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatLogprob(l: TokenLogprobs, piece: PieceOf, topN: number): ChatTokenLogprob {
  const p = piece(l.token);
  return {
    token: p.text,
    logprob: lp(l.logprob),
    bytes: p.bytes,
    top_logprobs: l.top.slice(0, topN).map((t) => {
      const q = piece(t.token);
      return { token: q.text, logprob: lp(t.logprob), bytes: q.bytes };
    }),
  };
}

// ---- completion logprobs: { tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset }

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[] | null;
  text_offset: number[];
}

export function completionLogprobs(list: TokenLogprobs[], piece: PieceOf, topN: number, startOffset: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: topN > 0 ? [] : null, text_offset: [] };
  let offset = startOffset;
  for (const l of list) {
    const text = piece(l.token).text;
    out.tokens.push(text);
    out.token_logprobs.push(lp(l.logprob));
    out.text_offset.push(offset);
    offset += text.length;
    if (out.top_logprobs) {
      const top: Record<string, number> = {};
      for (const t of l.top.slice(0, topN)) {
        const k = piece(t.token).text;
        if (!(k in top)) top[k] = lp(t.logprob);
      }
      out.top_logprobs.push(top);
    }
  }
  return out;
}

// ---- whole responses

export interface ResponseBase {
  id: string;
  created: number;
  model: string;
}

/**
 * system_fingerprint: a build tag in llama.cpp's form (`b` + build number + commit), which clients of
 * llama-server check for; here `b` + the package version.
 */
export const SYSTEM_FINGERPRINT = 'b0.1.0-wrinklefree';

/** The fields every response object starts with (id, object, created, model, fingerprint). */
function envelope<O extends string>(base: ResponseBase, object: O) {
  return { id: base.id, object, created: base.created, model: base.model, system_fingerprint: SYSTEM_FINGERPRINT };
}

export type ChatFinish = 'stop' | 'length' | 'tool_calls';

/** The finish reason of a reply to a request with tools: 'tool_calls' when it calls some. */
export function toolFinishReason(r: FinishReason, reply: ToolReply): ChatFinish {
  return reply.kind === 'calls' && r !== 'length' ? 'tool_calls' : finishReason(r);
}

/** `reply`: the reply of a request with tools (tool-calls.ts), instead of the plain text. */
export function chatCompletion(
  base: ResponseBase,
  result: GenerationResult,
  u: Usage,
  logprobs: ChatTokenLogprob[] | null,
  extra: Record<string, unknown> = {},
  reply?: ToolReply,
) {
  const message =
    reply?.kind === 'calls'
      ? { role: 'assistant' as const, content: reply.content ?? null, refusal: null, tool_calls: reply.calls }
      : { role: 'assistant' as const, content: reply ? reply.content : result.text, refusal: null };
  return {
    ...envelope(base, 'chat.completion'),
    choices: [
      {
        index: 0,
        message,
        logprobs: logprobs ? { content: logprobs, refusal: null } : null,
        finish_reason: reply ? toolFinishReason(result.finishReason, reply) : finishReason(result.finishReason),
      },
    ],
    usage: u,
    ...extra,
  };
}

export function textCompletion(
  base: ResponseBase,
  result: GenerationResult,
  u: Usage,
  logprobs: CompletionLogprobs | null,
  extra: Record<string, unknown> = {},
) {
  return {
    ...envelope(base, 'text_completion'),
    choices: [{ index: 0, text: result.text, logprobs, finish_reason: finishReason(result.finishReason) }],
    usage: u,
    ...extra,
  };
}

// ---- stream chunks

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

export interface ChatDelta {
  role?: 'assistant';
  content?: string | null;
  /** thinking, apart from the content (reasoning-output.ts) */
  reasoning_content?: string;
  tool_calls?: ToolCallDelta[];
}

export function chatChunk(
  base: ResponseBase,
  delta: ChatDelta,
  finish: ChatFinish | null,
  logprobs: ChatTokenLogprob[] | null = null,
) {
  return {
    ...envelope(base, 'chat.completion.chunk'),
    choices: [{ index: 0, delta, logprobs: logprobs ? { content: logprobs, refusal: null } : null, finish_reason: finish }],
  };
}

export function chatUsageChunk(base: ResponseBase, u: Usage, extra: Record<string, unknown> = {}) {
  return {
    ...envelope(base, 'chat.completion.chunk'),
    choices: [],
    usage: u,
    ...extra,
  };
}

export function completionChunk(
  base: ResponseBase,
  text: string,
  finish: 'stop' | 'length' | null,
  logprobs: CompletionLogprobs | null = null,
) {
  return {
    ...envelope(base, 'text_completion'),
    choices: [{ index: 0, text, logprobs, finish_reason: finish }],
  };
}

export function completionUsageChunk(base: ResponseBase, u: Usage, extra: Record<string, unknown> = {}) {
  return {
    ...envelope(base, 'text_completion'),
    choices: [],
    usage: u,
    ...extra,
  };
}
