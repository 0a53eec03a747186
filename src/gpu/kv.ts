// A KV pool's memory on the GPU: per layer, keys and values in the pool's layout (model/kv-cache.ts:
// (kv head, pool position, headDim), f32), one buffer each. The pool's bookkeeping (which sequence
// holds which positions, compaction) stays in KVPool/KVAllocator on the host; its moves are applied
// here through a scratch buffer (a buffer cannot be copied onto itself).
import type { KVMove, KVPool } from '../model/kv-cache.js';
import { GpuError, storageBuffer, type GpuContext } from './context.js';

export class GpuKV {
  readonly k: GPUBuffer[] = [];
  readonly v: GPUBuffer[] = [];
  private scratch: GPUBuffer | null = null;

  private constructor(readonly ctx: GpuContext, readonly pool: KVPool) {
    if (pool.type !== 'f32') {
      throw new GpuError(`the webgpu device keeps the KV cache in f32; a ${pool.type} cache runs on the CPU only (--cache-type f32)`);
    }
    const bytes = pool.size * pool.kvDim * 4;
    for (let l = 0; l < pool.nLayers; l++) {
      this.k.push(storageBuffer(ctx, bytes));
      this.v.push(storageBuffer(ctx, bytes));
    }
    pool.movers.push((moves) => this.apply(moves));
  }

  private static readonly all = new WeakMap<KVPool, GpuKV>();

  /** The GPU memory of a pool made for this device (created on first use). */
  static of(ctx: GpuContext, pool: KVPool): GpuKV {
    let g = GpuKV.all.get(pool);
    if (!g) GpuKV.all.set(pool, (g = new GpuKV(ctx, pool)));
    else if (g.ctx !== ctx) throw new GpuError('this KV pool belongs to another GPU device');
    return g;
  }

  /** Copies each move's positions, every head of every layer, in order (memmove semantics). */
  apply(moves: readonly KVMove[]): void {
    if (moves.length === 0) return;
    const { pool, ctx } = this;
    const hd = pool.headDim * 4;
    const most = Math.max(...moves.map((m) => m.n)) * hd;
    if (!this.scratch || this.scratch.size < most) this.scratch = storageBuffer(ctx, most);
    const enc = ctx.device.createCommandEncoder();
    for (const m of moves) {
      for (let l = 0; l < pool.nLayers; l++) {
        for (const buf of [this.k[l]!, this.v[l]!]) {
          for (let g = 0; g < pool.nKVHeads; g++) {
            const base = g * pool.size;
            enc.copyBufferToBuffer(buf, (base + m.from) * hd, this.scratch, 0, m.n * hd);
            enc.copyBufferToBuffer(this.scratch, 0, buf, (base + m.to) * hd, m.n * hd);
          }
        }
      }
    }
    ctx.device.queue.submit([enc.finish()]);
  }
}
