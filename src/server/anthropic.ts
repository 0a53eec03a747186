// Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens), as llama-server offers
// it, over the same chat path as /v1/chat/completions: the request is translated to an OpenAI chat
// request (system, content blocks, tool_use / tool_result, tools with input_schema, tool_choice
// auto | any | tool | none, stop_sequences, temperature, top_p, top_k), generated, and answered
// as a `message` ({content: [text | tool_use blocks], stop_reason: end_turn | max_tokens |
// stop_sequence | tool_use, usage}) or, streamed, as Anthropic's events (message_start,
// content_block_start / _delta / _stop, message_delta, message_stop). Images are refused (a text
// model); errors keep the server's one error shape ({error: {message, type, ...}}).
import type { GenerationEvent } from '../generate/generate.js';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.js';
import { type Ctx, SSE_HEADERS, readJson, sendJson } from './http.js';
import { withServerDefaults, type LlamaRouteHost } from './llama-routes.js';
import { asObject, parseChatRequest, type ChatRequest } from './requests.js';
import * as R from './responses.js';
import type { RunInfo } from './service.js';
import type { ToolStreamEvent } from './tool-calls.js';
import { ReasoningReader, splitReasoning, type ReasoningPiece } from './reasoning-output.js';

type Body = Record<string, unknown>;
const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

const noImages = (where: string) =>
  new ApiError(400, `${where}: image input is not supported (this server's model reads text only)`, 'invalid_request_error', where, 'unsupported_value');

/** The text of a content value: a string, or text blocks (joined by newlines). */
function blockText(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw invalidType(where, 'a string or a list of content blocks', v);
  return v
    .map((blk, i) => {
      if (!isObject(blk)) throw invalidType(`${where}[${i}]`, 'a content block', blk);
      if (blk.type === 'image' || blk.type === 'document') throw noImages(`${where}[${i}]`);
      if (blk.type !== 'text') throw invalidParam(`${where}[${i}].type`, `content block type ${JSON.stringify(blk.type)} is not supported here (text)`);
      if (typeof blk.text !== 'string') throw invalidType(`${where}[${i}].text`, 'a string', blk.text);
      return blk.text;
    })
    .join('\n');
}

