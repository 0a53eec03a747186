// POST /v1/responses (also /responses): OpenAI's Responses API, as llama-server and vLLM serve it,
// over the same GenerationService as the chat endpoint (the request becomes a chat request:
// responses-request.ts). GET and DELETE /v1/responses/{id} read and remove a stored response.
//
// Output: `output` items, a `message` ({content: [{type: "output_text", text}]}) and/or
// `function_call` items ({call_id, name, arguments}), in the order the model wrote them. A reply
// cut by max_output_tokens (or the context end) has status "incomplete" with
// incomplete_details.reason "max_output_tokens"; a call it cut short keeps the arguments written so
// far, as a streamed one shows them.
//
// Streaming (stream: true): server-sent events `event: TYPE` + `data: {type, sequence_number, ...}`
// in OpenAI's order: response.created, response.in_progress, then per item
// response.output_item.added, (message) response.content_part.added, response.output_text.delta...,
// response.output_text.done, response.content_part.done, (call) response.function_call_arguments.delta...,
// response.function_call_arguments.done, response.output_item.done; at the end response.completed
// or response.incomplete (no [DONE]). An error after the stream began is an `error` event followed
// by response.failed.
//
// Stored responses (store: true, the default) go to a ResponseStore bounded by count and bytes.
import type { TokenLogprobs } from '../generate/sampler.js';
import { ApiError, toApiError } from './errors.js';
import { SSE_HEADERS, sendJson, type Ctx } from './http.js';
import type { Monitor } from './monitor.js';
import { chatLogprob, timings, type ChatTokenLogprob } from './responses.js';
import { ResponseStore } from './response-store.js';
import { parseResponsesRequest, renamed, type ChatMessageJson, type ResponseEcho } from './responses-request.js';
import type { GenerationService, RunInfo } from './service.js';
import type { ToolStreamEvent } from './tool-calls.js';
import { streamTelemetry, type StreamTelemetry } from './stream-telemetry.js';

/** The HTTP layer's request context (http.ts); CORS headers are already set on the response there. */
export type ResponsesCtx = Ctx;

function randomId(prefix: string): string {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

type Status = 'in_progress' | 'completed' | 'incomplete' | 'failed';

interface OutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: ChatTokenLogprob[];
}
interface MessageItem {
  type: 'message';
  id: string;
  status: Status;
  role: 'assistant';
  content: OutputText[];
}
interface CallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: Status;
}
type Item = MessageItem | CallItem;

type Emit = (type: string, fields: Record<string, unknown>) => void;

/**
 * Builds the output items from the reply as it is generated (text pieces, tool-call events) and,
 * when streaming, emits each step's event. The whole response and the stream are made by the same
 * code, so they agree.
 */
export class OutputBuilder {
  readonly items: Item[] = [];
  private open: Item | null = null;

  constructor(private readonly emit: Emit | null) {}

  private send(type: string, fields: Record<string, unknown>): void {
    this.emit?.(type, fields);
  }

  text(delta: string, logprobs: ChatTokenLogprob[] = []): void {
    if (!delta && logprobs.length === 0) return;
    let item = this.open;
    if (item?.type !== 'message') item = this.openMessage();
    const part = item.content[0]!;
    part.text += delta;
    part.logprobs.push(...logprobs);
    this.send('response.output_text.delta', { item_id: item.id, output_index: this.items.length - 1, content_index: 0, delta, logprobs });
  }

  call(callId: string, name: string): void {
    this.close('completed');
    const item: CallItem = { type: 'function_call', id: randomId('fc_'), call_id: callId, name, arguments: '', status: 'in_progress' };
    this.items.push(item);
    this.open = item;
    this.send('response.output_item.added', { output_index: this.items.length - 1, item: { ...item } });
  }

  args(delta: string): void {
    const item = this.open;
    if (item?.type !== 'function_call' || !delta) return;
    item.arguments += delta;
    this.send('response.function_call_arguments.delta', { item_id: item.id, output_index: this.items.length - 1, delta });
  }

  tool(e: ToolStreamEvent): void {
    if (e.kind === 'content') this.text(e.text);
    else if (e.kind === 'call') this.call(e.id, e.name);
    else this.args(e.text);
  }

  /** The end of the reply: the open item closes with `status` (an empty reply is an empty message). */
  finish(status: 'completed' | 'incomplete'): void {
    if (this.items.length === 0) this.openMessage();
    this.close(status);
  }

