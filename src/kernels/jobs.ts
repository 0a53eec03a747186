// The parallel jobs of the kernels: one place that maps a job id and its arguments to the
// kernel export each thread calls with its own share of the row groups. Used alike by the
// calling thread (share 0) and by the pool's workers (shares 1..n-1).

import type { KernelExports } from './wasm-loader.js';

export const JOB_TERN_R4 = 1;
export const JOB_TERN_LUT = 2;
export const JOB_INT8 = 3;
export const JOB_LUT_TABLES = 4;

/** [start, end) of share `index` of `n` over `count` units. */
export function share(count: number, index: number, n: number): [number, number] {
  return [Math.floor((count * index) / n), Math.floor((count * (index + 1)) / n)];
}

/** Runs share `index` of `n` of a job; a holds the job's arguments (see the callers in wasm-backend.ts). */
export function runJob(ex: KernelExports, job: number, a: Float64Array, index: number, n: number): void {
  switch (job) {
    case JOB_TERN_R4: {
      // w, groups, chunks, rows, q, qStride, scales, sums, nTok, alpha, out
      const [g0, g1] = share(a[1]!, index, n);
      if (g1 > g0) ex.ternR4(a[0]!, g0, g1, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!);
      return;
    }
    case JOB_TERN_LUT: {
      // w, groups, steps, rows, tables, tableStride, scales, nTok, alpha, out
      const [g0, g1] = share(a[1]!, index, n);
      if (g1 > g0) ex.ternLut(a[0]!, g0, g1, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!);
      return;
    }
    case JOB_INT8: {
      // m, d, groups, chunks, rows, q16, scales, nTok, out
      const [g0, g1] = share(a[2]!, index, n);
      if (g1 > g0) ex.int8Mm(a[0]!, a[1]!, g0, g1, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!);
      return;
    }
    case JOB_LUT_TABLES: {
      // q, qStride, nTok, cols, pairs, tables: split by tokens
      const [t0, t1] = share(a[2]!, index, n);
      if (t1 > t0) ex.lutTables(a[0]! + t0 * a[1]!, a[1]!, t1 - t0, a[3]!, a[4]!, a[5]! + t0 * a[4]! * 32);
      return;
    }
    default:
      throw new Error(`kernels: unknown job ${job}`);
  }
}
