// The body of POST /v1/responses (OpenAI's Responses API) translated into a chat request, so that
// validation, tools, constrained output and sampling are the chat endpoint's (requests.ts):
//
//   input: "text" | [items]     items: messages {role, content: string | [input_text | output_text parts]},
//                               function_call {call_id, name, arguments}, function_call_output {call_id, output};
//                               reasoning items become the next assistant turn's reasoning_content
//   instructions                a system message in front (not carried over by previous_response_id, as OpenAI)
//   previous_response_id        the stored conversation of that response goes before `input`
//   max_output_tokens           max_tokens (at least 1)
//   tools [{type: "function", name, description, parameters, strict}], tool_choice, parallel_tool_calls
//   text.format                 {type: text | json_object | json_schema (name, schema, strict)}
//   temperature, top_p          and llama.cpp's sampling extensions (top_k, min_p, seed, ...) as on chat
//   include ["message.output_text.logprobs"], top_logprobs
//   reasoning.effort            the chat field reasoning_effort (reasoning-effort.ts)
//
// Errors name the Responses field (`input[2].content`, `text.format.schema`, `tools[0].name`), not
// the chat field it became. Features this server does not have (built-in tools, background runs,
// conversations, truncation: auto, images and files) are refused with a 400.
import { ApiError, invalidParam, invalidType, missingParam, unsupported } from './errors.js';
import { asObject, MAX_TOP_LOGPROBS, parseChatRequest, type ChatRequest } from './requests.js';
import type { ResponseStore } from './response-store.js';
import type { ToolFormat } from './tool-formats.js';

type Body = Record<string, unknown>;
/** A chat message as /v1/chat/completions takes it (and as the store keeps the conversation). */
export type ChatMessageJson = Record<string, unknown>;

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);
const present = (b: Body, k: string) => b[k] !== undefined && b[k] !== null;

/** The request fields a response object repeats. */
export interface ResponseEcho {
  instructions: string | null;
  max_output_tokens: number | null;
  previous_response_id: string | null;
  parallel_tool_calls: boolean;
  temperature: number | null;
  top_p: number | null;
  top_logprobs: number | null;
  tool_choice: unknown;
  tools: unknown[];
  text: { format: unknown };
  store: boolean;
  metadata: Record<string, unknown>;
  user: string | null;
  /** reasoning.effort as asked (null: none) */
  reasoning_effort?: string | null;
}

export interface ResponsesRequest {
  chat: ChatRequest;
  stream: boolean;
  store: boolean;
  /** the conversation before this request's input (from previous_response_id), without instructions */
  history: ChatMessageJson[];
  /** this request's input, as chat messages */
  input: ChatMessageJson[];
  echo: ResponseEcho;
}

const ROLES = new Set(['user', 'assistant', 'system', 'developer']);

/** The text of a message's content: a string, or text parts (input_text, output_text). */
function contentText(c: unknown, param: string): string {
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) throw c === undefined || c === null ? missingParam(param) : invalidType(param, 'a string or an array of content parts', c);
  return c
    .map((part, j) => {
      const p = `${param}[${j}]`;
      if (!isObject(part)) throw invalidType(p, 'a content part object', part);
      if (part.type === 'input_text' || part.type === 'output_text' || part.type === 'text') {
        if (typeof part.text !== 'string') throw invalidType(`${p}.text`, 'a string', part.text);
        return part.text;
      }
      if (part.type === 'refusal' && typeof part.refusal === 'string') return part.refusal;
      throw unsupported(`${p}.type`, `content parts of type ${JSON.stringify(part.type)} are not supported (text only: input_text, output_text)`);
    })
    .join('\n');
}

function requireString(item: Body, key: string, param: string): string {
  const v = item[key];
  if (typeof v !== 'string') throw v === undefined || v === null ? missingParam(`${param}.${key}`) : invalidType(`${param}.${key}`, 'a string', v);
  return v;
}

