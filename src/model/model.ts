// A loaded BitNet model: config + weights in the kernels' memory. Sequences (KV cache + buffers)
// are created from it; several can share one model.
import { readGGUF, type GGUFFile } from '../gguf/reader.js';
import { toByteSource, type ByteSource } from '../gguf/source.js';
import type { Kernels } from '../kernels/api.js';
import { modelConfigFromGGUF, ModelError, type ConfigOverrides, type ModelConfig } from './config.js';
import { Sequence } from './forward.js';
import { loadWeights, type LoadProgress, type ModelWeights } from './weights.js';
import type { KVCacheType } from './kv-cache.js';
import type { I2SLayout } from '../formats/index.js';

export interface LoadModelOptions extends ConfigOverrides {
  /** the compute backend; the caller owns it (and disposes it) */
  kernels: Kernels;
  onProgress?: (p: LoadProgress) => void;
  /** byte layout of I2_S tensors (bitnet.cpp writes three under one type id; default x86, the official file's) */
  i2sLayout?: I2SLayout;
}

export interface SequenceOptions {
  /** context size in tokens (default: the model's trained context, at most 4096) */
  ctxSize?: number;
  /** prompt tokens per forward batch (default 64) */
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
  ) {}

  static async load(input: ByteSource | ArrayBuffer | Uint8Array | Blob, opts: LoadModelOptions): Promise<BitNetModel> {
    return BitNetModel.fromFile(await readGGUF(toByteSource(input)), opts);
  }

  /** Loads the weights of an already opened GGUF file. */
  static async fromFile(file: GGUFFile, opts: LoadModelOptions): Promise<BitNetModel> {
    const config = modelConfigFromGGUF(file, opts);
    const weights = await loadWeights(file, config, opts.kernels, opts.onProgress, opts.i2sLayout);
    return new BitNetModel(file, config, opts.kernels, weights);
  }

  createSequence(opts: SequenceOptions = {}): Sequence {
    const ctx = opts.ctxSize ?? Math.min(this.config.contextLength, 4096);
    if (!(Number.isInteger(ctx) && ctx > 0)) throw new ModelError(`context size must be a positive integer, got ${ctx}`);
    const batch = Math.min(opts.batchSize ?? 64, ctx);
    return new Sequence(this.kernels, this.config, this.weights, ctx, batch, opts.cacheType ?? 'f32');
  }
}

export { Sequence };