/** An Anthropic Messages request as the equivalent OpenAI chat request body. */
export function anthropicToChat(body: unknown): Body {
  const b = asObject(body);
  const messages: Body[] = [];
  if (b.system !== undefined && b.system !== null) messages.push({ role: 'system', content: blockText(b.system, 'system') });
  if (b.messages === undefined || b.messages === null) throw missingParam('messages');
  if (!Array.isArray(b.messages)) throw invalidType('messages', 'a list of messages', b.messages);
  if (b.messages.length === 0) throw invalidParam('messages', "'messages' must hold at least one message");
  b.messages.forEach((m, i) => {
    const p = `messages[${i}]`;
    if (!isObject(m)) throw invalidType(p, 'an object {role, content}', m);
    if (m.role !== 'user' && m.role !== 'assistant') throw invalidParam(`${p}.role`, `'${p}.role' must be "user" or "assistant", got ${JSON.stringify(m.role)}`);
    if (typeof m.content === 'string') {
      messages.push({ role: m.role, content: m.content });
      return;
    }
    if (!Array.isArray(m.content)) throw invalidType(`${p}.content`, 'a string or a list of content blocks', m.content);
    const texts: string[] = [];
    const calls: Body[] = [];
    const results: Body[] = [];
    const reasoning: string[] = [];
    m.content.forEach((blk, j) => {
      const q = `${p}.content[${j}]`;
      if (!isObject(blk)) throw invalidType(q, 'a content block', blk);
      switch (blk.type) {
        case 'text':
          if (typeof blk.text !== 'string') throw invalidType(`${q}.text`, 'a string', blk.text);
          texts.push(blk.text);
          break;
        case 'image':
        case 'document':
          throw noImages(q);
        case 'tool_use':
          if (m.role !== 'assistant') throw invalidParam(q, `'${q}': tool_use blocks belong to assistant messages`);
          if (typeof blk.name !== 'string') throw invalidType(`${q}.name`, 'a string', blk.name);
          calls.push({ id: typeof blk.id === 'string' ? blk.id : '', type: 'function', function: { name: blk.name, arguments: JSON.stringify(blk.input ?? {}) } });
          break;
        case 'tool_result': {
          if (m.role !== 'user') throw invalidParam(q, `'${q}': tool_result blocks belong to user messages`);
          if (typeof blk.tool_use_id !== 'string') throw invalidType(`${q}.tool_use_id`, 'a string', blk.tool_use_id);
          const text = blk.content === undefined || blk.content === null ? '' : blockText(blk.content, `${q}.content`);
          results.push({ role: 'tool', tool_call_id: blk.tool_use_id, content: blk.is_error === true ? `Error: ${text}` : text });
          break;
        }
        case 'thinking':
          // earlier reasoning goes to the template as reasoning_content (as llama-server maps it):
          // templates that show it again (Qwen 3 after the last user turn) render it, others drop it
          if (m.role !== 'assistant') throw invalidParam(q, `'${q}': thinking blocks belong to assistant messages`);
          if (typeof blk.thinking !== 'string') throw invalidType(`${q}.thinking`, 'a string', blk.thinking);
          reasoning.push(blk.thinking);
          break;
        case 'redacted_thinking':
          break; // encrypted reasoning: nothing a template could show
        default:
          throw invalidParam(`${q}.type`, `content block type ${JSON.stringify(blk.type)} is not supported`);
      }
    });
    messages.push(...results);
    if (texts.length > 0 || calls.length > 0 || reasoning.length > 0 || results.length === 0) {
      const msg: Body = { role: m.role, content: texts.join('\n') };
      if (calls.length > 0) msg.tool_calls = calls;
      if (reasoning.length > 0) msg.reasoning_content = reasoning.join('');
      messages.push(msg);
    }
  });
  const out: Body = { messages, stream: b.stream === true };
  if (b.model !== undefined) out.model = b.model;
  if (b.max_tokens !== undefined) out.max_tokens = b.max_tokens;
  for (const k of ['temperature', 'top_p', 'top_k']) if (b[k] !== undefined) out[k] = b[k];
  if (b.stop_sequences !== undefined) out.stop = b.stop_sequences;
  if (b.tools !== undefined && b.tools !== null) {
    if (!Array.isArray(b.tools)) throw invalidType('tools', 'a list of tools', b.tools);
    out.tools = b.tools.map((t, i) => {
      if (!isObject(t)) throw invalidType(`tools[${i}]`, 'a tool {name, description, input_schema}', t);
      return { type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema ?? { type: 'object' } } };
    });
  }
  if (b.tool_choice !== undefined && b.tool_choice !== null) {
    const c = b.tool_choice;
    if (!isObject(c)) throw invalidType('tool_choice', 'an object {type}', c);
    if (c.type === 'auto') out.tool_choice = 'auto';
    else if (c.type === 'any') out.tool_choice = 'required';
    else if (c.type === 'none') out.tool_choice = 'none';
    else if (c.type === 'tool') out.tool_choice = { type: 'function', function: { name: c.name } };
    else throw invalidParam('tool_choice.type', `tool_choice type ${JSON.stringify(c.type)} is not auto, any, tool or none`);
    if (c.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  }
  // extended thinking: "enabled" gives the budget, as llama-server maps it (thinking-constraint.ts);
  // "disabled" turns thinking off (enable_thinking false), as Anthropic's API answers without it
  // (llama-server ignores it); chat_template_kwargs pass through, as there
  if (b.chat_template_kwargs !== undefined) out.chat_template_kwargs = b.chat_template_kwargs;
  if (b.thinking !== undefined && b.thinking !== null) {
    const t = b.thinking;
    if (!isObject(t)) throw invalidType('thinking', 'an object {type, budget_tokens}', t);
    if (t.type === 'enabled') {
      const n = t.budget_tokens ?? 10000;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalidType('thinking.budget_tokens', 'a non-negative integer', n);
      out.thinking_budget_tokens = n;
    } else if (t.type === 'disabled') {
      if (out.chat_template_kwargs === undefined || isObject(out.chat_template_kwargs)) out.chat_template_kwargs = { ...out.chat_template_kwargs, enable_thinking: false };
    } else throw invalidParam('thinking.type', `'thinking.type' must be "enabled" or "disabled", got ${JSON.stringify(t.type)}`);
  }
  return out;
}