/** `input` as chat messages: consecutive function calls join the assistant message before them. */
/** The text of a reasoning item's `content` ([{type: "reasoning_text", text}]); "" when it has none. */
function reasoningText(v: unknown, where: string): string {
  if (v === undefined || v === null) return '';
  if (!Array.isArray(v)) throw invalidType(where, 'an array of reasoning_text parts', v);
  return v
    .map((part, j) => {
      if (!isObject(part) || typeof part.text !== 'string') throw invalidType(`${where}[${j}]`, 'a part {type: "reasoning_text", text}', part);
      return part.text;
    })
    .join('');
}

export function inputMessages(input: unknown): ChatMessageJson[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) throw invalidType('input', 'a string or an array of input items', input);
  const out: ChatMessageJson[] = [];
  let pendingReasoning: string | undefined;
  // an assistant turn takes the reasoning items before it
  const withThinking = (m: ChatMessageJson): ChatMessageJson => {
    if (pendingReasoning === undefined || m.role !== 'assistant') return m;
    const r = { ...m, reasoning_content: pendingReasoning };
    pendingReasoning = undefined;
    return r;
  };
  input.forEach((item, i) => {
    const p = `input[${i}]`;
    if (!isObject(item)) throw invalidType(p, 'an input item object', item);
    const type = item.type ?? 'message';
    if (type === 'message') {
      if (typeof item.role !== 'string') throw item.role === undefined ? missingParam(`${p}.role`) : invalidType(`${p}.role`, 'a string', item.role);
      if (!ROLES.has(item.role)) throw invalidParam(`${p}.role`, `unknown role ${JSON.stringify(item.role)} (user, assistant, system or developer)`);
      out.push(withThinking({ role: item.role, content: contentText(item.content, `${p}.content`) }));
    } else if (type === 'function_call') {
      const call = {
        id: requireString(item, 'call_id', p),
        type: 'function',
        function: { name: requireString(item, 'name', p), arguments: requireString(item, 'arguments', p) },
      };
      try {
        JSON.parse(call.function.arguments);
      } catch {
        throw invalidParam(`${p}.arguments`, `'${p}.arguments' is not valid JSON`);
      }
      const last = out[out.length - 1];
      if (last?.role === 'assistant') last.tool_calls = [...((last.tool_calls as unknown[]) ?? []), call];
      else out.push(withThinking({ role: 'assistant', content: null, tool_calls: [call] }));
    } else if (type === 'function_call_output') {
      const id = requireString(item, 'call_id', p);
      const output = typeof item.output === 'string' ? item.output : contentText(item.output, `${p}.output`);
      out.push({ role: 'tool', tool_call_id: id, content: output });
    } else if (type === 'reasoning') {
      // earlier thinking (this server's reasoning items): the reasoning_content of the assistant turn
      // it led to, the next one (templates that show earlier reasoning render it); an item with no
      // readable text (another model's encrypted reasoning) gives nothing
      const text = reasoningText(item.content, `${p}.content`);
      if (text !== '') pendingReasoning = (pendingReasoning ?? '') + text;
    } else {
      throw unsupported(`${p}.type`, `input items of type ${JSON.stringify(type)} are not supported (message, function_call, function_call_output)`);
    }
  });
  return out;
}

/** Responses function tools ({type, name, parameters, ...}) in the chat shape ({type, function: {...}}). */
function chatTools(v: unknown): Body[] {
  if (!Array.isArray(v)) throw invalidType('tools', 'an array of tools', v);
  return v.map((t, i) => {
    if (!isObject(t)) throw invalidType(`tools[${i}]`, 'a tool object {type: "function", name, parameters}', t);
    if (t.type !== 'function') {
      throw unsupported(`tools[${i}].type`, `tools of type ${JSON.stringify(t.type)} are not supported (function tools only)`);
    }
    const { type: _type, ...fn } = t;
    return { type: 'function', function: fn };
  });
}

function chatToolChoice(v: unknown): unknown {
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  if (isObject(v) && v.type === 'function' && typeof v.name === 'string') return { type: 'function', function: { name: v.name } };
  throw invalidParam('tool_choice', `'tool_choice' must be "none", "auto", "required" or {type: "function", name}, got ${JSON.stringify(v)}`);
}

