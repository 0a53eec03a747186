// Validation of the JSON bodies of /v1/completions and /v1/chat/completions into the engine's terms.
// Every problem is an ApiError (400) naming the field. Fields the engine cannot honour (n > 1,
// echo, best_of, suffix, tools, non-text response formats, images) are refused clearly rather than
// ignored. Unknown fields are ignored, as OpenAI clients send extras.
//
// Sampling defaults are llama.cpp's (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05), the same as
// `wf run`; top_k, min_p, repeat_penalty, repeat_last_n and ignore_eos are accepted as extensions.
import type { SamplerOptions } from '../generate/sampler.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { ApiError, invalidParam, invalidType, missingParam, unsupported } from './errors.js';

export const DEFAULT_SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } as const;
/** Most top alternatives reported per token. */
export const MAX_TOP_LOGPROBS = 20;
/** Most stop strings per request. */
export const MAX_STOP_STRINGS = 16;

export interface GenerationParams {
  sampler: SamplerOptions;
  /** most output tokens; undefined = until end of generation or the context is full */
  maxTokens?: number;
  stop: string[];
  /** report logprobs with this many alternatives (0 = the chosen token only); undefined = off */
  logprobs?: number;
  ignoreEos: boolean;
  stream: boolean;
  includeUsage: boolean;
}

export interface CompletionRequest extends GenerationParams {
  kind: 'completion';
  prompt: string | number[];
}

export interface ChatRequest extends GenerationParams {
  kind: 'chat';
  messages: ChatMessage[];
}

type Body = Record<string, unknown>;

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The body must be a JSON object. */
export function asObject(body: unknown): Body {
  if (!isObject(body)) {
    throw new ApiError(400, 'request body must be a JSON object', 'invalid_request_error', null, 'invalid_type');
  }
  return body;
}

function present(b: Body, key: string): boolean {
  return b[key] !== undefined && b[key] !== null;
}

