// The WebAssembly SIMD implementation of Kernels (api.ts): the compiled kernels (wasm/*.ts) on one
// WebAssembly.Memory planned by memory.ts, with jobs split over a worker pool (threads.ts).
//
// Buffers: with shared memory (Node, cross-origin isolated pages) allocF32/allocActs return views
// of the wasm memory and the kernels work in place. Without it (a page that is not cross-origin
// isolated: no SharedArrayBuffer, one thread) growing the memory would detach views, so plain
// arrays are returned and each call copies its inputs into scratch space and its outputs back.
// Any array that is not a view of this memory is handled the same way, so every call accepts
// any Float32Array/Int8Array of the right length.
//
// Ternary layouts: "r4" (4 interleaved rows of 2-bit codes, unpack + dot; the relaxed path) and
// "lut" (16-row nibble indices into per-token lookup tables; the plain SIMD path). See the layout
// comments in wasm/ternary-r4.ts and wasm/ternary-lut.ts.

import type { FloatMatrix, Int8Matrix, Kernels, QuantizedActs, TernaryMatrix } from './api.js';
import { JOB_ATTN, JOB_ATTN_BATCH, JOB_FLOAT, JOB_GATE, JOB_INT8, JOB_LUT_TABLES, JOB_MEMSUM, JOB_QUANT, JOB_RMSNORM, JOB_TERN_LUT, JOB_TERN_R4, JOB_TERN_R4_MANY, MANY_MAX, jobUnits, runJob } from './jobs.js';
import { MemoryPlanner } from './memory.js';
import { checkActs, checkAttention, checkAttentionRows, checkCount, checkF16Row, checkLen, checkPositive, checkRope, floatDot } from './reference.js';
import { f16ToF32 } from '../formats/half.js';
import { ARGS, CTL_BYTES, ThreadPool, type ThreadHost } from './threads.js';
import { instantiateKernels, loadKernelModule, type KernelExports, type WasmPath } from './wasm-loader.js';

export type TernaryLayout = 'r4' | 'lut';

export interface WasmKernelOptions {
  path: WasmPath;
  /** Threads including the caller; more than 1 needs shared memory and a host. */
  threads: number;
  host?: ThreadHost;
  /** Ternary layout; default r4 on the relaxed path, lut on the plain path. */
  layout?: TernaryLayout;
  /** Jobs smaller than this many multiply-adds run on the calling thread only (default 1<<16). */
  minParallelWork?: number;
  /** Force shared (true) or unshared (false) memory; default: shared where available. Unshared means
   *  one thread and staged copies (what a page without cross-origin isolation gets). */
  sharedMemory?: boolean;
  /** Spin iterations before a waiting thread sleeps (default 100000, well under a millisecond). */
  spin?: number;
}

interface WasmTernary extends TernaryMatrix {
  readonly ptr: number;
  readonly layout: TernaryLayout;
  readonly groups: number;
  readonly chunks: number; // r4: 64-column chunks; lut: 4-column steps
}

interface WasmInt8 extends Int8Matrix {
  readonly ptr: number;
  readonly dPtr: number;
  readonly groups: number;
  readonly chunks: number; // 16-column chunks
}

interface WasmFloat extends FloatMatrix {
  readonly ptr: number;
  readonly groups: number; // 4-row groups (the job's work units)
  readonly chunks: number; // 16-column chunks (rows are zero-padded to chunks * 16)
}

/** Extra methods of the wasm kernels used by bench/kernels.ts. */
export interface WasmBenchHooks {
  cloneTernary(w: TernaryMatrix): TernaryMatrix;
  weightBytes(w: TernaryMatrix | Int8Matrix | FloatMatrix): number;
  memoryReadProbe(bytes: number, reps: number, allThreads?: boolean): number;
  readonly plannedBytes: number;
}

interface ActPtrs {
  q: number;
  scales: number;
  sums: number;
}

/** The constant block the kernels load their masks from (wasm/simd.ts CONST_BASE; below the planner's base). */
function writeKernelConstants(memory: WebAssembly.Memory): void {
  const c = new Uint8Array(memory.buffer, 64, 128);
  c.fill(0x03, 0, 16);
  c.fill(0x0f, 16, 32);
  c.fill(0x0c, 32, 48);
  // f16 widening (wasm/float-matmul.ts): 8 x 0x8fff
  new Uint16Array(memory.buffer, 128, 8).fill(0x8fff);
  // wasm/simd.ts VEC_CONST (192): 4-lane constants of exp4, silu and the f16 KV widening, in its order
  const f = new Float32Array(memory.buffer, 192, 16 * 4);
  const i = new Int32Array(memory.buffer, 192, 16 * 4);
  const vals = [1.4426950408889634, 0.6931471805599453, 0.0013888889, 0.008333334, 0.041666668, 0.16666667, 0.5, 1, 12582912.0];
  vals.forEach((v, k) => f.fill(v, k * 4, k * 4 + 4));
  i.fill(127 - 0x4b400000, 36, 40);
  f.fill(-87, 40, 44);
  f.fill(88, 44, 48);
  i.fill(0x80000000 | 0, 48, 52);
  i.fill(0x8fffffff | 0, 52, 56);
  f.fill(5.192296858534828e33, 56, 60);
  i.fill(0x7fffffff, 60, 64);
}

