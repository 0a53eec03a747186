// llama-server's native POST /completion (and /infill's generation): llama.cpp's request fields
// and response shape, over the same GenerationService as the OpenAI routes.
//
// Request: `prompt` is a string, token ids, a mixed list of ids and strings (one sequence), an
// object {prompt_string} or a list of those (one result per prompt, an array answer); `n_predict`
// (-1 = until the end or the context), `n_probs` (completion_probabilities with top_logprobs, or
// probabilities with `post_sampling_probs`), `logit_bias` as [[token or string, bias|false], ...] or
// {"token or string": bias}, `return_tokens`, `response_fields`, `stream`, and the sampling fields
// of requests.ts. `cache_prompt` (default true): false evaluates the whole prompt again.
// `id_slot`: -1 (or absent) lets the scheduler pick the slot whose cache holds the longest prefix of
// the prompt; a slot id runs the request on that slot, waiting while it is busy (a slot restored from
// a file, slot-files.ts, is continued that way).
//
// Response: content, tokens, id_slot, stop, model, tokens_predicted, tokens_evaluated,
// generation_settings, prompt, has_new_line, truncated, stop_type (eos | word | limit | none),
// stopping_word, tokens_cached, timings (with prompt_per_token_ms and predicted_per_token_ms).
// Streamed: one event per token {content, tokens: [id], stop: false, ...} and a last one with
// stop: true and the whole result's fields (content ""); no [DONE] (llama-server sends none here).
import type { GenerationEvent } from '../generate/generate.js';
import { BAN_BIAS, type TokenLogprobs } from '../generate/sampler.js';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.js';
import { type Ctx, SSE_HEADERS, sendEvent, sendJson } from './http.js';
import type { Monitor, Task } from './monitor.js';
import { asObject, parseCompletionRequest, type CompletionRequest } from './requests.js';
import * as R from './responses.js';
import type { GenerationService, RunInfo } from './service.js';
import { streamTelemetry } from './stream-telemetry.js';

type Body = Record<string, unknown>;
const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Most alternatives n_probs may ask for per token. */
export const MAX_N_PROBS = 100;

/** Turns llama.cpp's prompt forms into one token list per prompt. */
export function nativePrompts(service: GenerationService, v: unknown): (string | number[])[] {
  if (v === undefined || v === null) throw missingParam('prompt');
  const one = (p: unknown, where: string): string | number[] => {
    if (typeof p === 'string') return p;
    if (isObject(p)) {
      if (p.multimodal_data !== undefined) {
        throw invalidParam(where, `'${where}' has multimodal_data, but this server's model takes text only`);
      }
      if (typeof p.prompt_string !== 'string') throw invalidType(`${where}.prompt_string`, 'a string', p.prompt_string);
      return p.prompt_string;
    }
    if (Array.isArray(p)) return mixed(p, where);
    throw invalidType(where, 'a string, token ids, or {prompt_string}', p);
  };
  // a list holding a number is ONE sequence (ids and strings mixed); otherwise a list of prompts
  const mixed = (list: unknown[], where: string): number[] => {
    const out: number[] = [];
    list.forEach((x, i) => {
      if (typeof x === 'number') {
        if (!Number.isInteger(x) || x < 0 || x >= service.vocabSize) {
          throw invalidParam(where, `'${where}' token ${x} at index ${i} is not a token id of this model (0..${service.vocabSize - 1})`);
        }
        out.push(x);
      } else if (typeof x === 'string') out.push(...service.tokenize(x, false, true));
      else throw invalidType(`${where}[${i}]`, 'a token id or a string', x);
    });
    if (out.length === 0) throw invalidParam(where, `'${where}' holds no tokens`);
    return out;
  };
  if (Array.isArray(v)) {
    if (v.length === 0) throw invalidParam('prompt', "'prompt' must not be an empty array");
    if (v.some((x) => typeof x === 'number')) return [mixed(v, 'prompt')];
    return v.map((p, i) => one(p, `prompt[${i}]`));
  }
  return [one(v, 'prompt')];
}

