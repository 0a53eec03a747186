// llama-server's command-line flags that wf_server takes too, so it starts where llama-server is
// started (scripts, tests, compose files). Each one does what it does there; flags that would
// change nothing here (--jinja, --cont-batching, ...) are accepted and said to be no-ops in --help.
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, type OptionSpec, type ParsedArgs } from './args.js';
import type { LlamaOptions } from '../server/llama-routes.js';
import { parseCorsOrigins } from '../server/cors.js';
import { POOLINGS, type Pooling } from '../server/embeddings.js';
import { vertexEnabled } from '../server/vertex.js';
import type { ReasoningMode } from '../server/template-vars.js';
import { DEFAULT_PROXY_MAX_MB, DEFAULT_PROXY_TIMEOUT_S, type CorsProxyOptions } from '../server/cors-proxy.js';

export const LLAMA_SERVER_OPTIONS: OptionSpec[] = [
  { name: 'temp', type: 'number', description: 'default temperature of requests that give none (llama.cpp default 0.8)' },
  { name: 'seed', short: 's', type: 'number', description: 'default seed of requests that give none (-1 = random)' },
  { name: 'chat-template-file', type: 'string', description: 'a Jinja chat template file (as --chat-template FILE)' },
  { name: 'metrics', type: 'boolean', description: 'serve GET /metrics (the default here; llama-server needs this flag)' },
  { name: 'no-metrics', type: 'boolean', description: 'turn off GET /metrics (501, as llama-server without --metrics)' },
  { name: 'slots', type: 'boolean', description: 'serve GET /slots (the default)' },
  { name: 'no-ui', type: 'boolean', description: 'no chat page at / (404)' },
  { name: 'cors-origins', type: 'string', description: "origins whose web pages may call the API: comma-separated, 'localhost' (any port), '*' (default: any)" },
  { name: 'tags', type: 'string', description: 'comma-separated tags shown in /v1/models' },
  { name: 'embedding', type: 'boolean', description: 'serve /v1/embeddings and /embedding (pooled final hidden states)' },
  { name: 'embeddings', type: 'boolean', description: 'same as --embedding' },
  { name: 'pooling', type: 'string', description: 'embedding pooling: mean | last | cls | none (default mean)' },
  { name: 'embedding-ctx', type: 'number', description: 'most tokens of one embedding input (default 2048)' },
  { name: 'verbose', type: 'boolean', description: "add llama-server's __verbose object (the prompt text) to chat and completion responses, and log on stderr what happens to the prompt cache" },
  { name: 'reasoning', type: 'string', description: 'on | off | auto: off renders the chat template with thinking turned off (enable_thinking false, an open <think> closed)' },
  { name: 'jinja', type: 'boolean', description: 'no-op: chat templates are always Jinja here' },
  { name: 'no-jinja', type: 'boolean', description: 'no-op: chat templates are always Jinja here' },
  { name: 'cont-batching', type: 'boolean', description: 'no-op: batching is always continuous here' },
  { name: 'sleep-idle-seconds', type: 'number', description: 'release the model\'s memory (weights, KV cache) after N seconds without work; the next request that needs it reloads it from the same file (-1 = never, the default)' },
  { name: 'cache-idle-slots', type: 'boolean', description: "when a request starts, the other idle slots' caches move to the prompt cache (no copy) and any slot that continues one takes it back (the default, as llama-server)" },
  { name: 'no-cache-idle-slots', type: 'boolean', description: 'idle slots keep their caches (reused in place, copied when another slot needs them)' },
  { name: 'slot-save-path', type: 'string', description: 'a directory where POST /slots/{id}?action=save|restore writes and reads slots\' caches (made if missing); without it those actions answer 501' },
  { name: 'context-shift', type: 'boolean', description: "a generation that fills its slot's context drops half of what follows the first n_keep tokens (a request field, default 0; BOS is kept) and goes on, its keys re-rotated; default: it stops there ('length')" },
  { name: 'no-context-shift', type: 'boolean', description: 'generation stops when the context is full (the default)' },
  { name: 'backend-sampling', short: 'bs', type: 'boolean', description: "no-op: llama-server's switch to sample on the GPU backend; one sampler runs beside the forward pass here, on either device, with the same results" },
  { name: 'kv-unified', short: 'kvu', type: 'boolean', description: 'no-op: one KV pool a sequence may fill is the default here (see --kv-split)' },
  { name: 'no-kv-unified', short: 'no-kvu', type: 'boolean', description: 'same as --kv-split (llama-server\'s default: each slot holds at most ctx-size / parallel tokens)' },
  { name: 'ui-mcp-proxy', type: 'boolean', description: "serve /cors-proxy?url=URL: the server fetches URL for a web page (the web UI's MCP client), sending on only x-llama-server-proxy-header-* headers; anyone who can call the server can make it fetch what it reaches: not on untrusted networks (default: off, 403)" },
  { name: 'webui-mcp-proxy', type: 'boolean', description: 'same as --ui-mcp-proxy' },
  { name: 'no-ui-mcp-proxy', type: 'boolean', description: 'keep /cors-proxy off (the default)' },
  { name: 'cors-proxy-timeout', type: 'number', description: `with --ui-mcp-proxy: seconds the target may take to connect or between two pieces of its answer (default ${DEFAULT_PROXY_TIMEOUT_S})` },
  { name: 'cors-proxy-max-mb', type: 'number', description: `with --ui-mcp-proxy: most megabytes of one proxied answer (default ${DEFAULT_PROXY_MAX_MB})` },
];