/** max |x[i]| over i < n (NaN when x holds one) */
function maxAbs(x: Float32Array, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[i]!);
    if (a > m) m = a;
    else if (a !== a) return NaN;
  }
  return m;
}

/** Whether shared WebAssembly memory can be made here (not in a page without cross-origin isolation). */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  const coi = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  if (coi === false) return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

export async function createWasmKernels(opts: WasmKernelOptions): Promise<Kernels> {
  const shared = opts.sharedMemory ?? sharedMemoryAvailable();
  if (shared && !sharedMemoryAvailable()) throw new Error('kernels: shared WebAssembly memory is not available here');
  const module = await loadKernelModule(opts.path, shared);
  const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536, shared } as WebAssembly.MemoryDescriptor);
  const mem = new MemoryPlanner(memory, shared);
  const ex = instantiateKernels(module, memory);
  const layout: TernaryLayout = opts.layout ?? (opts.path === 'relaxed' ? 'r4' : 'lut');
  writeKernelConstants(memory);
  const ctlPtr = mem.alloc(CTL_BYTES, 'thread control block');
  let threads = Math.max(1, Math.floor(opts.threads));
  let pool: ThreadPool | undefined;
  if (threads > 1 && shared && opts.host) {
    pool = await ThreadPool.create(opts.host, ex, module, memory, ctlPtr, threads, opts.spin ?? 100000);
  } else {
    threads = 1;
  }
  return new WasmKernels(ex, mem, pool, threads, layout, opts.path, opts.minParallelWork ?? 1 << 16);
}

/** i32 fields per row of attnBatch's row table (wasm/attention.ts, ROW_FIELDS) */
const ROW_FIELDS = 9;

class WasmKernels implements Kernels, WasmBenchHooks {
  readonly name: string;
  private readonly ternaries = new WeakSet<object>();
  private readonly int8s = new WeakSet<object>();
  private readonly floats = new WeakSet<object>();
  private readonly acts = new WeakMap<QuantizedActs, ActPtrs>();
  private readonly args: Float64Array;
  private disposed = false;
  /** Per-thread scratch of the r4 GEMM (one unpacked row group): base and bytes per thread. */
  private gemmScratch = 0;
  private gemmScratchBytes = 0;
  /** Per-thread attention scores (one f32 per cached position): base and bytes per thread. */
  private attnScratch = 0;
  private attnScratchBytes = 0;

