// llama-server's own routes, beside the OpenAI ones of http.ts (registered from there):
//
//   POST /completion, /completions        native completion (llama-completion.ts; /v1/completions is OpenAI's)
//   POST /infill                          fill-in-the-middle with the model's FIM tokens (501 without them)
//   GET  /props                           server and model properties, default generation settings
//   POST /apply-template                  messages -> {prompt}: the chat template's text, not generated from
//   POST /chat/completions/input_tokens   messages -> {input_tokens}: how many tokens that prompt is
//   (and /v1/... twins of the last two)
//   POST /v1/messages, /v1/messages/count_tokens   Anthropic's Messages API (anthropic.ts)
//   POST /v1/embeddings, /embedding, /v1/rerank      embeddings.ts (with --embedding)
//
// Where llama-server and OpenAI differ, OpenAI's shape wins on /v1/... and llama.cpp's on these.
import type { ChatMessage } from '../tokenizer/chat-template.js';
import type { CorsOrigins } from './cors.js';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.js';
import { type Ctx, type Handler, type Method, readJson, sendJson } from './http.js';
import { generationSettings, parseNativeCompletion, runNative, type NativeRequest } from './llama-completion.js';
import type { Monitor } from './monitor.js';
import { asObject, parseChatRequest } from './requests.js';
import type { GenerationService } from './service.js';
import { SYSTEM_FINGERPRINT } from './responses.js';
import { registerAnthropicRoutes } from './anthropic.js';
import { registerCorsProxy, type CorsProxyOptions } from './cors-proxy.js';
import { registerVertexRoute } from './vertex.js';
import { registerEmbeddingRoutes, type EmbeddingOptions } from './embeddings.js';

/** What llama-server's flags set beyond the OpenAI routes (src/cli/llama-flags.ts fills it). */
export interface LlamaOptions {
  /** the model file, for /props model_path */
  modelPath?: string;
  /** every name the model answers to (/v1/models `aliases`) */
  aliases?: string[];
  /** /v1/models `tags` */
  tags?: string[];
  /** request defaults the server was started with (--temp, --seed): a request's own field wins */
  defaults?: { temperature?: number; seed?: number };
  /** GET /metrics (default true; false answers 501, as llama-server without --metrics) */
  metrics?: boolean;
  /** GET / serves the chat page (default true; false: 404, as --no-ui) */
  ui?: boolean;
  /** add `__verbose` (the prompt text, the reply) to every chat and completion response, as llama-server --verbose */
  verbose?: boolean;
  /** compute embeddings (--embedding; embeddings.ts); undefined: /v1/embeddings answers 501 */
  embeddings?: EmbeddingOptions;
  /** the environment, when it asks for Vertex AI's predict route (AIP_MODE=PREDICTION; vertex.ts) */
  vertex?: NodeJS.ProcessEnv;
  /** origins whose pages may call the API (cors.ts, --cors-origins); default null: any */
  corsOrigins?: CorsOrigins;
  /** where POST /slots/{id}?action=save|restore reads and writes (--slot-save-path; slot-files.ts); undefined: 501 */
  slotSavePath?: string;
  /** /cors-proxy for the web UI's MCP client (cors-proxy.ts, --ui-mcp-proxy); undefined: off (403) */
  corsProxy?: CorsProxyOptions;
}

export interface LlamaRouteHost {
  route(paths: string[], method: Method, h: Handler): void;
  service: GenerationService;
  monitor: Monitor;
  maxBody: number;
  options?: LlamaOptions;
}

