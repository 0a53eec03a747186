// The kernels for Node: src/kernels/index.ts with the Node platform handed in (worker_threads,
// relaxed SIMD enabled, WF_KERNELS / WF_KERNEL_SPIN), for the CLI, the server, benchmarks and tests.
import { availablePaths, createKernels as createCoreKernels, type KernelOptions, type KernelPath } from '../kernels/index.js';
import type { Kernels } from '../kernels/api.js';
import { nodeKernelPlatform } from './threads.js';

export function createKernels(options: KernelOptions = {}): Promise<Kernels> {
  return createCoreKernels({ platform: nodeKernelPlatform(), ...options });
}

export { availablePaths, nodeKernelPlatform, type KernelOptions, type KernelPath };