  constructor(
    private readonly ex: KernelExports,
    private readonly mem: MemoryPlanner,
    private readonly pool: ThreadPool | undefined,
    readonly threads: number,
    readonly layout: TernaryLayout,
    path: WasmPath,
    private readonly minParallelWork: number,
  ) {
    this.name = `wasm-${path}`;
    this.args = pool ? pool.args : new Float64Array(ARGS);
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private live(fn: string): void {
    if (this.disposed) throw new Error(`kernels: ${fn} called after dispose()`);
  }

  /** Runs a job (arguments already in this.args) on all threads, or on the caller when small. */
  private run(job: number, work: number): void {
    if (this.pool && work >= this.minParallelWork) this.pool.run(job);
    else runJob(this.ex, job, this.args, 0, jobUnits(job, this.args), 0);
  }

  private setArgs(...v: number[]): void {
    this.args.fill(0);
    for (let i = 0; i < v.length; i++) this.args[i] = v[i]!;
  }

  private f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.mem.buffer, ptr, n);
  }

  /** Scratch space for one call: consecutive regions above the planner's top. */
  private scratch(sizes: number[], what: string): number[] {
    const aligned = sizes.map((s) => Math.ceil(s / 64) * 64 + 64);
    const base = this.mem.temp(aligned.reduce((a, b) => a + b, 0), what);
    const out: number[] = [];
    let p = base;
    for (const s of aligned) {
      out.push(p);
      p += s;
    }
    return out;
  }

  private owned(v: ArrayBufferView): boolean {
    return this.mem.owns(v);
  }

  // ---- allocation -----------------------------------------------------------------------------

  allocF32(n: number): Float32Array {
    this.live('allocF32');
    checkCount('allocF32 n', n);
    if (!this.mem.shared) return new Float32Array(n);
    return this.f32(this.mem.alloc(n * 4, `allocF32(${n})`), n);
  }

  allocF16(n: number): Uint16Array {
    this.live('allocF16');
    checkCount('allocF16 n', n);
    if (!this.mem.shared) return new Uint16Array(n);
    const ptr = this.mem.alloc(n * 2, `allocF16(${n})`); // first: it may grow the memory (a new buffer)
    return new Uint16Array(this.mem.buffer, ptr, n);
  }

  allocActs(capacity: number, dim: number): QuantizedActs {
    this.live('allocActs');
    checkPositive('allocActs capacity', capacity);
    checkPositive('allocActs dim', dim);
    if (!this.mem.shared) {
      return { capacity, dim, q: new Int8Array(capacity * dim), scales: new Float32Array(capacity), sums: new Int32Array(capacity) };
    }
    const what = `allocActs(${capacity}, ${dim})`;
    const q = this.mem.alloc(capacity * dim, what);
    const scales = this.mem.alloc(capacity * 4, what);
    const sums = this.mem.alloc(capacity * 4, what);
    const buf = this.mem.buffer;
    const acts: QuantizedActs = {
      capacity,
      dim,
      q: new Int8Array(buf, q, capacity * dim),
      scales: new Float32Array(buf, scales, capacity),
      sums: new Int32Array(buf, sums, capacity),
    };
    this.acts.set(acts, { q, scales, sums });
    return acts;
  }

  // ---- weights --------------------------------------------------------------------------------

  ternaryMatrix(codes: Int8Array, rows: number, cols: number, scale: number): TernaryMatrix {
    this.live('ternaryMatrix');
    checkPositive('ternaryMatrix rows', rows);
    checkPositive('ternaryMatrix cols', cols);
    if (codes.length !== rows * cols) throw new Error(`ternaryMatrix: ${codes.length} codes given for ${rows} x ${cols} = ${rows * cols}`);
    if (!Number.isFinite(scale)) throw new Error(`ternaryMatrix: scale ${scale} is not finite`);
    const what = `ternaryMatrix ${rows} x ${cols}`;
    let groups: number, chunks: number, bytes: number;
    if (this.layout === 'r4') {
      groups = Math.ceil(rows / 4);
      chunks = Math.ceil(cols / 64);
      bytes = groups * chunks * 64;
    } else {
      groups = Math.ceil(rows / 16);
      chunks = Math.ceil(cols / 8) * 2;
      bytes = groups * chunks * 16;
    }
    if (this.layout === 'r4' && chunks * 256 > this.gemmScratchBytes) {
      this.gemmScratchBytes = chunks * 256;
      this.gemmScratch = this.mem.alloc(this.threads * this.gemmScratchBytes, 'GEMM scratch');
    }
    const ptr = this.mem.alloc(bytes, what);
    const src = this.mem.temp(rows * cols, `${what} (staging of codes)`);
    new Int8Array(this.mem.buffer, src, rows * cols).set(codes);
    const bad = this.layout === 'r4' ? this.ex.packR4(src, rows, cols, ptr) : this.ex.packLut(src, rows, cols, ptr);
    if (bad >= 0) throw new Error(`ternaryMatrix: code ${codes[bad]} at index ${bad} is not -1, 0 or +1`);
    const m: WasmTernary = { rows, cols, scale: Math.fround(scale), ptr, layout: this.layout, groups, chunks };
    this.ternaries.add(m);
    return m;
  }

  int8Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): Int8Matrix {
    this.live('int8Matrix');
    checkPositive('int8Matrix rows', rows);
    checkPositive('int8Matrix cols', cols);
    const what = `int8Matrix ${rows} x ${cols}`;
    const groups = Math.ceil(rows / 4);
    const chunks = Math.ceil(cols / 16);
    const ptr = this.mem.alloc(groups * chunks * 64, what);
    const dPtr = this.mem.alloc(groups * 16, what);
    const [rowPtr, tmpPtr] = this.scratch([cols * 4, chunks * 16], `${what} (row staging)`);
    const row = new Float32Array(cols);
    const rowView = this.f32(rowPtr!, cols);
    const dView = this.f32(dPtr, groups * 4);
    for (let r = 0; r < groups * 4; r++) {
      row.fill(0);
      if (r < rows) getRow(r, row);
      rowView.set(row);
      const qPtr = ptr + (Math.floor(r / 4) * chunks * 64) + (r % 4) * 16;
      const d = this.ex.quantizeWeightRow(rowPtr!, cols, qPtr, 64, tmpPtr!);
      if (d < 0) throw new Error(`int8Matrix: row ${r} holds a non-finite value`);
      dView[r] = d;
    }
    const m: WasmInt8 = { rows, cols, ptr, dPtr, groups, chunks };
    this.int8s.add(m);
    return m;
  }

  f16Matrix(rows: number, cols: number, getRow: (r: number, out: Uint16Array) => void): FloatMatrix {
    return this.floatMatrix('f16', rows, cols, (r, p) => {
      const row = new Uint16Array(this.mem.buffer, p, cols);
      getRow(r, row);
      checkF16Row(row, r);
    });
  }

  f32Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): FloatMatrix {
    return this.floatMatrix('f32', rows, cols, (r, p) => getRow(r, this.f32(p, cols)));
  }

  /** Rows are written straight into their place (zeroed first: the padding must be 0). */
  private floatMatrix(type: 'f16' | 'f32', rows: number, cols: number, fill: (r: number, ptr: number) => void): FloatMatrix {
    this.live(`${type}Matrix`);
    checkPositive(`${type}Matrix rows`, rows);
    checkPositive(`${type}Matrix cols`, cols);
    const chunks = Math.ceil(cols / 16);
    const rowBytes = chunks * 16 * (type === 'f16' ? 2 : 4);
    const ptr = this.mem.alloc(rows * rowBytes, `${type}Matrix ${rows} x ${cols}`);
    new Uint8Array(this.mem.buffer, ptr, rows * rowBytes).fill(0);
    for (let r = 0; r < rows; r++) fill(r, ptr + r * rowBytes);
    const m: WasmFloat = { rows, cols, type, ptr, groups: Math.ceil(rows / 4), chunks };
    this.floats.add(m);
    return m;
  }

  // ---- activations ----------------------------------------------------------------------------

  quantize(x: Float32Array, nTok: number, dim: number, acts: QuantizedActs): void {
    this.live('quantize');
    checkActs('quantize', acts, nTok, dim);
    checkLen('quantize', 'x', x, nTok * dim);
    if (nTok === 0) return;
    const ap = this.acts.get(acts);
    const xOwned = this.owned(x);
    const [xs, qs, ss, us] = this.scratch([xOwned ? 0 : nTok * dim * 4, ap ? 0 : nTok * dim, ap ? 0 : nTok * 4, ap ? 0 : nTok * 4], 'quantize');
    const xPtr = xOwned ? x.byteOffset : xs!;
    if (!xOwned) this.f32(xPtr, nTok * dim).set(x.subarray(0, nTok * dim));
    // acts in this memory are written in place; others through scratch, copied out below
    this.setArgs(xPtr, dim, nTok, ap ? ap.q : qs!, ap ? ap.scales : ss!, ap ? ap.sums : us!);
    this.run(JOB_QUANT, nTok * dim);
    if (ap) return;
    const buf = this.mem.buffer;
    acts.q.set(new Int8Array(buf, qs!, nTok * dim));
    acts.scales.set(new Float32Array(buf, ss!, nTok));
    acts.sums.set(new Int32Array(buf, us!, nTok));
  }

  ternaryMatmul(w: TernaryMatrix, acts: QuantizedActs, nTok: number, out: Float32Array): void {
    this.live('ternaryMatmul');
    if (!this.ternaries.has(w)) throw new Error('ternaryMatmul: matrix was not made by this backend');
    const m = w as WasmTernary;
    checkActs('ternaryMatmul', acts, nTok, m.cols);
    checkLen('ternaryMatmul', 'out', out, nTok * m.rows);
    if (nTok === 0) return;
    const { rows, cols } = m;
    const ap = this.acts.get(acts);
    const outOwned = this.owned(out);
    const pairs = m.chunks * 2;
    const tableStride = pairs * 32;
    const [qs, ss, us, os, tb] = this.scratch([
      ap ? 0 : nTok * cols, ap ? 0 : nTok * 4, ap ? 0 : nTok * 4, outOwned ? 0 : nTok * rows * 4,
      m.layout === 'lut' ? nTok * tableStride : nTok >= 4 ? nTok * m.chunks * 64 : 0,
    ], 'ternaryMatmul');
    let q: number, scales: number, sums: number;
    if (ap) {
      ({ q, scales, sums } = ap);
    } else {
      q = qs!;
      scales = ss!;
      sums = us!;
      const buf = this.mem.buffer;
      new Int8Array(buf, q, nTok * cols).set(acts.q.subarray(0, nTok * cols));
      new Float32Array(buf, scales, nTok).set(acts.scales.subarray(0, nTok));
      new Int32Array(buf, sums, nTok).set(acts.sums.subarray(0, nTok));
    }
    const o = outOwned ? out.byteOffset : os!;
    const work = rows * cols * nTok;
    if (m.layout === 'r4') {
      if (nTok >= 4) this.ex.interleaveActs(q, cols, nTok, m.chunks, tb!);
      this.setArgs(m.ptr, m.groups, m.chunks, rows, q, cols, scales, sums, nTok, m.scale, o, this.gemmScratch, this.gemmScratchBytes, tb!);
      this.run(JOB_TERN_R4, work);
    } else {
      this.setArgs(q, cols, nTok, cols, pairs, tb!);
      this.run(JOB_LUT_TABLES, nTok >= 2 ? work : 0);
      this.setArgs(m.ptr, m.groups, m.chunks, rows, tb!, tableStride, scales, nTok, m.scale, o);
      this.run(JOB_TERN_LUT, work);
    }
    if (!outOwned) out.set(this.f32(o, nTok * rows));
  }

  ternaryMatmuls(ws: readonly TernaryMatrix[], acts: QuantizedActs, nTok: number, outs: readonly Float32Array[]): void {
    this.live('ternaryMatmuls');
    if (ws.length !== outs.length) throw new Error(`ternaryMatmuls: ${ws.length} matrices but ${outs.length} outputs`);
    const ms = ws.map((w) => {
      if (!this.ternaries.has(w)) throw new Error('ternaryMatmuls: matrix was not made by this backend');
      return w as WasmTernary;
    });
    const ap = this.acts.get(acts);
    // One job over the row groups of every matrix (a decode step's small k and v GEMVs run at the
    // pace of the big ones, and the pool starts and waits once instead of once per matrix). It
    // needs the activations and outputs in this memory and one width; otherwise matrix by matrix.
    const fused = this.pool && ap && ms.length > 1 && ms.length <= MANY_MAX && ms.every((m) => m.layout === 'r4' && m.cols === ms[0]!.cols) &&
      outs.every((o) => this.owned(o));
    if (!fused) {
      for (let i = 0; i < ms.length; i++) this.ternaryMatmul(ms[i]!, acts, nTok, outs[i]!);
      return;
    }
    const { cols, chunks } = ms[0]!;
    checkActs('ternaryMatmuls', acts, nTok, cols);
    let groups = 0, work = 0;
    for (let i = 0; i < ms.length; i++) {
      checkLen('ternaryMatmuls', `outs[${i}]`, outs[i]!, nTok * ms[i]!.rows);
      groups += ms[i]!.groups;
      work += ms[i]!.rows * cols * nTok;
    }
    if (nTok === 0) return;
    const [tb] = this.scratch([nTok >= 4 ? nTok * chunks * 64 : 0], 'ternaryMatmuls');
    if (nTok >= 4) this.ex.interleaveActs(ap.q, cols, nTok, chunks, tb!);
    const per = ms.flatMap((m, i) => [m.ptr, m.groups, m.rows, m.scale, outs[i]!.byteOffset]);
    this.setArgs(ms.length, groups, chunks, ap.q, cols, ap.scales, ap.sums, nTok, this.gemmScratch, this.gemmScratchBytes, tb!, ...per);
    this.run(JOB_TERN_R4_MANY, work);
  }

  int8Matmul(mat: Int8Matrix, x: Float32Array, nTok: number, out: Float32Array): void {
    this.live('int8Matmul');
    if (!this.int8s.has(mat)) throw new Error('int8Matmul: matrix was not made by this backend');
    const m = mat as WasmInt8;
    const { rows, cols } = m;
    checkCount('int8Matmul nTok', nTok);
    checkLen('int8Matmul', 'x', x, nTok * cols);
    checkLen('int8Matmul', 'out', out, nTok * rows);
    if (nTok === 0) return;
    const xOwned = this.owned(x);
    const outOwned = this.owned(out);
    const stride = m.chunks * 16;
    const tiled = nTok >> 2 << 2; // tokens in full tiles of 4 (int8Tiles4 in wasm/int8.ts)
    const [xs, q16, sc, os, at] = this.scratch([xOwned ? 0 : nTok * cols * 4, nTok * stride * 2, nTok * 4, outOwned ? 0 : nTok * rows * 4,
      tiled * stride * 2], 'int8Matmul');
    const xPtr = xOwned ? x.byteOffset : xs!;
    if (!xOwned) this.f32(xPtr, nTok * cols).set(x.subarray(0, nTok * cols));
    this.ex.quantizeWide(xPtr, nTok, cols, q16!, stride, sc!);
    if (tiled > 0) this.ex.interleaveWide(q16!, nTok, m.chunks, at!);
    const o = outOwned ? out.byteOffset : os!;
    this.setArgs(m.ptr, m.dPtr, m.groups, m.chunks, rows, q16!, sc!, nTok, o, tiled > 0 ? at! : 0);
    this.run(JOB_INT8, rows * cols * nTok);
    if (!outOwned) out.set(this.f32(o, nTok * rows));
  }

  gatedActivation(act: 'relu2' | 'silu', gate: Float32Array, up: Float32Array, n: number): void {
    this.live('gatedActivation');
    checkCount('gatedActivation n', n);
    checkLen('gatedActivation', 'gate', gate, n);
    checkLen('gatedActivation', 'up', up, n);
    if (act !== 'relu2' && act !== 'silu') throw new Error(`gatedActivation: unknown activation '${String(act)}'`);
    this.elementwise(gate, up, n, (g, u, len) => {
      this.setArgs(g, u, len, act === 'silu' ? 1 : 0);
      this.run(JOB_GATE, len);
    });
  }

  addInPlace(x: Float32Array, y: Float32Array, n: number): void {
    this.live('addInPlace');
    checkCount('addInPlace n', n);
    checkLen('addInPlace', 'x', x, n);
    checkLen('addInPlace', 'y', y, n);
    this.elementwise(x, y, n, this.ex.addTo);
  }

  rope(x: Float32Array, nTok: number, nHeads: number, headDim: number, half: number, pos0: number,
       cos: Float32Array, sin: Float32Array): void {
    this.live('rope');
    checkRope(x, nTok, nHeads, headDim, half, pos0, cos, sin);
    if (nTok === 0 || half === 0) return;
    const n = nTok * nHeads * headDim, rows = nTok * half;
    const xo = this.owned(x), co = this.owned(cos), so = this.owned(sin);
    // tables outside this memory: only the rows of these positions are staged
    const [xs, cs, ss] = this.scratch([xo ? 0 : n * 4, co ? 0 : rows * 4, so ? 0 : rows * 4], 'rope');
    const xp = xo ? x.byteOffset : xs!;
    if (!xo) this.f32(xp, n).set(x.subarray(0, n));
    const row0 = pos0 * half;
    const cp = co ? cos.byteOffset + row0 * 4 : cs!;
    const sp = so ? sin.byteOffset + row0 * 4 : ss!;
    if (!co) this.f32(cp, rows).set(cos.subarray(row0, row0 + rows));
    if (!so) this.f32(sp, rows).set(sin.subarray(row0, row0 + rows));
    this.ex.rope(xp, nTok, nHeads, headDim, half, cp, sp);
    if (!xo) x.set(this.f32(xp, n));
  }

  /** a = f(a, b) over n floats on the calling thread (memory-light: not worth a pool round trip). */
  private elementwise(a: Float32Array, b: Float32Array, n: number, f: (a: number, b: number, n: number) => void): void {
    if (n === 0) return;
    const [as, bs] = this.scratch([this.owned(a) ? 0 : n * 4, this.owned(b) ? 0 : n * 4], 'elementwise');
    const ap = this.owned(a) ? a.byteOffset : as!;
    const bp = this.owned(b) ? b.byteOffset : bs!;
    if (!this.owned(a)) this.f32(ap, n).set(a.subarray(0, n));
    if (!this.owned(b)) this.f32(bp, n).set(b.subarray(0, n));
    f(ap, bp, n);
    if (!this.owned(a)) a.set(this.f32(ap, n));
  }

  /** Position splits per (token, kv head) for attention: 1 unless there are too few units to keep
   *  every thread busy (decode), then enough for about 4 units per thread, each of at least 128
   *  positions (a shorter split costs more in its merge than it saves). */
  private attentionSplits(units: number, shortest: number): number {
    if (!this.pool || units >= 4 * this.threads) return 1;
    return Math.max(1, Math.min(Math.ceil((4 * this.threads) / units), Math.floor(shortest / 128)));
  }

  attention(
    q: Float32Array, kCache: Float32Array | Uint16Array, vCache: Float32Array | Uint16Array, out: Float32Array,
    nTok: number, pos0: number, nHeads: number, nKVHeads: number, headDim: number, cacheCtx: number,
  ): void {
    this.live('attention');
    checkAttention('attention', q, kCache, vCache, out, nTok, pos0, nHeads, nKVHeads, headDim, cacheCtx);
    if (nTok === 0) return;
    const len = pos0 + nTok;
    const qStride = nHeads * headDim;
    const group = nHeads / nKVHeads;
    const splits = this.attentionSplits(nTok * nKVHeads, pos0 + 1);
    this.attnScores(group, len); // scores, then one 1/sum per head
    // arrays outside this memory (unshared mode) are copied through scratch space, the caches as
    // (nKVHeads, len, headDim); the split records: (nTok, nHeads, splits) x (headDim outputs, max, sum)
    const copyCaches = !this.owned(kCache) || !this.owned(vCache);
    const cacheBytes = (c: Float32Array | Uint16Array) => (copyCaches ? nKVHeads * len * headDim * c.BYTES_PER_ELEMENT : 0);
    const [qs, ks, vs, os, ps] = this.scratch([
      this.owned(q) ? 0 : nTok * qStride * 4,
      cacheBytes(kCache),
      cacheBytes(vCache),
      this.owned(out) ? 0 : nTok * qStride * 4,
      splits > 1 ? nTok * nHeads * splits * (headDim + 2) * 4 : 0,
    ], 'attention');
    const qp = this.owned(q) ? q.byteOffset : qs!;
    if (!this.owned(q)) this.f32(qp, nTok * qStride).set(q.subarray(0, nTok * qStride));
    const placeCache = (c: Float32Array | Uint16Array, tmp: number): number => {
      if (!copyCaches) return c.byteOffset;
      const dst = c instanceof Uint16Array ? new Uint16Array(this.mem.buffer, tmp, nKVHeads * len * headDim) : this.f32(tmp, nKVHeads * len * headDim);
      for (let g = 0; g < nKVHeads; g++) dst.set(c.subarray(g * cacheCtx * headDim, (g * cacheCtx + len) * headDim), g * len * headDim);
      return tmp;
    };
    const kp = placeCache(kCache, ks!);
    const vp = placeCache(vCache, vs!);
    const ctx = copyCaches ? len : cacheCtx;
    const op = this.owned(out) ? out.byteOffset : os!;
    const units = nTok * nKVHeads * splits;
    this.setArgs(qp, kp, vp, op, units, nHeads, group, headDim, qStride, ctx, pos0, Math.fround(1 / Math.sqrt(headDim)), this.attnScratch, this.attnScratchBytes,
      kCache instanceof Uint16Array ? 1 : 0, splits, splits > 1 ? ps! : 0, nTok);
    // work ~ positions x head dims x heads (x2 for QK and AV)
    this.run(JOB_ATTN, nTok * nHeads * len * headDim * 2);
    if (splits > 1) this.ex.attnMerge(op, ps!, nTok, nHeads, headDim, qStride, splits);
    if (!this.owned(out)) out.set(this.f32(op, nTok * qStride));
  }

  /** Grows the per-thread attention scores to hold `len` positions of `group` heads (and one 1/sum per head). */
  private attnScores(group: number, len: number): void {
    const need = Math.ceil((group * (len + 1) * 4) / 64) * 64;
    if (need <= this.attnScratchBytes) return;
    // grows to the longest context seen (doubling, so a growing sequence reallocates rarely)
    this.attnScratchBytes = Math.max(need, 2 * this.attnScratchBytes);
    this.attnScratch = this.mem.alloc(this.threads * this.attnScratchBytes, 'attention scores');
  }

  attentionRows(
    q: Float32Array, kCaches: readonly (Float32Array | Uint16Array)[], vCaches: readonly (Float32Array | Uint16Array)[], out: Float32Array,
    n: number, pos: ArrayLike<number>, nHeads: number, nKVHeads: number, headDim: number, cacheCtx: ArrayLike<number>,
  ): void {
    this.live('attentionRows');
    checkAttentionRows(q, kCaches, vCaches, out, n, pos, nHeads, nKVHeads, headDim, cacheCtx);
    if (n === 0) return;
    const qStride = nHeads * headDim;
    const f16 = kCaches[0] instanceof Uint16Array;
    let direct = this.owned(q) && this.owned(out);
    for (let r = 0; r < n && direct; r++) direct = this.owned(kCaches[r]!) && this.owned(vCaches[r]!) && (kCaches[r] instanceof Uint16Array) === f16;
    if (!direct) {
      // arrays outside this memory (unshared mode) or mixed cache types: row by row through attention()
      for (let r = 0; r < n; r++) {
        this.attention(q.subarray(r * qStride, (r + 1) * qStride), kCaches[r]!, vCaches[r]!, out.subarray(r * qStride, (r + 1) * qStride),
          1, pos[r]!, nHeads, nKVHeads, headDim, cacheCtx[r]!);
      }
      return;
    }
    const group = nHeads / nKVHeads;
    // each row's splits as attention() would choose them for that row alone (the same bits)
    const splits = new Int32Array(n);
    let perHead = 0, partBytes = 0, maxLen = 0, work = 0;
    for (let r = 0; r < n; r++) {
      splits[r] = this.attentionSplits(nKVHeads, pos[r]! + 1);
      perHead += splits[r]!;
      if (splits[r]! > 1) partBytes += nHeads * splits[r]! * (headDim + 2) * 4;
      maxLen = Math.max(maxLen, pos[r]! + 1);
      work += nHeads * (pos[r]! + 1) * headDim * 2;
    }
    this.attnScores(group, maxLen);
    const [tp, pp] = this.scratch([n * ROW_FIELDS * 4, partBytes], 'attention');
    const table = new Int32Array(this.mem.buffer, tp!, n * ROW_FIELDS);
    let part = pp!, before = 0;
    for (let r = 0; r < n; r++) {
      const o = r * ROW_FIELDS;
      table[o] = q.byteOffset + r * qStride * 4;
      table[o + 1] = out.byteOffset + r * qStride * 4;
      table[o + 2] = kCaches[r]!.byteOffset;
      table[o + 3] = vCaches[r]!.byteOffset;
      table[o + 4] = cacheCtx[r]!;
      table[o + 5] = pos[r]!;
      table[o + 6] = splits[r]!;
      table[o + 7] = part;
      table[o + 8] = before;
      if (splits[r]! > 1) part += nHeads * splits[r]! * (headDim + 2) * 4;
      before += splits[r]!;
    }
    this.setArgs(tp!, nKVHeads * perHead, n, perHead, f16 ? 1 : 0, nHeads, group, headDim, qStride, Math.fround(1 / Math.sqrt(headDim)),
      this.attnScratch, this.attnScratchBytes);
    this.run(JOB_ATTN_BATCH, work);
    for (let r = 0; r < n; r++) {
      if (splits[r]! > 1) this.ex.attnMerge(table[r * ROW_FIELDS + 1]! >>> 0, table[r * ROW_FIELDS + 7]! >>> 0, 1, nHeads, headDim, qStride, splits[r]!);
    }
  }

  floatMatmul(mat: FloatMatrix, x: Float32Array, nTok: number, out: Float32Array): void {
    this.live('floatMatmul');
    if (!this.floats.has(mat)) throw new Error('floatMatmul: matrix was not made by this backend');
    const m = mat as WasmFloat;
    const { rows, cols, chunks } = m;
    checkCount('floatMatmul nTok', nTok);
    checkLen('floatMatmul', 'x', x, nTok * cols);
    checkLen('floatMatmul', 'out', out, nTok * rows);
    if (nTok === 0) return;
    // the kernel reads activation rows of chunks * 16 floats: staged (zero-padded) unless already
    // so; an f16 matrix always stages them, times 2^112 (the widening's exponent rebias, see
    // wasm/float-matmul.ts), which is exact only while |x| < 2^16: beyond that the reference runs
    const f16 = m.type === 'f16';
    if (f16 && !(maxAbs(x, nTok * cols) < 65536)) return this.floatMatmulReference(m, x, nTok, out);
    const stride = chunks * 16;
    const inPlace = !f16 && this.owned(x) && stride === cols;
    const outOwned = this.owned(out);
    const [xs, os] = this.scratch([inPlace ? 0 : nTok * stride * 4, outOwned ? 0 : nTok * rows * 4], 'floatMatmul');
    const xp = inPlace ? x.byteOffset : xs!;
    if (!inPlace) {
      const staged = this.f32(xp, nTok * stride);
      staged.fill(0);
      for (let t = 0; t < nTok; t++) staged.set(x.subarray(t * cols, (t + 1) * cols), t * stride);
      if (f16) for (let i = 0; i < nTok * stride; i++) staged[i] *= 2 ** 112;
    }
    const op = outOwned ? out.byteOffset : os!;
    this.setArgs(m.ptr, m.type === 'f16' ? 1 : 0, m.groups, chunks, rows, xp, nTok, op);
    this.run(JOB_FLOAT, rows * cols * nTok);
    if (!outOwned) out.set(this.f32(op, nTok * rows));
  }

  /** floatMatmul in TypeScript on the matrix in wasm memory (activations too large to prescale). */
  private floatMatmulReference(m: WasmFloat, x: Float32Array, nTok: number, out: Float32Array): void {
    const rowElems = m.chunks * 16;
    const halves = new Uint16Array(this.mem.buffer, m.ptr, m.rows * rowElems);
    for (let r = 0; r < m.rows; r++) {
      const w = (k: number) => f16ToF32(halves[r * rowElems + k]!);
      for (let t = 0; t < nTok; t++) out[t * m.rows + r] = floatDot(w, x, t * m.cols, m.cols);
    }
  }

  int8Row(mat: Int8Matrix, row: number, out: Float32Array): void {
    this.live('int8Row');
    if (!this.int8s.has(mat)) throw new Error('int8Row: matrix was not made by this backend');
    const m = mat as WasmInt8;
    if (!Number.isInteger(row) || row < 0 || row >= m.rows) throw new Error(`int8Row: row ${row} is out of range [0, ${m.rows})`);
    checkLen('int8Row', 'out', out, m.cols);
    const outOwned = this.owned(out);
    const o = outOwned ? out.byteOffset : this.scratch([m.cols * 4], 'int8Row')[0]!;
    this.ex.int8Row(m.ptr, m.dPtr, row, m.chunks, m.cols, o);
    if (!outOwned) out.set(this.f32(o, m.cols));
  }

  rmsnorm(x: Float32Array, weight: Float32Array, nTok: number, dim: number, eps: number, out: Float32Array): void {
    this.live('rmsnorm');
    checkCount('rmsnorm nTok', nTok);
    checkPositive('rmsnorm dim', dim);
    checkLen('rmsnorm', 'x', x, nTok * dim);
    checkLen('rmsnorm', 'weight', weight, dim);
    checkLen('rmsnorm', 'out', out, nTok * dim);
    if (nTok === 0) return;
    const n = nTok * dim;
    const xo = this.owned(x), wo = this.owned(weight), oo = this.owned(out);
    const [xs, ws, os] = this.scratch([xo ? 0 : n * 4, wo ? 0 : dim * 4, oo ? 0 : n * 4], 'rmsnorm');
    const xp = xo ? x.byteOffset : xs!;
    const wp = wo ? weight.byteOffset : ws!;
    const op = oo ? out.byteOffset : os!;
    if (!xo) this.f32(xp, n).set(x.subarray(0, n));
    if (!wo) this.f32(wp, dim).set(weight.subarray(0, dim));
    this.setArgs(xp, wp, nTok, dim, eps, op);
    this.run(JOB_RMSNORM, n);
    if (!oo) out.set(this.f32(op, n));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool?.dispose();
  }

  // ---- for benchmarks (WasmBenchHooks) ---------------------------------------------------------

  /** A copy of a ternary matrix at fresh memory (benchmarks build many layers from a few packings). */
  cloneTernary(w: TernaryMatrix): TernaryMatrix {
    if (!this.ternaries.has(w)) throw new Error('cloneTernary: matrix was not made by this backend');
    const m = w as WasmTernary;
    const bytes = m.layout === 'r4' ? m.groups * m.chunks * 64 : m.groups * m.chunks * 16;
    const ptr = this.mem.alloc(bytes, 'cloneTernary');
    new Uint8Array(this.mem.buffer).copyWithin(ptr, m.ptr, m.ptr + bytes);
    const c: WasmTernary = { ...m, ptr };
    this.ternaries.add(c);
    return c;
  }

  /** Bytes the kernel reads for one pass over a matrix. */
  weightBytes(w: TernaryMatrix | Int8Matrix | FloatMatrix): number {
    const m = w as Partial<WasmTernary> & Partial<WasmInt8> & Partial<WasmFloat>;
    if (this.floats.has(w)) return m.rows! * m.chunks! * 16 * (m.type === 'f16' ? 2 : 4);
    if (this.ternaries.has(w)) return m.layout === 'r4' ? m.groups! * m.chunks! * 64 : m.groups! * m.chunks! * 16;
    if (this.int8s.has(w)) return m.groups! * m.chunks! * 64 + m.groups! * 16;
    throw new Error('weightBytes: matrix was not made by this backend');
  }

  /** Bytes of wasm memory planned so far. */
  get plannedBytes(): number {
    return this.mem.top;
  }

  /** Reads `bytes` of memory with SIMD loads on all threads (or only the caller) and returns the best
   *  seconds of `reps` runs (the memory-read ceiling probe of the benchmark). */
  memoryReadProbe(bytes: number, reps: number, allThreads = false): number {
    const block = 1 << 20;
    const blocks = Math.max(1, Math.floor(bytes / block));
    const p = this.mem.temp(blocks * block, 'memory read probe');
    new Uint8Array(this.mem.buffer, p, blocks * block).fill(1);
    this.setArgs(p, block, blocks);
    const once = (): void => {
      if (allThreads && this.pool) this.pool.run(JOB_MEMSUM);
      else runJob(this.ex, JOB_MEMSUM, this.args, 0, blocks, 0);
    };
    once();
    let best = Infinity;
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      once();
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return best;
  }
}
