// Bump planner over the kernels' WebAssembly.Memory: weights, activations and scratch are placed
// once, at load, and never freed (the token loop allocates nothing). A request that would pass
// the 4 GiB limit of 32-bit WebAssembly fails with an error saying how much was needed.
// Temporary space (staging of codes or rows during load, per-call scratch) is taken above the
// top without moving it, so the next permanent allocation reuses it.

export const WASM_PAGE = 65536;
export const MAX_PAGES = 65536; // 4 GiB
const GiB = 1024 ** 3;

function fmtBytes(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

export class MemoryPlanner {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  private topPtr: number;
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  constructor(memory: WebAssembly.Memory, shared: boolean, base = 1024) {
    this.memory = memory;
    this.shared = shared;
    this.topPtr = base;
    this.buffers.add(memory.buffer);
  }

  /** Bytes planned so far (the top of the bump region). */
  get top(): number {
    return this.topPtr;
  }

  /** Current size of the memory in bytes. */
  get size(): number {
    return this.memory.buffer.byteLength;
  }

  /** Makes sure [0, end) is inside the memory, growing it if needed. */
  ensure(end: number, what: string): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const needPages = Math.ceil(end / WASM_PAGE);
    if (needPages > MAX_PAGES) {
      throw new Error(
        `kernels: ${what} needs WebAssembly memory up to ${fmtBytes(end)} (${end} bytes), over the 4 GiB limit of 32-bit WebAssembly ` +
          `(${fmtBytes(this.topPtr)} already planned)`,
      );
    }
    // grow by at least 1/8 of the current size to keep the number of grows small
    const pages = Math.min(MAX_PAGES, Math.max(needPages, Math.ceil((have / WASM_PAGE) * 1.125)));
    try {
      this.memory.grow(pages - have / WASM_PAGE);
    } catch {
      try {
        this.memory.grow(needPages - have / WASM_PAGE);
      } catch (e) {
        throw new Error(`kernels: could not grow WebAssembly memory to ${fmtBytes(end)} for ${what} (${(e as Error).message})`);
      }
    }
    this.buffers.add(this.memory.buffer);
  }

  /** Reserves `bytes` (aligned to `align`) permanently; returns the byte offset. */
  alloc(bytes: number, what: string, align = 64): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`kernels: bad allocation size ${bytes} for ${what}`);
    const ptr = Math.ceil(this.topPtr / align) * align;
    const end = ptr + bytes;
    this.ensure(end + 64, what); // 64 bytes of slack: kernels may read one vector past a row
    this.topPtr = end;
    return ptr;
  }

  /** Space above the top for temporary use: valid until the next alloc/temp call. */
  temp(bytes: number, what: string, align = 64): number {
    const ptr = Math.ceil(this.topPtr / align) * align;
    this.ensure(ptr + bytes + 64, what);
    return ptr;
  }

  /** Whether a typed array is a view of this memory (then its byteOffset is its address). */
  owns(view: ArrayBufferView): boolean {
    return this.buffers.has(view.buffer);
  }

  /** The current buffer (a fresh object after each grow; views made earlier stay valid when shared). */
  get buffer(): ArrayBufferLike {
    return this.memory.buffer;
  }
}
