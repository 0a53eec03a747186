// The browser app's engine worker (dist/web/engine-worker.js): the model lives here, off the page's
// thread, so the page stays responsive while a prompt is evaluated. With cross-origin isolation its
// kernel threads are further Web Workers started from here (and this thread may sleep in
// Atomics.wait while they work, which a page's main thread may not). Messages (see engine-client.ts):
//   in:  {id, type: 'load', blob, name, threads, ctx, device} | {id, type: 'chat', messages, settings}
//        | {id, type: 'count', messages} | {id, type: 'complete', prompt, n, temp} | {id, type: 'abort'}
//   out: {type: 'progress', done, total} | {id, type: 'text', text} | {id, type: 'done', value}
//        | {id, type: 'error', name, message}
import { chooseWebDevice, loadModel, type DeviceChoice, type LoadedModel } from '../../index.js';
import type { ChatMessage, ChatSettings } from '../chat/ui.js';
import { EngineChatBackend } from './engine-backend.js';

export type EngineRequest =
  | { id: number; type: 'load'; blob: Blob; name: string; threads: number; ctx?: number; device?: DeviceChoice }
  | { id: number; type: 'chat'; messages: ChatMessage[]; settings: ChatSettings }
  | { id: number; type: 'count'; messages: ChatMessage[] }
  | { id: number; type: 'complete'; prompt: string; n: number; temp: number }
  | { id: number; type: 'abort' };

export type EngineReply =
  | { type: 'progress'; done: number; total: number }
  | { id: number; type: 'text'; text: string }
  | { id: number; type: 'done'; value: unknown }
  | { id: number; type: 'error'; name: string; message: string };

const scope = globalThis as unknown as { onmessage: ((e: { data: EngineRequest }) => void) | null; postMessage(m: EngineReply): void };
const post = (m: EngineReply) => scope.postMessage(m);
let lm: LoadedModel | undefined;
let backend: EngineChatBackend | undefined;
const aborts = new Map<number, AbortController>();
const DEFAULT_CTX = 2048;

function loaded(): { lm: LoadedModel; backend: EngineChatBackend } {
  if (!lm || !backend) throw new Error('no model loaded');
  return { lm, backend };
}

async function handle(m: EngineRequest): Promise<unknown> {
  switch (m.type) {
    case 'load': {
      // WebGPU when the worker has an adapter (or it is asked for), else the CPU kernels: `note` says which and why
      const chosen = await chooseWebDevice(m.device ?? 'auto');
      lm = await loadModel(m.blob, { threads: m.threads, gpu: chosen.gpu, onProgress: (p) => post({ type: 'progress', done: p.bytesDone, total: p.bytesTotal }) });
      // 2048 positions by default: a 2B4T model's f32 KV cache is then 315 MB (the chat drops old turns to fit)
      backend = new EngineChatBackend(lm, m.name, Math.min(m.ctx ?? DEFAULT_CTX, lm.config.contextLength));
      return { ...(await backend.info()), kernels: lm.kernels.name, threads: lm.kernels.threads, device: chosen.device, deviceNote: chosen.note };
    }
    case 'chat': {
      const ac = new AbortController();
      aborts.set(m.id, ac);
      return loaded().backend.reply(m.messages, m.settings, ac.signal, (text) => post({ id: m.id, type: 'text', text }));
    }
    case 'count':
      return loaded().backend.countTokens(m.messages);
    case 'complete': {
      const { lm, backend } = loaded();
      const r = await lm.createSession({ ctxSize: backend.ctx }).complete(m.prompt, { maxTokens: m.n, sampler: { temperature: m.temp } });
      return { text: r.text, tokens: r.tokens, timings: r.timings, finishReason: r.finishReason };
    }
    case 'abort':
      aborts.get(m.id)?.abort();
      return undefined;
  }
}

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'abort') {
    void handle(m);
    return;
  }
  handle(m).then(
    (value) => post({ id: m.id, type: 'done', value }),
    (err: unknown) => {
      const x = err instanceof Error ? err : new Error(String(err));
      post({ id: m.id, type: 'error', name: x.name, message: x.message });
    },
  ).finally(() => aborts.delete(m.id));
};