function num(b: Body, key: string, check: (v: number) => boolean, want: string): number | undefined {
  if (!present(b, key)) return undefined;
  const v = b[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidType(key, 'a number', v);
  if (!check(v)) throw invalidParam(key, `'${key}' must be ${want}, got ${v}`);
  return v;
}

function int(b: Body, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (!present(b, key)) return undefined;
  const v = b[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidType(key, 'an integer', v);
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
  if (v < min) throw invalidParam(key, `'${key}' must be ${range}, got ${v}`);
  // past 2^53 a JSON number is no longer an exact integer (1e20 reads as one, but counts nothing)
  if (v > Number.MAX_SAFE_INTEGER) {
    throw invalidParam(key, `'${key}' is too large: ${v} is not a safe integer (the largest is ${Number.MAX_SAFE_INTEGER})`);
  }
  if (v > max) throw invalidParam(key, `'${key}' must be ${range}, got ${v}`);
  return v;
}

function bool(b: Body, key: string): boolean | undefined {
  if (!present(b, key)) return undefined;
  const v = b[key];
  if (typeof v !== 'boolean') throw invalidType(key, 'a boolean', v);
  return v;
}

function parseStop(b: Body): string[] {
  if (!present(b, 'stop')) return [];
  const v = b.stop;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw invalidType('stop', 'a string or an array of strings', v);
  if (list.length > MAX_STOP_STRINGS) throw invalidParam('stop', `'stop' may hold at most ${MAX_STOP_STRINGS} strings, got ${list.length}`);
  for (const s of list) {
    if (typeof s !== 'string') throw invalidType('stop', 'a string or an array of strings', s);
    if (s.length === 0) throw invalidParam('stop', "'stop' strings must not be empty");
  }
  return list as string[];
}

function parseLogitBias(b: Body, vocabSize: number): Record<string, number> | undefined {
  if (!present(b, 'logit_bias')) return undefined;
  const v = b.logit_bias;
  if (!isObject(v)) throw invalidType('logit_bias', 'an object mapping token ids to biases', v);
  const out: Record<string, number> = {};
  for (const [k, bias] of Object.entries(v)) {
    const id = Number(k);
    if (!/^\d+$/.test(k) || !Number.isInteger(id) || id >= vocabSize) {
      throw invalidParam('logit_bias', `'logit_bias' key '${k}' is not a token id of this model (0..${vocabSize - 1})`);
    }
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) {
      throw invalidParam('logit_bias', `'logit_bias' value for token ${k} must be a number between -100 and 100`);
    }
    out[k] = bias;
  }
  return out;
}

/** Fields shared by both endpoints. */
function parseCommon(b: Body, vocabSize: number, maxTokensKeys: string[]): Omit<GenerationParams, 'logprobs'> {
  if (present(b, 'model') && typeof b.model !== 'string') throw invalidType('model', 'a string', b.model);
  const n = int(b, 'n', 1);
  if (n !== undefined && n !== 1) throw unsupported('n', `only n=1 is supported (one choice per request), got n=${n}`);
  const stream = bool(b, 'stream') ?? false;
  let includeUsage = false;
  if (present(b, 'stream_options')) {
    const so = b.stream_options;
    if (!isObject(so)) throw invalidType('stream_options', 'an object', so);
    if (present(so, 'include_usage') && typeof so.include_usage !== 'boolean') {
      throw invalidType('stream_options.include_usage', 'a boolean', so.include_usage);
    }
    includeUsage = so.include_usage === true;
  }
  let maxTokens: number | undefined;
  for (const key of maxTokensKeys) {
    const v = int(b, key, 0);
    if (v !== undefined) {
      maxTokens = v;
      break;
    }
  }
  const temperature = num(b, 'temperature', (v) => v >= 0, '>= 0');
  const topP = num(b, 'top_p', (v) => v >= 0 && v <= 1, 'between 0 and 1');
  const topK = int(b, 'top_k', 0);
  const minP = num(b, 'min_p', (v) => v >= 0 && v < 1, 'in [0, 1)');
  const repeatPenalty = num(b, 'repeat_penalty', (v) => v > 0, '> 0');
  const repeatLastN = int(b, 'repeat_last_n', -1);
  const presencePenalty = num(b, 'presence_penalty', (v) => v >= -2 && v <= 2, 'between -2 and 2');
  const frequencyPenalty = num(b, 'frequency_penalty', (v) => v >= -2 && v <= 2, 'between -2 and 2');
  const seed = int(b, 'seed', Number.MIN_SAFE_INTEGER);
  const sampler: SamplerOptions = {
    temperature: temperature ?? DEFAULT_SAMPLING.temperature,
    topK: topK ?? DEFAULT_SAMPLING.topK,
    // top_p 0 means "only the most likely token"; the sampler wants p > 0
    topP: topP === undefined ? DEFAULT_SAMPLING.topP : Math.max(topP, 1e-9),
    minP: minP ?? DEFAULT_SAMPLING.minP,
  };
  if (repeatPenalty !== undefined) sampler.repeatPenalty = repeatPenalty;
  if (repeatLastN !== undefined) sampler.repeatLastN = repeatLastN;
  if (presencePenalty !== undefined) sampler.presencePenalty = presencePenalty;
  if (frequencyPenalty !== undefined) sampler.frequencyPenalty = frequencyPenalty;
  if (seed !== undefined) sampler.seed = seed;
  const bias = parseLogitBias(b, vocabSize);
  if (bias) sampler.logitBias = bias;
  return { sampler, maxTokens, stop: parseStop(b), ignoreEos: bool(b, 'ignore_eos') ?? false, stream, includeUsage };
}

function isTokenArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'number');
}

function parsePrompt(b: Body, vocabSize: number): string | number[] {
  if (!present(b, 'prompt')) throw missingParam('prompt');
  let p = b.prompt;
  // a batch of one prompt is the prompt
  if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string' || Array.isArray(x))) {
    if (p.length !== 1) throw unsupported('prompt', `only one prompt per request is supported, got ${p.length}`);
    p = p[0];
  }
  if (typeof p === 'string') return p;
  if (isTokenArray(p)) {
    p.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
        throw invalidParam('prompt', `prompt token ${t} at index ${i} is not a token id of this model (0..${vocabSize - 1})`);
      }
    });
    return p.slice();
  }
  if (Array.isArray(p) && p.length === 0) throw invalidParam('prompt', "'prompt' must not be an empty array");
  throw invalidType('prompt', 'a string, an array of token ids, or an array holding one of those', p);
}

