// The output head (vocab x nEmbd) as int8 rows, held in chunks of rows: converting it chunk by
// chunk keeps load-time memory to one chunk of the source tensor instead of the whole 656 MB
// F16 table of 2B4T.
import type { GGUFTensor } from '../gguf/reader.js';
import type { ByteSource } from '../gguf/source.js';
import { dequantize, getFormat } from '../formats/index.js';
import type { Int8Matrix, Kernels } from '../kernels/api.js';

const CHUNK_ROWS = 16384;
const DECODE_ROWS = 512;

export class LmHead {
  private constructor(
    private readonly chunks: { start: number; m: Int8Matrix }[],
    readonly rows: number,
    readonly cols: number,
  ) {}

  static async load(k: Kernels, t: GGUFTensor, source: ByteSource, rows: number, cols: number): Promise<LmHead> {
    const rowBytes = getFormat(t.type).byteSize(cols, cols);
    const chunks: { start: number; m: Int8Matrix }[] = [];
    for (let start = 0; start < rows; start += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, rows - start);
      const bytes = await source.read(t.offset + start * rowBytes, n * rowBytes);
      // rows are decoded DECODE_ROWS at a time (one allocation per block, not per row)
      let blockStart = 0;
      let blockEnd = 0; // rows [blockStart, blockEnd) are decoded in block
      let block: Float32Array = new Float32Array(0);
      const m = k.int8Matrix(n, cols, (r, out) => {
        if (r < blockStart || r >= blockEnd) {
          blockStart = r - (r % DECODE_ROWS);
          const nr = Math.min(DECODE_ROWS, n - blockStart);
          blockEnd = blockStart + nr;
          block = dequantize(t.type, bytes.subarray(blockStart * rowBytes, (blockStart + nr) * rowBytes), nr * cols, cols);
        }
        out.set(block.subarray((r - blockStart) * cols, (r - blockStart + 1) * cols));
      });
      chunks.push({ start, m });
    }
    return new LmHead(chunks, rows, cols);
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