/** llama.cpp's logit_bias forms ([[id|text, bias|false]], {"id|text": bias}) as token id -> bias. */
export function nativeLogitBias(service: GenerationService, v: unknown): Record<string, number> | undefined {
  if (v === undefined || v === null) return undefined;
  const out: Record<string, number> = {};
  const add = (key: unknown, bias: unknown, where: string) => {
    let b: number;
    if (bias === false) b = -100;
    else if (typeof bias === 'number' && Number.isFinite(bias)) b = Math.max(-100, Math.min(100, bias));
    else throw invalidType(where, 'a number or false', bias);
    let ids: number[];
    if (typeof key === 'number' || (typeof key === 'string' && /^\d+$/.test(key))) {
      const id = Number(key);
      if (!Number.isInteger(id) || id < 0 || id >= service.vocabSize) {
        throw invalidParam('logit_bias', `'logit_bias' token ${key} is not a token id of this model (0..${service.vocabSize - 1})`);
      }
      ids = [id];
    } else if (typeof key === 'string') ids = service.tokenize(key, false, false);
    else throw invalidType(where, 'a token id or a string', key);
    for (const id of ids) out[String(id)] = b;
  };
  if (Array.isArray(v)) {
    v.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw invalidType(`logit_bias[${i}]`, 'a [token or text, bias] pair', pair);
      add(pair[0], pair[1], `logit_bias[${i}]`);
    });
  } else if (isObject(v)) {
    for (const [k, b] of Object.entries(v)) add(k, b, `logit_bias.${k}`);
  } else throw invalidType('logit_bias', 'a list of [token, bias] pairs or an object', v);
  return out;
}

export interface NativeRequest {
  req: CompletionRequest;
  tokens: number[];
  nProbs: number;
  postSampling: boolean;
  returnTokens: boolean;
  cachePrompt: boolean;
  fields: string[] | null;
}

