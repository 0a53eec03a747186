// `wf_server` (bin/wf_server.js) and `wf serve`: flags -> model -> HTTP server (src/server/), or
// the benchmark mode.
//
// Serving runs until SIGTERM or SIGINT, then drains: new requests get 503, the ones in flight may
// finish for up to --drain-timeout seconds, the rest end with an error; the kernels are disposed
// and the exit code is 0. A second signal exits at once.
//
// API keys: --api-key KEY, --api-key-file FILE (one key per line; blank lines and # comments are
// skipped) or the environment variable WF_API_KEY. A key on the command line shows in `ps`, so the
// file or the environment are the ones to use on a shared machine.
import { readFileSync } from 'node:fs';
import { usableCpus, type CpuCount } from '../node/cpu-quota.js';
import { basename } from 'node:path';
import { CliError, helpText, parseArgs, type OptionSpec, type ParsedArgs } from './args.js';
import { CACHE_TYPE_OPTION, DEVICE_OPTION, I2S_LAYOUT_OPTION, LM_HEAD_OPTION, SPECIAL_OPTION, cacheTypeFrom, loadOptionsFrom } from './common.js';
import type { LoadedModel, LoadOptions } from '../engine.js';
import { DEMO_MODEL_DESCRIPTION, DEMO_MODEL_FILE, DEMO_MODEL_ID, loadDemoModel } from '../node/demo-model.js';
import { DEFAULT_SLOTS, DEFAULT_STREAM_BATCH_SIZE } from '../server/service.js';
import { DEFAULT_STORE_BYTES, DEFAULT_STORE_COUNT } from '../server/response-store.js';
import { DEFAULT_BATCH_SIZE } from '../model/model.js';
import { loadModelFile } from '../node/model-file.js';
import { formatBenchmark, runBenchmark } from '../server/benchmark.js';
import { resolveChatTemplate } from '../server/chat-templates.js';
import { exposureWarning } from '../server/host-check.js';
import { startServer } from '../server/start.js';
import { listenWhileLoading } from '../server/loading-server.js';
import { REASONING_OPTIONS, reasoningOutputFrom } from './reasoning-flags.js';
import { LLAMA_SERVER_OPTIONS, aliasesFrom, cacheIdleSlotsFrom, chatTemplateFile, contextShiftFrom, kvSplitFrom, llamaOptionsFrom, portFrom, reasoningFrom, sleepSecondsFrom } from './llama-flags.js';
import { modelReloader } from '../node/model-reload.js';
import { GRAMMAR_OPTIONS, grammarLimitsFrom } from './grammar-options.js';
import { workerGrammarHosts } from '../node/grammar-workers.js';
import { describeChatTemplate } from '../tokenizer/chat-template.js';
import { DEFAULT_I2S_LAYOUT, I2S_LAYOUT_HINT } from '../formats/index.js';
import { GGMLType } from '../gguf/types.js';