type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

function stopReason(info: RunInfo, calls: boolean): { stop_reason: StopReason; stop_sequence: string | null } {
  const d = info.result.detail;
  if (d.type === 'maxTokens' || d.type === 'context') return { stop_reason: 'max_tokens', stop_sequence: null };
  if (calls) return { stop_reason: 'tool_use', stop_sequence: null };
  if (d.type === 'stopString') return { stop_reason: 'stop_sequence', stop_sequence: d.stop };
  return { stop_reason: 'end_turn', stop_sequence: null };
}

const usage = (info: RunInfo) => ({
  input_tokens: info.promptTokens,
  output_tokens: R.completionTokens(info.result),
  cache_read_input_tokens: info.cachedTokens,
  cache_creation_input_tokens: 0,
});

export function registerAnthropicRoutes(host: LlamaRouteHost): void {
  const { route, service } = host;
  const parse = async (ctx: Ctx): Promise<ChatRequest> => {
    const body = anthropicToChat(await readJson(ctx, host.maxBody));
    return parseChatRequest(withServerDefaults(body, host.options?.defaults), service.vocabSize, service.toolFormat);
  };
  route(['/v1/messages/count_tokens'], 'POST', async (c) => {
    const req = await parse(c);
    sendJson(c.res, 200, { input_tokens: service.chatPrompt(req).length });
  });
  route(['/v1/messages'], 'POST', async (c) => messages(host, c, await parse(c)));
}