/** Validates a /completion body into one request per prompt (the prompts already tokenized). */
export function parseNativeCompletion(service: GenerationService, body: unknown, prompts?: number[][]): NativeRequest[] {
  const b = { ...asObject(body) };
  const list = prompts ?? nativePrompts(service, b.prompt);
  const np = b.n_predict;
  if (typeof np === 'number' && Number.isInteger(np) && np < 0) {
    if (np !== -1) throw invalidParam('n_predict', `'n_predict' must be -1 (no limit) or >= 0, got ${np}`);
    delete b.n_predict;
  }
  const nProbs = b.n_probs ?? 0;
  if (typeof nProbs !== 'number' || !Number.isInteger(nProbs) || nProbs < 0 || nProbs > MAX_N_PROBS) {
    throw invalidParam('n_probs', `'n_probs' must be an integer between 0 and ${MAX_N_PROBS}, got ${JSON.stringify(nProbs)}`);
  }
  // backend_sampling: llama-server's choice of sampling on the GPU backend or the CPU; one sampler runs either way here
  for (const k of ['post_sampling_probs', 'return_tokens', 'cache_prompt', 'backend_sampling']) {
    if (b[k] !== undefined && b[k] !== null && typeof b[k] !== 'boolean') throw invalidType(k, 'a boolean', b[k]);
  }
  for (const [k, min] of [['n_keep', -1], ['n_discard', 0]] as const) {
    const v = b[k];
    if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isInteger(v) && v >= min)) {
      throw invalidParam(k, `'${k}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
  }
  const idSlot = b.id_slot;
  if (idSlot !== undefined && idSlot !== null) {
    const n = service.info().slots;
    if (typeof idSlot !== 'number' || !Number.isInteger(idSlot) || idSlot < -1 || idSlot >= n) {
      throw invalidParam('id_slot', `'id_slot' must be -1 or a slot id 0..${n - 1}, got ${JSON.stringify(idSlot)}`);
    }
  }
  let fields: string[] | null = null;
  if (b.response_fields !== undefined && b.response_fields !== null) {
    if (!Array.isArray(b.response_fields) || !b.response_fields.every((f) => typeof f === 'string')) {
      throw invalidType('response_fields', 'a list of field names', b.response_fields);
    }
    fields = b.response_fields.length > 0 ? (b.response_fields as string[]) : null;
  }
  const bias = nativeLogitBias(service, b.logit_bias);
  if (bias) b.logit_bias = bias;
  else delete b.logit_bias;
  // n_probs replaces OpenAI's logprobs here; /completion has no echo/suffix/best_of
  delete b.logprobs;
  return list.map((p) => {
    const req = parseCompletionRequest({ ...b, prompt: p }, service.vocabSize);
    if (nProbs > 0) req.logprobs = nProbs;
    if (b.cache_prompt === false) req.cachePrompt = false;
    if (typeof idSlot === 'number' && idSlot >= 0) {
      if ((req.n ?? 1) > 1) throw invalidParam('id_slot', `'id_slot' pins one slot: it cannot run ${req.n} choices (n), each of which needs a slot of its own`);
      req.slot = idSlot;
    }
    if (req.ignoreEos) {
      // as llama-server: the end-of-generation tokens are banned, so they are never drawn (not only not stopping)
      const tok = service.model.tokenizer;
      const eog = [tok.eos, tok.eot].filter((id): id is number => id !== undefined && tok.isEndOfGeneration(id));
      req.sampler.logitBias = { ...req.sampler.logitBias, ...Object.fromEntries(eog.map((id) => [String(id), BAN_BIAS])) };
    }
    const tokens = service.completionPrompt(req);
    // context shift (--context-shift): n_keep -1 keeps the whole prompt
    if (typeof b.n_keep === 'number') req.nKeep = b.n_keep === -1 ? tokens.length : b.n_keep;
    if (typeof b.n_discard === 'number' && b.n_discard > 0) req.nDiscard = b.n_discard;
    return {
      req,
      tokens,
      nProbs,
      postSampling: b.post_sampling_probs === true,
      returnTokens: b.return_tokens === true,
      cachePrompt: b.cache_prompt !== false,
      fields,
    };
  });
}

/** llama.cpp's stop_type: why the generation ended. */
export function stopType(info: RunInfo): 'eos' | 'word' | 'limit' | 'none' {
  switch (info.result.detail.type) {
    case 'stopToken':
      return 'eos';
    case 'stopString':
      return 'word';
    case 'maxTokens':
    case 'context':
      return 'limit';
    default:
      return 'none';
  }
}

/**
 * llama.cpp's timings, with the per-token times. The generation rate is over the decode steps: the
 * first token comes from the prompt's last logits, so n tokens took n - 1 steps (llama-server's way).
 */
export function nativeTimings(info: RunInfo) {
  const t = R.timings(info.result, info.cachedTokens);
  const steps = t.predicted_n - 1;
  return {
    ...t,
    prompt_per_token_ms: t.prompt_n > 0 ? t.prompt_ms / t.prompt_n : 0,
    predicted_per_token_ms: steps > 0 && t.predicted_ms > 0 ? t.predicted_ms / steps : 0,
    predicted_per_second: steps > 0 && t.predicted_ms > 0 ? (1000 * steps) / t.predicted_ms : 0,
  };
}

/** The sampling settings a request ran with, as llama-server's generation_settings names them. */
export function generationSettings(service: GenerationService, n: NativeRequest, seed: number | undefined, nPredict: number) {
  const s = n.req.sampler;
  return {
    n_predict: nPredict,
    seed: seed ?? s.seed ?? -1,
    temperature: s.temperature,
    dynatemp_range: 0,
    dynatemp_exponent: 1,
    top_k: s.topK,
    top_p: s.topP,
    min_p: s.minP,
    top_n_sigma: -1,
    xtc_probability: 0,
    xtc_threshold: 0.1,
    typical_p: 1,
    repeat_last_n: s.repeatLastN ?? 64,
    repeat_penalty: s.repeatPenalty ?? 1,
    presence_penalty: s.presencePenalty ?? 0,
    frequency_penalty: s.frequencyPenalty ?? 0,
    dry_multiplier: 0,
    mirostat: 0,
    adaptive_target: -1,
    adaptive_decay: 0.9,
    stop: n.req.stop,
    max_tokens: nPredict,
    n_keep: n.req.nKeep ?? 0,
    n_discard: n.req.nDiscard ?? 0,
    ignore_eos: n.req.ignoreEos,
    stream: n.req.stream,
    logit_bias: logitBiasList(n),
    n_probs: n.nProbs,
    min_keep: 0,
    grammar: n.req.constraint?.spec.type === 'gbnf' ? n.req.constraint.spec.grammar : '',
    samplers: ['penalties', 'top_k', 'top_p', 'min_p', 'temperature'],
    'speculative.n_max': 0,
    'speculative.n_min': 0,
    timings_per_token: n.req.timingsPerToken === true,
    post_sampling_probs: n.postSampling,
    lora: [],
    model: service.modelId,
  };
}

/** generation_settings.logit_bias as llama-server lists it: {token, bias}, a ban (-100 and below: -inf) as null. */
function logitBiasList(n: NativeRequest): { token: number; bias: number | null }[] {
  return Object.entries(n.req.sampler.logitBias ?? {}).map(([id, b]) => ({ token: Number(id), bias: b <= BAN_BIAS ? null : b }));
}

/**
 * One token's completion_probabilities entry. `post`: probabilities after the request's top-k,
 * top-p, min-p and temperature (llama-server's post_sampling_probs), computed over the
 * alternatives reported; else the model's log-probabilities.
 */
export function tokenProbs(l: TokenLogprobs, n: NativeRequest, piece: R.PieceOf) {
  const entry = (id: number) => {
    const p = piece(id);
    return { id, token: p.text, bytes: p.bytes };
  };
  if (!n.postSampling) {
    return {
      ...entry(l.token),
      logprob: finite(l.logprob),
      top_logprobs: l.top.slice(0, n.nProbs).map((t) => ({ ...entry(t.token), logprob: finite(t.logprob) })),
    };
  }
  const probs = postSamplingProbs(l.top, n.req.sampler);
  const mine = probs.find((p) => p.token === l.token);
  return {
    ...entry(l.token),
    prob: mine ? mine.prob : Math.exp(l.logprob),
    top_probs: probs.slice(0, n.nProbs).map((t) => ({ ...entry(t.token), prob: t.prob })),
  };
}

const finite = (v: number) => (Number.isFinite(v) ? v : -9999);

/** The sampler's filters (top-k, top-p, min-p, temperature) applied to ranked log-probabilities, renormalised. */
export function postSamplingProbs(
  top: { token: number; logprob: number }[],
  s: { temperature?: number; topK?: number; topP?: number; minP?: number },
): { token: number; prob: number }[] {
  let list = top.filter((t) => Number.isFinite(t.logprob));
  if (list.length === 0) return [];
  const temp = s.temperature ?? 0.8;
  if (temp <= 0) return [{ token: list[0]!.token, prob: 1 }];
  if (s.topK && s.topK > 0) list = list.slice(0, s.topK);
  // min-p and top-p on the temperature-scaled distribution, as llama.cpp's chain orders them after top-k
  const scaled = list.map((t) => t.logprob / temp);
  const m = Math.max(...scaled);
  let w = scaled.map((x) => Math.exp(x - m));
  if (s.minP && s.minP > 0) {
    const keep = w.map((x) => x >= s.minP!);
    list = list.filter((_, i) => keep[i]);
    w = w.filter((_, i) => keep[i]);
  }
  let sum = w.reduce((a, b) => a + b, 0);
  if (s.topP !== undefined && s.topP < 1) {
    let acc = 0;
    let k = 0;
    while (k < w.length) {
      acc += w[k]! / sum;
      k++;
      if (acc >= s.topP) break;
    }
    list = list.slice(0, k);
    w = w.slice(0, k);
    sum = w.reduce((a, b) => a + b, 0);
  }
  return list.map((t, i) => ({ token: t.token, prob: w[i]! / sum }));
}

/** Keeps only `fields` of a response (llama-server's response_fields; "a/b" reads a nested field). */
export function pickFields(body: Record<string, unknown>, fields: string[] | null): Record<string, unknown> {
  if (!fields) return body;
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    let v: unknown = body;
    for (const part of f.split('/')) v = isObject(v) ? v[part] : undefined;
    if (v !== undefined) out[f] = v;
  }
  return out;
}

/** Where a native generation route runs: the service, the monitor, and the request's prompt text for `prompt`. */
export interface NativeHost {
  service: GenerationService;
  monitor: Monitor;
}

interface Run {
  index: number;
  n: NativeRequest;
  text: string;
  tokens: number[];
  probs: ReturnType<typeof tokenProbs>[];
  info: RunInfo | null;
  task: Task;
  newLine: boolean;
}

/** Runs the prompts of one /completion (or /infill) request and answers, whole or streamed. */
export async function runNative(host: NativeHost, ctx: Ctx, list: NativeRequest[]): Promise<void> {
  const { service, monitor } = host;
  const { res } = ctx;
  const stream = list[0]!.req.stream;
  const piece = (id: number) => service.tokenPiece(id);
  // a stream's head goes out once its first prompt has a slot: an error before that is a plain JSON answer
  let opened = false;
  const open = () => {
    if (opened) return;
    opened = true;
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
  };
  const one = async (n: NativeRequest, index: number): Promise<Run> => {
    const started = await service.start(n.tokens, n.req, ctx.signal);
    const task = monitor.begin(started.slot, n.req, n.tokens.length, ctx.arrived);
    const run: Run = { index, n, text: '', tokens: [], probs: [], info: null, task, newLine: false };
    const events = monitor.watch(task, started.events);
    // return_progress / timings_per_token (stream-telemetry.ts): progress chunks while the prompt is read
    const tel = stream
      ? streamTelemetry(n.req, started, (f) =>
          sendEvent(res, { index, content: '', tokens: [], stop: false, id_slot: started.slot, tokens_predicted: 0, tokens_evaluated: n.tokens.length, ...f }))
      : undefined;
    try {
      if (stream) open();
      for (;;) {
        const r = await events.next();
        if (r.done) {
          run.info = r.value;
          break;
        }
        const ev: GenerationEvent = r.value;
        run.text += ev.text;
        if (ev.text.includes('\n')) run.newLine = true;
        const probs = ev.type === 'token' && ev.logprobs && n.nProbs > 0 ? [tokenProbs(ev.logprobs, n, piece)] : null;
        if (ev.type === 'token') {
          tel?.token();
          run.tokens.push(ev.token);
          if (probs) run.probs.push(...probs);
        }
        if (stream && ev.type === 'token') {
          const chunk: Record<string, unknown> = {
            index,
            content: ev.text,
            tokens: [ev.token],
            stop: false,
            id_slot: started.slot,
            tokens_predicted: run.tokens.length,
            tokens_evaluated: n.tokens.length,
          };
          if (probs) chunk.completion_probabilities = probs;
          sendEvent(res, { ...chunk, ...tel?.extra() });
        } else if (stream && ev.text) {
          sendEvent(res, { index, content: ev.text, tokens: [], stop: false, id_slot: started.slot });
        }
      }
    } finally {
      await started.dispose();
      const info = run.info;
      const t = info ? R.timings(info.result, info.cachedTokens) : null;
      monitor.end(
        task,
        info && t ? { promptEvaluated: t.prompt_n, promptCached: t.cache_n, predicted: t.predicted_n, promptMs: t.prompt_ms, predictedMs: t.predicted_ms, finishReason: info.result.finishReason } : null,
      );
    }
    return run;
  };
  const finalBody = (run: Run, streamed: boolean): Record<string, unknown> => {
    const info = run.info!;
    const n = run.n;
    const nPredict = n.req.maxTokens ?? -1;
    const body: Record<string, unknown> = {
      index: run.index,
      content: streamed ? '' : run.text,
      tokens: streamed || !n.returnTokens ? [] : run.tokens,
      id_slot: run.task.slot,
      stop: true,
      model: service.modelId,
      tokens_predicted: R.completionTokens(info.result),
      tokens_evaluated: n.tokens.length,
      generation_settings: generationSettings(service, n, info.result.seed, nPredict),
      prompt: service.detokenize(n.tokens),
      has_new_line: run.newLine,
      // as llama-server: the context filled up (generation stopped there, or shifted to go on)
      truncated: info.result.detail.type === 'context' || (info.result.contextShifts ?? 0) > 0,
      stop_type: stopType(info),
      stopping_word: info.result.detail.type === 'stopString' ? info.result.detail.stop : '',
      tokens_cached: n.tokens.length + run.tokens.length,
      timings: nativeTimings(info),
    };
    if (n.nProbs > 0 && !streamed) body.completion_probabilities = run.probs;
    return pickFields(body, n.fields);
  };
  const aborted = (run: Run) => run.info?.result.finishReason === 'abort';
  if (!stream) {
    const runs = await Promise.all(list.map((n, i) => one(n, i)));
    if (runs.some(aborted)) {
      if (ctx.signal.aborted) return;
      throw new ApiError(503, 'generation stopped: the server is shutting down', 'server_error', null, 'server_shutting_down');
    }
    const bodies = runs.map((r) => finalBody(r, false));
    sendJson(res, 200, bodies.length === 1 ? bodies[0] : bodies);
    return;
  }
  await Promise.all(
    list.map(async (n, i) => {
      const run = await one(n, i);
      if (aborted(run)) {
        if (!ctx.signal.aborted) sendEvent(res, new ApiError(503, 'generation stopped: the server is shutting down').body());
        return;
      }
      sendEvent(res, finalBody(run, true));
    }),
  );
  if (!res.destroyed) res.end();
}
