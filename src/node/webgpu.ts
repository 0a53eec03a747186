// The Node adapter for WebGPU: Google's Dawn from the optional npm package `webgpu`. The engine core
// never imports it; entry points (the CLI, wf_server, tests, benchmarks) call this and hand the
// device in (LoadOptions.gpu).
import { createGpuContext, GpuError, type GpuContext, type GpuContextOptions } from '../gpu/context.js';

let dawn: Promise<GPU> | undefined;

type DawnModule = { create: (flags: string[]) => GPU };

/** Dawn's GPU entry object; a clear error when the optional package is missing (`load`: for tests). */
export function nodeGPU(load: () => Promise<unknown> = () => import('webgpu' as string)): Promise<GPU> {
  const fresh = arguments.length > 0;
  if (dawn && !fresh) return dawn;
  const p = (async () => {
    let mod: DawnModule;
    try {
      mod = (await load()) as DawnModule;
    } catch (e) {
      if (!fresh) dawn = undefined;
      throw new GpuError(`--device webgpu needs the optional package 'webgpu' (Dawn for Node): npm install webgpu `
        + `(${(e as Error).message.split('\n')[0]})`);
    }
    return mod.create([]);
  })();
  if (!fresh) dawn = p;
  return p;
}

/** Opens the first adapter's device (throws GpuError naming what is missing). */
export async function openNodeGpu(opts: GpuContextOptions = {}): Promise<GpuContext> {
  return createGpuContext(await nodeGPU(), opts);
}

/** 'cpu' or 'webgpu' from a flag value or WF_DEVICE (default cpu). */
export function deviceChoice(flag: string | undefined, env = process.env.WF_DEVICE): 'cpu' | 'webgpu' {
  const v = flag ?? env ?? 'cpu';
  if (v === 'cpu' || v === 'webgpu') return v;
  throw new GpuError(`device must be cpu or webgpu, got '${v}'${flag === undefined ? ' (from WF_DEVICE)' : ''}`);
}
