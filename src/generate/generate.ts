// The token loop: prompt -> model -> sampler -> stop checks -> streamed text, as an async
// generator, written against the minimal GenerationModel interface below (the real model is
// adapted to it; tests use a fake).
//
// Flow: reset the model, evaluate the prompt (in batches of promptBatchSize from position 0),
// then repeat { sample a token from the last logits; stop token? -> done; decode its bytes
// (incremental UTF-8: a character split across tokens appears once it is complete; a control token
// such as <|eot_id|> has none unless options.special, as in llama.cpp); pass the text
// through the stop-string matcher; yield a 'token' event with the text that is safe to show;
// evaluate the token at the next position }. The last event is always { type: 'done' } and the
// generator's return value is the same GenerationResult.
//
// Every event has a `text` field: the new visible text. Concatenating the texts of all events
// (the 'done' event included: it carries text held back until the end, such as a possible start
// of a stop string or a dangling partial UTF-8 sequence rendered as U+FFFD) gives result.text.
//
// Context: every output token fits in the context (prompt + output <= contextLength), so a caller
// can keep the sequence in its cache. A prompt longer than the context is an error unless
// truncate: 'start', which keeps the BOS token (when the prompt starts with model.bosToken) and
// the newest tokens, leaving min(maxTokens, contextLength / 2) positions for the output.
//
// Abort: the signal is checked before every model call (each prompt batch, each token); an
// aborted generation does NOT throw - it ends normally with finishReason 'abort' and the text
// produced so far. A model call already running is awaited, not interrupted.
//
// Constraint (optional, one per generation): before every draw the loop awaits its mask and hands
// it to the sampler; the chosen token is then accepted by the constraint (a stop token too). The
// generation owns nothing of it: the caller disposes it.
//
// Timings exclude the time the generator spends suspended at a yield (the consumer's time).
// generatedTokens counts every sampled token, the stop token included; result.tokens does not
// contain the stop token.

import { Sampler, type SamplerOptions, type TokenLogprobs, type TokenSampler } from './sampler.js';
import type { TokenConstraint } from './constraint.js';
import { finishReasonOf, StopStringMatcher, StopTokens, type FinishDetail, type FinishReason } from './stop.js';

export interface GenerationModel {
  /** Positions the model can hold (prompt + output). */
  readonly contextLength: number;
  /** Length of the logits vectors evaluate() returns. */
  readonly vocabSize: number;
  /** Beginning-of-sequence token, kept by prompt truncation. */
  readonly bosToken?: number;
  /** The bytes a token stands for (UTF-8 pieces; a character may be split across tokens). */
  tokenBytes(id: number): Uint8Array;
  /** End-of-generation tokens (eos, eot, ...). */
  isEndOfGeneration(id: number): boolean;
  /** Control tokens (GGUF token type 3: BOS, <|eot_id|>, reserved ...), which are not text unless options.special. */
  isControl?(id: number): boolean;
  /**
   * Runs `tokens` at positions startPos.. and returns the logits of the last one. The array may be
   * the model's own buffer, reused by its next evaluate(): generate() is done with it by then.
   */
  evaluate(tokens: readonly number[], startPos: number): Promise<Float32Array>;
  /** Forgets all positions (called once before the prompt is evaluated from position 0). */
  reset?(): void | Promise<void>;
  /**
   * Context shift: drops evaluated positions [keep, keep + discard) and moves the later ones down
   * (their keys re-rotated, model/kv-shift.ts). Absent: the model cannot, and a full context ends generation.
   */
  shift?(keep: number, discard: number): void | Promise<void>;
}

export interface GenerateOptions {
  /** Most output tokens (the stop token not counted); default: until the context is full. */
  maxTokens?: number;
  /** Sampler options, or a ready sampler (e.g. to share one random stream). */
  sampler?: SamplerOptions | TokenSampler;
  /** Stop strings (matched on the decoded text). */
  stop?: string | readonly string[];
  /** Extra stop token ids, on top of model.isEndOfGeneration. */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  /** Report logprobs: the chosen token's and this many top alternatives (0 = chosen only). */
  logprobs?: number;
  /** 'none' (default): a prompt longer than the context is an error. 'start': drop oldest tokens. */
  truncate?: 'none' | 'start';
  /** Prompt tokens per evaluate() call (abort is checked between calls). Default 512. */
  promptBatchSize?: number;
  /** Restricts every drawn token (a grammar, a JSON schema); see constraint.ts. */
  constraint?: TokenConstraint;
  /**
   * Render control tokens into the text (llama.cpp's --special). Default false: a generated control
   * token still counts, is in result.tokens and logprobs and can stop generation, but adds no text.
   */
  special?: boolean;
  /**
   * When the context is full, drop half of the positions after the first `keep` (or `discard` of
   * them) and go on, as llama.cpp's --context-shift (needs model.shift). The BOS token is always kept.
   */
  contextShift?: { keep: number; discard?: number };
}

