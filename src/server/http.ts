// The OpenAI-compatible HTTP front end (node:http, no framework) over a GenerationService.
//
//   GET  /                      the chat page (dist/web/chat.html, built from src/web/)
//   GET  /health                {status, slots_idle, slots_processing, requests_queued} (readiness: 503 while draining)
//   GET  /livez                 {status: "alive", draining} (liveness: 200 while the process runs, draining included;
//                               503 device_lost once the GPU is lost, see device-state.ts)
//   GET  /v1/models[/ID]        the one loaded model (with a `meta` object of its sizes)
//   POST /v1/completions        prompt (text or token ids) -> text_completion, SSE with stream: true
//                               (/completions without /v1 is llama-server's native route: llama-routes.ts)
//   POST /v1/chat/completions   messages -> chat.completion, SSE chunks with stream: true
//   POST /tokenize, /detokenize llama.cpp-style {content} <-> {tokens}
//   GET  /metrics               Prometheus text (see monitor.ts)
//   GET  /slots                 llama-server's slot list (501 when turned off)
//   POST /v1/responses          OpenAI's Responses API; GET/DELETE /v1/responses/ID (responses-api.ts)
// The same routes answer without the /v1 prefix (but /completions: llama-server's native one). Errors have OpenAI's shape (see errors.ts):
// malformed JSON / bad fields 400, bad API key 401, unknown route 404, wrong method 405, body too
// large 413, queue full or shutting down 503, anything unexpected 500 (the server keeps running).
//
// CORS (cors.ts): any origin unless --cors-origins narrows it (the page's Origin is echoed); a
// preflight is answered with the methods and request headers it asks for (the openai JS SDK sends
// X-Stainless-* headers).
//
// Draining (drain(), on SIGTERM): new requests are refused with 503 while the ones in flight run
// to their end, for at most the drain timeout; then the rest are ended: a stream with an error
// event (and no [DONE]), a whole response with a 503 error. /health answers 503 while draining.
//
// Streaming: `data: {json}\n\n` events, then `data: [DONE]`. A chat stream's first chunk is
// {role: "assistant", content: null}, as llama-server sends it (OpenAI sends ""; the delta's content
// is nullable in OpenAI's schema and the official clients skip a null, so both read the same).
// A client that disconnects (mid-stream or while waiting) aborts its generation through an AbortSignal, which frees the slot at the next
// token. Non-streamed requests are aborted the same way.
import { splitReasoning, streamReader, type ReasoningPiece, type ReasoningPlan } from './reasoning-output.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { GenerationEvent } from '../generate/generate.js';
import type { TokenLogprobs } from '../generate/sampler.js';
import { ApiError, invalidParam, invalidType, missingParam, toApiError } from './errors.js';
import { asObject, parseChatRequest, parseCompletionRequest, type GenerationParams } from './requests.js';
import type { ToolStreamEvent, ToolsRequest } from './tool-calls.js';
import type { ToolFormat } from './tool-formats.js';
import * as R from './responses.js';
import { streamTelemetry } from './stream-telemetry.js';
import type { GenerationService, RunHandle, RunInfo } from './service.js';
import { AbortError } from './scheduler.js';
import { loadChatPage } from './chat-page.js';
import { HostCheck } from './host-check.js';
import { NoTokenError } from '../generate/sampler.js';
import { CONTENT_TYPE as METRICS_CONTENT_TYPE } from './metrics.js';
import { Monitor, type Task } from './monitor.js';
import { checkChoices, choiceParams, mergeChoices, mergedUsage, withIndex } from './choices.js';
import { grammarMetrics } from './grammar-metrics.js';
import { livenessBody, vllmMetrics } from './fleet-signals.js';
import { ResponsesApi } from './responses-api.js';
import { displayPiece } from '../tokenizer/piece.js';
import type { ResponseStore } from './response-store.js';
import { llamaMetrics } from './llama-metrics.js';
import { corsHeaders, preflightHeaders } from './cors.js';
import { errorBodyFor } from './llama-errors.js';
import { SleepController, readOnlyWhileAsleep, type SleepOptions } from './sleep.js';
import { SlotFiles } from './slot-files.js';
import { registerLlamaRoutes, withServerDefaults, type LlamaOptions } from './llama-routes.js';

