// The server's engine side, without HTTP: a loaded model, `slots` sequences that share one KV
// pool, the scheduler that admits requests (slot + KV room, or a bounded queue), the step runner
// that batches every active sequence into one forward pass per step, prompt building (chat
// template, tokenization, context checks) and tokenize/detokenize.
//
// Context: --ctx-size is the pool's total, shared by the slots: a sequence takes what it needs (its
// prompt plus max_tokens, or a default reserve that grows while it generates), up to the whole
// pool, or up to ctx/slots with `kvSplit` (--kv-split: llama-server's default without --kv-unified;
// the memory is still one pool, the prefix cache included, but no sequence holds more than its share). An idle slot keeps its tokens' keys/values for prefix reuse until the pool needs the room.
// A prompt must leave room for at least one generated token; otherwise it is refused with
// context_length_exceeded before it is queued.
//
// Constrained output: a request's grammar (response_format, json_schema, grammar, tools) is compiled
// once the request is admitted (a slot and KV room, so a full queue is a 503 before any compile),
// by the GrammarHost the entry point hands in (src/generate/grammar-host.ts: worker threads in
// Node, with a time budget and fault containment); a grammar that does not compile, or is over a
// limit, is a 400 naming the field. Each generation gets its own matcher, disposed with it.
//
// Shutdown: close() refuses new requests, aborts the running generations (they end at their next
// token) and resolves once every slot is free.
import { deviceLost, deviceLostError } from './device-state.js';
import type { LoadedModel } from '../engine.js';
import { generate, type GenerationEvent, type GenerationModel, type GenerationResult } from '../generate/generate.js';
import { KVCache, type KVPool } from '../model/kv-cache.js';
import { DEFAULT_BATCH_SIZE } from '../model/model.js';
import { shiftKV, type RopeSpec } from '../model/kv-shift.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { GrammarError, grammarVocabulary, type XGrammarModule } from '../generate/grammar.js';
import {
  GrammarEngineLostError,
  GrammarLimitError,
  InProcessGrammarHost,
  type GrammarHost,
  type GrammarHostFactory,
  type GrammarHostStats,
} from '../generate/grammar-host.js';
import type { TokenConstraint } from '../generate/constraint.js';
import { detectToolFormat, type ToolFormat } from './tool-formats.js';
import { TemplateBudgetError } from '../tokenizer/template-budget.js';
import { ChatTemplateError, PromptTooLongError, chatTemplateFor, encodeChat, encodePrompt, probeChatTemplate, renderChat, type ChatMessage, type ChatTemplateChoice } from '../tokenizer/chat-template.js';
import { closeThinking, templateVariables, type ReasoningMode } from './template-vars.js';
import { ApiError, contextLengthExceeded, invalidParam } from './errors.js';
import type { EngineSnapshot } from './monitor.js';
import type { ChatRequest, CompletionRequest, GenerationParams } from './requests.js';
import { AbortError, QueueFullError, Scheduler, SchedulerClosedError, type SchedulerEvent, type SchedulerStats } from './scheduler.js';
import { KvPoolFullError, StepRunner, type RunnerSlot } from './step-runner.js';
import { continueCachedText } from './prefix-text.js';
import { reasoningForTemplate } from './reasoning-history.js';
import { thinkingConstraint } from './thinking-constraint.js';
import { planReasoning, reasoningOutputOptions, type ReasoningFormat, type ReasoningOutputOptions, type ReasoningPlan } from './reasoning-output.js';

/** Default number of slots (sequences generating at once). */
export const DEFAULT_SLOTS = 8;
/** KV positions reserved for the output of a request without max_tokens (more are taken as it grows). */
const DEFAULT_OUTPUT_RESERVE = 256;
/** KV ranges are sized in multiples of this many positions. */
const KV_GRANULE = 16;
/** Rows per forward pass while sequences are generating, unless told otherwise: a step that carries
 *  a prompt chunk next to the streams delays each stream's next token by the whole pass, so prompts
 *  go in chunks of the rest of 64 rows then (about 1 s a pass on 2 cores, 2B4T shape) and in chunks
 *  of the full batch size (DEFAULT_BATCH_SIZE) when only prompts are read. */
export const DEFAULT_STREAM_BATCH_SIZE = 64;

/** Seconds a client refused with 503 for a full queue is told to wait (Retry-After). */
const RETRY_AFTER_S = 1;

/** 503 for a request whose grammar engine was restarted under it (another request's fault or timeout). */
function engineLost(e: GrammarEngineLostError): ApiError {
  const err = new ApiError(503, e.message, 'server_error', null, 'grammar_engine_restarted');
  err.headers['Retry-After'] = String(RETRY_AFTER_S);
  return err;
}

