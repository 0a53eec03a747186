// llama-server's stream telemetry, for every streamed route (/completion, /v1/completions,
// /v1/chat/completions, /v1/responses):
//   - `return_progress: true`: while the prompt is read (in steps of at most --batch-size rows), a
//     chunk with `prompt_progress` {total, cache, processed, time_ms} goes out as reading starts
//     (processed = cache: the tokens found in the KV cache) and after each step that read some of
//     it; the last one has processed = total. A web UI shows it as a progress bar for long prompts.
//   - `timings_per_token: true`: every streamed chunk (progress ones too) carries `timings` as the
//     response's end does: prompt and generation counts and times so far, per token and per second.
// Both are llama.cpp fields: OpenAI clients ignore the extra keys, and nothing is sent unless asked.
import { invalidType } from './errors.js';
import type { PromptProgress, RunHandle } from './service.js';

/** The request fields (requests.ts puts them on GenerationParams). */
export interface TelemetryParams {
  returnProgress?: boolean;
  timingsPerToken?: boolean;
}

/** `return_progress` and `timings_per_token` of a request body (booleans; anything else is a 400). */
export function parseTelemetry(b: Record<string, unknown>): TelemetryParams {
  const out: TelemetryParams = {};
  for (const [key, field] of [['return_progress', 'returnProgress'], ['timings_per_token', 'timingsPerToken']] as const) {
    const v = b[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw invalidType(key, 'a boolean', v);
    if (v) out[field] = true;
  }
  return out;
}

/** prompt_progress as llama-server sends it */
export interface ProgressJson extends PromptProgress {
  /** milliseconds since reading began */
  time_ms: number;
}

/** timings as llama-server's streamed chunks carry them */
export interface TimingsJson {
  cache_n: number;
  prompt_n: number;
  prompt_ms: number;
  prompt_per_token_ms: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_token_ms: number;
  predicted_per_second: number;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const now = () => performance.now();

/**
 * One streamed generation's telemetry. Made by streamTelemetry() before the handle's events are
 * read; the route calls token() for each generated token and adds extra() to each chunk it sends.
 */
export class StreamTelemetry {
  private readonly t0 = now();
  private last: PromptProgress | null = null;
  /** when the last step that read some of the prompt ended (ms, performance.now) */
  private promptAt: number | null = null;
  private tokens = 0;

  constructor(readonly wantProgress: boolean, readonly wantTimings: boolean) {}

  /** The prompt's reading moved on; returns the progress chunk's fields when the request asked for them. */
  progress(p: PromptProgress): { prompt_progress: ProgressJson; timings?: TimingsJson } | undefined {
    const t = now();
    const first = this.last === null;
    this.last = p;
    if (!first) this.promptAt = t;
    if (!this.wantProgress) return undefined;
    return { prompt_progress: { ...p, time_ms: Math.round(t - this.t0) }, ...this.extra() };
  }

  /** A token was generated. */
  token(): void {
    this.tokens++;
  }

  /** `timings` so far when the request asked for them per token, else nothing. */
  extra(): { timings?: TimingsJson } {
    return this.wantTimings ? { timings: this.timings() } : {};
  }

  timings(): TimingsJson {
    const p = this.last;
    const promptN = p ? p.processed - p.cache : 0;
    const promptMs = this.promptAt === null ? 0 : this.promptAt - this.t0;
    const predictedMs = this.tokens > 0 && this.promptAt !== null ? Math.max(0, now() - this.promptAt) : 0;
    // the first token comes from the prompt's last logits: n tokens took n - 1 decode steps
    const steps = Math.max(0, this.tokens - 1);
    return {
      cache_n: p ? p.cache : 0,
      prompt_n: promptN,
      prompt_ms: r3(promptMs),
      prompt_per_token_ms: promptN > 0 ? r3(promptMs / promptN) : 0,
      prompt_per_second: promptMs > 0 ? r3((promptN * 1000) / promptMs) : 0,
      predicted_n: this.tokens,
      predicted_ms: r3(predictedMs),
      predicted_per_token_ms: steps > 0 && predictedMs > 0 ? r3(predictedMs / steps) : 0,
      predicted_per_second: steps > 0 && predictedMs > 0 ? r3((steps * 1000) / predictedMs) : 0,
    };
  }
}

/**
 * The telemetry of a streamed generation that asked for any (undefined otherwise). `send` gets the
 * fields of each progress chunk (only with return_progress); the route wraps them in its own shape.
 */
export function streamTelemetry(
  params: TelemetryParams,
  handle: Pick<RunHandle, 'onPromptProgress'>,
  send: (fields: { prompt_progress: ProgressJson; timings?: TimingsJson }) => void,
): StreamTelemetry | undefined {
  if (!params.returnProgress && !params.timingsPerToken) return undefined;
  const t = new StreamTelemetry(!!params.returnProgress, !!params.timingsPerToken);
  handle.onPromptProgress((p) => {
    const fields = t.progress(p);
    if (fields) send(fields);
  });
  return t;
}