export interface HttpServerOptions {
  /** require `Authorization: Bearer <key>` on the API routes (not on / and /health); a list = any of them */
  apiKey?: string | readonly string[];
  /** serve GET /slots (default true; false answers 501, as llama-server's --no-slots) */
  slots?: boolean;
  /** largest request body in bytes (default 8 MiB) */
  maxBodyBytes?: number;
  /** one line per request; null = silent (default: stderr) */
  log?: ((line: string) => void) | null;
  /** the chat page's HTML (default: dist/web/chat.html); null = none */
  chatPage?: string | null;
  /** Host header names answered besides loopback ones when bound to loopback (host-check.ts; "*" = any) */
  allowedHosts?: readonly string[];
  /** also write vLLM's metric names on /metrics (see fleet-signals.ts) */
  metricsVllm?: boolean;
  /** the Responses API's stored responses (default: a ResponseStore with its default bounds) */
  responseStore?: ResponseStore;
  /** what llama-server's flags set (llama-routes.ts) */
  llama?: LlamaOptions;
  /** release the model after a while without work, reload it on demand (--sleep-idle-seconds; sleep.ts) */
  sleep?: SleepOptions;
}

/** What /metrics is rendered from besides the monitor's counters (frozen while the server sleeps). */
interface MetricsState {
  snap: ReturnType<GenerationService['snapshot']>;
  memory: NodeJS.MemoryUsage;
  grammar: ReturnType<GenerationService['grammarStats']>;
  decodes: number;
}

export type Method = 'GET' | 'POST' | 'DELETE';

/** What a generation route needs of its request (chat requests may have tools). */
type Params = GenerationParams & { tools?: ToolsRequest; toolFormat?: ToolFormat; reasoning?: ReasoningPlan };

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  /** aborts when the client goes away before the response is finished */
  signal: AbortSignal;
  /** extra text for the request's log line */
  note: string;
  /** performance.now() when the request arrived */
  arrived: number;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;

const DEFAULT_MAX_BODY = 8 << 20;
/** Past this many bytes of an oversized body the connection is dropped instead of drained. */
const DRAIN_LIMIT = 64 << 20;

/** When the process started (Unix seconds), sent as llama-server's Process-Start-Time-Unix header. */
const STARTED_UNIX = String(Math.floor(Date.now() / 1000));

const MONITORING = new Set(['/health', '/v1/health', '/livez', '/metrics', '/slots']);

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendEventTo(res: ServerResponse, data: unknown): void {
  if (!res.destroyed && !res.writableEnded) res.write(`data: ${JSON.stringify(data)}\n\n`);
}

export { sendEventTo as sendEvent };

