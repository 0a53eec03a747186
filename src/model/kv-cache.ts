// KV cache: per layer, keys and values of every position, in the kernels' memory, as f32 or f16
// (f16 halves the cache, as llama.cpp's default; attention widens the values exactly as it reads them).
// Layout (layer, kv head, position, headDim): each kv head's positions are one contiguous block,
// which attention streams (a (position, kvDim) layout read at a quarter of the memory bandwidth).
import type { Kernels } from '../kernels/api.js';
import { f32BitsToF16Bits } from '../formats/half.js';

export type KVCacheType = 'f32' | 'f16';

export class KVCache {
  private readonly k: (Float32Array | Uint16Array)[] = [];
  private readonly v: (Float32Array | Uint16Array)[] = [];
  /** scratch view for the f32 -> f16 conversion (bits of each value) */
  private readonly bits = new Uint32Array(1);
  private readonly f32View = new Float32Array(this.bits.buffer);

  readonly kvDim: number;

  constructor(kernels: Kernels, readonly nLayers: number, readonly ctx: number, readonly nKVHeads: number, readonly headDim: number,
              readonly type: KVCacheType = 'f32') {
    if (type !== 'f32' && type !== 'f16') throw new Error(`KV cache type must be f32 or f16, got '${String(type)}'`);
    const kvDim = this.kvDim = nKVHeads * headDim;
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
    const hd = this.headDim, kvDim = this.kvDim;
    const kc = this.k[layer]!, vc = this.v[layer]!;
    const bits = this.bits, f = this.f32View;
    const f32 = kc instanceof Float32Array && vc instanceof Float32Array;
    for (let g = 0; g < this.nKVHeads; g++) {
      const at = (g * this.ctx + pos) * hd; // head g's block, position pos
      for (let t = 0; t < n; t++) {
        const src = t * kvDim + g * hd, dst = at + t * hd;
        if (f32) {
          kc.set(k.subarray(src, src + hd), dst);
          vc.set(v.subarray(src, src + hd), dst);
        } else {
          for (let i = 0; i < hd; i++) {
            f[0] = k[src + i]!;
            kc[dst + i] = f32BitsToF16Bits(bits[0]!);
            f[0] = v[src + i]!;
            vc[dst + i] = f32BitsToF16Bits(bits[0]!);
          }
        }
      }
    }
  }
}
