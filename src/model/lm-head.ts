// The output head (vocab x nEmbd), in one of two precisions:
//   'int8': rows quantized to int8 with one scale per row, activations quantized per token to int8
//           (an integer dot: half the bytes of an F16 head to read per token, so faster);
//   'f16':  the file's own rows as stored (F16 kept as f16; F32, Q8_0, Q6_K, BF16 ... dequantized to
//           f32, their exact values) with f32 activations, as bitnet.cpp computes its F16 head
//           (llama.cpp would also quantize the activations for a Q8_0 or Q6_K head; we do not).
// Both load the source tensor in chunks of rows, so load-time memory is one chunk of it instead of
// the whole 656 MB F16 table of 2B4T.
import type { GGUFTensor } from '../gguf/reader.js';
import type { ByteSource } from '../gguf/source.js';
import { GGMLType } from '../gguf/types.js';
import { dequantize, getFormat } from '../formats/index.js';
import type { FloatMatrix, Int8Matrix, Kernels } from '../kernels/api.js';
import type { WeightSink } from './weights.js';
import { ModelError } from './config.js';

export type LmHeadPrecision = 'int8' | 'f16';
/** The default: see README (Output head precision) for the measured perplexity cost behind it. */
export const DEFAULT_LM_HEAD: LmHeadPrecision = 'int8';

export interface LmHead {
  readonly rows: number;
  readonly cols: number;
  readonly precision: LmHeadPrecision;
  /** the matrices of its consecutive chunks of rows (a device runs them itself) */
  readonly chunks: readonly { start: number; m: Int8Matrix | FloatMatrix }[];
  /** out[t][v] = head[v] . x[t] for t < nTok (out is nTok x rows) */
  forward(k: Kernels, x: Float32Array, nTok: number, out: Float32Array): void;
}

export function checkLmHeadPrecision(p: string): LmHeadPrecision {
  if (p === 'int8' || p === 'f16') return p;
  throw new ModelError(`lm_head precision must be int8 or f16, got '${p}'`);
}

export async function loadLmHead(
  k: WeightSink, t: GGUFTensor, source: ByteSource, rows: number, cols: number, precision: LmHeadPrecision = DEFAULT_LM_HEAD,
): Promise<LmHead> {
  return checkLmHeadPrecision(precision) === 'f16'
    ? FloatLmHead.load(k, t, source, rows, cols)
    : Int8LmHead.load(k, t, source, rows, cols);
}

const CHUNK_ROWS = 16384;
const DECODE_ROWS = 512;

/** Serves rows [0, n) of a chunk's bytes, decoded to f32 DECODE_ROWS at a time (one allocation per block). */
function rowDecoder(type: number, bytes: Uint8Array, n: number, cols: number): (r: number, out: Float32Array) => void {
  const rowBytes = getFormat(type).byteSize(cols, cols);
  let blockStart = 0;
  let blockEnd = 0; // rows [blockStart, blockEnd) are decoded in block
  let block: Float32Array = new Float32Array(0);
  return (r, out) => {
    if (r < blockStart || r >= blockEnd) {
      blockStart = r - (r % DECODE_ROWS);
      const nr = Math.min(DECODE_ROWS, n - blockStart);
      blockEnd = blockStart + nr;
      block = dequantize(type, bytes.subarray(blockStart * rowBytes, (blockStart + nr) * rowBytes), nr * cols, cols);
    }
    out.set(block.subarray((r - blockStart) * cols, (r - blockStart + 1) * cols));
  };
}

/** Calls fill(start, n, bytes) for consecutive chunks of at most CHUNK_ROWS rows of the tensor. */
async function forChunks(t: GGUFTensor, source: ByteSource, rows: number, cols: number,
  fill: (start: number, n: number, bytes: Uint8Array) => void): Promise<void> {
  const rowBytes = getFormat(t.type).byteSize(cols, cols);
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, rows - start);
    fill(start, n, await source.read(t.offset + start * rowBytes, n * rowBytes));
  }
}

/** int8 rows (one matrix per chunk of rows) x per-token int8 activations. */
class Int8LmHead implements LmHead {
  readonly precision = 'int8';
  private constructor(readonly chunks: { start: number; m: Int8Matrix }[], readonly rows: number, readonly cols: number) {}