/** A request body with the server's defaults (--temp, --seed) for the fields it leaves out. */
export function withServerDefaults(body: unknown, defaults: LlamaOptions['defaults']): unknown {
  if (!defaults || typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const b = { ...(body as Record<string, unknown>) };
  if (defaults.temperature !== undefined && (b.temperature === undefined || b.temperature === null)) b.temperature = defaults.temperature;
  if (defaults.seed !== undefined && defaults.seed >= 0 && (b.seed === undefined || b.seed === null)) b.seed = defaults.seed;
  return b;
}

export function registerLlamaRoutes(host: LlamaRouteHost): void {
  const { route, service } = host;
  const body = async (ctx: Ctx) => withServerDefaults(await readJson(ctx, host.maxBody), host.options?.defaults);
  route(['/completion', '/completions'], 'POST', async (c) => runNative(host, c, parseNativeCompletion(service, await body(c))));
  route(['/infill'], 'POST', async (c) => runNative(host, c, parseInfill(service, await body(c))));
  route(['/props'], 'GET', (c) => sendJson(c.res, 200, props(host)));
  route(['/apply-template', '/v1/apply-template'], 'POST', async (c) => {
    const b = asObject(await readJson(c, host.maxBody));
    sendJson(c.res, 200, { prompt: renderTemplate(service, b) });
  });
  registerAnthropicRoutes(host);
  registerCorsProxy(route, host.maxBody, host.options?.corsProxy);
  registerEmbeddingRoutes(host, host.options?.embeddings);
  if (host.options?.vertex) registerVertexRoute(host, host.options.vertex);
  route(['/chat/completions/input_tokens', '/v1/chat/completions/input_tokens'], 'POST', async (c) => {
    const b = asObject(await readJson(c, host.maxBody));
    const req = parseChatRequest(b, service.vocabSize, service.toolFormat);
    sendJson(c.res, 200, { input_tokens: service.chatPrompt(req).length });
  });
}

/** The chat template's text for a request's messages (llama-server's /apply-template). */
export function renderTemplate(service: GenerationService, b: Record<string, unknown>): string {
  const req = parseChatRequest(b, service.vocabSize, service.toolFormat);
  const text = service.renderChatText(req.messages, { addGenerationPrompt: req.addGenerationPrompt !== false, variables: req.templateVariables });
  return text + (req.prefill ?? '');
}

function props(host: LlamaRouteHost) {
  const { service } = host;
  const info = service.info();
  const n: NativeRequest = {
    req: { kind: 'completion', prompt: '', sampler: defaultSampler(host), stop: [], ignoreEos: false, stream: false, includeUsage: false },
    tokens: [],
    nProbs: 0,
    postSampling: false,
    returnTokens: false,
    cachePrompt: true,
    fields: null,
  };
  return {
    default_generation_settings: {
      id: 0,
      id_task: -1,
      n_ctx: info.n_ctx_slot,
      speculative: false,
      is_processing: false,
      params: generationSettings(service, n, host.options?.defaults?.seed ?? -1, -1),
      prompt: '',
      next_token: [{ has_next_token: true, has_new_line: false, n_remain: -1, n_decoded: 0 }],
    },
    total_slots: info.slots,
    model_alias: service.modelId,
    model_path: host.options?.modelPath ?? '',
    modalities: { vision: false, audio: false },
    endpoint_slots: true,
    endpoint_props: false,
    endpoint_metrics: host.options?.metrics !== false,
    webui: host.options?.ui !== false,
    chat_template: service.templateChoice.source,
    bos_token: service.specialTexts.bos,
    eos_token: service.specialTexts.eos,
    build_info: SYSTEM_FINGERPRINT,
    // --sleep-idle-seconds: the model is released (sleep.ts); /props answers without waking it
    is_sleeping: service.released,
    cors_proxy_enabled: host.options?.corsProxy !== undefined,
  };
}

function defaultSampler(host: LlamaRouteHost) {
  const d = host.options?.defaults;
  return { temperature: d?.temperature ?? 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: d?.seed };
}

// ---- /infill

/** Names of fill-in-the-middle tokens that models use, by role (llama.cpp's vocab reads the same). */
const FIM_NAMES = {
  pre: ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<PRE>', '▁<PRE>', '<｜fim▁begin｜>'],
  suf: ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<SUF>', '▁<SUF>', '<｜fim▁hole｜>'],
  mid: ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<MID>', '▁<MID>', '<｜fim▁end｜>'],
  sep: ['<|file_sep|>', '<file_sep>', '<|file_separator|>'],
} as const;

/** The model's FIM token ids (GGUF tokenizer.ggml.fim_*_token_id, else by their usual names), or null. */
export function fimTokens(service: GenerationService): { pre: number; suf: number; mid: number; sep?: number } | null {
  const file = service.model.model.file;
  const tok = service.model.tokenizer;
  const find = (key: string, names: readonly string[]): number | undefined => {
    const id = file.get<number>(`tokenizer.ggml.${key}_token_id`);
    if (typeof id === 'number' && id >= 0 && id < service.vocabSize) return id;
    for (const name of names) {
      const ids = tok.encode(name, { addBos: false, addEos: false, parseSpecial: true });
      if (ids.length === 1 && tok.tokenText(ids[0]!) === name) return ids[0];
    }
    return undefined;
  };
  const pre = find('fim_pre', FIM_NAMES.pre);
  const suf = find('fim_suf', FIM_NAMES.suf);
  const mid = find('fim_mid', FIM_NAMES.mid);
  if (pre === undefined || suf === undefined || mid === undefined) return null;
  const sep = find('fim_sep', FIM_NAMES.sep);
  return sep === undefined ? { pre, suf, mid } : { pre, suf, mid, sep };
}

/**
 * /infill: [BOS] [extra files] FIM_PRE prefix FIM_SUF suffix FIM_MID prompt, as llama.cpp lays it out
 * (extra chunks go before, each as FILE_SEP filename\n text when the model has that token, else as text).
 */
export function parseInfill(service: GenerationService, body: unknown): NativeRequest[] {
  const b = asObject(body);
  const str = (k: string): string => {
    const v = b[k];
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw invalidType(k, 'a string', v);
    return v;
  };
  const prefix = str('input_prefix');
  const suffix = str('input_suffix');
  const prompt = str('prompt');
  const extra: { filename: string; text: string }[] = [];
  if (b.input_extra !== undefined && b.input_extra !== null) {
    if (!Array.isArray(b.input_extra)) throw invalidType('input_extra', 'a list of {filename, text}', b.input_extra);
    b.input_extra.forEach((x, i) => {
      const p = `input_extra[${i}]`;
      if (typeof x !== 'object' || x === null || Array.isArray(x)) throw invalidType(p, 'an object {filename, text}', x);
      const o = x as Record<string, unknown>;
      if (o.filename === undefined) throw missingParam(`${p}.filename`);
      if (typeof o.filename !== 'string') throw invalidType(`${p}.filename`, 'a string', o.filename);
      if (o.text === undefined) throw missingParam(`${p}.text`);
      if (typeof o.text !== 'string') throw invalidType(`${p}.text`, 'a string', o.text);
      extra.push({ filename: o.filename, text: o.text });
    });
  }
  const fim = fimTokens(service);
  if (!fim) {
    throw new ApiError(
      501,
      'this model has no fill-in-the-middle tokens (a prefix, suffix and middle token, e.g. <|fim_prefix|> <|fim_suffix|> <|fim_middle|>): /infill needs a code model trained for it',
      'not_supported_error',
      null,
      'not_supported',
    );
  }
  const tok = service.model.tokenizer;
  const text = (s: string) => (s === '' ? [] : service.tokenize(s, false, false));
  const tokens: number[] = [];
  if (tok.addBosDefault && tok.bos !== undefined) tokens.push(tok.bos);
  for (const e of extra) {
    if (fim.sep !== undefined) tokens.push(fim.sep, ...text(`${e.filename}\n${e.text}`));
    else tokens.push(...text(`${e.filename}\n${e.text}\n`));
  }
  tokens.push(fim.pre, ...text(prefix), fim.suf, ...text(suffix), fim.mid, ...text(prompt));
  const rest = { ...b };
  for (const k of ['input_prefix', 'input_suffix', 'input_extra', 'prompt']) delete rest[k];
  if (tokens.length >= service.slotContext) throw invalidParam('input_prefix', `the infill prompt has ${tokens.length} tokens, more than the context (${service.slotContext})`);
  return parseNativeCompletion(service, rest, [tokens]);
}

export type { ChatMessage };