async function messages(host: LlamaRouteHost, ctx: Ctx, req: ChatRequest): Promise<void> {
  const { service, monitor } = host;
  const prompt = service.chatPrompt(req);
  // thinking blocks hold the reasoning (deepseek-legacy's inline copy has no place in Anthropic's shape)
  const asked = service.reasoningPlan(req, prompt);
  const plan = asked.format === 'deepseek-legacy' ? { ...asked, format: 'deepseek' as const } : asked;
  const started = await service.start(prompt, { ...req, reasoning: plan }, ctx.signal);
  const task = monitor.begin(started.slot, req, prompt.length, ctx.arrived);
  const events = monitor.watch(task, started.events);
  const id = R.responseId('msg');
  const { res } = ctx;
  let info: RunInfo | null = null;
  try {
    if (!req.stream) {
      let text = '';
      for (;;) {
        const r = await events.next();
        if (r.done) {
          info = r.value;
          break;
        }
        text += r.value.text;
      }
      if (!ended(ctx, info)) return;
      // thinking first, as a thinking block (reasoning-output.ts); tool calls are read from what follows it
      const split = splitReasoning(info.result.text, plan);
      text = split.content;
      let reply = req.tools && req.toolFormat ? req.toolFormat.parse(text) : { kind: 'text' as const, content: text };
      // a call cut off by max_tokens has arguments that do not parse: the reply is then its raw text
      const inputs = reply.kind === 'calls' ? reply.calls.map((c) => parseObject(c.function.arguments)) : [];
      if (inputs.some((x) => x === undefined)) reply = { kind: 'text', content: text };
      const content: Body[] = [];
      // llama-server signs nothing: a local model's thinking has an empty signature
      if (split.reasoning) content.push({ type: 'thinking', thinking: split.reasoning, signature: '' });
      if (reply.content) content.push({ type: 'text', text: reply.content });
      if (reply.kind === 'calls') {
        reply.calls.forEach((call, i) => content.push({ type: 'tool_use', id: call.id, name: call.function.name, input: inputs[i] }));
      }
      if (!content.some((c) => c.type !== 'thinking')) content.push({ type: 'text', text: '' });
      sendJson(res, 200, {
        id,
        type: 'message',
        role: 'assistant',
        model: service.modelId,
        content,
        ...stopReason(info, reply.kind === 'calls'),
        usage: usage(info),
      });
      return;
    }
    // streamed: Anthropic's named events
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    const send = (type: string, data: Body) => {
      if (!res.destroyed && !res.writableEnded) res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    };
    send('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model: service.modelId,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: prompt.length, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
      },
    });
    let index = -1;
    let open: 'thinking' | 'text' | 'tool_use' | null = null;
    let calls = 0;
    const close = () => {
      // a thinking block ends with its (empty) signature, as Anthropic's clients expect
      if (open === 'thinking') send('content_block_delta', { index, delta: { type: 'signature_delta', signature: '' } });
      if (open !== null) send('content_block_stop', { index });
      open = null;
    };
    const think = (t: string) => {
      if (open !== 'thinking') {
        close();
        index++;
        open = 'thinking';
        send('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } });
      }
      send('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: t } });
    };
    const text = (t: string) => {
      if (!t) return;
      if (open !== 'text') {
        close();
        index++;
        open = 'text';
        send('content_block_start', { index, content_block: { type: 'text', text: '' } });
      }
      send('content_block_delta', { index, delta: { type: 'text_delta', text: t } });
    };
    const tool = (events: ToolStreamEvent[]) => {
      for (const e of events) {
        if (e.kind === 'content') text(e.text);
        else if (e.kind === 'call') {
          close();
          index++;
          open = 'tool_use';
          calls++;
          send('content_block_start', { index, content_block: { type: 'tool_use', id: e.id, name: e.name, input: {} } });
        } else send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: e.text } });
      }
    };
    const reader = req.tools ? req.toolFormat?.reader() : undefined;
    const thinking = new ReasoningReader(plan);
    const pieces = (ps: ReasoningPiece[]) => {
      for (const p of ps) {
        if (p.kind === 'reasoning') think(p.text);
        else if (reader) tool(reader.push(p.text));
        else text(p.text);
      }
    };
    for (;;) {
      const r = await events.next();
      if (r.done) {
        info = r.value;
        break;
      }
      const ev: GenerationEvent = r.value;
      pieces(thinking.push(ev.text));
    }
    if (!ended(ctx, info)) return;
    pieces(thinking.finish());
    if (reader) tool(reader.finish());
    if (index < 0 || (open === 'thinking' && calls === 0)) {
      close();
      index++;
      open = 'text';
      send('content_block_start', { index, content_block: { type: 'text', text: '' } });
    }
    close();
    send('message_delta', { delta: stopReason(info, calls > 0), usage: { output_tokens: R.completionTokens(info.result) } });
    send('message_stop', {});
    res.end();
  } finally {
    await started.dispose();
    const t = info ? R.timings(info.result, info.cachedTokens) : null;
    monitor.end(
      task,
      info && t ? { promptEvaluated: t.prompt_n, promptCached: t.cache_n, predicted: t.predicted_n, promptMs: t.prompt_ms, predictedMs: t.predicted_ms, finishReason: info.result.finishReason } : null,
    );
  }
}

/** A JSON object's text parsed, or undefined when it is not one. */
function parseObject(text: string): Body | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** False when the client left; a 503 (or an error event) when the server is shutting down. */
function ended(ctx: Ctx, info: RunInfo): boolean {
  if (info.result.finishReason !== 'abort') return true;
  if (ctx.signal.aborted) return false;
  throw new ApiError(503, 'generation stopped: the server is shutting down', 'server_error', null, 'server_shutting_down');
}