/** text.format as the chat endpoint's response_format (undefined for plain text). */
function chatResponseFormat(text: unknown): Body | undefined {
  if (!isObject(text)) throw invalidType('text', 'an object {format}', text);
  if (!present(text, 'format')) return undefined;
  const f = text.format;
  if (!isObject(f)) throw invalidType('text.format', 'an object {type: "text" | "json_object" | "json_schema", ...}', f);
  if (f.type === 'text') return undefined;
  if (f.type === 'json_object') return { type: 'json_object' };
  if (f.type === 'json_schema') {
    if (!present(f, 'schema')) throw missingParam('text.format.schema');
    return { type: 'json_schema', json_schema: { name: f.name, schema: f.schema, strict: f.strict } };
  }
  throw unsupported('text.format.type', `text.format type ${JSON.stringify(f.type)} is not supported (text, json_object or json_schema)`);
}

/** A chat field's name in a request error, as the Responses request calls it. */
function responsesParam(param: string): string {
  return param
    .replace(/^tools\[(\d+)\]\.function\./, 'tools[$1].')
    .replace(/^response_format\.json_schema\./, 'text.format.')
    .replace(/^response_format(\.json_schema)?$/, 'text.format')
    .replace(/^(max_tokens|max_completion_tokens)$/, 'max_output_tokens')
    .replace(/^reasoning_effort$/, 'reasoning.effort')
    .replace(/^messages\b/, 'input');
}

/** An ApiError with the chat field's name replaced by the Responses one (in `param` and the message). */
export function renamed(e: unknown): unknown {
  if (!(e instanceof ApiError) || e.param === null) return e;
  const param = responsesParam(e.param);
  if (param === e.param) return e;
  const r = new ApiError(e.status, e.message.split(e.param).join(param), e.type, param, e.code);
  Object.assign(r.headers, e.headers);
  return r;
}

const PASSED_ON = ['temperature', 'top_p', 'top_k', 'min_p', 'seed', 'repeat_penalty', 'repeat_last_n', 'presence_penalty', 'frequency_penalty', 'logit_bias', 'stop', 'parallel_tool_calls',
  // llama-server's stream telemetry (stream-telemetry.ts)
  'return_progress', 'timings_per_token',
  // llama-server's reasoning fields (reasoning-output.ts)
  'reasoning_format', 'reasoning_budget_tokens', 'thinking_budget_tokens', 'reasoning_budget_message'];

