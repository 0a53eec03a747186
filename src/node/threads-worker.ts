// Entry of one Node kernel worker thread (started by src/node/threads.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { runKernelWorker, type WorkerInit } from '../kernels/threads.js';

runKernelWorker(workerData as WorkerInit, () => parentPort!.postMessage('ready'));
