// Validation of the JSON bodies of /v1/completions and /v1/chat/completions into the engine's terms.
// Every problem is an ApiError (400) naming the field. Fields the engine cannot honour (echo,
// best_of, suffix, images) are refused clearly rather than ignored. Unknown fields are
// ignored, as OpenAI clients send extras.
//
// Constrained output (at most one per request): response_format {type: json_object | json_schema},
// llama-server's `json_schema` (a schema) and `grammar` (GBNF), or the tool-call envelope of
// tool-calls.ts when the request has tools. The grammar itself is compiled later, by the service
// (a schema that does not compile is a 400 from there).
//
// Sampling defaults are llama.cpp's (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05), the same as
// `wf run`; top_k, min_p, repeat_penalty, repeat_last_n and ignore_eos are accepted as extensions.
import { reasoningBudgetField, reasoningBudgetMessageField, reasoningFormatField, type ReasoningFormat } from './reasoning-output.js';
import { withReasoningEffort } from './reasoning-effort.js';
import type { GrammarSpec } from '../generate/grammar.js';
import type { SamplerOptions } from '../generate/sampler.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { ApiError, invalidParam, invalidType, missingParam, unsupported } from './errors.js';
import { parseTools, withToolPrompt, type ToolsRequest } from './tool-calls.js';
import { continuation } from './chat-continue.js';
import { checkSchemaTypes } from './schema-check.js';
import { modernSchema } from './schema-draft.js';
import { parseTelemetry } from './stream-telemetry.js';
import { templateTools, TOOL_FORMATS, type ToolFormat } from './tool-formats.js';

export const DEFAULT_SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } as const;
/** Most top alternatives reported per token. */
export const MAX_TOP_LOGPROBS = 20;
/** Most choices per request (`n`); the server's slots bound it too. */
export const MAX_CHOICES = 16;
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
  /** add llama-server's `__verbose` object (the prompt text) to the response */
  verbose?: boolean;
  /** false: evaluate the whole prompt, reusing no cached prefix (llama-server's cache_prompt) */
  cachePrompt?: boolean;
  /** choices to generate (n > 1: each on a slot of its own, sharing the prompt's KV; choices.ts) */
  n?: number;
  /** the grammar the output must follow, and the request field it came from (for errors) */
  constraint?: { spec: GrammarSpec; param: string };
  /** run on this slot (llama-server's id_slot), waiting while it is busy; undefined: the best idle one */
  slot?: number;
  /** context shift (--context-shift): prompt tokens always kept (llama-server's n_keep; BOS comes on top), and how many go per shift (n_discard; default half) */
  nKeep?: number;
  nDiscard?: number;
  /** llama-server's return_progress: prompt_progress chunks in a stream (stream-telemetry.ts) */
  returnProgress?: boolean;
  /** llama-server's timings_per_token: timings on every streamed chunk (stream-telemetry.ts) */
  timingsPerToken?: boolean;
}

export interface CompletionRequest extends GenerationParams {
  kind: 'completion';
  prompt: string | number[];
}

export interface ChatRequest extends GenerationParams {
  kind: 'chat';
  /** the conversation as the template renders it (with the tool description when there are tools) */
  messages: ChatMessage[];
  /** tools the reply may call (absent: none, or tool_choice 'none') */
  tools?: ToolsRequest;
  /** how the model is shown the tools and writes its calls (tool-formats.ts) */
  toolFormat?: ToolFormat;
  /** extra chat template variables (`tools`, for templates that take them) */
  templateVariables?: Record<string, unknown>;
  /** the template's add_generation_prompt (default true) */
  addGenerationPrompt?: boolean;
  /** the assistant text the reply continues (chat-continue.ts), written after the rendered prompt */
  prefill?: string;
  /** llama-server's `reasoning_format` (reasoning-output.ts); absent: the server's --reasoning-format */
  reasoningFormat?: ReasoningFormat;
  /** llama-server's `reasoning_budget_tokens` (thinking-constraint.ts); absent: the server's --reasoning-budget */
  reasoningBudget?: number;
  /** llama-server's `reasoning_budget_message`; absent: the server's --reasoning-budget-message */
  reasoningBudgetMessage?: string;
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
  const n = int(b, 'n', 1, MAX_CHOICES);
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
    // OpenAI refuses max_tokens below 1; llama.cpp's n_predict 0 is allowed (nothing generated)
    const v = int(b, key, key === 'n_predict' ? 0 : 1);
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
  const ignoreEos = bool(b, 'ignore_eos') ?? false;
  const constraint = parseConstraint(b);
  if (constraint && ignoreEos) {
    throw invalidParam('ignore_eos', `'ignore_eos' cannot be combined with constrained output ('${constraint.param}'): the grammar ends with the end-of-generation token`);
  }
  const params: Omit<GenerationParams, 'logprobs'> = { sampler, maxTokens, stop: parseStop(b), ignoreEos, stream, includeUsage };
  if (bool(b, 'verbose')) params.verbose = true;
  if (n !== undefined && n > 1) params.n = n;
  if (constraint) params.constraint = constraint;
  Object.assign(params, parseTelemetry(b));
  return params;
}

