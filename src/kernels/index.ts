// Entry point of the compute kernels: createKernels() picks the implementation.
//
//   path: 'relaxed' (WebAssembly relaxed SIMD), 'simd' (plain SIMD128) or 'reference' (TypeScript).
//         Default: WF_KERNELS when set (Node), else relaxed where the runtime has it, else simd.
//   threads: threads including the caller (default: the number of cores). More than 1 needs shared
//         WebAssembly memory (Node; browser pages only when cross-origin isolated), else 1 is used.
//
// The runtime's adapter (how to start threads, how many cores, environment overrides) is handed in
// by the entry point as `platform`: Node entry points pass src/node/threads.ts's nodeKernelPlatform()
// (worker_threads, the V8 flag for relaxed SIMD, WF_KERNELS), or import createKernels from
// src/node/kernels.ts, which does so. Without one, the browser's is used (web-threads.ts: Web
// Workers, navigator.hardwareConcurrency); where there is neither (plain Node), one thread.

import type { Kernels } from './api.js';
import { createReferenceKernels } from './reference.js';
import type { ThreadHost } from './threads.js';
import { createWasmKernels, type TernaryLayout } from './wasm-backend.js';
import { relaxedSimdSupported } from './wasm-loader.js';
import { webThreadHost } from './web-threads.js';

export type KernelPath = 'relaxed' | 'simd' | 'reference';

export interface KernelOptions {
  threads?: number;
  path?: KernelPath;
  /** Worker starter; default: worker_threads under Node, Web Workers in a browser. */
  host?: ThreadHost;
  /** Ternary weight layout (benchmarks/tests only): 'r4' (unpack + dot) or 'lut' (table lookup). */
  layout?: TernaryLayout;
  /** Jobs with fewer multiply-adds run on the calling thread only (tests set 0 to force the pool). */
  minParallelWork?: number;
  /** Polls a waiting pool thread spins before it sleeps (default 100000; Node: WF_KERNEL_SPIN). */
  spin?: number;
  /** The runtime's adapter (default: the browser's, see webKernelPlatform). */
  platform?: KernelPlatform;
}

/** What a runtime tells the kernels (see the header). */
export interface KernelPlatform {
  /** starts worker threads; none = one thread */
  host?: ThreadHost;
  /** the default thread count */
  cores: number;
  /** a kernel path forced by the environment (WF_KERNELS) */
  envPath?: string;
  /** pool spin iterations forced by the environment (WF_KERNEL_SPIN) */
  envSpin?: number;
}

/** The browser's platform (Web Workers where the page may start them). */
export function webKernelPlatform(): KernelPlatform {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  return { host: webThreadHost(), cores };
}

function checkPath(p: string, from: string): KernelPath {
  if (p === 'relaxed' || p === 'simd' || p === 'reference') return p;
  throw new Error(`kernels: ${from} "${p}" is not one of relaxed, simd, reference`);
}

/** The paths this runtime can run (relaxed only where relaxed SIMD validates; under Node, once the Node adapter is imported). */
export async function availablePaths(): Promise<KernelPath[]> {
  return relaxedSimdSupported() ? ['relaxed', 'simd', 'reference'] : ['simd', 'reference'];
}

/** The kernels for this runtime: see the options above. */
export async function createKernels(options: KernelOptions = {}): Promise<Kernels> {
  const plat = options.platform ?? webKernelPlatform();
  let path: KernelPath;
  if (options.path !== undefined) path = checkPath(options.path, 'path');
  else if (plat.envPath !== undefined) path = checkPath(plat.envPath, 'WF_KERNELS');
  else path = relaxedSimdSupported() ? 'relaxed' : 'simd';
  if (path === 'reference') return createReferenceKernels();
  const threads = options.threads ?? plat.cores;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`kernels: threads must be a positive integer, got ${threads}`);
  return createWasmKernels({
    path,
    threads,
    host: options.host ?? plat.host,
    layout: options.layout,
    minParallelWork: options.minParallelWork,
    spin: options.spin ?? plat.envSpin,
  });
}

export type { Kernels } from './api.js';