export function parseResponsesRequest(body: unknown, vocabSize: number, format: ToolFormat, store: ResponseStore): ResponsesRequest {
  const b = asObject(body);
  if (present(b, 'model') && typeof b.model !== 'string') throw invalidType('model', 'a string', b.model);
  if (b.background === true) throw unsupported('background', "'background' responses are not supported: the response is returned (or streamed) as it is generated");
  for (const k of ['conversation', 'prompt']) {
    if (present(b, k)) throw unsupported(k, `'${k}' is not supported by this server: send the conversation as 'input' or with 'previous_response_id'`);
  }
  // reasoning.effort: as the chat field reasoning_effort (reasoning-effort.ts); the reasoning item
  // carries the whole thinking, so `summary` asks for nothing more
  if (present(b, 'reasoning') && !isObject(b.reasoning)) throw invalidType('reasoning', 'an object {effort, summary}', b.reasoning);
  const effort = present(b, 'reasoning') && isObject(b.reasoning) && present(b.reasoning, 'effort') ? b.reasoning.effort : undefined;
  if (present(b, 'truncation') && b.truncation !== 'disabled') {
    throw unsupported('truncation', `'truncation' ${JSON.stringify(b.truncation)} is not supported ('disabled' only: a conversation longer than the context is refused)`);
  }
  for (const k of ['stream', 'store']) if (present(b, k) && typeof b[k] !== 'boolean') throw invalidType(k, 'a boolean', b[k]);
  let instructions: string | null = null;
  if (present(b, 'instructions')) {
    if (typeof b.instructions !== 'string') throw invalidType('instructions', 'a string', b.instructions);
    instructions = b.instructions;
  }
  let maxOutput: number | null = null;
  if (present(b, 'max_output_tokens')) {
    const v = b.max_output_tokens;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidType('max_output_tokens', 'an integer', v);
    if (v < 1) throw invalidParam('max_output_tokens', `'max_output_tokens' must be >= 1, got ${v}`);
    maxOutput = v;
  }
  let history: ChatMessageJson[] = [];
  let previous: string | null = null;
  if (present(b, 'previous_response_id')) {
    if (typeof b.previous_response_id !== 'string') throw invalidType('previous_response_id', 'a string', b.previous_response_id);
    previous = b.previous_response_id;
    const stored = store.get(previous);
    if (!stored) {
      throw new ApiError(400, `previous response with id '${previous}' not found (responses are kept in memory, at most ${store.maxCount}, and not across restarts)`, 'invalid_request_error', 'previous_response_id', 'previous_response_not_found');
    }
    history = stored.history;
  }
  if (!present(b, 'input')) throw missingParam('input');
  const input = inputMessages(b.input);
  if (input.length === 0 && history.length === 0) throw invalidParam('input', "'input' must hold at least one message");

  let logprobs: number | undefined;
  if (present(b, 'include')) {
    if (!Array.isArray(b.include) || !b.include.every((x) => typeof x === 'string')) throw invalidType('include', 'an array of strings', b.include);
    if (b.include.includes('message.output_text.logprobs')) logprobs = 0;
  }
  if (present(b, 'top_logprobs')) {
    const v = b.top_logprobs;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_TOP_LOGPROBS) {
      throw invalidParam('top_logprobs', `'top_logprobs' must be an integer between 0 and ${MAX_TOP_LOGPROBS}, got ${JSON.stringify(v)}`);
    }
    logprobs = v;
  }

  const chatBody: Body = { messages: [...(instructions !== null ? [{ role: 'system', content: instructions }] : []), ...history, ...input] };
  for (const k of PASSED_ON) if (present(b, k)) chatBody[k] = b[k];
  if (effort !== undefined) chatBody.reasoning_effort = effort;
  if (maxOutput !== null) chatBody.max_tokens = maxOutput;
  if (present(b, 'tools')) chatBody.tools = chatTools(b.tools);
  if (present(b, 'tool_choice')) chatBody.tool_choice = chatToolChoice(b.tool_choice);
  const responseFormat = present(b, 'text') ? chatResponseFormat(b.text) : undefined;
  if (responseFormat) chatBody.response_format = responseFormat;
  if (logprobs !== undefined) {
    chatBody.logprobs = true;
    chatBody.top_logprobs = logprobs;
  }
  let chat: ChatRequest;
  try {
    chat = parseChatRequest(chatBody, vocabSize, format);
  } catch (e) {
    throw renamed(e);
  }
  if (chat.constraint && chat.constraint.param !== 'tools') chat.constraint.param = responsesParam(chat.constraint.param);

  const metadata = present(b, 'metadata') ? b.metadata : {};
  if (!isObject(metadata)) throw invalidType('metadata', 'an object of strings', metadata);
  return {
    chat,
    stream: b.stream === true,
    store: b.store !== false,
    history,
    input,
    echo: {
      instructions,
      max_output_tokens: maxOutput,
      previous_response_id: previous,
      parallel_tool_calls: b.parallel_tool_calls !== false,
      temperature: chat.sampler.temperature ?? null,
      top_p: chat.sampler.topP ?? null,
      top_logprobs: logprobs ?? null,
      tool_choice: present(b, 'tool_choice') ? b.tool_choice : 'auto',
      tools: present(b, 'tools') ? (b.tools as unknown[]) : [],
      text: { format: responseFormat && isObject(b.text) ? b.text.format : { type: 'text' } },
      store: b.store !== false,
      metadata,
      user: typeof b.user === 'string' ? b.user : null,
      reasoning_effort: typeof effort === 'string' ? effort : null,
    },
  };
}
