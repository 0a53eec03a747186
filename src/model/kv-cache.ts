// KV memory: one pool of positions that sequences share, and each sequence's view of its part.
//
// Pool layout, per layer, keys and values as f32 or f16 (f16 halves the memory, as llama.cpp's
// default; attention widens the values exactly as it reads them):
//   (kv head, pool position, headDim)   with `size` pool positions per kv head
// so each kv head's positions are one contiguous block, which attention streams.
//
// A sequence owns a contiguous range of pool positions [start, start + capacity): its position p of
// head g sits at ((g * size) + start + p) * headDim. Seen from `start`, that is exactly the layout
// Kernels.attention reads with cacheCtx = size (the stride between heads), so a sequence's cache is a
// view, never a copy. Ranges are handed out by KVAllocator (plain bookkeeping, below), which may move
// ranges to make room (compaction); the pool applies the moves to the memory.
//
// A sequence that runs on its own (the CLI, the library's sessions) has a pool of its own with one
// range that covers it: `new KVCache(...)` builds that.
import type { Kernels } from '../kernels/api.js';
import { f32BitsToF16Bits } from '../formats/half.js';

export type KVCacheType = 'f32' | 'f16';

/** A range of pool positions. */
export interface KVRange {
  start: number;
  capacity: number;
}

/** "copy pool positions [from, from + n) to [to, to + n)" (memmove semantics, applied in order). */
export interface KVMove {
  from: number;
  to: number;
  n: number;
}

/**
 * Who holds which positions of a pool of `size` (no memory, only numbers: unit-tested alone).
 * Ranges are first-fit; when no gap is large enough but the free total is, the ranges are
 * compacted so that the free positions become one gap:
 *   - for a new range, every range moves to the front (in order, so each move goes left and
 *     copying in order is safe), and the gap is at the end;
 *   - for a range that grows, the ranges before it move to the front (in order, left), it follows
 *     them (left), and the ranges after it move to the back (from the last one, right), so the gap
 *     opens right after it and it grows in place. Moving everything to the front would leave it
 *     boxed in by its right neighbour: a range in the middle of the pool could never grow while
 *     the pool had room in total.
 */
export class KVAllocator {
  private readonly ranges = new Map<number, KVRange & { used: number }>();

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`KV pool size must be a positive integer, got ${size}`);
  }

  /** positions not held by any range */
  get free(): number {
    let held = 0;
    for (const r of this.ranges.values()) held += r.capacity;
    return this.size - held;
  }

  get used(): number {
    return this.size - this.free;
  }

  range(id: number): KVRange | undefined {
    const r = this.ranges.get(id);
    return r && { start: r.start, capacity: r.capacity };
  }

  /** Records how many positions of a range hold data (moves copy only those). */
  setUsed(id: number, used: number): void {
    const r = this.ranges.get(id);
    if (r) r.used = Math.min(used, r.capacity);
  }

  /** Notes that positions below `end` of a range hold data. */
  written(id: number, end: number): void {
    const r = this.ranges.get(id);
    if (r && end > r.used) r.used = Math.min(end, r.capacity);
  }

  /**
   * Gives `id` a range of `capacity` positions (keeping its first `used` positions when it already
   * has one). Returns the moves to apply to the memory (even when it fails: a compaction may have
   * run) and whether the range now has that capacity.
   */
  resize(id: number, capacity: number): { ok: boolean; moves: KVMove[] } {
    if (!Number.isInteger(capacity) || capacity < 0) throw new Error(`KV range capacity must be a non-negative integer, got ${capacity}`);
    const r = this.ranges.get(id);
    if (r && capacity <= r.capacity) {
      r.capacity = capacity;
      r.used = Math.min(r.used, capacity);
      return { ok: true, moves: [] };
    }
    if (capacity - (r?.capacity ?? 0) > this.free) return { ok: false, moves: [] };
    const moves: KVMove[] = [];
    // a gap (its own range counts as free: the data moves with memmove semantics)
    let at = this.firstFit(capacity, id);
    if (at < 0) {
      moves.push(...(r ? this.compactAround(r) : this.compact()));
      at = this.firstFit(capacity, id);
      if (at < 0) return { ok: false, moves };
    }
    if (r) {
      if (r.used > 0 && r.start !== at) moves.push({ from: r.start, to: at, n: r.used });
      r.start = at;
      r.capacity = capacity;
    } else {
      this.ranges.set(id, { start: at, capacity, used: 0 });
    }
    return { ok: true, moves };
  }

  release(id: number): void {
    this.ranges.delete(id);
  }

  /** Exchanges the ranges of `a` and `b` (either may have none): rows change owner, nothing moves. */
  swap(a: number, b: number): void {
    const ra = this.ranges.get(a);
    const rb = this.ranges.get(b);
    this.ranges.delete(a);
    this.ranges.delete(b);
    if (ra) this.ranges.set(b, ra);
    if (rb) this.ranges.set(a, rb);
  }

  private sorted(): (KVRange & { used: number })[] {
    return [...this.ranges.values()].sort((a, b) => a.start - b.start);
  }

  /** the start of the first gap of at least n positions, ignoring range `except`; -1 if none */
  private firstFit(n: number, except: number): number {
    let at = 0;
    const self = this.ranges.get(except);
    for (const r of this.sorted()) {
      if (r === self) continue;
      if (r.start - at >= n) return at;
      at = Math.max(at, r.start + r.capacity);
    }
    return this.size - at >= n ? at : -1;
  }

  /** Moves every range to the front, in order; returns the moves. */
  private compact(): KVMove[] {
    const moves: KVMove[] = [];
    let at = 0;
    for (const r of this.sorted()) {
      if (r.start !== at) {
        if (r.used > 0) moves.push({ from: r.start, to: at, n: r.used });
        r.start = at;
      }
      at += r.capacity;
    }
    return moves;
  }

  /**
   * Moves the ranges before `self` to the front and those after it to the back, `self` right
   * after the front ones: all free positions end up in one gap just after `self`. The moves are
   * listed in a safe order for copying one after the other: the left-going ones from the front, then
   * the right-going ones from the back (each lands only on positions already vacated or free).
   */
  private compactAround(self: KVRange & { used: number }): KVMove[] {
    const moves: KVMove[] = [];
    const all = this.sorted();
    const i = all.indexOf(self);
    let at = 0;
    for (const r of all.slice(0, i + 1)) {
      if (r.start !== at) {
        if (r.used > 0) moves.push({ from: r.start, to: at, n: r.used });
        r.start = at;
      }
      at += r.capacity;
    }
    let end = this.size;
    for (const r of all.slice(i + 1).reverse()) {
      const to = end - r.capacity;
      if (r.start !== to) {
        if (r.used > 0) moves.push({ from: r.start, to, n: r.used });
        r.start = to;
      }
      end = to;
    }
    return moves;
  }
}