export interface ServiceOptions {
  /** the name clients use in `model` and see in responses */
  modelId: string;
  /** KV pool size in tokens, shared by the slots (default: the model's context, at most 4096) */
  ctxSize?: number;
  /** KV cache element type (default f32) */
  cacheType?: 'f32' | 'f16';
  /** sequences generating at once (default DEFAULT_SLOTS) */
  slots?: number;
  /** rows per forward pass: prompt chunks plus every generating sequence's next token (default DEFAULT_BATCH_SIZE, at least slots + 1) */
  batchSize?: number;
  /** rows per forward pass while sequences are generating (default DEFAULT_STREAM_BATCH_SIZE, at most batchSize, at least slots + 1) */
  streamBatchSize?: number;
  /** requests that may wait for a slot (default 64) */
  maxQueue?: number;
  /** a Jinja chat template used instead of the model's */
  chatTemplate?: string;
  /** render control tokens (<|eot_id|>, ...) into the reply text (`--special`); default false, as llama.cpp */
  special?: boolean;
  /** server-wide cap on generated tokens per request (undefined = none) */
  maxTokensCap?: number;
  /** the model is the built-in demo (src/node/demo-model.ts) */
  demo?: boolean;
  /** where grammars compile and match (src/node/grammar-workers.ts in Node); made at start-up */
  grammars?: GrammarHostFactory;
  /** without `grammars`: the XGrammar module (src/node/xgrammar.ts), run in this thread; without either, constrained output is refused */
  xgrammar?: XGrammarModule;
  /** llama-server's --reasoning (template-vars.ts) */
  reasoning?: ReasoningMode;
  /** llama-server's --reasoning-format and --reasoning-budget (reasoning-output.ts) */
  reasoningOutput?: ReasoningOutputOptions;
  /** each sequence holds at most ctxSize / slots tokens (--kv-split), not the whole pool */
  kvSplit?: boolean;
  /** idle slots' caches move to the prompt cache when a request starts (--cache-idle-slots; scheduler.ts) */
  cacheIdleSlots?: boolean;
  /** debug lines: what happens to the prompt cache (--verbose); default none */
  log?: (line: string) => void;
  /** a generation that fills its context drops half of it after the first n_keep tokens and goes on (--context-shift) */
  contextShift?: boolean;
}

export interface RunInfo {
  result: GenerationResult;
  slot: number;
  promptTokens: number;
  /** prompt tokens found in the slot's KV cache (not evaluated again) */
  cachedTokens: number;
}

/** How far a prompt has been read (llama-server's prompt_progress, without its time). */
export interface PromptProgress {
  /** the prompt's tokens */
  total: number;
  /** found in the KV cache when reading began (not read again) */
  cache: number;
  /** in the KV cache now: cache + those read so far */
  processed: number;
}

export interface RunHandle {
  slot: number;
  promptTokens: number;
  /**
   * Listens to the prompt's reading: once as it starts (processed = cache), then after each forward
   * step that read some of it (the last says processed = total). Set before iterating `events`.
   */
  onPromptProgress(listener: (p: PromptProgress) => void): void;
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
  /** what runs the model: "webgpu: <adapter>" or the CPU kernels ("wasm-relaxed x2") */
  device: string;
  threads: number;
  /** output head precision: int8 or f16 (--lm-head) */
  lm_head: string;
  chat_template: string;
  /** why that chat template */
  chat_template_reason: string;
  /** how tools are shown and calls written (tool-formats.ts): generic, template-generic, llama3-json, hermes */
  tool_format: string;
}

/**
 * A slot's sequence as the token loop sees it: evaluate() skips the tokens the slot's cache already
 * holds at those positions (prefix reuse across turns; the call's last token always runs, its logits
 * are the answer) and hands the rest to the step runner, which batches it with the other slots.
 */
class SlotModel implements GenerationModel {
  /** prompt tokens found in the slot's cache when they were asked for */
  private skipped = 0;
  /** hears the prompt's reading (RunHandle.onPromptProgress) */
  progress?: (p: PromptProgress) => void;

  constructor(
    private readonly slot: RunnerSlot,
    private readonly runner: StepRunner,
    private readonly tokenizer: Tokenizer,
    readonly contextLength: number,
    readonly vocabSize: number,
    private readonly ignoreEos: boolean,
    private readonly reuse = true,
    /** the keys' RoPE, when this slot may shift its context (a CPU pool) */
    private readonly rope?: RopeSpec,
  ) {
    if (!rope) this.shift = undefined;
  }

  shift? = (keep: number, discard: number): void => {
    const slot = this.slot;
    shiftKV(slot.kv, keep, discard, slot.cached.length, this.rope!);
    slot.cached.splice(keep, discard);
    // the rows after `keep` attended to the dropped tokens: not a prefix anyone may reuse
    slot.exact = Math.min(slot.exact ?? Infinity, keep);
  };

  /** prompt tokens not read: found in the slot's cache, or copied in from another running slot */
  get reusedTokens(): number {
    return this.skipped + (this.slot.copied ?? 0);
  }

  get bosToken(): number | undefined {
    return this.tokenizer.bos;
  }
  tokenBytes(id: number): Uint8Array {
    return this.tokenizer.tokenToPiece(id);
  }
  isEndOfGeneration(id: number): boolean {
    return !this.ignoreEos && this.tokenizer.isEndOfGeneration(id);
  }
  isControl(id: number): boolean {
    return this.tokenizer.isControl(id);
  }

