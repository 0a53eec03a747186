// KV cache: per layer, keys and values of every position, f32 in the kernels' memory.
// Layout (layer, position, kvDim): one contiguous row per position, as attention reads it.
import type { Kernels } from '../kernels/api.js';

export class KVCache {
  private readonly k: Float32Array[];
  private readonly v: Float32Array[];

  constructor(kernels: Kernels, readonly nLayers: number, readonly ctx: number, readonly kvDim: number) {
    this.k = [];
    this.v = [];
    for (let l = 0; l < nLayers; l++) {
      this.k.push(kernels.allocF32(ctx * kvDim));
      this.v.push(kernels.allocF32(ctx * kvDim));
    }
  }

  /** bytes held */
  get byteSize(): number {
    return 2 * this.nLayers * this.ctx * this.kvDim * 4;
  }

  keys(layer: number): Float32Array {
    return this.k[layer];
  }
  values(layer: number): Float32Array {
    return this.v[layer];
  }

  /** stores n rows of k and v (n, kvDim) at positions pos .. pos+n-1 */
  write(layer: number, pos: number, n: number, k: Float32Array, v: Float32Array): void {
    const d = this.kvDim;
    this.k[layer].set(k.subarray(0, n * d), pos * d);
    this.v[layer].set(v.subarray(0, n * d), pos * d);
  }
}
