// Worker pool over one shared WebAssembly.Memory. The calling thread is share 0 and runs its part
// of every job itself; workers 1..n-1 wait on a control block in the shared memory:
//
//   ctl (Int32Array, 64-byte aligned, 256 bytes + args):
//     [0]  SEQ   job sequence number (workers spin, then Atomics.wait, until it changes)
//     [16] DONE  workers finished with the current job (the caller spins, then waits, for n-1)
//     [32] JOB   job id (jobs.ts); 0 = quit
//     [33] ERR   set by a worker whose part threw
//     [34] BROKEN set by a host when a worker died (the pool then refuses work)
//   args: Float64Array of 16 at ctl + 256 (pointers and counts are exact in f64)
//
// Thread creation sits behind ThreadHost (Node: src/node/threads.ts, browsers: web-threads.ts),
// so this module has no platform imports.

import { runJob } from './jobs.js';
import { instantiateKernels, type KernelExports } from './wasm-loader.js';

export const CTL_BYTES = 256 + 16 * 8;
export const SEQ = 0;
export const DONE = 16;
export const JOB = 32;
export const ERR = 33;
export const BROKEN = 34;

/** What a worker receives to start (structured-clonable: the module and the shared memory travel). */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: number; // byte offset of the control block
  index: number; // 1..n-1
  threads: number;
  spin: number; // Atomics.load polls before sleeping
}

export interface WorkerHandle {
  terminate(): void;
}

/** Starts workers that call runKernelWorker(init) and resolves once the worker is ready. */
export interface ThreadHost {
  start(init: WorkerInit): Promise<WorkerHandle>;
  /** Whether the calling thread may block in Atomics.wait (not on a browser's main thread). */
  readonly canBlock: boolean;
}

/** The worker side: instantiate on the shared memory, then serve jobs until JOB = 0. */
export function runKernelWorker(init: WorkerInit, ready: () => void): void {
  const ex = instantiateKernels(init.module, init.memory);
  const ctl = new Int32Array(init.memory.buffer, init.ctl, CTL_BYTES / 4);
  const args = new Float64Array(init.memory.buffer, init.ctl + 256, 16);
  let seen = Atomics.load(ctl, SEQ);
  ready();
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctl, SEQ) === seen) {
      if (++spins > init.spin) {
        Atomics.wait(ctl, SEQ, seen);
        spins = 0;
      }
    }
    seen = Atomics.load(ctl, SEQ);
    const job = ctl[JOB]!;
    if (job === 0) return;
    try {
      runJob(ex, job, args, init.index, init.threads);
    } catch {
      Atomics.store(ctl, ERR, 1);
    }
    if (Atomics.add(ctl, DONE, 1) === init.threads - 2) Atomics.notify(ctl, DONE);
  }
}

export class ThreadPool {
  private readonly ctl: Int32Array;
  readonly args: Float64Array;
  private workers: WorkerHandle[] = [];
  private closed = false;

  private constructor(
    private readonly ex: KernelExports,
    memory: WebAssembly.Memory,
    ctlPtr: number,
    readonly threads: number,
    private readonly canBlock: boolean,
    private readonly spin: number,
  ) {
    this.ctl = new Int32Array(memory.buffer, ctlPtr, CTL_BYTES / 4);
    this.args = new Float64Array(memory.buffer, ctlPtr + 256, 16);
  }

  static async create(host: ThreadHost, ex: KernelExports, module: WebAssembly.Module, memory: WebAssembly.Memory,
    ctlPtr: number, threads: number, spin = 20000): Promise<ThreadPool> {
    const pool = new ThreadPool(ex, memory, ctlPtr, threads, host.canBlock, spin);
    try {
      for (let i = 1; i < threads; i++) {
        pool.workers.push(await host.start({ module, memory, ctl: ctlPtr, index: i, threads, spin }));
      }
    } catch (e) {
      pool.dispose();
      throw new Error(`kernels: could not start worker threads (${(e as Error).message})`);
    }
    return pool;
  }

  /** Runs a job on all threads (the caller does share 0); args must be written to this.args first. */
  run(job: number): void {
    if (this.closed) throw new Error('kernels: used after dispose()');
    const ctl = this.ctl;
    if (Atomics.load(ctl, BROKEN)) throw new Error('kernels: a worker thread died; create the kernels again');
    const n = this.threads;
    ctl[JOB] = job;
    Atomics.store(ctl, DONE, 0);
    Atomics.add(ctl, SEQ, 1);
    Atomics.notify(ctl, SEQ);
    let err: unknown;
    try {
      runJob(this.ex, job, this.args, 0, n);
    } catch (e) {
      err = e;
    }
    let spins = 0;
    for (;;) {
      const d = Atomics.load(ctl, DONE);
      if (d === n - 1) break;
      if (Atomics.load(ctl, BROKEN)) throw new Error('kernels: a worker thread died while running a kernel');
      if (this.canBlock && ++spins > this.spin) {
        Atomics.wait(ctl, DONE, d, 50);
        spins = 0;
      }
    }
    if (err) throw err;
    if (Atomics.load(ctl, ERR)) {
      Atomics.store(ctl, ERR, 0);
      throw new Error('kernels: a worker thread failed while running a kernel');
    }
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctl[JOB] = 0;
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}
