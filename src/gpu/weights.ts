// Weights on the GPU: the model loader (model/weights.ts) hands each tensor to a sink; this one
// uploads it once, in its packed form, and keeps only a handle. Norms stay small f32 arrays on the
// host until a runner uploads them (once per array).
//   ternary: 2-bit codes, 16 to a u32 (shaders/matmul.ts gives the layout): 2B4T's BitLinears in 0.6 GB
//   int8 rows (the int8 head): four to a u32 plus one f32 scale per row, quantized as the CPU does
//   f16 / f32 rows (the f16 head): as stored
import type { FloatMatrix, Int8Matrix, TernaryMatrix } from '../kernels/api.js';
import { quantizeWeightRow } from '../kernels/reference.js';
import type { WeightSink } from '../model/weights.js';
import { GpuError, uploadBuffer, type GpuContext } from './context.js';
import { int8RowWords, int8Words, ternaryWords } from './shaders/matmul.js';

export interface GpuTernary extends TernaryMatrix {
  readonly buf: GPUBuffer;
  /** u32 words per row */
  readonly words: number;
}

/** One buffer's worth of an output head's rows: rows [start, start + rows) of the matrix. */
export interface HeadPart {
  readonly start: number;
  readonly rows: number;
  readonly buf: GPUBuffer;
  /** int8 rows: the per-row scales */
  readonly scales?: GPUBuffer;
}

/** An output head matrix (a chunk of its rows), in parts that each fit one binding (maxStorageBufferBindingSize). */
export interface GpuInt8 extends Int8Matrix {
  readonly words: number;
  readonly parts: readonly HeadPart[];
}

export interface GpuFloat extends FloatMatrix {
  readonly parts: readonly HeadPart[];
}

export class GpuWeightSink implements WeightSink {
  /** bytes uploaded so far */
  bytes = 0;
  constructor(readonly ctx: GpuContext) {}

  allocF32(n: number): Float32Array {
    return new Float32Array(n);
  }

  ternaryMatrix(codes: Int8Array, rows: number, cols: number, scale: number): TernaryMatrix {
    if (!Number.isFinite(scale)) throw new GpuError(`ternaryMatrix: scale ${scale} is not finite`);
    const words = ternaryWords(codes, rows, cols);
    const m: GpuTernary = { rows, cols, scale: Math.fround(scale), buf: this.upload(words), words: words.length / rows };
    return m;
  }

  int8Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): Int8Matrix {
    const words = int8Words(cols);
    const q = new Int8Array(rows * words * 4);
    const d = new Float32Array(rows);
    const row = new Float32Array(cols);
    for (let r = 0; r < rows; r++) {
      row.fill(0);
      getRow(r, row);
      d[r] = quantizeWeightRow(row, cols, q, r * words * 4);
    }
    const bpr = words * 4;
    const m: GpuInt8 = {
      rows, cols, words,
      parts: this.split(rows, bpr, (start, n) => ({
        buf: this.upload(int8RowWords(q.subarray(start * bpr, (start + n) * bpr), n, cols)),
        scales: this.upload(d.subarray(start, start + n)),
      })),
    };
    return m;
  }

  f16Matrix(rows: number, cols: number, getRow: (r: number, out: Uint16Array) => void): FloatMatrix {
    const words = (cols + 1) >> 1; // rows padded to whole u32 words, stored word-major (shaders/float-matmul.ts)
    const row = new Uint16Array(2 * words);
    const rowWords = new Uint32Array(row.buffer);
    const parts = this.split(rows, words * 4, (start, n) => {
      const data = new Uint32Array(n * words);
      for (let r = 0; r < n; r++) {
        row.fill(0);
        getRow(start + r, row.subarray(0, cols));
        for (let w = 0; w < words; w++) data[w * n + r] = rowWords[w]!;
      }
      return { buf: this.upload(data) };
    });
    const m: GpuFloat = { rows, cols, type: 'f16', parts };
    return m;
  }

  f32Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): FloatMatrix {
    const row = new Float32Array(cols);
    const parts = this.split(rows, cols * 4, (start, n) => {
      const data = new Float32Array(n * cols); // word-major
      for (let r = 0; r < n; r++) {
        getRow(start + r, row);
        for (let k = 0; k < cols; k++) data[k * n + r] = row[k]!;
      }
      return { buf: this.upload(data) };
    });
    const m: GpuFloat = { rows, cols, type: 'f32', parts };
    return m;
  }

  /** Rows in parts of at most maxStorageBufferBindingSize bytes each (one buffer and binding a part). */
  private split(rows: number, bytesPerRow: number, make: (start: number, n: number) => Omit<HeadPart, 'start' | 'rows'>): HeadPart[] {
    const per = Math.floor(this.ctx.maxBinding / bytesPerRow);
    if (per < 1) throw new GpuError(`one ${bytesPerRow}-byte row of the output head is more than this GPU binds at once (${this.ctx.maxBinding} bytes)`);
    const parts: HeadPart[] = [];
    for (let start = 0; start < rows; start += per) {
      const n = Math.min(per, rows - start);
      parts.push({ start, rows: n, ...make(start, n) });
    }
    return parts;
  }

  private upload(data: ArrayBufferView): GPUBuffer {
    this.bytes += data.byteLength;
    try {
      return uploadBuffer(this.ctx, data);
    } catch (e) {
      if (e instanceof GpuError) throw e;
      throw new GpuError(`the GPU ran out of memory loading the model (${(this.bytes / 2 ** 20).toFixed(0)} MiB of weights so far): ${(e as Error).message}`);
    }
  }
}