export const SERVER_OPTIONS: OptionSpec[] = [
  { name: 'model-path', short: 'm', type: 'string', description: 'GGUF model file (default: the built-in demo model, a 2.3M-parameter BitNet trained on the KJV Bible, fortunes and The Devil\'s Dictionary)' },
  { name: 'model', type: 'string', description: 'same as --model-path' },
  { name: 'alias', type: 'string', description: 'model name shown to clients (default: the file name)' },
  { name: 'host', type: 'string', description: 'address to listen on', default: '127.0.0.1' },
  { name: 'allowed-hosts', type: 'string', description: 'on a loopback --host, Host header names answered besides localhost and loopback addresses (comma-separated; .example.com = the domain and its subdomains; * = any)' },
  { name: 'port', type: 'number', description: 'port to listen on (0 = any free port)', default: 30000 },
  { name: 'threads', short: 't', type: 'number', description: 'worker threads (default: the CPUs this process may use: cores, affinity mask, cgroup CPU quota; the start line says which)' },
  { name: 'kernels', type: 'string', description: 'kernel path: relaxed | simd | reference (default: fastest available)' },
  { name: 'ffn-act', type: 'string', description: 'force the FFN activation of a bitnet file: relu2 | silu' },
  LM_HEAD_OPTION,
  I2S_LAYOUT_OPTION,
  DEVICE_OPTION,
  { name: 'ctx-size', short: 'c', type: 'number', description: "KV cache size in tokens, one pool shared by the slots (default: the model's context, at most 4096)" },
  { name: 'kv-split', type: 'boolean', description: "each slot may hold at most ctx-size / parallel tokens (llama-server's default, -no-kvu); default: one pool where a sequence may use all of it (llama-server's --kv-unified)" },
  CACHE_TYPE_OPTION,
  { name: 'parallel', short: 'np', type: 'number', description: `sequences generating at once, batched into one forward pass per step (default ${DEFAULT_SLOTS})` },
  { name: 'batch-size', short: 'b', type: 'number', description: 'rows per forward pass: prompt chunks, plus one per generating sequence', default: DEFAULT_BATCH_SIZE },
  { name: 'stream-batch-size', type: 'number', description: `rows per forward pass while sequences are generating (at most --batch-size; default ${DEFAULT_STREAM_BATCH_SIZE}): a long prompt is read in smaller chunks then, so the streams' next tokens do not wait for a long pass` },
  { name: 'n-predict', short: 'n', type: 'number', description: 'most tokens generated per request; -1 = no cap', default: -1 },
  { name: 'max-queue', type: 'number', description: 'requests that may wait for a slot before 503', default: 64 },
  { name: 'chat-template', type: 'string', description: 'chat template: a Jinja file, a name (bitnet, chatml, llama3) or Jinja source' },
  SPECIAL_OPTION,
  ...GRAMMAR_OPTIONS,
  { name: 'api-key', type: 'string', description: 'require Authorization: Bearer KEY on the API routes (visible in ps: prefer the next two)' },
  { name: 'api-key-file', type: 'string', description: 'read the API key(s) from FILE, one per line (# comments); env WF_API_KEY works too' },
  { name: 'drain-timeout', type: 'number', description: 'on SIGTERM/SIGINT, seconds the requests in flight may take to finish', default: 30 },
  { name: 'metrics-vllm', type: 'boolean', description: 'also expose vLLM\'s metric names on /metrics (vllm:num_requests_waiting, vllm:num_requests_running, vllm:kv_cache_usage_perc), as KEDA and llm-d examples query' },
  { name: 'responses-store', type: 'number', description: 'Responses API: most responses kept in memory for previous_response_id (0 = none)', default: DEFAULT_STORE_COUNT },
  { name: 'responses-store-mb', type: 'number', description: 'Responses API: most megabytes of stored responses (least recently used go first)', default: DEFAULT_STORE_BYTES / 2 ** 20 },
  { name: 'no-slots', type: 'boolean', description: 'turn off the GET /slots endpoint (it shows requests\' settings)' },
  { name: 'quiet', short: 'q', type: 'boolean', description: 'no per-request log lines' },
  { name: 'benchmark', type: 'boolean', description: 'no server: measure pp512 / tg128 throughput llama-bench style and exit' },
  { name: 'benchmark-iterations', type: 'number', description: 'runs of each benchmark test', default: 5 },
  { name: 'benchmark-pp', type: 'number', description: 'prompt tokens of the pp test (0 = skip)', default: 512 },
  { name: 'benchmark-tg', type: 'number', description: 'generated tokens of the tg test (0 = skip)', default: 128 },
  { name: 'benchmark-json', type: 'boolean', description: 'print the benchmark as JSON (implies --benchmark)' },
  ...LLAMA_SERVER_OPTIONS,
  ...REASONING_OPTIONS,
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

/** The environment variable that may hold the API key. */
export const API_KEY_ENV = 'WF_API_KEY';

const log = (s: string) => process.stderr.write(s + '\n');

function positiveInt(o: ParsedArgs['options'], name: string, min = 1): number | undefined {
  const v = o[name] as number | undefined;
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min) throw new CliError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** --responses-store and --responses-store-mb: the Responses API's store bounds. */
function responsesStore(o: ParsedArgs['options']): { count: number; bytes: number } {
  const count = positiveInt(o, 'responses-store', 0) ?? DEFAULT_STORE_COUNT;
  const mb = o['responses-store-mb'] as number | undefined;
  if (mb !== undefined && !(Number.isFinite(mb) && mb >= 0)) throw new CliError(`--responses-store-mb must be a number >= 0, got ${mb}`);
  return { count, bytes: Math.floor((mb ?? DEFAULT_STORE_BYTES / 2 ** 20) * 2 ** 20) };
}

export interface ApiKeys {
  keys: string[];
  /** where they came from, for the start-up line */
  source: string;
}

/**
 * The API keys from --api-key, --api-key-file or WF_API_KEY (in that order; the two flags
 * together are an error), or undefined when none is set. An unreadable or empty file, or a
 * WF_API_KEY that is set but empty, is an error rather than a server without a key.
 */
export function apiKeysFrom(o: ParsedArgs['options'], env: NodeJS.ProcessEnv = process.env): ApiKeys | undefined {
  const flag = o['api-key'] as string | undefined;
  const file = o['api-key-file'] as string | undefined;
  if (flag !== undefined && file !== undefined) throw new CliError('give --api-key or --api-key-file, not both');
  if (flag !== undefined) {
    if (flag.trim() === '') throw new CliError('--api-key is empty');
    return { keys: [flag.trim()], source: '--api-key' };
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'it is a directory' : err.message;
      throw new CliError(`cannot read --api-key-file '${file}': ${why}`);
    }
    const keys = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    if (keys.length === 0) throw new CliError(`--api-key-file '${file}' holds no key (one key per line; blank lines and lines starting with # are skipped)`);
    return { keys, source: `--api-key-file (${keys.length} key${keys.length > 1 ? 's' : ''})` };
  }
  const fromEnv = env[API_KEY_ENV];
  if (fromEnv !== undefined) {
    if (fromEnv.trim() === '') throw new CliError(`${API_KEY_ENV} is set but empty (unset it to serve without a key)`);
    return { keys: [fromEnv.trim()], source: API_KEY_ENV };
  }
  return undefined;
}