  private openMessage(): MessageItem {
    this.close('completed');
    const item: MessageItem = { type: 'message', id: randomId('msg_'), status: 'in_progress', role: 'assistant', content: [] };
    this.items.push(item);
    this.open = item;
    const index = this.items.length - 1;
    this.send('response.output_item.added', { output_index: index, item: { ...item, content: [] } });
    const part: OutputText = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    item.content.push(part);
    this.send('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { ...part, logprobs: [] } });
    return item;
  }

  private close(status: 'completed' | 'incomplete'): void {
    const item = this.open;
    if (!item) return;
    this.open = null;
    const index = this.items.length - 1;
    item.status = status;
    if (item.type === 'message') {
      const part = item.content[0]!;
      this.send('response.output_text.done', { item_id: item.id, output_index: index, content_index: 0, text: part.text, logprobs: part.logprobs });
      this.send('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part });
    } else {
      this.send('response.function_call_arguments.done', { item_id: item.id, output_index: index, name: item.name, arguments: item.arguments });
    }
    this.send('response.output_item.done', { output_index: index, item });
  }
}

/** The reply's items as chat messages (for the stored conversation): text, then the calls. */
function historyOf(items: Item[]): ChatMessageJson[] {
  const out: ChatMessageJson[] = [];
  for (const it of items.filter(complete)) {
    const last = out[out.length - 1];
    if (it.type === 'message') out.push({ role: 'assistant', content: it.content.map((p) => p.text).join('') });
    else {
      const call = { id: it.call_id, type: 'function', function: { name: it.name, arguments: it.arguments } };
      if (last?.role === 'assistant') last.tool_calls = [...((last.tool_calls as unknown[]) ?? []), call];
      else out.push({ role: 'assistant', content: null, tool_calls: [call] });
    }
  }
  return out;
}

/** False for a call whose arguments were cut short (not valid JSON): it is left out of the stored conversation. */
function complete(it: Item): boolean {
  if (it.type !== 'function_call') return true;
  try {
    JSON.parse(it.arguments);
    return true;
  } catch {
    return false;
  }
}

export interface ResponsesApiOptions {
  /** the store of responses for previous_response_id and GET (default: DEFAULT_STORE_COUNT / _BYTES) */
  store?: ResponseStore;
}

export class ResponsesApi {
  readonly store: ResponseStore;

  constructor(
    private readonly service: GenerationService,
    private readonly monitor: Monitor,
    opts: ResponsesApiOptions = {},
  ) {
    this.store = opts.store ?? new ResponseStore();
  }

  /** Handlers for /v1/responses/{id} (GET, DELETE), or undefined for another path. */
  routeFor(path: string): Record<string, (ctx: ResponsesCtx) => void> | undefined {
    const m = /^\/(?:v1\/)?responses\/([^/]+)$/.exec(path);
    if (!m) return undefined;
    let id = m[1]!;
    try {
      id = decodeURIComponent(id);
    } catch {
      // compared as it is
    }
    const notFound = () => new ApiError(404, `no stored response with id '${id}'`, 'invalid_request_error', null, 'not_found');
    return {
      GET: (ctx) => {
        const s = this.store.get(id);
        if (!s) throw notFound();
        sendJson(ctx.res, 200, s.response);
      },
      DELETE: (ctx) => {
        if (!this.store.delete(id)) throw notFound();
        sendJson(ctx.res, 200, { id, object: 'response', deleted: true });
      },
    };
  }

  async create(ctx: ResponsesCtx, body: unknown): Promise<void> {
    const service = this.service;
    const r = parseResponsesRequest(body, service.vocabSize, service.toolFormat, this.store);
    let prompt: number[];
    try {
      prompt = service.chatPrompt(r.chat);
    } catch (e) {
      throw renamed(e);
    }
    const id = randomId('resp_');
    const createdAt = Math.floor(Date.now() / 1000);
    const response = (status: Status, output: Item[], extra: Record<string, unknown> = {}) => ({
      id,
      object: 'response',
      created_at: createdAt,
      status,
      background: false,
      error: null,
      incomplete_details: null,
      model: service.modelId,
      output,
      ...echoFields(r.echo),
      usage: null,
      ...extra,
    });

    const started = await service.start(prompt, r.chat, ctx.signal);
    const task = this.monitor.begin(started.slot, r.chat, prompt.length, ctx.arrived);
    const events = this.monitor.watch(task, started.events);
    const { res } = ctx;
    let seq = 0;
    // llama-server's return_progress (response.in_progress events with prompt_progress) and
    // timings_per_token (timings on the delta events): stream-telemetry.ts
    let tel: StreamTelemetry | undefined;
    const emit: Emit = (type, fields) => {
      const extra = tel && type.endsWith('.delta') ? tel.extra() : {};
      if (!res.destroyed && !res.writableEnded) res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields, ...extra })}\n\n`);
    };
    if (r.stream) tel = streamTelemetry(r.chat, started, (f) => emit('response.in_progress', { response: response('in_progress', []), ...f }));
    const out = new OutputBuilder(r.stream ? emit : null);
    const reader = r.chat.tools && r.chat.toolFormat ? r.chat.toolFormat.reader() : undefined;
    const piece = (t: number) => service.tokenPiece(t);
    let info: RunInfo | null = null;
    try {
      if (r.stream) {
        res.writeHead(200, SSE_HEADERS);
        res.flushHeaders();
        emit('response.created', { response: response('in_progress', []) });
        emit('response.in_progress', { response: response('in_progress', []) });
      }
      for (;;) {
        const next = await events.next();
        if (next.done) {
          info = next.value;
          break;
        }
        const ev = next.value;
        if (ev.type === 'token') tel?.token();
        if (reader) for (const e of reader.push(ev.text)) out.tool(e);
        else {
          const lp: TokenLogprobs | undefined = ev.type === 'token' ? ev.logprobs : undefined;
          out.text(ev.text, lp && r.chat.logprobs !== undefined ? [chatLogprob(lp, piece, r.chat.logprobs)] : []);
        }
      }
      const result = info.result;
      if (result.finishReason === 'abort') {
        if (ctx.signal.aborted) return; // the client left
        throw new ApiError(503, 'generation stopped: the server is shutting down', 'server_error', null, 'server_shutting_down');
      }
      if (reader) for (const e of reader.finish()) out.tool(e);
      const cut = result.finishReason === 'length';
      out.finish(cut ? 'incomplete' : 'completed');
      const t = timings(result, info.cachedTokens);
      const usage = {
        input_tokens: info.promptTokens,
        input_tokens_details: { cached_tokens: info.cachedTokens },
        output_tokens: t.predicted_n,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: info.promptTokens + t.predicted_n,
      };
      const final = response(cut ? 'incomplete' : 'completed', out.items, {
        incomplete_details: cut ? { reason: 'max_output_tokens' } : null,
        usage,
      });
      if (r.store) {
        this.store.put(id, { response: final, history: [...r.history, ...r.input, ...historyOf(out.items)] });
      }
      ctx.note =
        ` | slot ${info.slot} | prompt ${info.promptTokens} tok (${info.cachedTokens} cached), ${t.prompt_per_second} tok/s` +
        ` | gen ${t.predicted_n} tok, ${t.predicted_per_second} tok/s | ${result.finishReason}`;
      if (r.stream) {
        emit(cut ? 'response.incomplete' : 'response.completed', { response: final, ...(tel ? { timings: t } : {}) });
        res.end();
      } else sendJson(res, 200, final);
    } catch (e) {
      if (!res.headersSent) throw e;
      // mid-stream: OpenAI's error event, then the response as failed
      const err = toApiError(e);
      emit('error', { code: err.code, message: err.message, param: err.param });
      emit('response.failed', { response: response('failed', out.items, { error: { code: err.code ?? 'server_error', message: err.message } }) });
      res.end();
    } finally {
      await started.dispose();
      const t = info ? timings(info.result, info.cachedTokens) : null;
      this.monitor.end(
        task,
        info && t ? { promptEvaluated: t.prompt_n, promptCached: t.cache_n, predicted: t.predicted_n, promptMs: t.prompt_ms, predictedMs: t.predicted_ms, finishReason: info.result.finishReason } : null,
      );
    }
  }
}

/** The request fields a response object repeats, in OpenAI's names. */
function echoFields(e: ResponseEcho) {
  return {
    instructions: e.instructions,
    max_output_tokens: e.max_output_tokens,
    metadata: e.metadata,
    parallel_tool_calls: e.parallel_tool_calls,
    previous_response_id: e.previous_response_id,
    reasoning: { effort: null, summary: null },
    store: e.store,
    temperature: e.temperature,
    text: e.text,
    tool_choice: e.tool_choice,
    tools: e.tools,
    top_logprobs: e.top_logprobs,
    top_p: e.top_p,
    truncation: 'disabled',
    user: e.user,
  };
}
