// llama-server's metric families (`llamacpp:` names) beside WrinkleFree's own `wf_` ones in /metrics,
// so dashboards and alerts written for llama-server read wf_server too. Same counters, its names.
import { Exposition } from './metrics.js';
import type { EngineSnapshot, Monitor } from './monitor.js';

export interface LlamaMetricsInput {
  totals: ReturnType<Monitor['totals']>;
  snapshot: EngineSnapshot;
  /** forward passes run (one per step, every slot's rows together) */
  decodes: number;
}

/** The most tokens a slot was seen holding, per server (llama-server's n_tokens_max only grows). */
const peaks = new WeakMap<object, number>();

/**
 * The totals at each server's last scrape: the throughput gauges are averaged over the window between
 * two scrapes, as llama-server's (a scrape after an idle spell reads 0, not the average since start).
 */
const windows = new WeakMap<object, LlamaMetricsInput['totals']>();
const perSecond = (n: number, s: number) => (s > 0 ? n / s : 0);

export function llamaMetrics({ totals: t, snapshot: s, decodes }: LlamaMetricsInput, server: object): string {
  const busy = s.slots.filter((x) => x.busy).length;
  const peak = Math.max(peaks.get(server) ?? 0, ...s.slots.map((x) => x.n_cached));
  peaks.set(server, peak);
  const w = windows.get(server);
  windows.set(server, { ...t });
  const promptRate = perSecond(t.promptTokens - (w?.promptTokens ?? 0), t.promptSeconds - (w?.promptSeconds ?? 0));
  const predictedRate = perSecond(t.predicted - (w?.predicted ?? 0), t.predictedSeconds - (w?.predictedSeconds ?? 0));
  // llama-server types this peak a counter without the _total suffix, which Exposition refuses: written by hand
  const nTokensMax = `# HELP llamacpp:n_tokens_max Largest number of tokens a slot held.\n# TYPE llamacpp:n_tokens_max counter\nllamacpp:n_tokens_max ${peak}\n`;
  return new Exposition()
    .counter('llamacpp:prompt_tokens_total', 'Number of prompt tokens processed (cached ones not counted).', t.promptTokens)
    .counter('llamacpp:prompt_tokens_cached_total', 'Number of prompt tokens found in a cache (not evaluated).', t.promptCached)
    .counter('llamacpp:prompt_seconds_total', 'Prompt process time, in seconds.', t.promptSeconds)
    .counter('llamacpp:tokens_predicted_total', 'Number of generation tokens processed.', t.predicted)
    .counter('llamacpp:tokens_predicted_seconds_total', 'Predict process time, in seconds.', t.predictedSeconds)
    .counter('llamacpp:n_decode_total', 'Forward passes run (each batches every active slot).', decodes)
    .counter('llamacpp:spec_decode_num_draft_tokens_total', 'Speculative decoding: draft tokens (none here).', 0)
    .counter('llamacpp:spec_decode_num_accepted_tokens_total', 'Speculative decoding: accepted draft tokens (none here).', 0)
    .counter('llamacpp:spec_decode_num_drafts_total', 'Speculative decoding: drafts (none here).', 0)
    .gauge('llamacpp:prompt_tokens_seconds', 'Average prompt throughput in tokens/s since the last scrape.', promptRate)
    .gauge('llamacpp:predicted_tokens_seconds', 'Average generation throughput in tokens/s since the last scrape.', predictedRate)
    .gauge('llamacpp:requests_processing', 'Number of requests processing.', busy)
    .gauge('llamacpp:requests_deferred', 'Number of requests waiting for a slot.', s.queued)
    .gauge('llamacpp:n_busy_slots_per_decode', 'Tokens generated per forward pass, on average (the generating slots a pass serves).', decodes > 0 ? t.predicted / decodes : 0)
    .text() + nTokensMax;
}
