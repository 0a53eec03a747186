// The page's side of the engine worker (engine-worker.ts): loads a model there and speaks the chat
// UI's ChatBackend over messages. One worker per loaded model; dispose() ends it (and its kernel
// threads with it).
import { ContextFullError, type ChatBackend, type ChatMessage, type ChatSettings, type ModelInfo, type ReplyStats } from '../chat/ui.js';
import type { EngineReply, EngineRequest } from './engine-worker.js';
import type { DeviceChoice } from '../device.js';

export interface EngineInfo extends ModelInfo {
  kernels: string;
  threads: number;
  ctx: number;
  /** what runs the model, and why (a page without WebGPU says it runs on the CPU) */
  device: 'cpu' | 'webgpu';
  deviceNote: string;
}

export interface CompleteResult {
  text: string;
  tokens: number[];
  timings: { promptTokensPerSecond: number; tokensPerSecond: number; [k: string]: number };
  finishReason: string;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; onText?: (t: string) => void };
type Request = EngineRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** An Error with the worker's error name (RangeError for memory, ContextFullError, ...). */
function rebuild(name: string, message: string): Error {
  if (name === 'ContextFullError') return new ContextFullError(message);
  const e = name === 'RangeError' ? new RangeError(message) : new Error(message);
  if (name !== 'RangeError') e.name = name;
  return e;
}

export class EngineClient implements ChatBackend {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private engineInfo!: EngineInfo;

  private constructor(private readonly worker: Worker, private readonly onProgress: (done: number, total: number) => void) {
    worker.onmessage = (e: MessageEvent<EngineReply>) => this.receive(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.failAll(new Error(`the engine worker failed: ${e.message || 'it could not start (is engine-worker.js next to app.js?)'}`));
    };
  }

  /** Starts a worker and loads the model from `blob` into it. */
  static async load(blob: Blob, name: string, opts: { threads: number; ctx?: number; device?: DeviceChoice }, onProgress: (done: number, total: number) => void): Promise<EngineClient> {
    const worker = new Worker(new URL('./engine-worker.js', import.meta.url), { type: 'module' });
    const client = new EngineClient(worker, onProgress);
    try {
      client.engineInfo = (await client.call({ type: 'load', blob, name, threads: opts.threads, ctx: opts.ctx, device: opts.device })) as EngineInfo;
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return client;
  }

  get details(): EngineInfo {
    return this.engineInfo;
  }

  private receive(m: EngineReply): void {
    if (m.type === 'progress') {
      this.onProgress(m.done, m.total);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'text') {
      p.onText?.(m.text);
      return;
    }
    this.pending.delete(m.id);
    if (m.type === 'done') p.resolve(m.value);
    else p.reject(rebuild(m.name, m.message));
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private call(req: Request, onText?: (t: string) => void, signal?: AbortSignal): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onText });
      signal?.addEventListener('abort', () => this.worker.postMessage({ id, type: 'abort' } satisfies EngineRequest), { once: true });
      this.worker.postMessage({ ...req, id } as EngineRequest);
    });
  }

  async info(): Promise<ModelInfo> {
    return this.engineInfo;
  }

  async countTokens(messages: ChatMessage[]): Promise<number> {
    return (await this.call({ type: 'count', messages })) as number;
  }

  async reply(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal, onText: (text: string) => void): Promise<ReplyStats> {
    return (await this.call({ type: 'chat', messages, settings }, onText, signal)) as ReplyStats;
  }

  async complete(prompt: string, n: number, temp: number): Promise<CompleteResult> {
    return (await this.call({ type: 'complete', prompt, n, temp })) as CompleteResult;
  }

  dispose(): void {
    this.failAll(new Error('the model was unloaded'));
    this.worker.terminate();
  }
}
