// Command line of the server (`wf_server` and `wf serve`): flags -> model -> HTTP server, or the
// benchmark mode. Serving runs until SIGINT/SIGTERM, then closes the server (running generations are
// aborted), disposes the kernels and resolves with exit code 0. A second signal exits at once.
import { cpus } from 'node:os';
import { basename } from 'node:path';
import { CliError, helpText, parseArgs, type OptionSpec, type ParsedArgs } from '../cli/args.js';
import { CACHE_TYPE_OPTION, I2S_LAYOUT_OPTION, SPECIAL_OPTION, cacheTypeFrom, loadOptionsFrom } from '../cli/common.js';
import { loadModel, type LoadedModel, type LoadOptions } from '../engine.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../model/synthetic.js';
import { loadModelFile } from '../node/model-file.js';
import { formatBenchmark, runBenchmark } from './benchmark.js';
import { resolveChatTemplate } from './chat-templates.js';
import { ApiServer } from './http.js';
import { GenerationService } from './service.js';
import { describeChatTemplate } from '../tokenizer/chat-template.js';
import { DEFAULT_I2S_LAYOUT, I2S_LAYOUT_HINT } from '../formats/index.js';
import { GGMLType } from '../gguf/types.js';

export const SERVER_OPTIONS: OptionSpec[] = [
  { name: 'model-path', short: 'm', type: 'string', description: 'GGUF model file (default: the built-in demo model, random weights)' },
  { name: 'model', type: 'string', description: 'same as --model-path' },
  { name: 'alias', type: 'string', description: 'model name shown to clients (default: the file name)' },
  { name: 'host', type: 'string', description: 'address to listen on', default: '127.0.0.1' },
  { name: 'port', type: 'number', description: 'port to listen on (0 = any free port)', default: 30000 },
  { name: 'threads', short: 't', type: 'number', description: 'worker threads (default: number of cores)' },
  { name: 'kernels', type: 'string', description: 'kernel path: relaxed | simd | reference (default: fastest available)' },
  { name: 'ffn-act', type: 'string', description: 'force the FFN activation of a bitnet file: relu2 | silu' },
  I2S_LAYOUT_OPTION,
  { name: 'ctx-size', short: 'c', type: 'number', description: "context size in tokens, divided between the slots (default: the model's, at most 4096)" },
  CACHE_TYPE_OPTION,
  { name: 'parallel', short: 'np', type: 'number', description: 'parallel slots (sessions with their own KV cache)', default: 1 },
  { name: 'batch-size', short: 'b', type: 'number', description: 'prompt tokens per forward batch', default: 64 },
  { name: 'n-predict', short: 'n', type: 'number', description: 'most tokens generated per request; -1 = no cap', default: -1 },
  { name: 'max-queue', type: 'number', description: 'requests that may wait for a slot before 503', default: 64 },
  { name: 'chat-template', type: 'string', description: 'chat template: a Jinja file, a name (bitnet, chatml, llama3) or Jinja source' },
  SPECIAL_OPTION,
  { name: 'api-key', type: 'string', description: 'require Authorization: Bearer KEY on the API routes' },
  { name: 'quiet', short: 'q', type: 'boolean', description: 'no per-request log lines' },
  { name: 'benchmark', type: 'boolean', description: 'no server: measure pp512 / tg128 throughput llama-bench style and exit' },
  { name: 'benchmark-iterations', type: 'number', description: 'runs of each benchmark test', default: 5 },
  { name: 'benchmark-pp', type: 'number', description: 'prompt tokens of the pp test (0 = skip)', default: 512 },
  { name: 'benchmark-tg', type: 'number', description: 'generated tokens of the tg test (0 = skip)', default: 128 },
  { name: 'benchmark-json', type: 'boolean', description: 'print the benchmark as JSON (implies --benchmark)' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

const log = (s: string) => process.stderr.write(s + '\n');

function positiveInt(o: ParsedArgs['options'], name: string, min = 1): number | undefined {
  const v = o[name] as number | undefined;
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min) throw new CliError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

interface Loaded {
  lm: LoadedModel;
  id: string;
  demo: boolean;
}

async function load(args: ParsedArgs, prog: string): Promise<Loaded> {
  const o = args.options;
  const path = (o['model-path'] as string | undefined) ?? (o.model as string | undefined);
  const loadOpts: LoadOptions = loadOptionsFrom({ options: { ...o, threads: o.threads ?? cpus().length }, positionals: [] });
  if (!path) {
    log(`${prog}: no --model-path given: using the built-in demo model (random weights: its output is noise, not language)`);
    const lm = await loadModel(buildSyntheticModel(DEMO_MODEL_SPEC), loadOpts);
    return { lm, id: (o.alias as string | undefined) ?? 'wrinklefree-demo', demo: true };
  }
  const lm = await loadModelFile(path, loadOpts);
  return { lm, id: (o.alias as string | undefined) ?? basename(path), demo: false };
}

export interface RunningServer {
  url: string;
  server: ApiServer;
  service: GenerationService;
  /** closes the server and disposes the model */
  close(): Promise<void>;
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
    const parallel = positiveInt(o, 'parallel')!;
    const batchSize = positiveInt(o, 'batch-size')!;
    const maxQueue = positiveInt(o, 'max-queue', 0)!;
    const nPredict = o['n-predict'] as number;
    if (!Number.isInteger(nPredict) || nPredict < -1) throw new CliError(`--n-predict must be -1 or a non-negative integer, got ${nPredict}`);
    const port = o.port as number;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0..65535, got ${port}`);
    const template = o['chat-template'] !== undefined ? resolveChatTemplate(o['chat-template'] as string) : undefined;
    const iterations = positiveInt(o, 'benchmark-iterations')!;
    const pp = positiveInt(o, 'benchmark-pp', 0)!;
    const tg = positiveInt(o, 'benchmark-tg', 0)!;

    const { lm, id, demo } = await load(args, prog);
    if (benchmark) {
      try {
        log(`${prog}: benchmark of ${id} (${lm.kernels.name} x${lm.kernels.threads}), ${iterations} iteration(s)${demo ? ' — demo model, random weights' : ''}`);
        const report = await runBenchmark(lm, { iterations, promptTokens: pp, genTokens: tg, batchSize });
        if (o['benchmark-json']) console.log(JSON.stringify(report, null, 2));
        else console.log(formatBenchmark(report));
        return 0;
      } finally {
        lm.dispose();
      }
    }
    const running = await startServer(lm, {
      id,
      demo,
      host: o.host as string,
      port,
      ctxSize,
      cacheType,
      slots: parallel,
      batchSize,
      maxQueue,
      maxTokensCap: nPredict < 0 ? undefined : nPredict,
      chatTemplate: template,
      special: !!o.special,
      apiKey: o['api-key'] as string | undefined,
      quiet: !!o.quiet,
    });
    const info = running.service.info();
    log(
      `${prog}: model ${id}${demo ? ' (demo, random weights: output is noise)' : ''} | ctx ${info.n_ctx} = ${info.slots} slot(s) x ${info.n_ctx_slot}` +
        ` | ${info.kernels} x${info.threads}`,
    );
    if (lm.model.file.tensors.some((t) => t.type === GGMLType.I2_S)) {
      // the bytes cannot tell bitnet.cpp's I2_S layouts apart: say which one is assumed
      log(`${prog}: I2_S weights read in the ${(o['i2s-layout'] as string | undefined) ?? DEFAULT_I2S_LAYOUT} layout (${I2S_LAYOUT_HINT})`);
    }
    const tpl = running.service.templateChoice;
    if (tpl.warning) log(`${prog}: warning: ${tpl.warning}`);
    log(`${prog}: chat template: ${describeChatTemplate(tpl)}`);
    log(`${prog}: listening on ${running.url} (chat page: ${running.url}/, API: ${running.url}/v1)`);
    const sig = await new Promise<string>((resolve) => {
      const on = (s: string) => () => resolve(s);
      process.once('SIGINT', on('SIGINT'));
      process.once('SIGTERM', on('SIGTERM'));
    });
    log(`${prog}: ${sig}: shutting down`);
    const force = () => {
      log(`${prog}: second signal: exiting now`);
      process.exit(130);
    };
    process.once('SIGINT', force);
    process.once('SIGTERM', force);
    await running.close();
    process.off('SIGINT', force);
    process.off('SIGTERM', force);
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

export interface StartOptions {
  id: string;
  demo?: boolean;
  host?: string;
  port?: number;
  ctxSize?: number;
  cacheType?: 'f32' | 'f16';
  slots?: number;
  batchSize?: number;
  maxQueue?: number;
  maxTokensCap?: number;
  chatTemplate?: string;
  /** render control tokens into replies (--special) */
  special?: boolean;
  apiKey?: string;
  quiet?: boolean;
  maxBodyBytes?: number;
}

/** Starts serving a loaded model; close() stops the server and disposes the model. */
export async function startServer(lm: LoadedModel, opts: StartOptions): Promise<RunningServer> {
  let service: GenerationService;
  try {
    service = new GenerationService(lm, {
      modelId: opts.id,
      demo: opts.demo,
      ctxSize: opts.ctxSize,
      cacheType: opts.cacheType,
      slots: opts.slots,
      batchSize: opts.batchSize,
      maxQueue: opts.maxQueue,
      maxTokensCap: opts.maxTokensCap,
      chatTemplate: opts.chatTemplate,
      special: opts.special,
    });
  } catch (e) {
    lm.dispose();
    throw e;
  }
  const server = new ApiServer(service, { apiKey: opts.apiKey, log: opts.quiet ? null : undefined, maxBodyBytes: opts.maxBodyBytes });
  let addr;
  try {
    addr = await server.listen(opts.port ?? 30000, opts.host ?? '127.0.0.1');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    lm.dispose();
    if (err.code === 'EADDRINUSE') throw new Error(`port ${opts.port} on ${opts.host} is already in use`);
    if (err.code === 'EACCES') throw new Error(`no permission to listen on ${opts.host}:${opts.port}`);
    throw e;
  }
  return {
    url: addr.url,
    server,
    service,
    close: async () => {
      await server.close();
      lm.dispose();
    },
  };
}
