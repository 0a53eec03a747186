// Node adapter for the kernels: worker_threads behind the core's ThreadHost interface, the V8 flag
// that enables relaxed SIMD on Node 20 (set, only where needed, before any kernel module is compiled; flags are
// process-wide, so workers see it too), and the WF_KERNELS environment override.
// Node entry points hand nodeKernelPlatform() to the kernels (src/node/kernels.ts does it for them).

import { setFlagsFromString } from 'node:v8';
import { availableParallelism } from 'node:os';
import { BROKEN, COMPLETED, CTL_BYTES, type ThreadHost, type WorkerHandle, type WorkerInit } from '../kernels/threads.js';
import type { KernelPlatform } from '../kernels/index.js';
import { startWorker } from './worker-start.js';
import { relaxedSimdSupported } from '../kernels/wasm-loader.js';

/** Turns relaxed SIMD on where the runtime needs the flag (Node 20); Node 22 and later have it on by
 *  default and no longer know the flag (V8 then prints "unrecognized flag" on every start), so it is
 *  set only when a relaxed instruction does not validate. Returns whether it set the flag. */
export function enableRelaxedSimd(validates: () => boolean = relaxedSimdSupported, setFlag: (f: string) => void = setFlagsFromString): boolean {
  if (validates()) return false;
  setFlag('--experimental-wasm-relaxed-simd');
  return true;
}

enableRelaxedSimd();

/** Pool spin iterations forced by WF_KERNEL_SPIN (tuning/benchmarks), if set to a non-negative integer. */
export function envKernelSpin(): number | undefined {
  const v = process.env['WF_KERNEL_SPIN'];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`kernels: WF_KERNEL_SPIN "${v}" is not a non-negative integer`);
  return n;
}

/** The kernel path forced by WF_KERNELS (relaxed | simd | reference), if any. */
export function envKernelPath(): string | undefined {
  const v = process.env['WF_KERNELS'];
  return v === undefined || v === '' ? undefined : v;
}

export const nodeThreadHost: ThreadHost = {
  canBlock: true,
  start(init: WorkerInit): Promise<WorkerHandle> {
    return new Promise((resolve, reject) => {
      const w = startWorker(import.meta.url, 'threads-worker', init); // the entry sits next to this file
      let ready = false;
      let terminating = false;
      const ctl = new Int32Array(init.memory.buffer, init.ctl, CTL_BYTES / 4);
      const died = (why: Error): void => {
        if (!ready) return reject(why);
        if (terminating) return;
        Atomics.store(ctl, BROKEN, 1);
        Atomics.notify(ctl, COMPLETED);
      };
      w.on('message', (m) => {
        if (m === 'ready' && !ready) {
          ready = true;
          w.unref();
          resolve({
            terminate() {
              terminating = true;
              void w.terminate();
            },
          });
        }
      });
      w.on('error', (e) => died(e));
      w.on('exit', (code) => died(new Error(`kernel worker exited with code ${code}`)));
    });
  },
};

/** Cores available to this process. */
export function coreCount(): number {
  return availableParallelism();
}

/** The Node platform the kernels are handed (see src/kernels/index.ts). */
export function nodeKernelPlatform(): KernelPlatform {
  return { host: nodeThreadHost, cores: coreCount(), envPath: envKernelPath(), envSpin: envKernelSpin() };
}
