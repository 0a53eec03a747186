// Browser adapter for the kernel thread pool: module Web Workers running web-worker.ts. Only used
// in cross-origin isolated pages (shared memory); elsewhere the kernels run on the calling thread.

import type { ThreadHost, WorkerHandle, WorkerInit } from './threads.js';

interface WebWorker {
  postMessage(m: unknown): void;
  terminate(): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: unknown) => void) | null;
}

/** A host for Web Workers, or undefined where there are none. */
export function webThreadHost(): ThreadHost | undefined {
  const W = (globalThis as { Worker?: new (url: URL, opts: { type: string }) => WebWorker }).Worker;
  if (!W) return undefined;
  // Atomics.wait is not allowed on a page's main thread; inside a worker it is
  const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';
  return {
    canBlock: inWorker,
    start(init: WorkerInit): Promise<WorkerHandle> {
      return new Promise((resolve, reject) => {
        const w = new W(new URL('./web-worker.js', import.meta.url), { type: 'module' });
        w.onmessage = (e) => {
          if (e.data === 'ready') resolve({ terminate: () => w.terminate() });
        };
        w.onerror = (e) => reject(new Error(`kernel worker failed to start: ${String((e as { message?: string }).message ?? e)}`));
        w.postMessage(init);
      });
    },
  };
}