/** The memory of a pool: keys and values of `size` positions per kv head, per layer. */
export class KVPool {
  readonly k: (Float32Array | Uint16Array)[] = [];
  readonly v: (Float32Array | Uint16Array)[] = [];
  readonly kvDim: number;
  readonly allocator: KVAllocator;
  /** devices that hold this pool's memory themselves (a GPU): each applies the allocator's moves too */
  readonly movers: ((moves: readonly KVMove[]) => void)[] = [];

  /** kernels = null: the memory lives on a device (k and v stay empty here; see `movers`) */
  constructor(kernels: Kernels | null, readonly nLayers: number, readonly size: number, readonly nKVHeads: number, readonly headDim: number,
              readonly type: KVCacheType = 'f32') {
    if (type !== 'f32' && type !== 'f16') throw new Error(`KV cache type must be f32 or f16, got '${String(type)}'`);
    this.kvDim = nKVHeads * headDim;
    this.allocator = new KVAllocator(size);
    const alloc = type === 'f16' ? (n: number) => kernels!.allocF16(n) : (n: number) => kernels!.allocF32(n);
    for (let l = 0; l < nLayers && kernels; l++) {
      this.k.push(alloc(size * this.kvDim));
      this.v.push(alloc(size * this.kvDim));
    }
  }

  /**
   * Writes every position once (zeros), so the operating system commits the pool's memory now: a
   * server's resident memory then includes its whole KV cache from the start (as llama.cpp, which
   * clears its KV buffer when it makes it) instead of creeping up by up to this.byteSize as
   * sequences first reach later positions under load. Sequences alone (the CLI) skip it: they
   * commit only the positions they use.
   */
  commit(): void {
    for (let l = 0; l < this.k.length; l++) {
      this.k[l]!.fill(0);
      this.v[l]!.fill(0);
    }
  }

  /** bytes held */
  get byteSize(): number {
    return 2 * this.nLayers * this.size * this.kvDim * (this.type === 'f16' ? 2 : 4);
  }

  /** Applies the allocator's moves: every head's block of every layer, keys and values. */
  apply(moves: readonly KVMove[]): void {
    for (const m of this.movers) m(moves);
    if (this.k.length === 0) return;
    const hd = this.headDim;
    for (const m of moves) {
      for (let l = 0; l < this.nLayers; l++) {
        for (const arr of [this.k[l]!, this.v[l]!]) {
          for (let g = 0; g < this.nKVHeads; g++) {
            const base = g * this.size;
            arr.copyWithin((base + m.to) * hd, (base + m.from) * hd, (base + m.from + m.n) * hd);
          }
        }
      }
    }
  }
}

/** One sequence's cache: its range of a pool (see the layout above). */
export class KVCache {
  readonly pool: KVPool;
  /** this cache's id in the pool's allocator */
  readonly id: number;
  private static nextId = 1;
  /** scratch view for the f32 -> f16 conversion (bits of each value) */
  private readonly bits = new Uint32Array(1);
  private readonly f32View = new Float32Array(this.bits.buffer);

