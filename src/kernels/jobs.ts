// The parallel jobs of the kernels: one place that maps a job id and its arguments to the kernel
// export that runs a range of work units (row groups, or tokens for the table build). Used alike by
// the calling thread and by the pool's workers, which claim chunks of units dynamically (threads.ts).

import type { KernelExports } from './wasm-loader.js';

export const JOB_TERN_R4 = 1;
export const JOB_TERN_LUT = 2;
export const JOB_INT8 = 3;
export const JOB_LUT_TABLES = 4;
export const JOB_MEMSUM = 5;
export const JOB_ATTN = 6;
export const JOB_FLOAT = 7;
export const JOB_ATTN_BATCH = 8;
export const JOB_QUANT = 9;
export const JOB_RMSNORM = 10;
export const JOB_GATE = 11;
export const JOB_TERN_R4_MANY = 12;

/** Matrices one JOB_TERN_R4_MANY takes at most (q, k, v). */
export const MANY_MAX = 3;

/** Elements per unit of JOB_GATE (a multiple of 4: every unit but the last runs whole vectors). */
export const GATE_BLOCK = 4096;

/** [start, end) of chunk `index` of `n` over `count` units, in shrinking sizes: chunk i gets a share
 *  proportional to n - i (the first about 2/n of the work, the last about 2/n^2). Threads claim chunks
 *  in order, so big chunks go first and the last ones are small: a thread that finishes early waits
 *  at most one small chunk for the others (equal chunks left the calling thread waiting about 6% of
 *  a decode step). */
export function share(count: number, index: number, n: number): [number, number] {
  return [chunkStart(count, index, n), chunkStart(count, index + 1, n)];
}

/** Units before chunk i: count times the shares of chunks 0..i-1, (i*n - i*(i-1)/2) / (n*(n+1)/2). */
function chunkStart(count: number, i: number, n: number): number {
  return Math.floor((count * (i * n - (i * (i - 1)) / 2)) / ((n * (n + 1)) / 2));
}

/** How many work units a job has (a holds its arguments; see the callers in wasm-backend.ts). */
export function jobUnits(job: number, a: Float64Array): number {
  switch (job) {
    case JOB_TERN_R4:
    case JOB_TERN_LUT:
    case JOB_TERN_R4_MANY:
      return a[1]!; // row groups (of all matrices)
    case JOB_INT8:
    case JOB_FLOAT:
      return a[2]!; // row groups
    case JOB_LUT_TABLES:
      return a[2]!; // tokens
    case JOB_MEMSUM:
      return a[2]!; // blocks
    case JOB_ATTN:
      return a[4]!; // (kv head, token, split) triples
    case JOB_ATTN_BATCH:
      return a[1]!; // (kv head, row, split) triples
    case JOB_QUANT:
    case JOB_RMSNORM:
      return a[2]!; // rows
    case JOB_GATE:
      return Math.ceil(a[2]! / GATE_BLOCK); // blocks of elements
    default:
      throw new Error(`kernels: unknown job ${job}`);
  }
}

/** Runs units [u0, u1) of a job on thread `thread` (which picks that thread's scratch space). */
export function runJob(ex: KernelExports, job: number, a: Float64Array, u0: number, u1: number, thread: number): void {
  if (u1 <= u0) return;
  switch (job) {
    case JOB_TERN_R4:
      // w, groups, chunks, rows, q, qStride, scales, sums, nTok, alpha, out, scratch, scratch bytes per thread, interleaved acts
      ex.ternR4(a[0]!, u0, u1, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]! + thread * a[12]!, a[13]!);
      return;
    case JOB_TERN_R4_MANY: {
      // count, groups, chunks, q, qStride, scales, sums, nTok, scratch, scratch bytes per thread, interleaved acts,
      // then per matrix: w, groups, rows, alpha, out. Units are the matrices' groups one after another.
      let g0 = 0;
      for (let i = 0; i < a[0]!; i++) {
        const b = 11 + 5 * i, g = a[b + 1]!;
        const lo = Math.max(u0, g0), hi = Math.min(u1, g0 + g);
        if (lo < hi) ex.ternR4(a[b]!, lo - g0, hi - g0, a[2]!, a[b + 2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[b + 3]!, a[b + 4]!, a[8]! + thread * a[9]!, a[10]!);
        g0 += g;
      }
      return;
    }
    case JOB_TERN_LUT:
      // w, groups, steps, rows, tables, tableStride, scales, nTok, alpha, out
      ex.ternLut(a[0]!, u0, u1, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!);
      return;
    case JOB_INT8:
      // m, d, groups, chunks, rows, q16, scales, nTok, out, interleaved tiles of 4 tokens
      ex.int8Mm(a[0]!, a[1]!, u0, u1, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!);
      return;
    case JOB_FLOAT:
      // m, f16 (1) or f32 (0), groups, chunks, rows, x, nTok, out
      (a[1] ? ex.floatMmF16 : ex.floatMmF32)(a[0]!, u0, u1, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!);
      return;
    case JOB_LUT_TABLES:
      // q, qStride, nTok, cols, pairs, tables
      ex.lutTables(a[0]! + u0 * a[1]!, a[1]!, u1 - u0, a[3]!, a[4]!, a[5]! + u0 * a[4]! * 32);
      return;
    case JOB_MEMSUM:
      // p, block bytes, blocks (the memory-read ceiling probe of the benchmark)
      ex.memsum(a[0]! + u0 * a[1]!, (u1 - u0) * a[1]!);
      return;
    case JOB_ATTN:
      // q, k, v, out, units, nHeads, group, headDim, qStride, cacheCtx, pos0, scale, scores, scores bytes per thread, f16 cache, splits, partials, nTok
      (a[14] ? ex.attnRowsF16 : ex.attnRows)(a[0]!, a[1]!, a[2]!, a[3]!, u0, u1, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]! + thread * a[13]!, a[15]!, a[16]!, a[17]!);
      return;
    case JOB_ATTN_BATCH:
      // row table, units, rows, units per kv head, f16 cache, nHeads, group, headDim, qStride, scale, scores, scores bytes per thread
      ex.attnBatch(a[0]!, a[2]!, a[3]!, u0, u1, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]! + thread * a[11]!);
      return;
    case JOB_QUANT:
      // x, dim, rows, q, scales, sums (rows are independent: the same bits as one call)
      ex.quantize(a[0]! + u0 * a[1]! * 4, u1 - u0, a[1]!, a[3]! + u0 * a[1]!, a[4]! + u0 * 4, a[5]! + u0 * 4);
      return;
    case JOB_RMSNORM:
      // x, w, rows, dim, eps, out
      ex.rmsnorm(a[0]! + u0 * a[3]! * 4, a[1]!, u1 - u0, a[3]!, a[4]!, a[5]! + u0 * a[3]! * 4);
      return;
    case JOB_GATE: {
      // g, u, n, silu (1) or relu2 (0)
      const e0 = u0 * GATE_BLOCK, e1 = Math.min(a[2]!, u1 * GATE_BLOCK);
      (a[3] ? ex.siluGate : ex.relu2Gate)(a[0]! + e0 * 4, a[1]! + e0 * 4, e1 - e0);
      return;
    }
    default:
      throw new Error(`kernels: unknown job ${job}`);
  }
}
