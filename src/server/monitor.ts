// What /metrics and /slots report, gathered on the HTTP side: every generation request is followed
// from the moment it arrives to its end (tokens, time to first token, time between tokens), and the
// engine side is asked only for a snapshot of its slots and KV memory (GenerationService.snapshot()).
//
// Quantities follow llama-server's (prompt tokens, predicted tokens, requests processing / waiting)
// under a wf_ prefix, plus two latency histograms and the process's resident memory.
//
// Time to first token runs from the request's arrival (body read and queue wait included: what a
// client waits) to the first generated token; time between tokens is the gap between consecutive
// generated tokens of one request.
import type { GenerationEvent } from '../generate/generate.js';
import { resolveSamplerOptions } from '../generate/sampler.js';
import { Exposition, Histogram } from './metrics.js';
import type { GenerationParams } from './requests.js';


/** One slot as the engine side sees it. */
export interface SlotState {
  id: number;
  /** tokens this slot's sequence may hold */
  n_ctx: number;
  /** a generation runs on it */
  busy: boolean;
  /** tokens now in its KV cache */
  n_cached: number;
  /** the text those tokens spell, shortened (what the prefix cache holds there) */
  cached_text?: string;
}

/** The engine side's state, read by /metrics and /slots. */
export interface EngineSnapshot {
  slots: SlotState[];
  /** requests waiting for a slot */
  queued: number;
  /** KV cache positions in use and in all */
  kv: { used: number; total: number };
  /** finished conversations kept in the pool for reuse beyond the slots' own (prefix cache) */
  parked?: { entries: number; tokens: number };
}

/** Bucket bounds in seconds. */
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80];
const TBT_BUCKETS = [0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5];

/** A generation request being (or last) served on a slot. */
export interface Task {
  readonly id: number;
  readonly slot: number;
  readonly params: GenerationParams;
  readonly promptTokens: number;
  /** performance.now() at arrival */
  readonly arrived: number;
  /** generated tokens so far */
  decoded: number;
  newLine: boolean;
  lastTokenAt: number | null;
  done: boolean;
}

export interface TaskEnd {
  /** prompt tokens evaluated (not found in the cache) */
  promptEvaluated: number;
  /** prompt tokens not evaluated: found in a KV cache (the slot's own, or copied from another) */
  promptCached?: number;
  /** tokens sampled (the stop token included, as llama-server counts them) */
  predicted: number;
  promptMs: number;
  predictedMs: number;
  finishReason: string;
}

export class Monitor {
  private nextTask = 0;
  private readonly lastBySlot = new Map<number, Task>();
  private promptTokens = 0;
  private promptCached = 0;
  private promptSeconds = 0;
  private predicted = 0;
  private predictedSeconds = 0;
  private readonly finished = new Map<string, number>();
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly tbt = new Histogram(TBT_BUCKETS);

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** A request got a slot. */
  begin(slot: number, params: GenerationParams, promptTokens: number, arrived: number): Task {
    const task: Task = { id: this.nextTask++, slot, params, promptTokens, arrived, decoded: 0, newLine: false, lastTokenAt: null, done: false };
    this.lastBySlot.set(slot, task);
    return task;
  }

  /** Passes a generation's events through, timing its tokens. */
  async *watch<R>(task: Task, events: AsyncIterator<GenerationEvent, R>): AsyncGenerator<GenerationEvent, R, undefined> {
    for (;;) {
      const r = await events.next();
      if (r.done) return r.value;
      if (r.value.type === 'token') this.token(task, r.value.text);
      yield r.value;
    }
  }

  token(task: Task, text: string): void {
    const t = this.clock();
    if (task.lastTokenAt === null) this.ttft.observe((t - task.arrived) / 1000);
    else this.tbt.observe((t - task.lastTokenAt) / 1000);
    task.lastTokenAt = t;
    task.decoded++;
    if (text.includes('\n')) task.newLine = true;
  }

  /** The request ended; `end` is null when it ended before generating (e.g. an error). */
  end(task: Task, end: TaskEnd | null): void {
    if (task.done) return;
    task.done = true;
    if (!end) return;
    this.promptTokens += end.promptEvaluated;
    this.promptCached += end.promptCached ?? 0;
    this.promptSeconds += end.promptMs / 1000;
    this.predicted += end.predicted;
    this.predictedSeconds += end.predictedMs / 1000;
    task.decoded = end.predicted;
    this.finished.set(end.finishReason, (this.finished.get(end.finishReason) ?? 0) + 1);
  }

  /** The running totals, for llama-server's metric names (llama-metrics.ts). */
  totals(): { promptTokens: number; promptCached: number; promptSeconds: number; predicted: number; predictedSeconds: number } {
    const { promptTokens, promptCached, promptSeconds, predicted, predictedSeconds } = this;
    return { promptTokens, promptCached, promptSeconds, predicted, predictedSeconds };
  }

