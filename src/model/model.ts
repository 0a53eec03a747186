// A loaded BitNet model: config + weights in the kernels' memory. Sequences (KV cache + buffers)
// are created from it; several can share one model.
import { readGGUF, type GGUFFile } from '../gguf/reader.js';
import { toByteSource, type ByteSource } from '../gguf/source.js';
import type { Kernels } from '../kernels/api.js';
import { modelConfigFromGGUF, ModelError, type ConfigOverrides, type ModelConfig } from './config.js';
import { Forward, Sequence } from './forward.js';
import { loadWeights, type LoadProgress, type ModelWeights } from './weights.js';
import { KVPool, type KVCacheType } from './kv-cache.js';
import type { LmHeadPrecision } from './lm-head.js';
import type { I2SLayout } from '../formats/index.js';
import type { ForwardStep } from './step.js';
import { KVCache } from './kv-cache.js';
import { GpuError, type GpuContext } from '../gpu/context.js';
import { GpuWeightSink } from '../gpu/weights.js';
import { GpuForward } from '../gpu/forward.js';

export interface LoadModelOptions extends ConfigOverrides {
  /** the compute backend; the caller owns it (and disposes it) */
  kernels: Kernels;
  onProgress?: (p: LoadProgress) => void;
  /** output head precision (default DEFAULT_LM_HEAD; lm-head.ts) */
  lmHead?: LmHeadPrecision;
  /** byte layout of I2_S tensors (bitnet.cpp writes three under one type id; default x86, the official file's) */
  i2sLayout?: I2SLayout;
  /** run on this WebGPU device (src/gpu) instead of the kernels: the weights and KV caches go to the GPU */
  gpu?: GpuContext;
}

/** Prompt tokens per forward pass unless told otherwise. 128 rather than 64: the ternary GEMM's
 *  unpack and the pool's start are shared by twice the tokens, and its activations still fit L2
 *  (a 512-token prompt, 2B4T shape, 2 threads: 3-6% faster than 64 and 1-3% faster than 256, in
 *  alternating runs of each). */
export const DEFAULT_BATCH_SIZE = 128;

export interface SequenceOptions {
  /** context size in tokens (default: the model's trained context, at most 4096) */
  ctxSize?: number;
  /** prompt tokens per forward batch (default DEFAULT_BATCH_SIZE) */
  batchSize?: number;
  /** KV cache element type (default f32; f16 halves the cache's memory) */
  cacheType?: KVCacheType;
}

export class BitNetModel {
  private constructor(
    readonly file: GGUFFile,
    readonly config: ModelConfig,
    readonly kernels: Kernels,
    private readonly weights: ModelWeights,
    /** the WebGPU device the model runs on, or null for the CPU kernels */
    readonly gpu: GpuContext | null = null,
  ) {}

  /** 'cpu' or 'webgpu' */
  get device(): 'cpu' | 'webgpu' {
    return this.gpu ? 'webgpu' : 'cpu';
  }

  static async load(input: ByteSource | ArrayBuffer | Uint8Array | Blob, opts: LoadModelOptions): Promise<BitNetModel> {
    return BitNetModel.fromFile(await readGGUF(toByteSource(input)), opts);
  }

  /** Loads the weights of an already opened GGUF file. */
  static async fromFile(file: GGUFFile, opts: LoadModelOptions): Promise<BitNetModel> {
    const config = modelConfigFromGGUF(file, opts);
    const wopts = { i2sLayout: opts.i2sLayout, lmHead: opts.lmHead };
    if (!opts.gpu) return new BitNetModel(file, config, opts.kernels, await loadWeights(file, config, opts.kernels, opts.onProgress, wopts));
    const gpu = opts.gpu;
    gpu.device.pushErrorScope('out-of-memory');
    let weights: ModelWeights;
    const sink = new GpuWeightSink(gpu);
    try {
      weights = await loadWeights(file, config, sink, opts.onProgress, wopts);
    } finally {
      const oom = await gpu.device.popErrorScope();
      if (oom) throw new GpuError(`the GPU ran out of memory loading the model (${(sink.bytes / 2 ** 20).toFixed(0)} MiB of weights): ${oom.message}`);
    }
    return new BitNetModel(file, config, opts.kernels, weights, gpu);
  }

  /** the output head's precision: 'int8' or 'f16' (the file's own rows) */
  get lmHead(): LmHeadPrecision {
    return this.weights.lmHead.precision;
  }

  createSequence(opts: SequenceOptions = {}): Sequence {
    const ctx = opts.ctxSize ?? Math.min(this.config.contextLength, 4096);
    if (!(Number.isInteger(ctx) && ctx > 0)) throw new ModelError(`context size must be a positive integer, got ${ctx}`);
    const batch = Math.min(opts.batchSize ?? DEFAULT_BATCH_SIZE, ctx);
    if (!this.gpu) return Sequence.onCpu(this.kernels, this.config, this.weights, ctx, batch, opts.cacheType ?? 'f32');
    const kv = new KVCache(this.createKVPool(ctx, opts.cacheType));
    kv.reserve(ctx, 0);
    return new Sequence(this.config, kv, this.createForward(batch, batch, ctx), ctx, batch);
  }

  /** A forward step over ragged batches (see step.ts), on this model's device, for callers that batch several sequences. */
  createForward(maxRows: number, maxLogitRows: number, maxPos: number): ForwardStep {
    if (this.gpu) return new GpuForward(this.gpu, this.config, this.weights, maxRows, maxLogitRows, maxPos);
    return new Forward(this.kernels, this.config, this.weights, maxRows, maxLogitRows, maxPos);
  }

  /** A KV pool of `size` positions that several sequences share (see kv-cache.ts); on the GPU its memory is there. */
  createKVPool(size: number, cacheType: KVCacheType = 'f32'): KVPool {
    const c = this.config;
    if (this.gpu && cacheType !== 'f32') {
      throw new GpuError(`the webgpu device keeps the KV cache in f32; a ${cacheType} cache runs on the CPU only (--cache-type f32)`);
    }
    return new KVPool(this.gpu ? null : this.kernels, c.nLayers, size, c.nKVHeads, c.headDim, cacheType);
  }
}

export { Sequence };
