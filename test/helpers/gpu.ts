// The WebGPU device a test runs on: Dawn (the optional npm package `webgpu`) with whatever adapter
// the machine has; without a GPU, SwiftShader's Vulkan driver from Debian's Chromium (when
// VK_ICD_FILENAMES is not set and /usr/lib/chromium/vk_swiftshader_icd.json exists). Tests skip,
// naming what is missing, when there is no adapter.
import { existsSync } from 'node:fs';
import type { GpuContext, GpuContextOptions } from '../../src/gpu/context.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const contexts = new Map<string, Promise<GpuContext | string>>();

/** A device, or the reason there is none (for t.skip / { skip }). One per options per process. */
export function testGpu(opts: GpuContextOptions = {}): Promise<GpuContext | string> {
  const key = JSON.stringify(opts);
  let c = contexts.get(key);
  if (!c) {
    c = (async () => {
      if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
      try {
        const { openNodeGpu } = await import('../../src/node/webgpu.js');
        const ctx = await openNodeGpu(opts);
        process.once('beforeExit', () => ctx.device.destroy());
        return ctx;
      } catch (e) {
        return `no WebGPU adapter for this test: ${(e as Error).message} (needs the npm package webgpu, libvulkan1 and a Vulkan driver, e.g. ${SWIFTSHADER_ICD} from Debian's chromium)`;
      }
    })();
    contexts.set(key, c);
  }
  return c;
}