  evaluate(tokens: readonly number[], startPos: number): Promise<Float32Array> {
    const cached = this.slot.cached;
    if (startPos > cached.length) throw new Error(`evaluate at position ${startPos} but only ${cached.length} tokens are cached`);
    let skip = 0;
    while (this.reuse && skip < tokens.length - 1 && startPos + skip < cached.length && cached[startPos + skip] === tokens[skip]) skip++;
    if (startPos === 0) {
      this.skipped = 0;
      this.slot.copied = 0;
    }
    this.skipped += skip;
    cached.length = startPos + skip; // what follows is rewritten
    const listen = this.progress;
    if (!listen || startPos !== 0) return this.runner.submit(this.slot, tokens.slice(skip), startPos + skip);
    // the prompt (one evaluate() from position 0): its start, then each step's share of it
    const total = tokens.length;
    listen({ total, cache: skip, processed: skip });
    return this.runner.submit(this.slot, tokens.slice(skip), skip, (done) => listen({ total, cache: skip, processed: skip + done }));
  }
}

/**
 * Copies `from`'s first `n` cached tokens (keys/values and token ids) into `to`, which has room;
 * the rows `to` already holds of that prefix stay where they are.
 */
function copyPrefix(from: RunnerSlot, to: RunnerSlot, n: number): void {
  let same = 0;
  while (same < n && same < to.cached.length && to.cached[same] === from.cached[same]) same++;
  to.kv.copyFrom(from.kv, n, same);
  to.cached.length = same;
  for (let i = same; i < n; i++) to.cached.push(from.cached[i]!);
}

/**
 * A prompt cache event as a log line. The bracketed tag is llama-server's for the same event (its
 * server tests look for it in --verbose logs).
 */
function describeEvent(e: SchedulerEvent): string {
  if (e.type === 'idle-slot-cached') {
    return e.held
      ? `slot ${e.slot}: idle, its ${e.tokens} cached tokens are in the prompt cache already (entry ${e.entry}): the slot is cleared as another request starts [__TEST_TAG_CACHE_IDLE_SLOT__]`
      : `slot ${e.slot}: idle, its ${e.tokens} cached tokens move to the prompt cache (entry ${e.entry}, no copy) as another request starts: the slot is cleared [__TEST_TAG_CACHE_IDLE_SLOT__]`;
  }
  return `slot ${e.slot}: updating prompt cache: ${e.tokens} tokens of the prompt restored from entry ${e.entry} (${e.moved ? 'handed over, no copy' : 'copied'})`;
}

/**
 * What the loaded model makes, released together while the server sleeps (sleep.ts): the model
 * (weights, kernels, tokenizer), the KV pool, the slots' and parked caches over it, the step runner.
 */
interface Engine {
  lm: LoadedModel;
  pool: KVPool;
  slots: RunnerSlot[];
  /** parked caches (finished conversations kept for reuse, scheduler.ts), by entry id */
  parked: Map<number, RunnerSlot>;
  runner: StepRunner;
}

/** Thrown by what needs the model while it is released (GenerationService.release()); HTTP wakes it first. */
export class ModelAsleepError extends Error {
  override name = 'ModelAsleepError';
}

export class GenerationService {
  readonly modelId: string;
  /** the most tokens one sequence can hold (prompt + output): the whole pool, or its share with kvSplit */
  readonly slotContext: number;
  readonly totalContext: number;
  readonly scheduler: Scheduler;
  readonly demo: boolean;
  private readonly nSlots: number;
  private readonly cacheType: 'f32' | 'f16';
  private readonly budget: number;
  private readonly streamBudget: number;
  /** null while released (asleep) */
  private engine: Engine | null = null;
  /** forward passes run by runners released before this one */
  private stepsBefore = 0;
  private readonly releaseHooks: (() => void)[] = [];
  private readonly modelInfo: ModelInfo;
  /** the text of BOS and EOS (/props), kept while asleep */
  readonly specialTexts: { bos: string; eos: string };
  private readonly nVocab: number;
  private readonly template: string | undefined;
  /** the chat template in use and why */
  readonly templateChoice: ChatTemplateChoice;
  /** how the model is shown tools and writes calls, from its chat template (tool-formats.ts) */
  readonly toolFormat: ToolFormat;
  private readonly special: boolean;
  private readonly reasoning: ReasoningMode;
  readonly reasoningOutput: Required<ReasoningOutputOptions>;
  private readonly maxTokensCap: number | undefined;
  private readonly contextShift: boolean;
  private readonly active = new Set<AbortController>();
  private readonly idleWaiters: (() => void)[] = [];
  private running = 0;
  private closed = false;
  private readonly grammars: GrammarHost | undefined = undefined;