/** --slot-save-path: the directory, made if missing; a path that is not a directory is an error. */
export function slotSaveDir(dir: string): string {
  if (dir.trim() === '') throw new CliError('--slot-save-path is empty');
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new CliError(`--slot-save-path '${dir}' is not a usable directory: ${(e as Error).message}`);
  }
  return resolve(dir);
}

/** A --name / --no-name pair (`on` also counts as --name): which was given, else `byDefault`; both is an error. */
function onOff(o: ParsedArgs['options'], name: string, byDefault: boolean, on = !!o[name]): boolean {
  const off = !!o[`no-${name}`];
  if (on && off) throw new CliError(`give --${name} or --no-${name}, not both`);
  return on || (!off && byDefault);
}

/** --context-shift (off by default, as llama-server); not with --device webgpu (the cache is on the GPU). */
export function contextShiftFrom(o: ParsedArgs['options']): boolean {
  const on = onOff(o, 'context-shift', false);
  if (on && o.device === 'webgpu') throw new CliError('--context-shift is not available with --device webgpu (the KV cache is on the GPU)');
  return on;
}

/** --cache-idle-slots (the default) or --no-cache-idle-slots. */
export function cacheIdleSlotsFrom(o: ParsedArgs['options']): boolean {
  return onOff(o, 'cache-idle-slots', true);
}

/** --sleep-idle-seconds N: the seconds, or undefined for never (-1, the default). */
export function sleepSecondsFrom(o: ParsedArgs['options']): number | undefined {
  const n = o['sleep-idle-seconds'] as number | undefined;
  if (n === undefined || n === -1) return undefined;
  if (!(Number.isInteger(n) && n > 0)) throw new CliError(`--sleep-idle-seconds must be a positive integer (or -1: never), got ${n}`);
  if (o.device === 'webgpu') throw new CliError('--sleep-idle-seconds is not available with --device webgpu (the GPU\'s memory is not given back yet)');
  return n;
}

/** --kv-split, or llama-server's --no-kv-unified; with --kv-unified too it is a contradiction. */
export function kvSplitFrom(o: ParsedArgs['options']): boolean {
  const split = !!o['kv-split'] || !!o['no-kv-unified'];
  if (split && o['kv-unified']) throw new CliError('give --kv-unified (one pool a sequence may fill, the default) or --kv-split / --no-kv-unified, not both');
  return split;
}

/** The model's names: --alias a,b,c gives several; the id is the first in sorted order, as llama-server picks it. */
export function aliasesFrom(alias: string | undefined): { id: string; aliases: string[] } | undefined {
  if (alias === undefined) return undefined;
  const aliases = [...new Set(alias.split(',').map((a) => a.trim()).filter((a) => a !== ''))];
  if (aliases.length === 0) throw new CliError('--alias is empty');
  return { id: [...aliases].sort()[0]!, aliases };
}