  /** The Prometheus text of /metrics. */
  metrics(s: EngineSnapshot, memory: { rss: number; heapUsed: number; heapTotal: number; external: number }): string {
    const busy = s.slots.filter((x) => x.busy).length;
    return new Exposition()
      .counter('wf_prompt_tokens_total', 'Prompt tokens evaluated (tokens found in a KV cache are not counted).', this.promptTokens)
      .counter('wf_prompt_tokens_cached_total', 'Prompt tokens reused from a KV cache instead of evaluated (prefix cache).', this.promptCached)
      .gauge('wf_prompt_cache_parked_entries', 'Finished conversations kept in the KV pool besides the slots\' caches.', s.parked?.entries ?? 0)
      .gauge('wf_prompt_cache_parked_tokens', 'Tokens those parked conversations hold.', s.parked?.tokens ?? 0)
      .counter('wf_prompt_seconds_total', 'Time spent evaluating prompts, in seconds.', this.promptSeconds)
      .counter('wf_tokens_predicted_total', 'Tokens generated (a stop token counts, as in usage.completion_tokens).', this.predicted)
      .counter('wf_tokens_predicted_seconds_total', 'Time spent generating tokens, in seconds.', this.predictedSeconds)
      .labelledCounter(
        'wf_requests_finished_total',
        'Generation requests finished, by finish reason (stop, length, abort).',
        [...this.finished].map(([reason, value]) => ({ labels: { reason }, value })),
      )
      .gauge('wf_requests_processing', 'Requests being generated now (slots busy).', busy)
      .gauge('wf_requests_queued', 'Requests waiting for a slot.', s.queued)
      .gauge('wf_slots', 'Parallel slots (-np).', s.slots.length)
      .gauge('wf_kv_cache_tokens', 'KV cache positions holding a token.', s.kv.used)
      .gauge('wf_kv_cache_usage_ratio', 'KV cache positions in use / all positions (0..1).', s.kv.total > 0 ? s.kv.used / s.kv.total : 0)
      .histogram('wf_time_to_first_token_seconds', 'From a request\'s arrival to its first generated token, in seconds.', this.ttft)
      .histogram('wf_time_between_tokens_seconds', 'Between consecutive generated tokens of one request, in seconds.', this.tbt)
      .gauge('process_resident_memory_bytes', 'Resident memory of the server process, in bytes.', memory.rss)
      .gauge('nodejs_heap_size_used_bytes', 'JavaScript heap in use, in bytes (wasm memory is not in it).', memory.heapUsed)
      .gauge('nodejs_heap_size_total_bytes', 'JavaScript heap reserved by V8 (used or not), in bytes.', memory.heapTotal)
      .gauge('nodejs_external_memory_bytes', 'Memory outside the JavaScript heap that V8 accounts for (buffers; wasm memory only when not shared), in bytes.', memory.external)
      .text();
  }

  /** The JSON of /slots: one object per slot, shaped like llama-server's. */
  slots(s: EngineSnapshot): SlotReport[] {
    return s.slots.map((slot) => {
      const t = this.lastBySlot.get(slot.id);
      const live = !!t && !t.done && slot.busy;
      const maxTokens = t?.params.maxTokens;
      return {
        id: slot.id,
        id_task: t?.id ?? -1,
        n_ctx: slot.n_ctx,
        n_cached: slot.n_cached,
        cached_text: slot.cached_text ?? '',
        speculative: false,
        is_processing: slot.busy,
        // a slot that has served no request has no settings to show (as llama-server)
        ...(t ? { params: paramsReport(t.params) } : {}),
        prompt_tokens: t?.promptTokens ?? 0,
        // a list, as llama-server's (one entry per sequence of the slot; one here)
        next_token: [
          {
            has_next_token: live,
            has_new_line: t?.newLine ?? false,
            // an idle slot has no budget left over from its last task (llama-server reports -1 and 0)
            n_remain: !live || maxTokens === undefined ? -1 : Math.max(0, maxTokens - (t?.decoded ?? 0)),
            n_decoded: live ? t?.decoded ?? 0 : 0,
          },
        ],
      };
    });
  }
}

export interface SlotReport {
  id: number;
  id_task: number;
  n_ctx: number;
  n_cached: number;
  /** the start and end of what its cache holds */
  cached_text: string;
  speculative: false;
  is_processing: boolean;
  /** the last request's settings (absent before the first) */
  params?: ReturnType<typeof paramsReport>;
  prompt_tokens: number;
  next_token: { has_next_token: boolean; has_new_line: boolean; n_remain: number; n_decoded: number }[];
}

/** A request's generation settings under llama-server's names (the sampler's defaults filled in). */
function paramsReport(p: GenerationParams) {
  const s = resolveSamplerOptions(p.sampler); // the sampler's own defaults, not a copy of them
  return {
    n_predict: p.maxTokens ?? -1,
    max_tokens: p.maxTokens ?? -1,
    seed: p.sampler.seed ?? -1,
    temperature: s.temperature,
    top_k: s.topK,
    top_p: s.topP,
    min_p: s.minP,
    repeat_last_n: s.repeatLastN,
    repeat_penalty: s.repeatPenalty,
    presence_penalty: s.presencePenalty,
    frequency_penalty: s.frequencyPenalty,
    ignore_eos: p.ignoreEos,
    stream: p.stream,
    n_probs: p.logprobs ?? 0,
    stop: [...p.stop],
  };
}