  static async load(k: WeightSink, t: GGUFTensor, source: ByteSource, rows: number, cols: number): Promise<Int8LmHead> {
    const chunks: { start: number; m: Int8Matrix }[] = [];
    await forChunks(t, source, rows, cols, (start, n, bytes) => {
      chunks.push({ start, m: k.int8Matrix(n, cols, rowDecoder(t.type, bytes, n, cols)) });
    });
    return new Int8LmHead(chunks, rows, cols);
  }

  /** (tokens, chunk rows) results of one chunk before they go to their rows of out; grows to the most tokens seen */
  private scratch: Float32Array | null = null;

  /**
   * out[t][v] = head[v] . x[t] for t < nTok (out is nTok x rows). All tokens go through each chunk
   * in one call, so the table is read once per call however many tokens there are (each token's
   * result is the same bits as alone: per-token quantization, exact integer dots).
   */
  forward(k: Kernels, x: Float32Array, nTok: number, out: Float32Array): void {
    if (nTok === 1) {
      for (const c of this.chunks) k.int8Matmul(c.m, x.subarray(0, this.cols), 1, out.subarray(c.start, c.start + c.m.rows));
      return;
    }
    const chunkRows = this.chunks[0]!.m.rows;
    if (!this.scratch || this.scratch.length < nTok * chunkRows) this.scratch = k.allocF32(nTok * chunkRows);
    for (const c of this.chunks) {
      const r = c.m.rows;
      const tmp = this.scratch.subarray(0, nTok * r);
      k.int8Matmul(c.m, x.subarray(0, nTok * this.cols), nTok, tmp); // (nTok, r)
      for (let t = 0; t < nTok; t++) out.set(tmp.subarray(t * r, (t + 1) * r), t * this.rows + c.start);
    }
  }
}

/** The stored rows (f16 as f16, anything else as exact f32 values) x f32 activations, one matrix
 *  per chunk of rows. */
class FloatLmHead implements LmHead {
  readonly precision = 'f16';
  /** nTok x chunk rows of one chunk's output before it is spread into the caller's rows (batches only) */
  private staging: Float32Array = new Float32Array(0);
  private constructor(readonly chunks: { start: number; m: FloatMatrix }[], readonly rows: number, readonly cols: number) {}

  static async load(k: WeightSink, t: GGUFTensor, source: ByteSource, rows: number, cols: number): Promise<FloatLmHead> {
    const rowBytes = getFormat(t.type).byteSize(cols, cols);
    const chunks: { start: number; m: FloatMatrix }[] = [];
    await forChunks(t, source, rows, cols, (start, n, bytes) => {
      // F16 and F32 rows are copied as they are; other formats are decoded to their f32 values
      const copyRow = (r: number, out: Uint16Array | Float32Array) =>
        new Uint8Array(out.buffer, out.byteOffset, rowBytes).set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes));
      const m = t.type === GGMLType.F16 ? k.f16Matrix(n, cols, copyRow)
        : t.type === GGMLType.F32 ? k.f32Matrix(n, cols, copyRow)
        : k.f32Matrix(n, cols, rowDecoder(t.type, bytes, n, cols));
      chunks.push({ start, m });
    });
    return new FloatLmHead(chunks, rows, cols);
  }

  forward(k: Kernels, x: Float32Array, nTok: number, out: Float32Array): void {
    for (const c of this.chunks) {
      const n = c.m.rows;
      if (nTok === 1) {
        k.floatMatmul(c.m, x.subarray(0, this.cols), 1, out.subarray(c.start, c.start + n));
        continue;
      }
      // a batch: one pass over the chunk's rows for all tokens, then each token's part to its row
      if (this.staging.length < nTok * n) this.staging = new Float32Array(nTok * n);
      k.floatMatmul(c.m, x.subarray(0, nTok * this.cols), nTok, this.staging.subarray(0, nTok * n));
      for (let t = 0; t < nTok; t++) out.set(this.staging.subarray(t * n, (t + 1) * n), t * this.rows + c.start);
    }
  }
}