export interface GenerationTimings {
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generateMs: number;
  promptTokensPerSecond: number;
  tokensPerSecond: number;
}

export interface GenerationResult {
  finishReason: FinishReason;
  detail: FinishDetail;
  /** Output tokens (without the stop token). */
  tokens: number[];
  /** Visible output text (cut before a stop string). */
  text: string;
  /** Prompt tokens dropped by truncate: 'start'. */
  truncatedPromptTokens: number;
  /** Times the context was shifted (contextShift) */
  contextShifts?: number;
  /** The sampler's seed, when the sampler was built here (or exposes one). */
  seed?: number;
  timings: GenerationTimings;
}

export interface TokenEvent {
  type: 'token';
  token: number;
  /** New visible text (may be empty while text is held back). */
  text: string;
  logprobs?: TokenLogprobs;
}

export interface DoneEvent {
  type: 'done';
  /** Visible text released only at the end (usually empty). */
  text: string;
  result: GenerationResult;
}

export type GenerationEvent = TokenEvent | DoneEvent;

const DEFAULT_PROMPT_BATCH = 512;
const NO_BYTES = new Uint8Array(0);

const now: () => number =
  typeof performance !== 'undefined' && typeof performance.now === 'function' ? () => performance.now() : () => Date.now();

function isTokenSampler(s: GenerateOptions['sampler']): s is TokenSampler {
  return s !== undefined && typeof (s as TokenSampler).sample === 'function';
}

/**
 * What a context shift drops, as llama-server computes it: the first `keep` positions stay (plus BOS),
 * at most ctx - 4; of the rest, `discard` or half go. null when nothing can go.
 */
export function shiftSpan(opts: { keep: number; discard?: number }, evaluated: number, ctx: number, bos: boolean): { keep: number; n: number } | null {
  const keep = Math.max(0, Math.min(ctx - 4, opts.keep + (bos ? 1 : 0)));
  const left = evaluated - keep;
  const n = Math.max(0, Math.min(opts.discard || Math.floor(left / 2), left - 1));
  return n > 0 ? { keep, n } : null;
}

/**
 * The prompt after truncate: 'start' (BOS kept), or the prompt itself when it leaves room for at
 * least one output token. Throws when it is longer than the context and truncation is off.
 */
export function fitPrompt(
  prompt: readonly number[],
  contextLength: number,
  opts: { truncate?: 'none' | 'start'; maxTokens?: number; bosToken?: number },
): number[] {
  if (prompt.length < contextLength) return [...prompt];
  if (opts.truncate !== 'start') {
    if (prompt.length === contextLength) return [...prompt]; // fits; the output will be empty
    throw new Error(
      `prompt has ${prompt.length} tokens but the context holds ${contextLength} ` +
        `(use truncate: 'start' to drop the oldest tokens)`,
    );
  }
  const room = Math.max(1, Math.min(opts.maxTokens ?? Infinity, Math.floor(contextLength / 2)));
  const keep = contextLength - room;
  const keepBos = opts.bosToken !== undefined && prompt[0] === opts.bosToken;
  if (keep < (keepBos ? 2 : 1)) {
    throw new Error(`context of ${contextLength} tokens is too small to hold a truncated prompt and an answer`);
  }
  return keepBos ? [prompt[0]!, ...prompt.slice(prompt.length - (keep - 1))] : prompt.slice(prompt.length - keep);
}

function checkInt(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    throw new Error(`${name} must be an integer >= ${min}, got ${String(v)}`);
  }
}

