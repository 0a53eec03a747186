// The compute pipelines of the forward step, made once per runner (shader compilation is slow).
import type { GpuContext } from './context.js';
import { ACTIVATION_WGSL } from './shaders/activation.js';
import { ATTENTION_WGSL } from './shaders/attention.js';
import { floatMatmulWgsl } from './shaders/float-matmul.js';
import { matmulWgsl } from './shaders/matmul.js';
import { QUANTIZE_WGSL } from './shaders/quantize.js';
import { RMSNORM_WGSL } from './shaders/rmsnorm.js';
import { ROPE_STORE_WGSL } from './shaders/rope-store.js';

export interface Pipelines {
  quantize: GPUComputePipeline;
  ternary: GPUComputePipeline;
  int8: GPUComputePipeline;
  floatF16: GPUComputePipeline;
  floatF32: GPUComputePipeline;
  rmsnorm: GPUComputePipeline;
  ropeStore: GPUComputePipeline;
  attention: GPUComputePipeline;
  activation: GPUComputePipeline;
}

const cache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** One pipeline from WGSL source with its MAX_ROWS (shared by runners of the same device and size). */
export function pipeline(ctx: GpuContext, code: string, maxRows: number): GPUComputePipeline {
  let m = cache.get(ctx.device);
  if (!m) cache.set(ctx.device, (m = new Map()));
  const key = `${maxRows}\n${code}`;
  let p = m.get(key);
  if (!p) {
    const module = ctx.device.createShaderModule({ code });
    p = ctx.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main', constants: { MAX_ROWS: maxRows } } });
    m.set(key, p);
  }
  return p;
}

export function createPipelines(ctx: GpuContext, maxRows: number): Pipelines {
  const make = (code: string) => pipeline(ctx, code, maxRows);
  return {
    quantize: make(QUANTIZE_WGSL),
    ternary: make(matmulWgsl('ternary', ctx.packedDot)),
    int8: make(matmulWgsl('int8', ctx.packedDot)),
    floatF16: make(floatMatmulWgsl(true)),
    floatF32: make(floatMatmulWgsl(false)),
    rmsnorm: make(RMSNORM_WGSL),
    ropeStore: make(ROPE_STORE_WGSL),
    attention: make(ATTENTION_WGSL),
    activation: make(ACTIVATION_WGSL),
  };
}

/** A bind group of `buffers` at bindings 0, 1, ... of the pipeline's group 0. */
export function bindGroup(ctx: GpuContext, p: GPUComputePipeline, buffers: GPUBuffer[]): GPUBindGroup {
  return ctx.device.createBindGroup({
    layout: p.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}
