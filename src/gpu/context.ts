// A WebGPU device for the forward step, and what the rest of src/gpu needs to know about it. The
// `GPU` entry object is handed in (navigator.gpu in a page, Dawn's in Node: src/node/webgpu.ts); the
// engine core never looks for one itself.
import { ModelError } from '../model/config.js';

export class GpuError extends ModelError {}

// WebGPU's flag values (the spec's numbers), so that nothing here needs the GPUBufferUsage and
// GPUMapMode globals a runtime may not define (Dawn in Node keeps them in a module).
export const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const MAP_READ_MODE = 0x1;

export interface GpuContext {
  readonly device: GPUDevice;
  /** "vendor architecture (description)" of the adapter, for logs and benchmarks */
  readonly adapterName: string;
  /** the WGSL feature packed_4x8_integer_dot_product (dot4I8Packed) exists */
  readonly packedDot: boolean;
  readonly maxBinding: number;
  readonly maxBuffer: number;
  /** why the device was lost, once it was (every later step refuses to run) */
  lost: string | null;
}

export interface GpuContextOptions {
  /** refuse dot4I8Packed even where the WGSL feature exists (tests of the portable path) */
  portableDot?: boolean;
  powerPreference?: GPUPowerPreference;
  /** bind at most this many bytes per buffer, below the adapter's limit (tests of the splitting) */
  maxBindingBytes?: number;
}

export function describeAdapter(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device].filter((s) => s);
  const desc = info.description ? ` (${info.description})` : '';
  return (parts.join(' ') || 'unknown adapter') + desc;
}

/** Opens the adapter's device with its own limits (the defaults cap storage bindings at 128 MiB). */
export async function createGpuContext(gpu: GPU, opts: GpuContextOptions = {}): Promise<GpuContext> {
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new GpuError('no WebGPU adapter: this runtime has WebGPU but no GPU it can use (on Linux: a Vulkan driver and libvulkan1; '
      + 'without a GPU, SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json); or use --device cpu');
  }
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 8),
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  });
  const packedDot = !opts.portableDot && gpu.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') === true;
  const ctx: GpuContext = {
    device,
    adapterName: describeAdapter(adapter.info),
    packedDot,
    maxBinding: Math.min(l.maxStorageBufferBindingSize, opts.maxBindingBytes ?? Infinity),
    maxBuffer: l.maxBufferSize,
    lost: null,
  };
  void device.lost.then((info) => {
    ctx.lost = `${info.reason}: ${info.message}`;
  });
  return ctx;
}

/** Throws the reason the device was lost, if it was. */
export function checkDevice(ctx: GpuContext): void {
  if (ctx.lost !== null) throw new GpuError(`the GPU device was lost (${ctx.lost}); this model cannot run on it any more`);
}

/** A storage buffer holding `data` (padded to 4 bytes), made once at load. */
export function uploadBuffer(ctx: GpuContext, data: ArrayBufferView, usage = 0): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
  if (size > ctx.maxBinding) {
    throw new GpuError(`a ${(size / 2 ** 20).toFixed(0)} MiB weight buffer is larger than this GPU binds at once `
      + `(${(ctx.maxBinding / 2 ** 20).toFixed(0)} MiB); it must be split`);
  }
  const buf = ctx.device.createBuffer({ size, usage: Usage.STORAGE | Usage.COPY_DST | usage, mappedAtCreation: true });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buf.unmap();
  return buf;
}

/** An empty storage buffer of `bytes` bytes. */
export function storageBuffer(ctx: GpuContext, bytes: number, usage = 0): GPUBuffer {
  const size = Math.max(16, Math.ceil(bytes / 4) * 4);
  if (size > ctx.maxBinding) {
    throw new GpuError(`a ${(size / 2 ** 20).toFixed(0)} MiB buffer is larger than this GPU binds at once (${(ctx.maxBinding / 2 ** 20).toFixed(0)} MiB)`);
  }
  return ctx.device.createBuffer({ size, usage: Usage.STORAGE | Usage.COPY_DST | Usage.COPY_SRC | usage });
}

/** A uniform buffer of 32-bit values (u32 unless the slot's number is given as {f: x}). */
export function uniformBuffer(ctx: GpuContext, values: (number | { f: number })[]): GPUBuffer {
  const n = Math.max(4, Math.ceil(values.length / 4) * 4);
  const u = new Uint32Array(n);
  const f = new Float32Array(u.buffer);
  values.forEach((v, i) => {
    if (typeof v === 'number') u[i] = v;
    else f[i] = v.f;
  });
  const buf = ctx.device.createBuffer({ size: u.byteLength, usage: Usage.UNIFORM | Usage.COPY_DST, mappedAtCreation: true });
  new Uint32Array(buf.getMappedRange()).set(u);
  buf.unmap();
  return buf;
}
