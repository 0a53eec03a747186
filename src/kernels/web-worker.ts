// Entry of one browser kernel worker (started by web-threads.ts): waits for its WorkerInit, then serves jobs.
import { runKernelWorker, type WorkerInit } from './threads.js';

const scope = globalThis as unknown as { onmessage: ((e: { data: WorkerInit }) => void) | null; postMessage(m: unknown): void };
scope.onmessage = (e) => {
  scope.onmessage = null;
  runKernelWorker(e.data, () => scope.postMessage('ready'));
};