/** response_format, json_schema or grammar: the one grammar the output follows, if any. */
function parseConstraint(b: Body): { spec: GrammarSpec; param: string } | undefined {
  const found: { spec: GrammarSpec; param: string }[] = [];
  if (present(b, 'response_format')) {
    const rf = b.response_format;
    if (!isObject(rf)) throw invalidType('response_format', 'an object', rf);
    if (rf.type === 'json_object' && present(rf, 'schema')) {
      // llama-server's form: json_object with a schema is that schema
      const schema = rf.schema;
      if (!isObject(schema) && typeof schema !== 'boolean') throw invalidType('response_format.schema', 'a JSON Schema object', schema);
      found.push({ spec: { type: 'json_schema', schema }, param: 'response_format.schema' });
    } else if (rf.type === 'json_object') found.push({ spec: { type: 'json_object' }, param: 'response_format' });
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema;
      if (!isObject(js)) throw js === undefined ? missingParam('response_format.json_schema') : invalidType('response_format.json_schema', 'an object {name, schema, strict}', js);
      if (js.name !== undefined && typeof js.name !== 'string') throw invalidType('response_format.json_schema.name', 'a string', js.name);
      if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean') throw invalidType('response_format.json_schema.strict', 'a boolean', js.strict);
      const schema = js.schema ?? {};
      if (!isObject(schema) && typeof schema !== 'boolean') throw invalidType('response_format.json_schema.schema', 'a JSON Schema object', schema);
      found.push({ spec: { type: 'json_schema', schema }, param: 'response_format.json_schema.schema' });
    } else if (rf.type !== 'text') {
      throw unsupported('response_format', `response_format type ${JSON.stringify(rf.type)} is not supported (text, json_object or json_schema)`);
    }
  }
  if (present(b, 'json_schema')) {
    const schema = b.json_schema;
    if (!isObject(schema) && typeof schema !== 'boolean') throw invalidType('json_schema', 'a JSON Schema object', schema);
    found.push({ spec: { type: 'json_schema', schema }, param: 'json_schema' });
  }
  if (present(b, 'grammar')) {
    if (typeof b.grammar !== 'string') throw invalidType('grammar', 'a string (GBNF)', b.grammar);
    if (b.grammar.trim() === '') throw invalidParam('grammar', "'grammar' is empty");
    found.push({ spec: { type: 'gbnf', grammar: b.grammar }, param: 'grammar' });
  }
  for (const f of found) {
    if (f.spec.type !== 'json_schema') continue;
    f.spec = { type: 'json_schema', schema: modernSchema(f.spec.schema) }; // older drafts' tuples (schema-draft.ts)
    checkSchemaTypes(f.spec.schema, f.param);
  }
  if (found.length > 1) {
    throw invalidParam(found[1]!.param, `'${found[0]!.param}' and '${found[1]!.param}' both constrain the output: give one`);
  }
  return found[0];
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
    if (m.role === 'assistant') return '';
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

