// The server's engine side, without HTTP: a loaded model, one session per slot (each with its own
// KV cache, so a conversation's earlier turns are reused when it comes back to the same slot), the
// scheduler that queues requests and serializes forward passes, prompt building (chat template,
// tokenization, context checks) and tokenize/detokenize.
//
// Context: --ctx-size is divided between the slots, as in llama.cpp (each slot holds ctx / slots
// tokens). A prompt must leave room for at least one generated token; otherwise it is refused with
// context_length_exceeded before it is queued.
//
// Shutdown: close() refuses new requests, aborts the running generations (they end at their next
// token) and resolves once every slot is free.
import type { LoadedModel, Session } from '../engine.js';
import { generate, type GenerationEvent, type GenerationModel, type GenerationResult } from '../generate/generate.js';
import type { CachedSequence } from '../model/cached-sequence.js';
import { chatTemplateFor, encodeChat, encodePrompt, renderChat, type ChatMessage, type ChatTemplateChoice } from '../tokenizer/chat-template.js';
import { ApiError, contextLengthExceeded, invalidParam } from './errors.js';
import type { ChatRequest, CompletionRequest, GenerationParams } from './requests.js';
import { AbortError, QueueFullError, Scheduler, SchedulerClosedError, type SchedulerStats } from './scheduler.js';

export interface ServiceOptions {
  /** the name clients use in `model` and see in responses */
  modelId: string;
  /** total context in tokens, divided between the slots (default: the model's, at most 4096) */
  ctxSize?: number;
  /** KV cache element type (default f32) */
  cacheType?: 'f32' | 'f16';
  /** parallel slots (default 1) */
  slots?: number;
  /** prompt tokens per forward batch (default 64) */
  batchSize?: number;
  /** requests that may wait for a slot (default 64) */
  maxQueue?: number;
  /** a Jinja chat template used instead of the model's */
  chatTemplate?: string;
  /** render control tokens (<|eot_id|>, ...) into the reply text (`--special`); default false, as llama.cpp */
  special?: boolean;
  /** server-wide cap on generated tokens per request (undefined = none) */
  maxTokensCap?: number;
  /** the model is the built-in demo (random weights: its text is noise) */
  demo?: boolean;
}

export interface RunInfo {
  result: GenerationResult;
  slot: number;
  promptTokens: number;
  /** prompt tokens found in the slot's KV cache (not evaluated again) */
  cachedTokens: number;
}

export interface RunHandle {
  slot: number;
  promptTokens: number;
  /** the generation's events; its return value has the result */
  events: AsyncGenerator<GenerationEvent, RunInfo, undefined>;
  /** Ends the generation if it still runs and frees the slot (safe to call more than once). */
  dispose(): Promise<void>;
}

export interface ModelInfo {
  id: string;
  demo: boolean;
  n_ctx: number;
  n_ctx_slot: number;
  n_ctx_train: number;
  n_vocab: number;
  n_embd: number;
  n_layer: number;
  n_params: number;
  size: number;
  slots: number;
  kernels: string;
  threads: number;
  chat_template: string;
  /** why that chat template */
  chat_template_reason: string;
}

/**
 * A slot's cache as the token loop sees it, giving the event loop a turn before every forward
 * call (so I/O such as /health and disconnects is served between tokens even when the kernels run
 * on this thread only).
 */
class YieldingModel implements GenerationModel {
  constructor(private readonly cache: CachedSequence) {}
  get contextLength(): number {
    return this.cache.contextLength;
  }
  get vocabSize(): number {
    return this.cache.vocabSize;
  }
  get bosToken(): number | undefined {
    return this.cache.bosToken;
  }
  tokenBytes(id: number): Uint8Array {
    return this.cache.tokenBytes(id);
  }
  isEndOfGeneration(id: number): boolean {
    return this.cache.isEndOfGeneration(id);
  }
  isControl(id: number): boolean {
    return this.cache.isControl(id);
  }
  reset(): void {
    this.cache.reset();
  }
  async evaluate(tokens: readonly number[], startPos: number): Promise<Float32Array> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    return this.cache.evaluate(tokens, startPos);
  }
}

