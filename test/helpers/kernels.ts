// The kernels a test runs on: WF_KERNELS picks the path (reference | simd | relaxed), as in the engine.
import type { Kernels } from '../../src/kernels/api.js';
import { createReferenceKernels } from '../../src/kernels/reference.js';

let shared: Promise<Kernels> | undefined;

/** One kernels instance per test process (workers are expensive to start). */
export function testKernels(): Promise<Kernels> {
  shared ??= (async () => {
    const path = process.env.WF_KERNELS;
    if (path === 'reference') return createReferenceKernels();
    try {
      const mod = await import('../../src/node/kernels.js' as string);
      const k: Kernels = await mod.createKernels({ threads: Number(process.env.WF_TEST_THREADS ?? 2) });
      process.once('beforeExit', () => k.dispose());
      return k;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
      return createReferenceKernels();
    }
  })();
  return shared;
}