/** Reads the whole body, refusing more than `limit` bytes with 413 (after draining, so the client sees the answer). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (f: () => void) => {
      if (!settled) {
        settled = true;
        f();
      }
    };
    const tooLarge = () => new ApiError(413, `request body is larger than ${limit} bytes`, 'invalid_request_error', null, 'request_too_large');
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > DRAIN_LIMIT) {
      done(() => reject(tooLarge()));
      return;
    }
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
      else if (size > DRAIN_LIMIT) {
        done(() => reject(tooLarge()));
        req.destroy();
      }
    });
    req.on('end', () => done(() => (size > limit ? reject(tooLarge()) : resolve(Buffer.concat(chunks)))));
    req.on('error', () => done(() => reject(new AbortError('request body was not received completely'))));
    req.on('close', () => done(() => reject(new AbortError('connection closed while reading the body'))));
  });
}

export async function readJson(ctx: Ctx, limit: number): Promise<unknown> {
  const buf = await readBody(ctx.req, limit);
  const text = buf.toString('utf8');
  if (text.trim() === '') throw new ApiError(400, 'request body is empty (expected a JSON object)', 'invalid_request_error', null, 'invalid_json');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `malformed JSON in request body: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
}

/** 403 for a Host header a loopback-bound server does not answer (DNS rebinding: host-check.ts). */
function hostRefused(host: string): ApiError {
  const shown = host.length > 100 ? host.slice(0, 100) + '...' : host;
  return new ApiError(
    403,
    `Host '${shown}' is not allowed: this server listens on loopback and answers only loopback host names ` +
      '(start it with --allowed-hosts NAME to allow another)',
    'invalid_request_error',
    null,
    'host_not_allowed',
  );
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class ApiServer {
  readonly http: Server;
  private readonly routes = new Map<string, Partial<Record<Method, Handler>>>();
  private readonly maxBody: number;
  private readonly log: ((line: string) => void) | null;
  private readonly page: string | null;
  private readonly keyDigests: Buffer[];
  private readonly slotsEnabled: boolean;
  private readonly metricsVllm: boolean;
  private readonly llama: LlamaOptions;
  private readonly created = R.nowSeconds();
  private closing: Promise<void> | null = null;
  readonly monitor = new Monitor();
  readonly responsesApi: ResponsesApi;
  private draining = false;
  /** API requests being served (monitoring routes not counted) */
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly allowedHosts: readonly string[];
  /** set by listen(): which Host headers this bind answers */
  private hostCheck: HostCheck | null = null;
  /** sleep mode (--sleep-idle-seconds), or null */
  readonly sleep: SleepController<MetricsState> | null;
  /** POST /slots/{id}?action=save|restore|erase (slot-files.ts) */
  private readonly slotFiles: SlotFiles;

  constructor(readonly service: GenerationService, opts: HttpServerOptions = {}) {
    this.maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.log = opts.log === undefined ? (line) => process.stderr.write(line + '\n') : opts.log;
    this.page = opts.chatPage === undefined ? loadChatPage() : opts.chatPage;
    const keys = opts.apiKey === undefined ? [] : typeof opts.apiKey === 'string' ? [opts.apiKey] : [...opts.apiKey];
    if (keys.some((k) => k.length === 0)) throw new Error('an API key must not be empty');
    this.keyDigests = keys.map(digest);
    this.slotsEnabled = opts.slots ?? true;
    this.allowedHosts = opts.allowedHosts ?? [];
    this.metricsVllm = opts.metricsVllm ?? false;
    this.llama = opts.llama ?? {};
    this.responsesApi = new ResponsesApi(service, this.monitor, { store: opts.responseStore });
    this.slotFiles = new SlotFiles(service, this.llama.slotSavePath);
    this.sleep = opts.sleep ? new SleepController(service, { log: this.log ?? undefined, ...opts.sleep }, () => this.metricsState()) : null;

    const route = (paths: string[], method: Method, h: Handler) => {
      for (const p of paths) this.routes.set(p, { ...this.routes.get(p), [method]: h });
    };
    route(['/', '/index.html'], 'GET', (c) => this.chatPage(c));
    route(['/health', '/v1/health'], 'GET', (c) => this.health(c));
    route(['/livez'], 'GET', (c) => {
      // a lost GPU is the one state a restart mends: liveness fails then (server/device-state.ts)
      const lost = this.service.lostDevice();
      if (lost) sendJson(c.res, 503, { status: 'device_lost', reason: lost, draining: this.draining });
      else sendJson(c.res, 200, livenessBody(this.draining));
    });
    route(['/v1/models', '/models'], 'GET', (c) => sendJson(c.res, 200, { object: 'list', data: [this.modelObject()] }));
    route(['/v1/completions'], 'POST', (c) => this.completions(c));
    route(['/v1/chat/completions', '/chat/completions'], 'POST', (c) => this.chatCompletions(c));
    route(['/tokenize'], 'POST', (c) => this.tokenize(c));
    route(['/detokenize'], 'POST', (c) => this.detokenize(c));
    route(['/metrics'], 'GET', (c) => this.metrics(c));
    route(['/slots'], 'GET', (c) => this.slots(c));
    route(['/v1/responses', '/responses'], 'POST', async (c) => this.responsesApi.create(c, await readJson(c, this.maxBody)));
    // llama-server's own routes (/completion(s), /props, /apply-template, /infill, /v1/messages, ...): llama-routes.ts
    registerLlamaRoutes({ route, service, monitor: this.monitor, maxBody: this.maxBody, options: this.llama });

    this.http = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        // last resort: handle() reports its own errors; this only guards against bugs there
        this.log?.(`internal error: ${(e as Error)?.stack ?? String(e)}`);
        if (!res.headersSent) sendJson(res, 500, new ApiError(500, 'internal server error').body());
        else res.destroy();
      });
    });
    // keep idle keep-alive sockets from holding the process open at shutdown
    this.http.keepAliveTimeout = 5000;
  }

  /** Starts listening; port 0 picks a free port. */
  listen(port = 0, host = '127.0.0.1'): Promise<{ url: string; host: string; port: number }> {
    this.hostCheck = new HostCheck(host, this.allowedHosts);
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        const a = this.http.address() as AddressInfo;
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve({ url: `http://${h}:${a.port}`, host: a.address, port: a.port });
      });
    });
  }

  /** API requests being served now (monitoring routes not counted). */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** True once drain() or close() began: new API requests are refused with 503. */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Graceful stop: refuses new requests (503), waits up to `timeoutMs` for the requests in flight
   * to finish, then close()s, which ends the rest with an error. Resolves with how many were
   * still running at the deadline.
   */
  async drain(timeoutMs: number): Promise<{ cutOff: number }> {
    this.draining = true;
    let cutOff = 0;
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
      const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs))));
      const done = await Promise.race([idle, deadline]);
      clearTimeout(timer);
      if (!done) cutOff = this.inFlight;
    }
    await this.close();
    return { cutOff };
  }

  /** Stops accepting connections, ends running generations and closes every connection. */
  close(): Promise<void> {
    this.draining = true;
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.http.closeIdleConnections();
      this.sleep?.close();
      await this.service.close();
      // responses of aborted generations have been written; drop whatever is still open
      setTimeout(() => this.http.closeAllConnections(), 200).unref();
      await stopped;
    })();
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    let path = '/';
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      // a malformed URL is routed as an unknown path
      path = req.url ?? '/';
    }
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const ctx: Ctx = { req, res, path, signal: ac.signal, note: '', arrived: t0 };
    for (const [k, v] of Object.entries(corsHeaders(req.headers.origin, this.llama.corsOrigins ?? null))) res.setHeader(k, v);
    res.setHeader('Process-Start-Time-Unix', STARTED_UNIX);
    const counted = !MONITORING.has(path) && req.method !== 'OPTIONS';
    if (counted) this.inFlight++;
    try {
      if (this.hostCheck && !this.hostCheck.allows(req.headers.host)) throw hostRefused(req.headers.host ?? '');
      if (req.method === 'OPTIONS') {
        res.writeHead(200, { ...preflightHeaders(req.headers['access-control-request-headers']), 'Content-Length': '0' });
        res.end();
        return;
      }
      if (this.draining && counted) {
        throw new ApiError(503, 'server is shutting down', 'server_error', null, 'server_shutting_down');
      }
      const handlers = this.routes.get(path) ?? (path.startsWith('/v1/models/') ? { GET: (c: Ctx) => this.oneModel(c) } : undefined) ?? this.responsesApi.routeFor(path) ?? this.slotFiles.routeFor(path);
      if (!handlers) throw new ApiError(404, `no route for ${req.method} ${path}`, 'invalid_request_error', null, 'not_found');
      const method = (req.method === 'HEAD' ? 'GET' : req.method) as Method;
      const h = handlers[method];
      if (!h) {
        const allow = Object.keys(handlers).join(', ');
        res.setHeader('Allow', allow);
        throw new ApiError(405, `method ${req.method} is not allowed on ${path} (use ${allow})`, 'invalid_request_error', null, 'method_not_allowed');
      }
      if (this.keyDigests.length > 0 && path !== '/' && path !== '/index.html' && path !== '/health' && path !== '/livez') this.checkKey(req);
      // a request that needs the model wakes it from sleep (and waits for it) and keeps it awake while it runs
      const awake = this.sleep && !readOnlyWhileAsleep(path) ? await this.sleep.enter() : null;
      try {
        await h(ctx);
      } finally {
        awake?.();
      }
    } catch (e) {
      this.fail(ctx, e);
    } finally {
      if (counted && --this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      if (this.log && path !== '/health' && path !== '/livez') {
        const status = ac.signal.aborted && !res.writableFinished ? 'aborted' : String(res.statusCode);
        this.log(`${req.method} ${path} ${status} ${Math.round(performance.now() - t0)} ms${ctx.note}`);
      }
    }
  }

  private fail(ctx: Ctx, e: unknown): void {
    const { res } = ctx;
    if (e instanceof AbortError) {
      // the client went away; nobody to answer
      if (!res.headersSent) res.destroy();
      return;
    }
    const err = toApiError(e);
    if (!(e instanceof ApiError) && !(e instanceof NoTokenError)) this.log?.(`error: ${(e as Error)?.stack ?? String(e)}`);
    if (!res.headersSent) {
      // an oversized body was not read to its end, or the server is going away: close the connection after answering
      const headers: Record<string, string> = err.status === 413 || this.draining ? { Connection: 'close', ...err.headers } : err.headers;
      sendJson(res, err.status, errorBodyFor(err, ctx.path), headers);
    } else if (!res.writableEnded) {
      // mid-stream: report in the stream, then end it
      sendEventTo(res, errorBodyFor(err, ctx.path));
      res.end();
    }
  }

  private checkKey(req: IncomingMessage): void {
    const h = req.headers.authorization ?? '';
    // Authorization: Bearer KEY (OpenAI) or x-api-key: KEY (Anthropic's clients)
    const xKey = req.headers['x-api-key'];
    const m = /^Bearer\s+(.+)$/i.exec(h) ?? (typeof xKey === 'string' && xKey.trim() !== '' ? [xKey, xKey] : null);
    const given = m ? digest(m[1]!.trim()) : null;
    // compare with every key (no early exit), each in constant time
    let ok = false;
    for (const k of this.keyDigests) if (given && timingSafeEqual(given, k)) ok = true;
    if (!ok) {
      throw new ApiError(401, m ? 'invalid API key' : 'missing API key (send Authorization: Bearer <key>, or x-api-key: <key>)', 'invalid_request_error', null, 'invalid_api_key');
    }
  }

  private chatPage(ctx: Ctx): void {
    if (this.llama.ui === false) throw new ApiError(404, 'the chat page is turned off on this server (--no-ui)', 'invalid_request_error', null, 'not_found');
    const html = this.page ?? '<!doctype html><title>wrinklefree</title><p>The chat page (dist/web/chat.html) was not found: run npm run build. The API is at /v1.</p>';
    ctx.res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-cache' });
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : html);
  }

  private health(ctx: Ctx): void {
    const s = this.service.stats();
    const body = { slots_idle: s.idle, slots_processing: s.busy, requests_queued: s.queued };
    const lost = this.service.lostDevice();
    if (this.draining) sendJson(ctx.res, 503, { status: 'draining', ...body }, { Connection: 'close' });
    else if (lost) sendJson(ctx.res, 503, { status: 'device_lost', reason: lost, ...body });
    else sendJson(ctx.res, 200, { status: 'ok', ...body });
  }

  private metrics(ctx: Ctx): void {
    if (this.llama.metrics === false) {
      throw new ApiError(501, 'the /metrics endpoint is turned off on this server (start it with --metrics)', 'not_supported_error', null, 'not_supported');
    }
    // asleep: the state frozen on entering sleep (sleep.ts)
    const frozen = this.sleep?.frozenMetrics;
    const { snap, memory, grammar, decodes } = frozen ?? this.metricsState();
    if (!frozen) this.sleep?.scraped({ snap, memory, grammar, decodes });
    let text = this.monitor.metrics(snap, memory) + grammarMetrics(grammar);
    if (this.metricsVllm) text += vllmMetrics(snap, this.service.modelId);
    text += llamaMetrics({ totals: this.monitor.totals(), snapshot: snap, decodes }, this);
    ctx.res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : text);
  }

  private metricsState(): MetricsState {
    return { snap: this.service.snapshot(), memory: process.memoryUsage(), grammar: this.service.grammarStats(), decodes: this.service.steps };
  }

  private slots(ctx: Ctx): void {
    if (!this.slotsEnabled) {
      throw new ApiError(501, 'the /slots endpoint is turned off on this server (--no-slots)', 'not_supported_error', null, 'not_supported');
    }
    const snap = this.service.snapshot();
    const failOnNoSlot = new URL(ctx.req.url ?? '/', 'http://localhost').searchParams.get('fail_on_no_slot');
    if (failOnNoSlot && failOnNoSlot !== '0' && snap.slots.every((s) => s.busy)) {
      throw new ApiError(503, 'no slot available', 'server_error', null, 'no_slot_available');
    }
    sendJson(ctx.res, 200, this.monitor.slots(snap));
  }

  private modelObject() {
    const { aliases, tags } = this.llama;
    return {
      id: this.service.modelId,
      object: 'model',
      created: this.created,
      owned_by: 'wrinklefree',
      ...(aliases ? { aliases } : {}),
      ...(tags ? { tags } : {}),
      meta: this.service.info(),
    };
  }

  private oneModel(ctx: Ctx): void {
    let id = ctx.path.slice('/v1/models/'.length);
    try {
      id = decodeURIComponent(id);
    } catch {
      // not valid percent-encoding: compared as it is
    }
    if (id !== this.service.modelId) throw new ApiError(404, `model '${id}' does not exist (this server has '${this.service.modelId}')`, 'invalid_request_error', 'model', 'model_not_found');
    sendJson(ctx.res, 200, this.modelObject());
  }

  private async tokenize(ctx: Ctx): Promise<void> {
    const b = asObject(await readJson(ctx, this.maxBody));
    if (b.content === undefined || b.content === null) throw missingParam('content');
    if (typeof b.content !== 'string') throw invalidType('content', 'a string', b.content);
    for (const k of ['add_special', 'parse_special', 'with_pieces']) {
      if (b[k] !== undefined && typeof b[k] !== 'boolean') throw invalidType(k, 'a boolean', b[k]);
    }
    const tokens = this.service.tokenize(b.content, b.add_special === true, b.parse_special !== false);
    if (b.with_pieces === true) {
      sendJson(ctx.res, 200, { tokens: tokens.map((id) => ({ id, piece: displayPiece(this.service.model.tokenizer, id) })) });
    } else {
      sendJson(ctx.res, 200, { tokens });
    }
  }

  private async detokenize(ctx: Ctx): Promise<void> {
    const b = asObject(await readJson(ctx, this.maxBody));
    if (b.tokens === undefined || b.tokens === null) throw missingParam('tokens');
    if (!Array.isArray(b.tokens)) throw invalidType('tokens', 'an array of token ids', b.tokens);
    const V = this.service.vocabSize;
    b.tokens.forEach((t, i) => {
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= V) {
        throw invalidParam('tokens', `tokens[${i}] = ${JSON.stringify(t)} is not a token id of this model (0..${V - 1})`);
      }
    });
    sendJson(ctx.res, 200, { content: this.service.detokenize(b.tokens as number[]) });
  }

  private async completions(ctx: Ctx): Promise<void> {
    const req = parseCompletionRequest(withServerDefaults(await readJson(ctx, this.maxBody), this.llama.defaults), this.service.vocabSize);
    const prompt = this.service.completionPrompt(req);
    await this.generate(ctx, 'completion', req, prompt);
  }

  private async chatCompletions(ctx: Ctx): Promise<void> {
    const req = parseChatRequest(withServerDefaults(await readJson(ctx, this.maxBody), this.llama.defaults), this.service.vocabSize, this.service.toolFormat);
    const prompt = this.service.chatPrompt(req);
    await this.generate(ctx, 'chat', { ...req, reasoning: this.service.reasoningPlan(req, prompt) }, prompt);
  }

  private async generate(ctx: Ctx, kind: 'chat' | 'completion', params: Params, prompt: number[]): Promise<void> {
    if ((params.n ?? 1) > 1) return this.generateChoices(ctx, kind, params, prompt);
    const started = await this.service.start(prompt, params, ctx.signal);
    const task: Task = this.monitor.begin(started.slot, params, prompt.length, ctx.arrived);
    const handle: RunHandle = { ...started, events: this.monitor.watch(task, started.events) };
    let info: RunInfo | null = null;
    try {
      const verbose = params.verbose || this.llama.verbose ? this.service.detokenize(prompt) : undefined;
      info = params.stream ? await this.stream(ctx, kind, params, handle) : await this.whole(ctx, kind, params, handle, verbose);
      if (info) {
        const t = R.timings(info.result, info.cachedTokens);
        ctx.note =
          ` | slot ${info.slot} | prompt ${info.promptTokens} tok (${info.cachedTokens} cached), ${t.prompt_per_second} tok/s` +
          ` | gen ${t.predicted_n} tok, ${t.predicted_per_second} tok/s | ${info.result.finishReason}`;
      }
    } finally {
      await started.dispose();
      this.endTask(task, info);
    }
  }

  /** Ends a request's monitoring record with its timings (null: it never finished). */
  private endTask(task: Task, info: RunInfo | null | undefined): void {
    const t = info ? R.timings(info.result, info.cachedTokens) : null;
    this.monitor.end(
      task,
      info && t
        ? { promptEvaluated: t.prompt_n, promptCached: t.cache_n, predicted: t.predicted_n, promptMs: t.prompt_ms, predictedMs: t.predicted_ms, finishReason: info.result.finishReason }
        : null,
    );
  }

  /**
   * n > 1: n generations of one prompt, each on a slot of its own (the step runner reads the shared
   * prompt once and copies it to the others, step-runner.ts), answered as one response whose choices
   * carry their index; usage counts the prompt once and the completions of all (choices.ts).
   */
  private async generateChoices(ctx: Ctx, kind: 'chat' | 'completion', params: Params, prompt: number[]): Promise<void> {
    const n = checkChoices(this.service, params);
    // one signal for all choices: the client leaving, or one choice failing, ends them all
    const ac = new AbortController();
    const onLeave = () => ac.abort();
    ctx.signal.addEventListener('abort', onLeave, { once: true });
    const base = this.responseBase(kind);
    const send = (data: unknown) => sendEventTo(ctx.res, data);
    const infos: (RunInfo | null)[] = Array.from({ length: n }, () => null);
    const bodies: unknown[] = [];
    const slots: number[] = [];
    // each choice starts when it gets a slot and KV room, and runs at once: choices never hold
    // room while waiting for the others' (the first is awaited before the headers, so a refusal is
    // still a plain error response)
    const run = async (i: number, started?: RunHandle) => {
      const h = started ?? (await this.service.start(prompt, choiceParams(params, i), ac.signal));
      slots[i] = h.slot;
      const task = this.monitor.begin(h.slot, params, prompt.length, ctx.arrived);
      try {
        const watched: RunHandle = { ...h, events: this.monitor.watch(task, h.events) };
        if (params.stream) infos[i] = await this.stream(ctx, kind, params, watched, { index: i, base, send });
        else {
          const r = await this.wholeBody(ctx, kind, params, watched);
          infos[i] = r?.info ?? null;
          bodies[i] = r?.body;
        }
      } finally {
        await h.dispose();
        this.endTask(task, infos[i] ?? null);
      }
    };
    try {
      const first = await this.service.start(prompt, choiceParams(params, 0), ac.signal);
      if (params.stream) {
        ctx.res.writeHead(200, SSE_HEADERS);
        ctx.res.flushHeaders();
      }
      const runs = Array.from({ length: n }, (_, i) => run(i, i === 0 ? first : undefined).catch((e) => {
        ac.abort();
        throw e;
      }));
      const settled = await Promise.allSettled(runs);
      const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed) throw failed.reason;
      if (infos.some((x) => !x) || (!params.stream && bodies.some((b) => !b))) return; // the client left
      const merged = mergedUsage(infos as RunInfo[]);
      if (params.stream) {
        if (params.includeUsage) send(kind === 'chat' ? R.chatUsageChunk(base, merged.usage, { timings: merged.timings }) : R.completionUsageChunk(base, merged.usage, { timings: merged.timings }));
        if (!ctx.res.destroyed) ctx.res.end('data: [DONE]\n\n');
      } else sendJson(ctx.res, 200, mergeChoices(bodies, merged));
      ctx.note = ` | n ${n} on slots ${slots.join(',')}`;
    } finally {
      ctx.signal.removeEventListener('abort', onLeave);
    }
  }

  /** The generation's end, unless the client left (then null) or the server is shutting down (throws 503). */
  private ended(ctx: Ctx, info: RunInfo): RunInfo | null {
    if (info.result.finishReason !== 'abort') return info;
    if (ctx.signal.aborted) return null;
    throw new ApiError(503, 'generation stopped: the server is shutting down', 'server_error', null, 'server_shutting_down');
  }

  private responseBase(kind: 'chat' | 'completion'): R.ResponseBase {
    return { id: R.responseId(kind === 'chat' ? 'chatcmpl' : 'cmpl'), created: R.nowSeconds(), model: this.service.modelId };
  }

  /** `verbosePrompt`: the prompt's text, for llama-server's `__verbose` object (verbose: true or --verbose) */
  private async whole(ctx: Ctx, kind: 'chat' | 'completion', params: Params, handle: RunHandle, verbosePrompt?: string): Promise<RunInfo | null> {
    const r = await this.wholeBody(ctx, kind, params, handle);
    if (r?.body && verbosePrompt !== undefined) {
      r.body.__verbose = { prompt: verbosePrompt, content: r.info.result.text, tokens_predicted: R.completionTokens(r.info.result) };
    }
    if (r?.body) sendJson(ctx.res, 200, r.body);
    return r?.info ?? null;
  }

  /** A whole response's body (undefined when the client left; null info when it left before the end). */
  private async wholeBody(ctx: Ctx, kind: 'chat' | 'completion', params: Params, handle: RunHandle): Promise<{ info: RunInfo; body?: any } | null> {
    const lps: TokenLogprobs[] = [];
    let info: RunInfo;
    for (;;) {
      const r = await handle.events.next();
      if (r.done) {
        info = r.value;
        break;
      }
      if (r.value.type === 'token' && r.value.logprobs) lps.push(r.value.logprobs);
    }
    if (!this.ended(ctx, info)) return { info };
    const base = this.responseBase(kind);
    const u = R.usage(info.promptTokens, R.completionTokens(info.result), info.cachedTokens);
    const extra = { timings: R.timings(info.result, info.cachedTokens) };
    const piece = (id: number) => this.service.tokenPiece(id);
    const want = params.logprobs;
    // the thinking apart (reasoning-output.ts); tool calls are read from the content after it
    const split = kind === 'chat' && params.reasoning ? splitReasoning(info.result.text, params.reasoning) : undefined;
    const text = split ? split.content : info.result.text;
    const body =
      kind === 'chat'
        ? R.chatCompletion(
            base,
            info.result,
            u,
            want === undefined ? null : lps.map((l) => R.chatLogprob(l, piece, want)),
            extra,
            params.tools && params.toolFormat ? params.toolFormat.parse(text) : split ? { kind: 'text', content: text } : undefined,
          )
        : R.textCompletion(base, info.result, u, want === undefined ? null : R.completionLogprobs(lps, piece, want, 0), extra);
    if (split?.reasoning) ((body.choices[0] as { message: Record<string, unknown> }).message).reasoning_content = split.reasoning;
    return { info, body };
  }

  /**
   * Streams one generation. With `choice` (n > 1) its chunks carry that index and go to choice.send,
   * and the caller writes the headers, the usage and [DONE] once for all choices.
   */
  private async stream(ctx: Ctx, kind: 'chat' | 'completion', params: Params, handle: RunHandle,
    choice?: { index: number; base: R.ResponseBase; send: (data: unknown) => void }): Promise<RunInfo | null> {
    const { res } = ctx;
    const base = choice?.base ?? this.responseBase(kind);
    const piece = (id: number) => this.service.tokenPiece(id);
    const want = params.logprobs;
    const sendEvent = choice ? (_: ServerResponse, data: unknown) => choice.send(withIndex(data, choice.index)) : sendEventTo;
    if (!choice) {
      res.writeHead(200, SSE_HEADERS);
      res.flushHeaders();
    }
    // with tools, the reply is read as it streams, in the model's tool format (tool-formats.ts): its
    // text goes out as content, its calls as tool_calls deltas; the role chunk waits for the first
    const envelope = kind === 'chat' && params.tools !== undefined ? params.toolFormat?.reader() : undefined;
    let opened = false;
    const sendTool = (events: ToolStreamEvent[]) => {
      for (const e of events) {
        if (!opened) {
          sendEvent(res, R.chatChunk(base, { role: 'assistant', content: null }, null));
          opened = true;
        }
        if (e.kind === 'content') sendEvent(res, R.chatChunk(base, { content: e.text }, null));
        else if (e.kind === 'call') {
          const open = { index: e.index, id: e.id, type: 'function' as const, function: { name: e.name, arguments: '' } };
          sendEvent(res, R.chatChunk(base, { tool_calls: [open] }, null));
        } else sendEvent(res, R.chatChunk(base, { tool_calls: [{ index: e.index, function: { arguments: e.text } }] }, null));
      }
    };
    if (kind === 'chat' && !envelope) sendEvent(res, R.chatChunk(base, { role: 'assistant', content: null }, null));
    // llama-server's return_progress / timings_per_token (stream-telemetry.ts)
    const tel = streamTelemetry(params, handle, (f) =>
      sendEvent(res, { ...(kind === 'chat' ? R.chatChunk(base, { role: 'assistant', content: null }, null) : R.completionChunk(base, '', null, null)), ...f }));
    // thinking goes out as reasoning_content deltas, the rest as before (reasoning-output.ts)
    const thinking = kind === 'chat' ? streamReader(params.reasoning) : undefined;
    const sendPieces = (pieces: ReasoningPiece[], lp: TokenLogprobs | null) => {
      for (const p of pieces) {
        if (p.kind === 'reasoning' && envelope && !opened) {
          sendEvent(res, R.chatChunk(base, { role: 'assistant', content: null }, null));
          opened = true;
        }
        if (p.kind === 'reasoning') sendEvent(res, { ...R.chatChunk(base, { reasoning_content: p.text }, null, lp ? [R.chatLogprob(lp, piece, want!)] : null), ...tel?.extra() });
        else if (envelope) sendTool(envelope.push(p.text));
        else sendEvent(res, { ...R.chatChunk(base, { content: p.text }, null, lp ? [R.chatLogprob(lp, piece, want!)] : null), ...tel?.extra() });
        lp = null;
      }
    };
    // deepseek-legacy streams the thinking inline, from the marker the prompt opened
    if (kind === 'chat' && params.reasoning?.format === 'deepseek-legacy' && params.reasoning.open) sendPieces([{ kind: 'content', text: params.reasoning.markers.start }], null);
    let offset = 0;
    let info: RunInfo;
    for (;;) {
      const r = await handle.events.next();
      if (r.done) {
        info = r.value;
        break;
      }
      const ev: GenerationEvent = r.value;
      if (ev.type === 'token') tel?.token();
      const lp = ev.type === 'token' && ev.logprobs && want !== undefined ? ev.logprobs : null;
      if (thinking) {
        const pieces = thinking.push(ev.text);
        if (pieces.length > 0) sendPieces(pieces, lp);
        else if (lp && !envelope) sendEvent(res, { ...R.chatChunk(base, {}, null, [R.chatLogprob(lp, piece, want!)]), ...tel?.extra() });
        continue;
      }
      if (envelope) {
        sendTool(envelope.push(ev.text));
        continue;
      }
      if (!ev.text && !lp) continue;
      if (kind === 'chat') {
        sendEvent(res, { ...R.chatChunk(base, { content: ev.text }, null, lp ? [R.chatLogprob(lp, piece, want!)] : null), ...tel?.extra() });
      } else {
        sendEvent(res, { ...R.completionChunk(base, ev.text, null, lp ? R.completionLogprobs([lp], piece, want!, offset) : null), ...tel?.extra() });
      }
      offset += ev.text.length;
    }
    if (!this.ended(ctx, info)) return info;
    let finish: R.ChatFinish = R.finishReason(info.result.finishReason);
    const u = R.usage(info.promptTokens, R.completionTokens(info.result), info.cachedTokens);
    const extra = { timings: R.timings(info.result, info.cachedTokens) };
    if (thinking) sendPieces(thinking.finish(), null);
    if (envelope) {
      sendTool(envelope.finish());
      if (!opened) sendEvent(res, R.chatChunk(base, { role: 'assistant', content: null }, null));
      if (envelope.callCount > 0 && finish !== 'length') finish = 'tool_calls';
    }
    if (kind === 'chat') {
      sendEvent(res, R.chatChunk(base, {}, finish));
      if (params.includeUsage && !choice) sendEvent(res, R.chatUsageChunk(base, u, extra));
    } else {
      sendEvent(res, R.completionChunk(base, '', R.finishReason(info.result.finishReason)));
      if (params.includeUsage && !choice) sendEvent(res, R.completionUsageChunk(base, u, extra));
    }
    if (!res.destroyed && !choice) res.end('data: [DONE]\n\n');
    return info;
  }
}
