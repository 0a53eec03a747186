// What orchestrators read from a replica, besides the OpenAI API: the liveness answer and the metric
// names the ecosystem's autoscalers and routers look for.
//
// Probes. Kubernetes restarts a container whose liveness probe fails, and stops sending traffic to one
// whose readiness probe fails. /health is readiness (503 while draining, so the pod leaves the
// Service's endpoints), so it must not be the liveness probe: a draining pod would be killed in the
// middle of its drain. /livez answers 200 as long as the process and its event loop run, draining
// included (that it answers at all is the proof that the event loop turns).
//
// Metric names. Our own gauges (wf_requests_queued, wf_requests_processing, wf_kv_cache_usage_ratio)
// are what the Gateway API Inference Extension's endpoint picker needs (queue length, running requests,
// KV-cache use 0..1): its flags take the names. vLLM's production stack, llm-d and many KEDA examples
// query vLLM's names instead; `--metrics-vllm` adds them, with the same values and vLLM's
// `model_name` label. vLLM's kv_cache_usage_perc is a fraction 0..1 despite its name, as ours is.
import { Exposition } from './metrics.js';
import type { EngineSnapshot } from './monitor.js';

/** vLLM's name for each of our gauges. */
export const VLLM_ALIASES = {
  waiting: 'vllm:num_requests_waiting',
  running: 'vllm:num_requests_running',
  kvUsage: 'vllm:kv_cache_usage_perc',
} as const;

/** The body of GET /livez. */
export function livenessBody(draining: boolean): { status: 'alive'; draining: boolean } {
  return { status: 'alive', draining };
}

/** The vLLM-named gauges, appended to /metrics when --metrics-vllm is on. */
export function vllmMetrics(s: EngineSnapshot, modelName: string): string {
  const labels = { model_name: modelName };
  const running = s.slots.filter((x) => x.busy).length;
  const usage = s.kv.total > 0 ? s.kv.used / s.kv.total : 0;
  return new Exposition()
    .labelledGauge(VLLM_ALIASES.waiting, 'Requests waiting for a slot (same value as wf_requests_queued).', [{ labels, value: s.queued }])
    .labelledGauge(VLLM_ALIASES.running, 'Requests being generated now (same value as wf_requests_processing).', [{ labels, value: running }])
    .labelledGauge(VLLM_ALIASES.kvUsage, 'KV cache use, 0..1 (same value as wf_kv_cache_usage_ratio).', [{ labels, value: usage }])
    .text();
}