/** An assistant message's tool_calls: [{id, type: 'function', function: {name, arguments (JSON text)}}]. */
function parseMessageToolCalls(v: unknown, i: number) {
  const p = `messages[${i}].tool_calls`;
  if (!Array.isArray(v)) throw invalidType(p, 'an array of tool calls', v);
  return v.map((c, j) => {
    const q = `${p}[${j}]`;
    if (!isObject(c) || !isObject(c.function)) throw invalidType(q, 'a tool call {id, type: "function", function: {name, arguments}}', c);
    const f = c.function;
    if (typeof f.name !== 'string') throw f.name === undefined ? missingParam(`${q}.function.name`) : invalidType(`${q}.function.name`, 'a string', f.name);
    const args = f.arguments ?? '{}';
    if (typeof args !== 'string') throw invalidType(`${q}.function.arguments`, 'a string of JSON', args);
    try {
      JSON.parse(args);
    } catch {
      throw invalidParam(`${q}.function.arguments`, `'${q}.function.arguments' is not valid JSON`);
    }
    const id = typeof c.id === 'string' ? c.id : '';
    return { id, type: 'function' as const, function: { name: f.name, arguments: args } };
  });
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
    if (m.role === 'assistant' && present(m, 'tool_calls')) {
      const calls = parseMessageToolCalls(m.tool_calls, i);
      // shown to the model in its tool format's way (tool-formats.ts: history)
      msg.tool_calls = calls.map(({ id, type, function: f }) => ({ id, type, function: f }));
    }
    if (m.role === 'assistant' && present(m, 'reasoning_content')) {
      // earlier thinking, for templates that show it again (Qwen 3 does after the last user turn)
      if (typeof m.reasoning_content !== 'string') throw invalidType(`messages[${i}].reasoning_content`, 'a string', m.reasoning_content);
      msg.reasoning_content = m.reasoning_content;
    }
    if (m.role === 'tool') {
      if (typeof m.tool_call_id !== 'string') {
        throw m.tool_call_id === undefined ? missingParam(`messages[${i}].tool_call_id`) : invalidType(`messages[${i}].tool_call_id`, 'a string', m.tool_call_id);
      }
      msg.tool_call_id = m.tool_call_id;
    }
    return msg;
  });
}

/** `format`: the model's tool format (tool-formats.ts; default the generic one). */
export function parseChatRequest(body: unknown, vocabSize: number, format: ToolFormat = TOOL_FORMATS.generic): ChatRequest {
  const b = asObject(body);
  const cont = continuation(b, parseMessages(b.messages));
  let messages = format.history(cont.messages);
  const tools = parseTools(b);
  const common = parseCommon(b, vocabSize, ['max_completion_tokens', 'max_tokens', 'n_predict']);
  const wantLogprobs = bool(b, 'logprobs') ?? false;
  const top = int(b, 'top_logprobs', 0, MAX_TOP_LOGPROBS);
  if (top !== undefined && !wantLogprobs) throw invalidParam('top_logprobs', "'top_logprobs' needs 'logprobs': true");
  const req: ChatRequest = { kind: 'chat', messages, ...common, logprobs: wantLogprobs ? (top ?? 0) : undefined };
  if (!cont.addGenerationPrompt) req.addGenerationPrompt = false;
  if (present(b, 'chat_template_kwargs')) {
    // extra template variables (llama-server's and vLLM's field), e.g. {"enable_thinking": false}
    if (!isObject(b.chat_template_kwargs)) throw invalidType('chat_template_kwargs', 'an object', b.chat_template_kwargs);
    req.templateVariables = { ...b.chat_template_kwargs };
  }
  const thinkingVars = withReasoningEffort(b, req.templateVariables);
  if (thinkingVars) req.templateVariables = thinkingVars;
  if (cont.prefill) req.prefill = cont.prefill;
  const reasoningFormat = reasoningFormatField(b);
  if (reasoningFormat) req.reasoningFormat = reasoningFormat;
  const reasoningBudget = reasoningBudgetField(b);
  if (reasoningBudget !== undefined) req.reasoningBudget = reasoningBudget;
  const budgetMessage = reasoningBudgetMessageField(b);
  if (budgetMessage !== undefined) req.reasoningBudgetMessage = budgetMessage;
  if (tools) {
    if (common.constraint) {
      throw invalidParam(common.constraint.param, `'${common.constraint.param}' cannot be combined with 'tools' (unless tool_choice is "none")`);
    }
    if (common.ignoreEos) throw invalidParam('ignore_eos', "'ignore_eos' cannot be combined with 'tools'");
    if (format.inTemplate) req.templateVariables = { ...req.templateVariables, tools: templateTools(tools) };
    // the envelope formats are described in the system prompt (with the tools, unless the template shows them)
    if (format.envelope) messages = withToolPrompt(messages, tools, !format.inTemplate);
    req.messages = messages;
    req.tools = tools;
    req.toolFormat = format;
    req.constraint = { spec: format.grammar(tools), param: 'tools' };
  }
  return req;
}