  /** A cache of `ctx` positions with a pool of its own. */
  constructor(kernels: Kernels, nLayers: number, ctx: number, nKVHeads: number, headDim: number, type?: KVCacheType);
  /** A cache in a shared pool (its range starts empty: reserve() gives it room). */
  constructor(pool: KVPool);
  constructor(a: Kernels | KVPool, nLayers?: number, ctx?: number, nKVHeads?: number, headDim?: number, type: KVCacheType = 'f32') {
    this.id = KVCache.nextId++;
    if (a instanceof KVPool) {
      this.pool = a;
    } else {
      this.pool = new KVPool(a, nLayers!, ctx!, nKVHeads!, headDim!, type);
      this.pool.allocator.resize(this.id, ctx!);
    }
  }

  get type(): KVCacheType {
    return this.pool.type;
  }
  get kvDim(): number {
    return this.pool.kvDim;
  }
  /** positions this cache can hold now */
  get capacity(): number {
    return this.pool.allocator.range(this.id)?.capacity ?? 0;
  }
  /** distance between two kv heads' blocks, in positions (Kernels.attention's cacheCtx) */
  get stride(): number {
    return this.pool.size;
  }
  /** bytes of the pool behind this cache */
  get byteSize(): number {
    return this.pool.byteSize;
  }

  /** the pool position of this cache's position 0 */
  get start(): number {
    const r = this.pool.allocator.range(this.id);
    if (!r) throw new Error('KV cache has no range in its pool (released)');
    return r.start;
  }

  /**
   * Makes room for `positions` positions, keeping the first `keep`. Returns false when the pool
   * cannot (the cache keeps what it had).
   */
  reserve(positions: number, keep: number): boolean {
    const a = this.pool.allocator;
    a.setUsed(this.id, keep);
    const { ok, moves } = a.resize(this.id, positions);
    this.pool.apply(moves);
    return ok;
  }

  /** Gives the whole range back to the pool. */
  release(): void {
    this.pool.allocator.release(this.id);
  }

  /**
   * Hands this cache's range (its rows, as they are) to `other` of the same pool, taking other's
   * in exchange: ownership changes, no key or value moves (a prompt cache entry becomes a slot's
   * cache, or back, for free).
   */
  swapWith(other: KVCache): void {
    if (other.pool !== this.pool) throw new Error('KV cache: swapWith needs a cache of the same pool');
    this.pool.allocator.swap(this.id, other.id);
  }

  /**
   * Copies the keys/values of `src`'s positions [from, n) into the same positions of this cache
   * (both in the same pool; this cache must have room), which then holds n positions. The rows are bit-identical to reading those tokens
   * again at the same positions, at the cost of a memory copy: 2B4T's f16 rows are ~77 KB a token,
   * copied in microseconds, where reading the token costs tens of milliseconds on a CPU.
   */
  copyFrom(src: KVCache, n: number, from = 0): void {
    if (src.pool !== this.pool) throw new Error('KV cache: copyFrom needs a cache of the same pool');
    if (n > this.capacity || n > src.capacity) throw new Error(`KV cache: cannot copy ${n} positions (capacities ${src.capacity} -> ${this.capacity})`);
    if (src === this) return;
    const { headDim: hd, size, nKVHeads, nLayers } = this.pool;
    const a = src.start + from, b = this.start + from, m = n - from;
    for (let l = 0; l < nLayers && m > 0; l++) {
      for (const arr of [this.pool.k[l]!, this.pool.v[l]!]) {
        for (let g = 0; g < nKVHeads; g++) {
          const base = g * size;
          arr.copyWithin((base + b) * hd, (base + a) * hd, (base + a + m) * hd);
        }
      }
    }
    this.pool.allocator.setUsed(this.id, n);
  }

  /** keys of layer `layer`, seen from this cache's first position (stride: this.stride) */
  keys(layer: number): Float32Array | Uint16Array {
    return this.pool.k[layer]!.subarray(this.start * this.pool.headDim);
  }
  values(layer: number): Float32Array | Uint16Array {
    return this.pool.v[layer]!.subarray(this.start * this.pool.headDim);
  }

  /** stores n rows of k and v (n, kvDim) at positions pos .. pos+n-1 (rounded to nearest even f16) */
  write(layer: number, pos: number, n: number, k: Float32Array, v: Float32Array): void {
    if (pos + n > this.capacity) throw new Error(`KV cache: positions ${pos}..${pos + n - 1} are past its capacity of ${this.capacity}`);
    const { headDim: hd, kvDim, size, nKVHeads } = this.pool;
    const start = this.start;
    if (layer === 0) this.pool.allocator.written(this.id, pos + n);
    const kc = this.pool.k[layer]!, vc = this.pool.v[layer]!;
    const bits = this.bits, f = this.f32View;
    const f32 = kc instanceof Float32Array && vc instanceof Float32Array;
    for (let g = 0; g < nKVHeads; g++) {
      const at = (g * size + start + pos) * hd; // head g's block, position pos
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