/**
 * The start-up warning when one sequence may grow past the context the model was trained on
 * (`perSequence`: the most tokens one sequence can hold with this --ctx-size and -np), or null.
 */
export function contextWarning(ctxSize: number, perSequence: number, trained: number): string | null {
  if (!(trained > 0) || perSequence <= trained) return null;
  return (
    `warning: --ctx-size ${ctxSize} lets a sequence hold ${perSequence} tokens, more than the model's trained context (${trained} tokens): ` +
    `past ${trained} positions a sequence is beyond what the model has seen, and its output degrades`
  );
}

interface Loaded {
  lm: LoadedModel;
  id: string;
  demo: boolean;
  /** the thread count and where it came from */
  threads: CpuCount;
  /** with --sleep-idle-seconds: loads the same file again, checked unchanged (node/model-reload.ts) */
  reload?: () => Promise<LoadedModel>;
}

async function load(args: ParsedArgs, prog: string, sleeps: boolean): Promise<Loaded> {
  const o = args.options;
  const path = (o['model-path'] as string | undefined) ?? (o.model as string | undefined);
  const threads: CpuCount = o.threads !== undefined ? { count: o.threads as number, source: '--threads' } : usableCpus();
  const loadOpts: LoadOptions = loadOptionsFrom({ options: { ...o, threads: threads.count }, positionals: [] });
  // the file as it is before loading: a wake reloads it only if it is still the same
  const reload = sleeps ? await modelReloader(path ?? DEMO_MODEL_FILE, loadOpts).catch(() => undefined) : undefined;
  if (!path) {
    log(`${prog}: no --model-path given: using the built-in demo model, ${DEMO_MODEL_DESCRIPTION}`);
    const lm = await loadDemoModel(loadOpts);
    return { lm, id: aliasesFrom(o.alias as string | undefined)?.id ?? DEMO_MODEL_ID, demo: true, threads, reload };
  }
  const lm = await loadModelFile(path, loadOpts);
  return { lm, id: aliasesFrom(o.alias as string | undefined)?.id ?? basename(path), demo: false, threads, reload };
}