/** LlamaOptions from the parsed flags. */
export function llamaOptionsFrom(o: ParsedArgs['options'], modelPath: string | undefined): LlamaOptions {
  const temp = o.temp as number | undefined;
  if (temp !== undefined && !(temp >= 0)) throw new CliError(`--temp must be >= 0, got ${temp}`);
  const seed = o.seed as number | undefined;
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= -1)) throw new CliError(`--seed must be -1 or a non-negative integer, got ${seed}`);
  const opts: LlamaOptions = { metrics: onOff(o, 'metrics', true), ui: !o['no-ui'] };
  if (o.verbose) opts.verbose = true;
  if (vertexEnabled(process.env)) opts.vertex = process.env;
  const pooling = (o.pooling as string | undefined) ?? 'mean';
  if (!(POOLINGS as readonly string[]).includes(pooling)) throw new CliError(`--pooling must be one of ${POOLINGS.join(', ')}, got '${pooling}'`);
  const ectx = o['embedding-ctx'] as number | undefined;
  if (ectx !== undefined && !(Number.isInteger(ectx) && ectx > 0)) throw new CliError(`--embedding-ctx must be a positive integer, got ${ectx}`);
  if (o.embedding || o.embeddings) opts.embeddings = { pooling: pooling as Pooling, ...(ectx ? { ctx: ectx } : {}) };
  if (modelPath) opts.modelPath = modelPath;
  const names = aliasesFrom(o.alias as string | undefined);
  if (names && names.aliases.length > 1) opts.aliases = names.aliases;
  if (o['cors-origins'] !== undefined) {
    try {
      opts.corsOrigins = parseCorsOrigins(o['cors-origins'] as string);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  const slotDir = o['slot-save-path'] as string | undefined;
  if (slotDir !== undefined) opts.slotSavePath = slotSaveDir(slotDir);
  const proxy = corsProxyFrom(o);
  if (proxy) opts.corsProxy = proxy;
  if (o.tags !== undefined) opts.tags = (o.tags as string).split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (temp !== undefined || (seed !== undefined && seed >= 0)) {
    opts.defaults = {};
    if (temp !== undefined) opts.defaults.temperature = temp;
    if (seed !== undefined && seed >= 0) opts.defaults.seed = seed;
  }
  return opts;
}

/** The port: Vertex AI's AIP_HTTP_PORT overrides --port when AIP_MODE=PREDICTION, as in llama-server. */
export function portFrom(port: number, env: NodeJS.ProcessEnv = process.env): number {
  if (!vertexEnabled(env) || env.AIP_HTTP_PORT === undefined) return port;
  const p = Number(env.AIP_HTTP_PORT);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new CliError(`AIP_HTTP_PORT must be 0..65535, got '${env.AIP_HTTP_PORT}'`);
  return p;
}

/** --reasoning on|off|auto, or undefined. */
export function reasoningFrom(o: ParsedArgs['options']): ReasoningMode | undefined {
  const r = o.reasoning as string | undefined;
  if (r === undefined) return undefined;
  if (r !== 'on' && r !== 'off' && r !== 'auto') throw new CliError(`--reasoning must be on, off or auto, got '${r}'`);
  return r;
}

/** The template of --chat-template-file, or undefined. */
export function chatTemplateFile(o: ParsedArgs['options']): string | undefined {
  const f = o['chat-template-file'] as string | undefined;
  if (f === undefined) return undefined;
  if (o['chat-template'] !== undefined) throw new CliError('give --chat-template or --chat-template-file, not both');
  try {
    const text = readFileSync(f, 'utf8');
    if (text.trim() === '') throw new CliError(`--chat-template-file ${f} is empty`);
    return text;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read --chat-template-file '${f}': ${(e as Error).message}`);
  }
}

/** --ui-mcp-proxy (or --webui-mcp-proxy) and its bounds; undefined: the proxy is off. */
export function corsProxyFrom(o: ParsedArgs['options']): CorsProxyOptions | undefined {
  const on = onOff(o, 'ui-mcp-proxy', false, !!(o['ui-mcp-proxy'] || o['webui-mcp-proxy']));
  const timeout = o['cors-proxy-timeout'] as number | undefined;
  const mb = o['cors-proxy-max-mb'] as number | undefined;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0)) throw new CliError(`--cors-proxy-timeout must be a number of seconds > 0, got ${timeout}`);
  if (mb !== undefined && !(Number.isFinite(mb) && mb > 0)) throw new CliError(`--cors-proxy-max-mb must be a number > 0, got ${mb}`);
  if (!on) {
    if (timeout !== undefined || mb !== undefined) throw new CliError('--cors-proxy-timeout and --cors-proxy-max-mb need --ui-mcp-proxy');
    return undefined;
  }
  return { timeoutMs: (timeout ?? DEFAULT_PROXY_TIMEOUT_S) * 1000, maxBytes: Math.floor((mb ?? DEFAULT_PROXY_MAX_MB) * 2 ** 20) };
}