export class GenerationService {
  readonly modelId: string;
  readonly slotContext: number;
  readonly totalContext: number;
  readonly scheduler: Scheduler<Session>;
  readonly demo: boolean;
  private readonly template: string | undefined;
  /** the chat template in use and why */
  readonly templateChoice: ChatTemplateChoice;
  private readonly special: boolean;
  private readonly maxTokensCap: number | undefined;
  private readonly promptBatchSize: number;
  private readonly active = new Set<AbortController>();
  private readonly idleWaiters: (() => void)[] = [];
  private running = 0;
  private closed = false;

  constructor(readonly model: LoadedModel, opts: ServiceOptions) {
    const slots = opts.slots ?? 1;
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`slots must be a positive integer, got ${slots}`);
    const total = opts.ctxSize ?? Math.min(model.config.contextLength, 4096);
    if (!Number.isInteger(total) || total < 1) throw new Error(`context size must be a positive integer, got ${total}`);
    const perSlot = Math.floor(total / slots);
    if (perSlot < 8) throw new Error(`context of ${total} tokens is too small for ${slots} slots (${perSlot} tokens each)`);
    if (opts.maxTokensCap !== undefined && !(Number.isInteger(opts.maxTokensCap) && opts.maxTokensCap >= 0)) {
      throw new Error(`the max-tokens cap must be a non-negative integer, got ${opts.maxTokensCap}`);
    }
    this.modelId = opts.modelId;
    this.totalContext = total;
    this.slotContext = perSlot;
    this.demo = !!opts.demo;
    this.maxTokensCap = opts.maxTokensCap;
    // the whole prompt in one evaluate() call: CachedSequence reuses cached tokens across calls too,
    // but it re-runs the last token of every call for its logits, so one call keeps cached_tokens
    // exact (prompt - 1 at most). The price: other slots and aborts wait for a long prompt.
    this.promptBatchSize = perSlot;
    this.template = opts.chatTemplate;
    this.templateChoice = chatTemplateFor(model.tokenizer, opts.chatTemplate);
    this.special = !!opts.special;
    // a template that does not render fails here, at start-up, not on the first request
    renderChat(model.tokenizer, [{ role: 'system', content: 'test' }, { role: 'user', content: 'test' }], { template: this.template });
    const sessions: Session[] = [];
    for (let i = 0; i < slots; i++) sessions.push(model.createSession({ ctxSize: perSlot, batchSize: opts.batchSize, cacheType: opts.cacheType }));
    this.scheduler = new Scheduler(sessions, { maxQueue: opts.maxQueue });
  }

  get vocabSize(): number {
    return this.model.config.vocabSize;
  }

  info(): ModelInfo {
    const file = this.model.model.file;
    let params = 0;
    let size = 0;
    for (const t of file.tensors) {
      params += t.nElements;
      size += t.byteSize;
    }
    const c = this.model.config;
    return {
      id: this.modelId,
      demo: this.demo,
      n_ctx: this.totalContext,
      n_ctx_slot: this.slotContext,
      n_ctx_train: c.contextLength,
      n_vocab: c.vocabSize,
      n_embd: c.nEmbd,
      n_layer: c.nLayers,
      n_params: params,
      size,
      slots: this.scheduler.stats().slots,
      kernels: this.model.kernels.name,
      threads: this.model.kernels.threads,
      chat_template: this.templateChoice.origin,
      chat_template_reason: this.templateChoice.reason,
    };
  }

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /** Prompt tokens of a completion request (text: BOS per the model, special tokens parsed). */
  completionPrompt(req: CompletionRequest): number[] {
    const tokens = typeof req.prompt === 'string' ? encodePrompt(this.model.tokenizer, req.prompt) : req.prompt;
    return this.checkPrompt(tokens, 'prompt');
  }

  /** Prompt tokens of a chat request, rendered with the chat template. */
  chatPrompt(req: ChatRequest | { messages: ChatMessage[] }): number[] {
    let tokens: number[];
    try {
      tokens = encodeChat(this.model.tokenizer, req.messages, { template: this.template, addGenerationPrompt: true });
    } catch (e) {
      throw invalidParam('messages', (e as Error).message);
    }
    return this.checkPrompt(tokens, 'messages');
  }

  private checkPrompt(tokens: number[], param: string): number[] {
    if (tokens.length === 0) throw invalidParam(param, `the ${param} is empty (no tokens)`);
    if (tokens.length >= this.slotContext) throw contextLengthExceeded(param, tokens.length, this.slotContext);
    return tokens;
  }

  /**
   * Leases a slot (waiting in the queue when all are busy) and returns the generation's event
   * stream. Throws ApiError 503 when the queue is full or the server is closing, AbortError when
   * `signal` aborts while waiting. The slot is freed when the stream ends or is closed early.
   */
  async start(prompt: readonly number[], params: GenerationParams, signal?: AbortSignal): Promise<RunHandle> {
    if (this.closed) throw new ApiError(503, 'server is shutting down', 'server_error', null, 'server_shutting_down');
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) ac.abort();
    let lease;
    try {
      lease = await this.scheduler.acquire(prompt, ac.signal);
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      if (e instanceof QueueFullError) throw new ApiError(503, e.message, 'server_error', null, 'server_busy');
      if (e instanceof SchedulerClosedError) throw new ApiError(503, e.message, 'server_error', null, 'server_shutting_down');
      if (e instanceof AbortError) throw e;
      throw e;
    }
    this.active.add(ac);
    this.running++;
    const maxTokens =
      this.maxTokensCap === undefined ? params.maxTokens : Math.min(params.maxTokens ?? Infinity, this.maxTokensCap);
    const session = lease.session;
    let finished = false;
    const finish = (cached: readonly number[]) => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      this.active.delete(ac);
      lease.release(cached);
      this.running--;
      if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
    const scheduler = this.scheduler;
    const slot = lease.slot;
    const promptBatchSize = this.promptBatchSize;
    const special = this.special;
    async function* events(): AsyncGenerator<GenerationEvent, RunInfo, undefined> {
      let cached: readonly number[] = [];
      try {
        session.cache.ignoreEndOfGeneration = params.ignoreEos;
        const it = generate(new YieldingModel(session.cache), prompt, {
          maxTokens,
          sampler: params.sampler,
          stop: params.stop,
          logprobs: params.logprobs,
          signal: ac.signal,
          promptBatchSize,
          special,
        });
        const result = yield* scheduler.steps(it);
        cached = [...prompt, ...result.tokens];
        return { result, slot, promptTokens: prompt.length, cachedTokens: session.cache.reusedTokens };
      } finally {
        finish(cached);
      }
    }
    const gen = events();
    return {
      slot,
      promptTokens: prompt.length,
      events: gen,
      dispose: async () => {
        ac.abort();
        await gen.return(undefined as unknown as RunInfo).catch(() => undefined);
        finish([]); // a generator never started does not run its finally
      },
    };
  }

  /** Runs a whole generation (tests, simple callers). */
  async complete(prompt: readonly number[], params: GenerationParams, signal?: AbortSignal): Promise<RunInfo> {
    const h = await this.start(prompt, params, signal);
    try {
      for (;;) {
        const r = await h.events.next();
        if (r.done) return r.value;
      }
    } finally {
      await h.dispose();
    }
  }

  tokenize(text: string, addSpecial: boolean, parseSpecial = true): number[] {
    return this.model.tokenizer.encode(text, { addBos: addSpecial ? undefined : false, addEos: addSpecial ? undefined : false, parseSpecial });
  }

  detokenize(tokens: readonly number[]): string {
    return this.model.tokenizer.decode(tokens);
  }

  /** The text of one token (partial UTF-8 shows as U+FFFD) and its bytes. */
  tokenPiece(id: number): { text: string; bytes: number[] } {
    const bytes = this.model.tokenizer.tokenToPiece(id);
    return { text: new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes), bytes: Array.from(bytes) };
  }

  /** Refuses new requests, aborts the running ones and resolves when all slots are free. */
  async close(): Promise<void> {
    this.closed = true;
    this.scheduler.close();
    for (const ac of this.active) ac.abort();
    if (this.running > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}