export function parseCompletionRequest(body: unknown, vocabSize: number): CompletionRequest {
  const b = asObject(body);
  if (b.echo === true) throw unsupported('echo', "'echo' is not supported (the prompt is not returned with the completion)");
  if (present(b, 'echo') && typeof b.echo !== 'boolean') throw invalidType('echo', 'a boolean', b.echo);
  const bestOf = int(b, 'best_of', 1);
  if (bestOf !== undefined && bestOf !== 1) throw unsupported('best_of', `only best_of=1 is supported, got ${bestOf}`);
  if (present(b, 'suffix')) {
    if (typeof b.suffix !== 'string') throw invalidType('suffix', 'a string', b.suffix);
    if (b.suffix !== '') throw unsupported('suffix', "'suffix' (insertion) is not supported");
  }
  const prompt = parsePrompt(b, vocabSize);
  const common = parseCommon(b, vocabSize, ['max_tokens', 'n_predict']);
  const logprobs = int(b, 'logprobs', 0, MAX_TOP_LOGPROBS);
  return { kind: 'completion', prompt, ...common, logprobs };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function messageContent(m: Body, i: number): string {
  const c = m.content;
  const param = `messages[${i}].content`;
  if (c === undefined || c === null) {
    if (m.role === 'assistant') {
      if (present(m, 'tool_calls')) throw unsupported(`messages[${i}].tool_calls`, 'tool calls are not supported');
      return '';
    }
    throw missingParam(param);
  }
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) throw invalidType(param, 'a string or an array of content parts', c);
  const texts: string[] = [];
  c.forEach((part, j) => {
    if (!isObject(part)) throw invalidType(`${param}[${j}]`, 'a content part object', part);
    if (part.type !== 'text') {
      throw unsupported(`${param}[${j}].type`, `content parts of type ${JSON.stringify(part.type)} are not supported (text only)`);
    }
    if (typeof part.text !== 'string') throw invalidType(`${param}[${j}].text`, 'a string', part.text);
    texts.push(part.text);
  });
  return texts.join('\n');
}

export function parseMessages(v: unknown): ChatMessage[] {
  if (v === undefined || v === null) throw missingParam('messages');
  if (!Array.isArray(v)) throw invalidType('messages', 'an array of messages', v);
  if (v.length === 0) throw invalidParam('messages', "'messages' must hold at least one message");
  return v.map((m, i) => {
    if (!isObject(m)) throw invalidType(`messages[${i}]`, 'an object with role and content', m);
    if (typeof m.role !== 'string') throw m.role === undefined ? missingParam(`messages[${i}].role`) : invalidType(`messages[${i}].role`, 'a string', m.role);
    if (!ROLES.has(m.role)) {
      throw invalidParam(`messages[${i}].role`, `unknown role ${JSON.stringify(m.role)} (system, developer, user, assistant or tool)`);
    }
    const content = messageContent(m, i);
    // 'developer' is OpenAI's newer name for the system message
    const msg: ChatMessage = { role: m.role === 'developer' ? 'system' : m.role, content };
    if (typeof m.name === 'string') msg.name = m.name;
    return msg;
  });
}

export function parseChatRequest(body: unknown, vocabSize: number): ChatRequest {
  const b = asObject(body);
  const messages = parseMessages(b.messages);
  if (present(b, 'tools')) {
    if (!Array.isArray(b.tools)) throw invalidType('tools', 'an array', b.tools);
    if (b.tools.length > 0) throw unsupported('tools', 'tools (function calling) are not supported');
  }
  if (present(b, 'functions')) throw unsupported('functions', 'functions (function calling) are not supported');
  if (present(b, 'response_format')) {
    const rf = b.response_format;
    if (!isObject(rf)) throw invalidType('response_format', 'an object', rf);
    if (rf.type !== 'text') throw unsupported('response_format', `response_format ${JSON.stringify(rf.type)} is not supported (text only)`);
  }
  const common = parseCommon(b, vocabSize, ['max_completion_tokens', 'max_tokens', 'n_predict']);
  const wantLogprobs = bool(b, 'logprobs') ?? false;
  const top = int(b, 'top_logprobs', 0, MAX_TOP_LOGPROBS);
  if (top !== undefined && !wantLogprobs) throw invalidParam('top_logprobs', "'top_logprobs' needs 'logprobs': true");
  return { kind: 'chat', messages, ...common, logprobs: wantLogprobs ? (top ?? 0) : undefined };
}