export async function* generate(
  model: GenerationModel,
  promptTokens: readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GenerationEvent, GenerationResult, undefined> {
  const ctx = model.contextLength;
  const vocab = model.vocabSize;
  checkInt('contextLength', ctx, 1);
  checkInt('vocabSize', vocab, 1);
  checkInt('maxTokens', options.maxTokens, 0);
  checkInt('logprobs', options.logprobs, 0);
  checkInt('promptBatchSize', options.promptBatchSize, 1);
  if (options.truncate !== undefined && options.truncate !== 'none' && options.truncate !== 'start') {
    throw new Error(`truncate must be 'none' or 'start', got ${String(options.truncate)}`);
  }
  if (promptTokens.length === 0) throw new Error('prompt is empty (it needs at least one token, e.g. BOS)');
  promptTokens.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new Error(`prompt token ${String(t)} at index ${i} is outside the vocabulary (0..${vocab - 1})`);
    }
  });
  const maxTokens = options.maxTokens ?? Infinity;
  const prompt = fitPrompt(promptTokens, ctx, { truncate: options.truncate, maxTokens, bosToken: model.bosToken });
  const sampler: TokenSampler = isTokenSampler(options.sampler) ? options.sampler : new Sampler(options.sampler);
  const stopTokens = new StopTokens((id) => model.isEndOfGeneration(id), options.stopTokens ?? []);
  const stops = options.stop === undefined ? [] : typeof options.stop === 'string' ? [options.stop] : options.stop;
  const matcher = new StopStringMatcher(stops);
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const batch = options.promptBatchSize ?? DEFAULT_PROMPT_BATCH;
  const signal = options.signal;
  const hideControl = !options.special && typeof model.isControl === 'function';

  const history = prompt.slice();
  const out: number[] = [];
  let text = '';
  let sampled = 0;
  let promptMs = 0;
  let generateMs = 0;
  let evaluatedPrompt = 0;
  let detail: FinishDetail | null = null;
  let shifts = 0;

  /** Remaining decoder bytes and held-back text, at a finish that is not a stop string. */
  const release = (): string => {
    const tail = decoder.decode();
    if (tail.length === 0) return matcher.flush();
    const r = matcher.push(tail);
    return r.stop !== null ? r.text : r.text + matcher.flush();
  };

  if (signal?.aborted) detail = { type: 'abort' };
  else if (maxTokens === 0) detail = { type: 'maxTokens', maxTokens: 0 };
  else if (prompt.length >= ctx) detail = { type: 'context', contextLength: ctx };

  let logits: Float32Array | null = null;
  if (detail === null) {
    const t0 = now();
    await model.reset?.();
    for (let start = 0; start < prompt.length; start += batch) {
      if (signal?.aborted) {
        detail = { type: 'abort' };
        break;
      }
      logits = await model.evaluate(prompt.slice(start, start + batch), start);
      evaluatedPrompt = Math.min(prompt.length, start + batch);
    }
    promptMs = now() - t0;
  }

  let pendingTail = '';
  while (detail === null) {
    if (signal?.aborted) {
      detail = { type: 'abort' };
      break;
    }
    const t0 = now();
    if (!(logits instanceof Float32Array) || logits.length !== vocab) {
      throw new Error(
        `model returned ${logits instanceof Float32Array ? `${logits.length} logits` : 'no logits'}, expected ${vocab}`,
      );
    }
    const constraint = options.constraint;
    const token = constraint ? sampler.sample(logits, history, await constraint.mask()) : sampler.sample(logits, history);
    constraint?.accept(token);
    sampled++;
    const lp = options.logprobs !== undefined ? sampler.logprobs(token, options.logprobs) : undefined;
    if (stopTokens.has(token)) {
      generateMs += now() - t0;
      detail = { type: 'stopToken', token };
      break;
    }
    history.push(token);
    out.push(token);
    const bytes = hideControl && model.isControl!(token) ? NO_BYTES : model.tokenBytes(token);
    const r = matcher.push(decoder.decode(bytes, { stream: true }));
    let shown = r.text;
    if (r.stop !== null) detail = { type: 'stopString', stop: r.stop };
    else if (out.length >= maxTokens) detail = { type: 'maxTokens', maxTokens };
    else if (history.length >= ctx) {
      // the positions evaluated so far: every token but the one just sampled
      const discard = options.contextShift && model.shift ? shiftSpan(options.contextShift, history.length - 1, ctx, history[0] === model.bosToken) : null;
      if (discard) {
        await model.shift!(discard.keep, discard.n);
        history.splice(discard.keep, discard.n);
        shifts++;
      } else detail = { type: 'context', contextLength: ctx };
    }
    if (detail !== null && detail.type !== 'stopString') shown += release();
    generateMs += now() - t0;
    text += shown;
    const ev: TokenEvent = { type: 'token', token, text: shown };
    if (lp) ev.logprobs = lp;
    yield ev;
    if (detail !== null) break;
    if (signal?.aborted) {
      detail = { type: 'abort' };
      break;
    }
    const t1 = now();
    logits = await model.evaluate([token], history.length - 1);
    generateMs += now() - t1;
  }
  if (detail.type === 'stopToken' || detail.type === 'abort') pendingTail = release();
  text += pendingTail;

  const seed = (sampler as { seed?: unknown }).seed;
  const result: GenerationResult = {
    finishReason: finishReasonOf(detail),
    detail,
    tokens: out,
    text,
    truncatedPromptTokens: promptTokens.length - prompt.length,
    ...(shifts > 0 ? { contextShifts: shifts } : {}),
    timings: {
      promptTokens: evaluatedPrompt,
      promptMs,
      generatedTokens: sampled,
      generateMs,
      promptTokensPerSecond: promptMs > 0 ? (evaluatedPrompt * 1000) / promptMs : 0,
      tokensPerSecond: generateMs > 0 ? (sampled * 1000) / generateMs : 0,
    },
  };
  if (typeof seed === 'number') result.seed = seed;
  yield { type: 'done', text: pendingTail, result };
  return result;
}

/** Runs a generation to the end and returns its result (no streaming). */
export async function generateText(
  model: GenerationModel,
  promptTokens: readonly number[],
  options: GenerateOptions = {},
): Promise<GenerationResult> {
  const it = generate(model, promptTokens, options);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
