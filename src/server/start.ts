// Starts serving a loaded model: the engine side (GenerationService) and the HTTP front end
// (ApiServer) on a host and port. The command line that leads here is src/cli/wf_server.ts.
import type { LoadedModel } from '../engine.js';
import type { GrammarHostFactory } from '../generate/grammar-host.js';
import { workerGrammarHosts } from '../node/grammar-workers.js';
import { ApiServer } from './http.js';
import { GenerationService } from './service.js';
import type { LlamaOptions } from './llama-routes.js';
import type { ReasoningMode } from './template-vars.js';
import type { ReasoningOutputOptions } from './reasoning-output.js';
import { ResponseStore } from './response-store.js';
import type { SleepOptions } from './sleep.js';

export interface StartOptions {
  id: string;
  demo?: boolean;
  host?: string;
  port?: number;
  ctxSize?: number;
  /** each slot holds at most ctxSize / slots tokens (--kv-split) */
  kvSplit?: boolean;
  /** idle slots' caches move to the prompt cache when a request starts (--cache-idle-slots) */
  cacheIdleSlots?: boolean;
  /** a full context drops half of what follows n_keep and goes on (--context-shift) */
  contextShift?: boolean;
  /** debug lines of the engine side (--verbose): what happens to the prompt cache */
  debugLog?: (line: string) => void;
  cacheType?: 'f32' | 'f16';
  slots?: number;
  batchSize?: number;
  streamBatchSize?: number;
  maxQueue?: number;
  maxTokensCap?: number;
  chatTemplate?: string;
  /** render control tokens into replies (--special) */
  special?: boolean;
  /** one key, or several (any of them is accepted) */
  apiKey?: string | readonly string[];
  /** serve GET /slots (default true) */
  slotsEndpoint?: boolean;
  quiet?: boolean;
  maxBodyBytes?: number;
  /** what llama-server's flags set (llama-routes.ts) */
  llama?: LlamaOptions;
  /** llama-server's --reasoning on|off|auto (template-vars.ts) */
  reasoning?: ReasoningMode;
  /** llama-server's --reasoning-format and --reasoning-budget (reasoning-output.ts) */
  reasoningOutput?: ReasoningOutputOptions;
  /** Host names answered besides loopback ones on a loopback bind (--allowed-hosts) */
  allowedHosts?: readonly string[];
  /** where grammars compile and match (default: worker threads with the default limits) */
  grammars?: GrammarHostFactory;
  /** also write vLLM's metric names on /metrics */
  metricsVllm?: boolean;
  /** the Responses API's store bounds (--responses-store, --responses-store-mb) */
  responsesStore?: { count: number; bytes: number };
  /** release the model after a while without work, reload it on demand (--sleep-idle-seconds; sleep.ts) */
  sleep?: SleepOptions;
}

export interface RunningServer {
  url: string;
  server: ApiServer;
  service: GenerationService;
  /** closes the server (running generations end with an error) and disposes the model */
  close(): Promise<void>;
  /** refuses new requests, lets those in flight finish for up to `timeoutMs`, then close()s */
  drain(timeoutMs: number): Promise<{ cutOff: number }>;
}

/** Starts serving a loaded model; close() or drain() stops the server and disposes the model. */
export async function startServer(lm: LoadedModel, opts: StartOptions): Promise<RunningServer> {
  let service: GenerationService;
  let server: ApiServer;
  try {
    service = new GenerationService(lm, {
      modelId: opts.id,
      demo: opts.demo,
      ctxSize: opts.ctxSize,
      kvSplit: opts.kvSplit,
      cacheIdleSlots: opts.cacheIdleSlots,
      contextShift: opts.contextShift,
      log: opts.debugLog,
      cacheType: opts.cacheType,
      slots: opts.slots,
      batchSize: opts.batchSize,
      streamBatchSize: opts.streamBatchSize,
      maxQueue: opts.maxQueue,
      maxTokensCap: opts.maxTokensCap,
      chatTemplate: opts.chatTemplate,
      grammars: opts.grammars ?? workerGrammarHosts(),
      special: opts.special,
      reasoning: opts.reasoning,
      reasoningOutput: opts.reasoningOutput,
    });
    server = new ApiServer(service, {
      apiKey: opts.apiKey,
      slots: opts.slotsEndpoint,
      log: opts.quiet ? null : undefined,
      maxBodyBytes: opts.maxBodyBytes,
      llama: opts.llama,
      allowedHosts: opts.allowedHosts,
      metricsVllm: opts.metricsVllm,
      responseStore: opts.responsesStore ? new ResponseStore(opts.responsesStore.count, opts.responsesStore.bytes) : undefined,
      sleep: opts.sleep,
    });
  } catch (e) {
    // the service may exist (the HTTP front end failed): its grammar workers must not outlive the start
    await service!?.close().catch(() => undefined);
    lm.dispose();
    throw e;
  }
  let addr;
  try {
    addr = await server.listen(opts.port ?? 30000, opts.host ?? '127.0.0.1');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    await service.close().catch(() => undefined);
    lm.dispose();
    if (err.code === 'EADDRINUSE') throw new Error(`port ${opts.port} on ${opts.host} is already in use`);
    if (err.code === 'EACCES') throw new Error(`no permission to listen on ${opts.host}:${opts.port}`);
    throw e;
  }
  let disposed = false;
  const dispose = () => {
    // the model now loaded: after a sleep (sleep.ts) it is a reload, and `lm` was disposed on entering sleep
    if (!disposed && !service.released) service.model.dispose();
    disposed = true;
  };
  return {
    url: addr.url,
    server,
    service,
    close: async () => {
      await server.close();
      dispose();
    },
    drain: async (timeoutMs: number) => {
      const r = await server.drain(timeoutMs);
      dispose();
      return r;
    },
  };
}