/** The server's entry point; resolves with the exit code once serving ends (or the benchmark is done). */
export async function serverMain(argv: string[], prog = 'wf_server'): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, SERVER_OPTIONS);
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`${prog}: ${e.message} (see --help)`);
      return 2;
    }
    throw e;
  }
  const o = args.options;
  if (o.help) {
    console.log(helpText(`usage: ${prog} [-m FILE.gguf] [--host H] [--port P] [-c CTX] [-np SLOTS] [--benchmark]`, SERVER_OPTIONS));
    return 0;
  }
  try {
    if (args.positionals.length) throw new CliError(`unexpected argument '${args.positionals[0]}'`);
    const benchmark = !!o.benchmark || !!o['benchmark-json'];
    const ctxSize = positiveInt(o, 'ctx-size');
    const cacheType = cacheTypeFrom(args);
    const parallel = positiveInt(o, 'parallel');
    const batchSize = positiveInt(o, 'batch-size')!;
    const streamBatchSize = positiveInt(o, 'stream-batch-size');
    if (streamBatchSize !== undefined && streamBatchSize > batchSize) {
      throw new CliError(`--stream-batch-size ${streamBatchSize} exceeds --batch-size ${batchSize} (the most rows a forward pass takes)`);
    }
    const maxQueue = positiveInt(o, 'max-queue', 0)!;
    const nPredict = o['n-predict'] as number;
    if (!Number.isInteger(nPredict) || nPredict < -1) throw new CliError(`--n-predict must be -1 or a non-negative integer, got ${nPredict}`);
    const port = portFrom(o.port as number);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0..65535, got ${port}`);
    const drainSeconds = o['drain-timeout'] as number;
    if (!(drainSeconds >= 0 && drainSeconds <= 86400)) throw new CliError(`--drain-timeout must be 0..86400 seconds, got ${drainSeconds}`);
    const template = o['chat-template'] !== undefined ? resolveChatTemplate(o['chat-template'] as string) : chatTemplateFile(o);
    const llama = llamaOptionsFrom(o, (o['model-path'] as string | undefined) ?? (o.model as string | undefined));
    const reasoningOutput = reasoningOutputFrom(o);
    const iterations = positiveInt(o, 'benchmark-iterations')!;
    const pp = positiveInt(o, 'benchmark-pp', 0)!;
    const tg = positiveInt(o, 'benchmark-tg', 0)!;
    const apiKeys = benchmark ? undefined : apiKeysFrom(o);
    const grammarLimits = grammarLimitsFrom(o);
    const sleepSeconds = sleepSecondsFrom(o);
    const cacheIdleSlots = cacheIdleSlotsFrom(o);
    const contextShift = contextShiftFrom(o);

    // hold the port while loading: /health says 503 "loading", /livez 200 (port 0 = any: nothing to hold)
    const holding = benchmark || port === 0 ? null : await listenWhileLoading(o.host as string, port);
    let loaded: Loaded | undefined;
    try {
      loaded = await load(args, prog, sleepSeconds !== undefined && !benchmark);
    } finally {
      await holding?.close();
    }
    const { id, demo, threads, reload } = loaded;
    // no reference to the model may stay in this frame (it lives as long as the server): sleep mode
    // (--sleep-idle-seconds) releases the model, and the memory goes only when nothing holds it
    let lm: LoadedModel | undefined = loaded.lm;
    loaded = undefined;
    if (benchmark) {
      try {
        log(`${prog}: benchmark of ${id} (${lm.deviceName}), ${iterations} iteration(s)${demo ? ' — the built-in demo model' : ''}`);
        const report = await runBenchmark(lm, { iterations, promptTokens: pp, genTokens: tg, batchSize });
        if (o['benchmark-json']) console.log(JSON.stringify(report, null, 2));
        else console.log(formatBenchmark(report));
        return 0;
      } finally {
        lm.dispose();
      }
    }
    // --verbose: the engine side's debug lines too; the bracketed tag is llama-server's for the same setting
    if (o.verbose && cacheIdleSlots) log(`${prog}: idle slots' caches move to the prompt cache when a request starts (--cache-idle-slots) [__TEST_TAG_CACHE_IDLE_SLOTS_ENABLED__]`);
    const running = await startServer(lm, {
      id,
      demo,
      host: o.host as string,
      port,
      ctxSize,
      kvSplit: kvSplitFrom(o),
      cacheIdleSlots,
      contextShift,
      debugLog: o.verbose ? (l) => log(`${prog}: ${l}`) : undefined,
      cacheType,
      slots: parallel,
      batchSize,
      streamBatchSize,
      maxQueue,
      maxTokensCap: nPredict < 0 ? undefined : nPredict,
      chatTemplate: template,
      special: !!o.special,
      apiKey: apiKeys?.keys,
      slotsEndpoint: !o['no-slots'],
      metricsVllm: !!o['metrics-vllm'],
      quiet: !!o.quiet,
      llama,
      reasoning: reasoningFrom(o),
      reasoningOutput,
      allowedHosts: typeof o['allowed-hosts'] === 'string' ? (o['allowed-hosts'] as string).split(',').map((h) => h.trim()).filter((h) => h !== '') : undefined,
      grammars: workerGrammarHosts(grammarLimits),
      responsesStore: responsesStore(o),
      sleep: sleepSeconds !== undefined && reload ? { idleMs: sleepSeconds * 1000, reload, log: (l) => log(`${prog}: ${l}`) } : undefined,
    });
    const i2s = lm.model.file.tensors.some((t) => t.type === GGMLType.I2_S);
    lm = undefined;
    const info = running.service.info();
    log(
      `${prog}: model ${id}${demo ? ' (the built-in demo: a 2.3M-parameter BitNet b1.58 trained on the KJV Bible, fortunes and The Devil\'s Dictionary)' : ''} | KV pool ${info.n_ctx} tokens ${info.n_ctx_slot < info.n_ctx ? `split among ${info.slots} slot(s), ${info.n_ctx_slot} each (--kv-split)` : `shared by ${info.slots} slot(s)`}` +
        ` | ${info.device} | lm_head ${info.lm_head}`,
    );
    if (i2s) {
      // the bytes cannot tell bitnet.cpp's I2_S layouts apart: say which one is assumed
      log(`${prog}: I2_S weights read in the ${(o['i2s-layout'] as string | undefined) ?? DEFAULT_I2S_LAYOUT} layout (${I2S_LAYOUT_HINT})`);
    }
    log(`${prog}: ${info.threads} thread(s), from ${threads.source}`);
    if (sleepSeconds !== undefined) log(`${prog}: sleep mode: the model's memory is released after ${sleepSeconds} s without work and reloaded on the next request that needs it`);
    const tpl = running.service.templateChoice;
    if (tpl.warning) log(`${prog}: warning: ${tpl.warning}`);
    log(`${prog}: chat template: ${describeChatTemplate(tpl)} | tool calls: ${info.tool_format}`);
    const warning = contextWarning(info.n_ctx, info.n_ctx_slot, info.n_ctx_train);
    if (warning) log(`${prog}: ${warning}`);
    if (apiKeys) {
      log(`${prog}: API key required (from ${apiKeys.source})`);
      if (apiKeys.source === '--api-key') log(`${prog}: note: a key given with --api-key shows in ps; --api-key-file FILE or ${API_KEY_ENV} keep it out of sight`);
    }
    const exposed = exposureWarning(o.host as string, apiKeys !== undefined);
    if (exposed) log(`${prog}: warning: ${exposed}`);
    if (llama.corsProxy) log(`${prog}: warning: /cors-proxy is on (--ui-mcp-proxy): whoever can call this server can make it fetch any URL it reaches`);
    log(`${prog}: listening on ${running.url} (chat page: ${running.url}/, API: ${running.url}/v1)`);
    const sig = await new Promise<string>((resolve) => {
      const on = (s: string) => () => resolve(s);
      process.once('SIGINT', on('SIGINT'));
      process.once('SIGTERM', on('SIGTERM'));
    });
    let stopped = false;
    // a second signal exits at once; one that comes after the drain (while the process winds
    // down) must not turn a clean stop into a death by signal, so the handler stays
    const force = () => {
      if (stopped) process.exit(0);
      log(`${prog}: second signal: exiting now`);
      process.exit(130);
    };
    process.once('SIGINT', force);
    process.once('SIGTERM', force);
    const n = running.server.requestsInFlight;
    log(`${prog}: ${sig}: shutting down: new requests get 503; ${n} request(s) in flight may take up to ${drainSeconds} s${n > 0 ? ' (a second signal exits at once)' : ''}`);
    const { cutOff } = await running.drain(drainSeconds * 1000);
    if (cutOff > 0) log(`${prog}: drain timeout: ${cutOff} request(s) still running were ended with an error`);
    stopped = true;
    log(`${prog}: stopped`);
    return 0;
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`${prog}: ${e.message} (see --help)`);
      return 2;
    }
    console.error(`${prog}: error: ${(e as Error)?.message ?? String(e)}`);
    if (process.env.WF_DEBUG) console.error((e as Error)?.stack);
    return 1;
  }
}

/** Serves until SIGINT/SIGTERM (or runs the benchmark) and resolves with the exit code. */
export async function main(argv: string[]): Promise<number | undefined> {
  return serverMain(argv, 'wf_server');
}
