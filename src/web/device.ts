// Which device a page runs the model on: WebGPU when the browser has an adapter, else the CPU
// kernels, saying why. This is the browser's side of the device boundary (the Node side is
// src/node/webgpu.ts): the app's engine worker calls it, and the library bundle exports it, so that a
// page does `loadModel(blob, { gpu: (await chooseWebDevice()).gpu })`.
import { createGpuContext, GpuError, type GpuContext } from '../gpu/context.js';

/** 'auto': WebGPU when there is an adapter, else the CPU; 'cpu' or 'webgpu' force one (webgpu fails without it). */
export type DeviceChoice = 'auto' | 'cpu' | 'webgpu';

export interface ChosenDevice {
  device: 'cpu' | 'webgpu';
  /** the WebGPU device, for LoadOptions.gpu */
  gpu?: GpuContext;
  /** what was chosen and why, for the page: "WebGPU: <adapter>", "no WebGPU in this browser: running on the CPU", ... */
  note: string;
}

export function parseDeviceChoice(s: string | null | undefined): DeviceChoice {
  if (s === null || s === undefined || s === '' || s === 'auto') return 'auto';
  if (s === 'cpu' || s === 'webgpu') return s;
  throw new GpuError(`device must be auto, cpu or webgpu, got '${s}'`);
}

const BROWSERS = 'Chrome and Edge 113+, Firefox 141+, Safari 26';

export async function chooseWebDevice(choice: DeviceChoice = 'auto', gpu: GPU | undefined = (globalThis.navigator as Navigator | undefined)?.gpu): Promise<ChosenDevice> {
  if (choice === 'cpu') return { device: 'cpu', note: 'running on the CPU (chosen)' };
  if (!gpu) {
    if (choice === 'webgpu') throw new GpuError(`WebGPU was asked for, but this browser has none (navigator.gpu: ${BROWSERS}, on https or localhost); choose the CPU instead`);
    return { device: 'cpu', note: 'no WebGPU in this browser: running on the CPU' };
  }
  try {
    const ctx = await createGpuContext(gpu);
    return { device: 'webgpu', gpu: ctx, note: `WebGPU: ${ctx.adapterName}` };
  } catch (e) {
    if (choice === 'webgpu') throw e;
    return { device: 'cpu', note: `WebGPU has no usable adapter here (${(e as Error).message.split(':')[0]}): running on the CPU` };
  }
}
