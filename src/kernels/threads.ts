// Worker pool over one shared WebAssembly.Memory. A job's work units (row groups) are cut into
// chunks that the calling thread and the workers claim one at a time with an atomic counter, so a
// thread that the OS has descheduled (other processes, other tabs) does not hold the others up: the
// caller only waits for chunks that were claimed. Control block in the shared memory:
//
//   ctl (Int32Array, 64-byte aligned):
//     [0]  SEQ        job sequence number (workers spin, then Atomics.wait, until it changes)
//     [16] NEXT       claim counter: (seq & 0xffff) << 16 | next chunk; a claim only succeeds for the
//                     current job, so a worker waking late can never run a stale job's arguments
//     [32] COMPLETED  chunks finished (the caller spins, then waits, until it equals the chunk count)
//     [48] JOB        job id (jobs.ts); 0 = quit
//     [49] CHUNKS     chunk count of the current job
//     [50] ERR        set by a worker whose part threw
//     [51] BROKEN     set by a host when a worker died (the pool then refuses work)
//   args: Float64Array of ARGS at ctl + 256 (pointers and counts are exact in f64)
//
// Thread creation sits behind ThreadHost (Node: src/node/threads.ts, browsers: web-threads.ts),
// so this module has no platform imports.

import { jobUnits, runJob, share } from './jobs.js';
import { instantiateKernels, type KernelExports } from './wasm-loader.js';

/** job argument slots */
export const ARGS = 32;
export const CTL_BYTES = 256 + ARGS * 8;
export const SEQ = 0;
export const NEXT = 16;
export const COMPLETED = 32;
export const JOB = 48;
export const CHUNKS = 49;
export const ERR = 50;
export const BROKEN = 51;

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

/** Claims and runs chunks of the job with sequence number `seq` until none is left; returns whether
 *  this thread completed the last chunk. */
function work(ex: KernelExports, ctl: Int32Array, args: Float64Array, seq: number, thread: number): boolean {
  const tag = (seq & 0xffff) << 16;
  let last = false;
  for (;;) {
    const v = Atomics.load(ctl, NEXT);
    if ((v & ~0xffff) !== tag) return last; // another job
    const chunk = v & 0xffff;
    // CHUNKS and JOB are read atomically: if CHUNKS is already the next job's, the caller has
    // closed NEXT before writing it (see run), so the claim below fails instead of taking a chunk
    // that does not exist
    const chunks = Atomics.load(ctl, CHUNKS);
    if (chunk >= chunks) return last;
    if (Atomics.compareExchange(ctl, NEXT, v, v + 1) !== v) continue;
    const job = Atomics.load(ctl, JOB);
    const [u0, u1] = share(jobUnits(job, args), chunk, chunks);
    try {
      runJob(ex, job, args, u0, u1, thread);
    } catch {
      Atomics.store(ctl, ERR, 1);
    }
    last = Atomics.add(ctl, COMPLETED, 1) + 1 === chunks;
  }
}

/** The worker side: instantiate on the shared memory, then serve jobs until JOB = 0. */
export function runKernelWorker(init: WorkerInit, ready: () => void): void {
  const ex = instantiateKernels(init.module, init.memory);
  const ctl = new Int32Array(init.memory.buffer, init.ctl, CTL_BYTES / 4);
  const args = new Float64Array(init.memory.buffer, init.ctl + 256, ARGS);
  let seen = Atomics.load(ctl, SEQ);
  ready();
  for (;;) {
    let spins = 0;
    let seq: number;
    while ((seq = Atomics.load(ctl, SEQ)) === seen) {
      if (++spins > init.spin) {
        Atomics.wait(ctl, SEQ, seen);
        spins = 0;
      }
    }
    seen = seq;
    if (ctl[JOB] === 0) return;
    if (work(ex, ctl, args, seq, init.index)) Atomics.notify(ctl, COMPLETED);
  }
}

export class ThreadPool {
  private readonly ctl: Int32Array;
  readonly args: Float64Array;
  private workers: WorkerHandle[] = [];
  private closed = false;
  private seq = 0;

  private constructor(
    private readonly ex: KernelExports,
    memory: WebAssembly.Memory,
    ctlPtr: number,
    readonly threads: number,
    private readonly canBlock: boolean,
    private readonly spin: number,
  ) {
    this.ctl = new Int32Array(memory.buffer, ctlPtr, CTL_BYTES / 4);
    this.args = new Float64Array(memory.buffer, ctlPtr + 256, ARGS);
  }

  static async create(host: ThreadHost, ex: KernelExports, module: WebAssembly.Module, memory: WebAssembly.Memory,
    ctlPtr: number, threads: number, spin = 100000): Promise<ThreadPool> {
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

  /** Runs a job on all threads (the caller takes part); its arguments must be in this.args. */
  run(job: number): void {
    if (this.closed) throw new Error('kernels: used after dispose()');
    const ctl = this.ctl;
    if (Atomics.load(ctl, BROKEN)) throw new Error('kernels: a worker thread died; create the kernels again');
    const units = jobUnits(job, this.args);
    // a few chunks per thread: small enough to balance, large enough that claiming is cheap
    const chunks = Math.max(1, Math.min(units, this.threads * 8, 0xffff));
    const seq = (this.seq = (this.seq + 1) | 0);
    // Close the previous job's claim counter before changing JOB and CHUNKS: a worker that read
    // NEXT of the finished job just before could otherwise pair it with the new, larger CHUNKS,
    // claim a chunk past the old end, run it on the new arguments and count it as done (the
    // completion count then overshoots and the wait below never ends).
    Atomics.store(ctl, NEXT, 0xffff);
    Atomics.store(ctl, JOB, job);
    Atomics.store(ctl, CHUNKS, chunks);
    Atomics.store(ctl, COMPLETED, 0);
    Atomics.store(ctl, NEXT, (seq & 0xffff) << 16);
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    work(this.ex, ctl, this.args, seq, 0);
    let spins = 0;
    for (;;) {
      const d = Atomics.load(ctl, COMPLETED);
      if (d === chunks) break;
      if (d > chunks) throw new Error(`kernels: thread pool out of step (${d} of ${chunks} chunks reported done)`);
      if (Atomics.load(ctl, BROKEN)) throw new Error('kernels: a worker thread died while running a kernel');
      if (this.canBlock && ++spins > this.spin) {
        Atomics.wait(ctl, COMPLETED, d, 20);
        spins = 0;
      }
    }
    if (Atomics.load(ctl, ERR)) {
      Atomics.store(ctl, ERR, 0);
      throw new Error('kernels: a kernel failed on one of the threads');
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
