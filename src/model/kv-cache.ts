// KV cache: per layer, keys and values of every position, in the kernels' memory, as f32 or f16
// (f16 halves the cache, as llama.cpp's default; attention widens the values exactly as it reads them).
// Layout (layer, position, kvDim): one contiguous row per position, as attention reads it.
import type { Kernels } from '../kernels/api.js';
import { f32BitsToF16Bits } from '../formats/half.js';

export type KVCacheType = 'f32' | 'f16';

export class KVCache {
  private readonly k: (Float32Array | Uint16Array)[] = [];
  private readonly v: (Float32Array | Uint16Array)[] = [];
  /** scratch view for the f32 -> f16 conversion (bits of each value) */
  private readonly bits = new Uint32Array(1);
  private readonly f32View = new Float32Array(this.bits.buffer);

  constructor(kernels: Kernels, readonly nLayers: number, readonly ctx: number, readonly kvDim: number, readonly type: KVCacheType = 'f32') {
    if (type !== 'f32' && type !== 'f16') throw new Error(`KV cache type must be f32 or f16, got '${String(type)}'`);
    const alloc = type === 'f16' ? (n: number) => kernels.allocF16(n) : (n: number) => kernels.allocF32(n);
    for (let l = 0; l < nLayers; l++) {
      this.k.push(alloc(ctx * kvDim));
      this.v.push(alloc(ctx * kvDim));
    }
  }

  /** bytes held */
  get byteSize(): number {
    return 2 * this.nLayers * this.ctx * this.kvDim * (this.type === 'f16' ? 2 : 4);
  }

  keys(layer: number): Float32Array | Uint16Array {
    return this.k[layer];
  }
  values(layer: number): Float32Array | Uint16Array {
    return this.v[layer];
  }

  /** stores n rows of k and v (n, kvDim) at positions pos .. pos+n-1 (rounded to nearest even f16) */
  write(layer: number, pos: number, n: number, k: Float32Array, v: Float32Array): void {
    const d = this.kvDim, count = n * d, at = pos * d;
    const kc = this.k[layer], vc = this.v[layer];
    if (kc instanceof Float32Array && vc instanceof Float32Array) {
      kc.set(k.subarray(0, count), at);
      vc.set(v.subarray(0, count), at);
      return;
    }
    const bits = this.bits, f = this.f32View;
    for (let i = 0; i < count; i++) {
      f[0] = k[i]!;
      kc[at + i] = f32BitsToF16Bits(bits[0]!);
      f[0] = v[i]!;
      vc[at + i] = f32BitsToF16Bits(bits[0]!);
    }
  }
}