  constructor(model: LoadedModel, opts: ServiceOptions) {
    const nSlots = opts.slots ?? DEFAULT_SLOTS;
    if (!Number.isInteger(nSlots) || nSlots < 1) throw new Error(`slots must be a positive integer, got ${nSlots}`);
    const total = opts.ctxSize ?? Math.min(model.config.contextLength, 4096);
    if (!Number.isInteger(total) || total < 1) throw new Error(`context size must be a positive integer, got ${total}`);
    if (total < 8) throw new Error(`context of ${total} tokens is too small (at least 8)`);
    const batch = opts.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch size must be a positive integer, got ${batch}`);
    const streamBatch = opts.streamBatchSize ?? Math.min(batch, DEFAULT_STREAM_BATCH_SIZE);
    if (!Number.isInteger(streamBatch) || streamBatch < 1) throw new Error(`stream batch size must be a positive integer, got ${streamBatch}`);
    if (streamBatch > batch) throw new Error(`stream batch size ${streamBatch} exceeds the batch size ${batch}`);
    if (opts.maxTokensCap !== undefined && !(Number.isInteger(opts.maxTokensCap) && opts.maxTokensCap >= 0)) {
      throw new Error(`the max-tokens cap must be a non-negative integer, got ${opts.maxTokensCap}`);
    }
    this.modelId = opts.modelId;
    this.nSlots = nSlots;
    this.totalContext = total;
    this.slotContext = opts.kvSplit ? Math.floor(total / nSlots) : total;
    if (this.slotContext < 8) throw new Error(`a context of ${total} tokens split among ${nSlots} slots leaves ${this.slotContext} tokens per slot (at least 8)`);
    this.cacheType = opts.cacheType ?? 'f32';
    // every generating slot has its row in each step, and a prompt chunk gets at least one more
    this.budget = Math.max(batch, nSlots + 1);
    this.streamBudget = Math.max(streamBatch, nSlots + 1);
    this.demo = !!opts.demo;
    this.maxTokensCap = opts.maxTokensCap;
    this.contextShift = !!opts.contextShift;
    this.template = opts.chatTemplate;
    this.templateChoice = chatTemplateFor(model.tokenizer, opts.chatTemplate);
    this.toolFormat = detectToolFormat(this.templateChoice.source);
    this.special = !!opts.special;
    this.reasoningOutput = reasoningOutputOptions(opts.reasoningOutput);
    // a budget of 0 means no thinking: the template is rendered as with --reasoning off
    this.reasoning = this.reasoningOutput.budget === 0 ? 'off' : (opts.reasoning ?? 'auto');
    // a template that does not render fails here, at start-up, not on the first request
    probeChatTemplate(model.tokenizer, this.template, undefined, templateVariables(undefined, this.reasoning));
    this.modelInfo = this.describe(model);
    this.nVocab = model.config.vocabSize;
    const tok = model.tokenizer;
    this.specialTexts = { bos: tok.bos === undefined ? '' : tok.tokenText(tok.bos), eos: tok.eos === undefined ? '' : tok.tokenText(tok.eos) };

    // KV entries: the slots, then parked caches; they live in the engine (gone while asleep)
    const entry = (id: number): RunnerSlot => {
      const e = this.awake();
      if (id < nSlots) return e.slots[id]!;
      let p = e.parked.get(id);
      if (!p) e.parked.set(id, (p = { id, kv: new KVCache(e.pool), cached: [] }));
      return p;
    };
    this.scheduler = new Scheduler(
      nSlots,
      {
        reserve: (id, positions, keep) => {
          const e = entry(id);
          if (e.cached.length > keep) e.cached.length = keep;
          return e.kv.reserve(this.granule(positions), e.cached.length);
        },
        release: (id) => {
          const e = entry(id);
          e.cached.length = 0;
          e.kv.release();
          this.engine?.parked.delete(id);
        },
        copy: (from, to, n) => copyPrefix(entry(from), entry(to), n),
        move: (from, to) => {
          const a = entry(from);
          const b = entry(to);
          b.kv.swapWith(a.kv); // b takes a's rows; a takes b's range (none, or an empty one), given back
          a.kv.release();
          b.cached = a.cached;
          a.cached = [];
          this.engine?.parked.delete(from);
        },
        live: (id) => {
          const s = this.awake().slots[id]!;
          return s.exact === undefined ? s.cached : s.cached.slice(0, s.exact);
        },
        free: () => this.awake().pool.allocator.free,
      },
      { maxQueue: opts.maxQueue, cacheIdleSlots: opts.cacheIdleSlots, onEvent: opts.log ? (e) => opts.log!(describeEvent(e)) : undefined },
    );
    this.engine = this.build(model);
    // last: the grammar host may start worker threads, which a constructor that failed above (a template
    // that does not render, no memory for the pool) would leave running, keeping the process alive
    // (no closure over `model` in this constructor: the callbacks made here live as long as the
    // service, and a model released by sleep mode must not stay reachable through them)
    const xg = opts.xgrammar;
    if (opts.grammars) this.grammars = opts.grammars(grammarVocabulary(model.tokenizer, model.config.vocabSize));
    else if (xg) this.grammars = new InProcessGrammarHost(xg, grammarVocabulary(model.tokenizer, model.config.vocabSize));
  }

  /** KV ranges are reserved in granules, never past what one sequence may hold. */
  private granule(n: number): number {
    return Math.min(this.slotContext, Math.ceil(n / KV_GRANULE) * KV_GRANULE);
  }

  /** The KV pool (resident from the start, as llama-server's), the slots' caches over it and the step runner. */
  private build(lm: LoadedModel): Engine {
    const pool = lm.model.createKVPool(this.totalContext, this.cacheType);
    pool.commit(); // the whole pool is resident from the start, not as load first reaches its positions
    const slots = Array.from({ length: this.nSlots }, (_, id) => ({ id, kv: new KVCache(pool), cached: [] as number[] }));
    const forward = lm.model.createForward(this.budget, this.nSlots, this.totalContext);
    const runner = new StepRunner(forward, {
      budget: this.budget,
      streamBudget: this.streamBudget,
      vocabSize: lm.config.vocabSize,
      seed: (to, from, n) => {
        copyPrefix(from, to, n);
        this.scheduler.touch(from.id);
      },
      grow: (slot, positions) => this.scheduler.grow(slot.id, this.granule(Math.max(positions, slot.kv.capacity * 1.25)), slot.cached.length) ||
        this.scheduler.grow(slot.id, this.granule(positions), slot.cached.length),
    });
    runner.steps = this.stepsBefore;
    return { lm, pool, slots, parked: new Map(), runner };
  }

  private awake(): Engine {
    if (!this.engine) throw new ModelAsleepError('the model is released (the server sleeps): wake it first');
    return this.engine;
  }

  /** The loaded model (weights, kernels, tokenizer); throws ModelAsleepError while released. */
  get model(): LoadedModel {
    return this.awake().lm;
  }

  /** The step runner; throws ModelAsleepError while released. */
  get runner(): StepRunner {
    return this.awake().runner;
  }

  /** Forward passes run since start (across sleeps). */
  get steps(): number {
    return this.engine ? this.engine.runner.steps : this.stepsBefore;
  }

  /** True while the model is released (release()). */
  get released(): boolean {
    return this.engine === null;
  }

  /** True when no generation runs or waits: release() may go ahead. */
  get idle(): boolean {
    const s = this.scheduler.stats();
    return this.running === 0 && s.busy === 0 && s.queued === 0;
  }

  /** Runs `fn` whenever the model is released (e.g. to drop a sequence made on it). */
  onRelease(fn: () => void): void {
    this.releaseHooks.push(fn);
  }

  /**
   * Releases the model's memory (weights, kernels, KV pool, every cache in it) while nothing runs;
   * false (and nothing done) when a generation runs or waits. restore() brings it back.
   */
  release(): boolean {
    const e = this.engine;
    if (!e || !this.idle || this.closed) return false;
    this.scheduler.dropCaches();
    this.stepsBefore = e.runner.steps;
    this.engine = null;
    for (const fn of this.releaseHooks) fn();
    e.lm.dispose();
    return true;
  }

  /**
   * Runs on `lm` again after release(): it must be the same model (the caller reloads it from the
   * same file); one whose shape differs is refused (and disposed).
   */
  restore(lm: LoadedModel): void {
    if (this.engine) throw new Error('the model is not released');
    const was = this.modelInfo;
    const now = this.describe(lm);
    for (const k of ['n_vocab', 'n_embd', 'n_layer', 'n_params', 'size', 'n_ctx_train'] as const) {
      if (now[k] !== was[k]) {
        lm.dispose();
        throw new Error(`the reloaded model differs from the one the server started with (${k} ${now[k]}, was ${was[k]})`);
      }
    }
    try {
      this.engine = this.build(lm);
    } catch (e) {
      lm.dispose();
      throw e;
    }
  }

  /** Why the model's device is unusable, or null (also while released). */
  lostDevice(): string | null {
    return this.engine ? deviceLost(this.engine.lm) : null;
  }

  get vocabSize(): number {
    return this.nVocab;
  }

  info(): ModelInfo {
    return { ...this.modelInfo };
  }

  private describe(lm: LoadedModel): ModelInfo {
    const file = lm.model.file;
    let params = 0;
    let size = 0;
    for (const t of file.tensors) {
      params += t.nElements;
      size += t.byteSize;
    }
    const c = lm.config;
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
      slots: this.nSlots,
      kernels: lm.kernels.name,
      threads: lm.kernels.threads,
      device: lm.deviceName,
      lm_head: lm.model.lmHead,
      chat_template: this.templateChoice.origin,
      chat_template_reason: this.templateChoice.reason,
      tool_format: this.toolFormat.name,
    };
  }

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /** Each slot: leased or idle, the tokens its KV range holds, and the positions it has reserved. */
  slotStates(): { id: number; busy: boolean; cachedTokens: number; kvPositions: number }[] {
    const busy = this.scheduler.busySlots();
    const slots = this.engine?.slots;
    // released: every slot idle and empty
    return busy.map((b, id) => ({ id, busy: b, cachedTokens: slots?.[id]!.cached.length ?? 0, kvPositions: slots?.[id]!.kv.capacity ?? 0 }));
  }

  /** Share of the KV pool's positions reserved by the slots (0..1). */
  kvUsage(): number {
    const pool = this.engine?.pool;
    return pool ? pool.allocator.used / pool.size : 0;
  }

  /** Slots, queue and KV memory, as /metrics and /slots report them (KV: positions holding a token, of the shared pool). */
  snapshot(): EngineSnapshot {
    const slots = this.slotStates().map((s) => ({
      id: s.id,
      n_ctx: this.slotContext,
      busy: s.busy,
      n_cached: s.cachedTokens,
      cached_text: this.engine ? this.preview(this.engine.slots[s.id]!.cached) : '',
    }));
    const parked = this.scheduler.entries().filter((e) => e.parked);
    const parkedTokens = parked.reduce((a, e) => a + e.tokens.length, 0);
    const used = slots.reduce((a, s) => a + s.n_cached, 0) + parkedTokens;
    return {
      slots,
      queued: this.scheduler.stats().queued,
      kv: { used, total: this.totalContext },
      parked: { entries: parked.length, tokens: parkedTokens },
    };
  }

  /** The text of cached tokens, its first 60 and last 60 characters when longer (for /slots). */
  private preview(tokens: readonly number[]): string {
    if (tokens.length <= 80) return this.model.tokenizer.decode(tokens);
    const head = this.model.tokenizer.decode(tokens.slice(0, 40));
    return `${head.slice(0, 60)} … ${this.model.tokenizer.decode(tokens.slice(-40)).slice(-60)}`;
  }

  /**
   * Prompt tokens of a completion request (text: BOS per the model, special tokens parsed; text that
   * continues a cached sequence keeps its tokens, prefix-text.ts).
   */
  completionPrompt(req: CompletionRequest): number[] {
    let tokens: number[];
    try {
      tokens = typeof req.prompt === 'string' ? this.continueCached(encodePrompt(this.model.tokenizer, req.prompt, undefined, this.slotContext)) : req.prompt;
    } catch (e) {
      if (e instanceof PromptTooLongError) throw contextLengthExceeded('prompt', e.atLeast, this.slotContext, true);
      throw e;
    }
    return this.checkPrompt(tokens, 'prompt');
  }

  /** `tokens` rewritten to continue the cached sequence that spells the longest prefix of its text (prefix-text.ts). */
  private continueCached(tokens: number[]): number[] {
    const cached = this.scheduler.entries().map((e) => e.tokens);
    return continueCachedText(this.model.tokenizer, tokens, cached).slice();
  }

  /** Prompt tokens of a chat request, rendered with the chat template (continuing a cached conversation's own tokens where its text does). */
  chatPrompt(req: ChatRequest | { messages: ChatMessage[] }): number[] {
    let tokens: number[];
    try {
      const variables = 'templateVariables' in req ? req.templateVariables : undefined;
      const addGenerationPrompt = 'addGenerationPrompt' in req ? req.addGenerationPrompt !== false : true;
      tokens = encodeChat(this.model.tokenizer, reasoningForTemplate(req.messages, this.templateChoice.source), {
        template: this.template,
        addGenerationPrompt,
        variables: templateVariables(variables, this.reasoning),
        maxTokens: this.slotContext,
        // llama-server's prefill / continue_final_message (chat-continue.ts), after an open <think> is closed when reasoning is off
        markupAfter: addGenerationPrompt ? (text) => closeThinking(text, variables?.enable_thinking === false ? 'off' : this.reasoning) : undefined,
        prefill: 'prefill' in req ? req.prefill : undefined,
      });
    } catch (e) {
      if (e instanceof PromptTooLongError) throw contextLengthExceeded('messages', e.atLeast, this.slotContext, true);
      // the chat's or the template's fault: a 400 in our words; anything else is ours (a 500)
      if (e instanceof ChatTemplateError || e instanceof TemplateBudgetError) throw invalidParam('messages', e.message);
      throw e;
    }
    tokens = this.continueCached(tokens);
    return this.checkPrompt(tokens, 'messages');
  }

  /** What a chat request does with the reasoning in its reply, given its prompt (reasoning-output.ts). */
  reasoningPlan(req: { reasoningFormat?: ReasoningFormat; reasoningBudget?: number; reasoningBudgetMessage?: string; prefill?: string }, prompt: readonly number[]): ReasoningPlan {
    const o = this.reasoningOutput;
    const tail = this.detokenize(prompt.slice(-32));
    return planReasoning(this.templateChoice.source, req.reasoningFormat ?? o.format, tail, req.prefill, req.reasoningBudget ?? o.budget, req.reasoningBudgetMessage ?? o.budgetMessage);
  }

  /** The request's grammar, wrapped when its reply may think or has a thinking budget (thinking-constraint.ts). */
  private thinkingFor(plan: ReasoningPlan | undefined, grammar: TokenConstraint | undefined): TokenConstraint | undefined {
    if (!plan) return grammar;
    return thinkingConstraint({
      budget: plan.budget,
      markers: plan.markers,
      open: plan.open,
      endTokens: () => this.tokenize(plan.budgetMessage + plan.markers.end, false, true),
      vocabSize: this.vocabSize,
      text: (t) => this.tokenPiece(t).text,
      grammar,
    });
  }

  /** A chat's prompt text as the template renders it (/apply-template); a template error is a 400. */
  renderChatText(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; variables?: Record<string, unknown> } = {}): string {
    try {
      const text = renderChat(this.model.tokenizer, reasoningForTemplate(messages, this.templateChoice.source), { template: this.template, ...opts, variables: templateVariables(opts.variables, this.reasoning) });
      return opts.addGenerationPrompt === false ? text : closeThinking(text, opts.variables?.enable_thinking === false ? 'off' : this.reasoning);
    } catch (e) {
      if (e instanceof ChatTemplateError || e instanceof TemplateBudgetError) throw invalidParam('messages', e.message);
      throw e;
    }
  }

  private checkPrompt(tokens: number[], param: string): number[] {
    if (tokens.length === 0) throw invalidParam(param, `the ${param} is empty (no tokens)`);
    if (tokens.length >= this.slotContext) throw contextLengthExceeded(param, tokens.length, this.slotContext);
    return tokens;
  }

  /** The grammar host's counters and memory, for /metrics (undefined without one). */
  grammarStats(): GrammarHostStats | undefined {
    return this.grammars?.stats();
  }

  /** The request's constraint, compiled; a grammar that does not compile, or is over a limit, is a 400 naming its field. */
  private async constraintFor(params: GenerationParams, signal: AbortSignal): Promise<TokenConstraint | undefined> {
    const c = params.constraint;
    if (!c) return undefined;
    if (!this.grammars) throw new ApiError(400, 'constrained output (grammars, JSON schemas, tools) is not available on this server', 'invalid_request_error', null, 'unsupported_value');
    try {
      return await this.grammars.open(c.spec, signal);
    } catch (e) {
      if (signal.aborted) throw new AbortError('request aborted while its grammar compiled');
      if (e instanceof GrammarEngineLostError) throw engineLost(e);
      const what = c.spec.type === 'gbnf' ? 'grammar' : c.param === 'tools' ? 'tool parameters schema' : 'JSON schema';
      if (e instanceof GrammarLimitError) throw invalidParam(c.param, `the ${what} in '${c.param}' is refused: ${e.message}`, 'grammar_limit_exceeded');
      if (e instanceof GrammarError) throw invalidParam(c.param, `the ${what} in '${c.param}' does not compile: ${e.message}`, 'invalid_grammar');
      throw e;
    }
  }

  /**
   * Leases a slot with KV room (waiting in the queue when there is none) and returns the
   * generation's event stream. Throws ApiError 503 (with Retry-After) when the queue is full or the
   * server is closing, AbortError when `signal` aborts while waiting. The slot is freed when the
   * stream ends or is closed early.
   */
  async start(prompt: readonly number[], params: GenerationParams & { reasoning?: ReasoningPlan }, signal?: AbortSignal): Promise<RunHandle> {
    if (this.closed) throw new ApiError(503, 'server is shutting down', 'server_error', null, 'server_shutting_down');
    this.awake(); // the HTTP side wakes a released model before a request gets here (sleep.ts)
    const lost = this.lostDevice();
    if (lost) throw deviceLostError(lost);
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) ac.abort();
    const maxTokens =
      this.maxTokensCap === undefined ? params.maxTokens : Math.min(params.maxTokens ?? Infinity, this.maxTokensCap);
    const positions = Math.min(this.slotContext, prompt.length + Math.min(maxTokens ?? DEFAULT_OUTPUT_RESERVE, this.slotContext));
    let lease;
    try {
      lease = await this.scheduler.acquire(prompt, positions, ac.signal, params.slot);
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      if (e instanceof QueueFullError) {
        const err = new ApiError(503, e.message, 'server_error', null, 'server_busy');
        err.headers['Retry-After'] = String(RETRY_AFTER_S);
        throw err;
      }
      if (e instanceof SchedulerClosedError) throw new ApiError(503, e.message, 'server_error', null, 'server_shutting_down');
      if (e instanceof AbortError) throw e;
      throw e;
    }
    // admitted: now the grammar (a failure gives the slot back)
    let constraint: TokenConstraint | undefined;
    try {
      constraint = this.thinkingFor(params.reasoning, await this.constraintFor(params, ac.signal));
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      lease.release(this.awake().slots[lease.slot]!.cached.slice());
      throw e;
    }
    this.active.add(ac);
    this.running++;
    const engine = this.awake();
    const slot = engine.slots[lease.slot]!;
    const runner = engine.runner;
    const onCancel = () => runner.cancel(slot.id); // a waiting step request ends at once
    ac.signal.addEventListener('abort', onCancel, { once: true });
    let finished = false;
    const finish = (cached: readonly number[]) => {
      if (finished) return;
      finished = true;
      constraint?.dispose?.();
      signal?.removeEventListener('abort', onAbort);
      ac.signal.removeEventListener('abort', onCancel);
      this.active.delete(ac);
      if (slot.exact !== undefined) {
        // after a context shift only the rows before the kept span's end are reusable
        cached = cached.slice(0, slot.exact);
        slot.cached.length = Math.min(slot.cached.length, slot.exact);
        slot.exact = undefined;
      }
      lease.release(cached);
      this.running--;
      if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
    const c = engine.lm.config;
    const rope = this.contextShift && engine.pool.k.length > 0 ? { half: c.ropeDim / 2, theta: c.ropeTheta } : undefined;
    const model = new SlotModel(slot, runner, engine.lm.tokenizer, this.slotContext, this.nVocab, params.ignoreEos, params.cachePrompt !== false, rope);
    const promptBatchSize = this.slotContext; // one evaluate() for the whole prompt: the runner chunks it
    const special = this.special;
    async function* events(): AsyncGenerator<GenerationEvent, RunInfo, undefined> {
      let cached: readonly number[] = [];
      try {
        const it = generate(model, prompt, {
          maxTokens,
          sampler: params.sampler,
          stop: params.stop,
          logprobs: params.logprobs,
          signal: ac.signal,
          promptBatchSize,
          constraint,
          special,
          contextShift: rope ? { keep: params.nKeep ?? 0, discard: params.nDiscard } : undefined,
        });
        let result: GenerationResult;
        try {
          result = yield* it;
        } catch (e) {
          if (e instanceof KvPoolFullError) {
            const err = new ApiError(503, e.message, 'server_error', null, 'kv_cache_full');
            err.headers['Retry-After'] = String(RETRY_AFTER_S);
            throw err;
          }
          if (e instanceof GrammarEngineLostError) throw engineLost(e);
          throw e;
        }
        // the cache holds the prompt and every output token but the last (never evaluated)
        cached = slot.cached.slice();
        return { result, slot: slot.id, promptTokens: prompt.length, cachedTokens: model.reusedTokens };
      } finally {
        finish(cached.length > 0 ? cached : slot.cached.slice());
      }
    }
    const gen = events();
    return {
      slot: slot.id,
      promptTokens: prompt.length,
      onPromptProgress: (listener) => {
        model.progress = listener;
      },
      events: gen,
      dispose: async () => {
        ac.abort();
        await gen.return(undefined as unknown as RunInfo).catch(() => undefined);
        finish(slot.cached.slice()); // a generator never started does not run its finally
      },
    };
  }

  /**
   * Leases slot `id` (waiting while a request runs on it) so that `fn` may read or rewrite its cache:
   * `fn` gets the slot's KV cache and tokens and returns the tokens the cache holds afterwards (its
   * rows written by then). `reserve`: room to make, the slot emptied first (what it held is parked
   * in the prompt cache when the pool has room); undefined: the cache as it is. Slot files use it
   * (slot-files.ts).
   */
  async withSlot<T>(id: number, reserve: number | undefined, signal: AbortSignal, fn: (kv: KVCache, cached: readonly number[]) => { cached: number[]; result: T }): Promise<T> {
    if (this.closed) throw new ApiError(503, 'server is shutting down', 'server_error', null, 'server_shutting_down');
    if (!(Number.isInteger(id) && id >= 0 && id < this.nSlots)) throw invalidParam('id_slot', `no slot ${id} (slots 0..${this.nSlots - 1})`);
    if (reserve !== undefined && reserve > this.slotContext) throw invalidParam('id_slot', `${reserve} tokens do not fit a slot (${this.slotContext} tokens)`);
    const own = this.awake().slots[id]!;
    const prompt = reserve === undefined ? own.cached.slice() : [];
    let lease;
    try {
      lease = await this.scheduler.acquire(prompt, reserve ?? prompt.length, signal, id);
    } catch (e) {
      if (e instanceof QueueFullError) throw new ApiError(503, e.message, 'server_error', null, 'server_busy');
      if (e instanceof SchedulerClosedError) throw new ApiError(503, e.message, 'server_error', null, 'server_shutting_down');
      throw e;
    }
    const slot = this.awake().slots[id]!;
    if (reserve !== undefined && slot.kv.capacity < reserve) {
      lease.release(slot.cached.slice());
      throw new ApiError(503, `the KV cache has no room for ${reserve} tokens now (${this.totalContext} in all, shared by the slots)`, 'server_error', null, 'kv_cache_full');
    }
    try {
      const { cached, result } = fn(slot.kv, slot.cached);
      slot.cached = cached;
      slot.kv.pool.allocator.setUsed(slot.kv.id, cached.length);
      lease.release(cached);
      return result;
    } catch (e) {
      lease.release(reserve === undefined ? slot.cached.slice() : []);
      if (reserve !== undefined) slot.cached = [];
      throw e;
    }
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
    await this.grammars?.close();
  }
}
