// Picks and compiles the WebAssembly kernel build: relaxed SIMD where the runtime validates a
// relaxed instruction, else plain SIMD128; each for a shared memory (threads) or an unshared one. The bytes come from wasm-bytes.generated.ts (base64,
// written by scripts/build-wasm.mjs), so nothing here touches a file system.

import {
  KERNELS_RELAXED_UNSHARED_WASM,
  KERNELS_RELAXED_WASM,
  KERNELS_SIMD_UNSHARED_WASM,
  KERNELS_SIMD_WASM,
  RELAXED_PROBE_WASM,
} from './wasm-bytes.generated.js';

export type WasmPath = 'relaxed' | 'simd';

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Whether this runtime accepts relaxed SIMD (on Node 20 only after the V8 flag is set, see src/node/threads.ts). */
export function relaxedSimdSupported(): boolean {
  return WebAssembly.validate(decodeBase64(RELAXED_PROBE_WASM));
}

const cache = new Map<string, WebAssembly.Module>();

/** The compiled kernel module for a path and memory kind (compiled once per process). */
export async function loadKernelModule(path: WasmPath, shared: boolean): Promise<WebAssembly.Module> {
  const key = `${path}/${shared}`;
  const hit = cache.get(key);
  if (hit) return hit;
  if (path === 'relaxed' && !relaxedSimdSupported()) {
    throw new Error('kernels: relaxed SIMD is not available in this WebAssembly runtime (use path "simd")');
  }
  const b64 = path === 'relaxed'
    ? (shared ? KERNELS_RELAXED_WASM : KERNELS_RELAXED_UNSHARED_WASM)
    : (shared ? KERNELS_SIMD_WASM : KERNELS_SIMD_UNSHARED_WASM);
  const bytes = decodeBase64(b64);
  let mod: WebAssembly.Module;
  try {
    mod = await WebAssembly.compile(bytes);
  } catch (e) {
    throw new Error(`kernels: the ${path} WebAssembly build failed to compile here (${(e as Error).message})`);
  }
  cache.set(key, mod);
  return mod;
}

/** The functions the kernel module exports (byte offsets are passed as i32; values >= 2^31 wrap and are read back unsigned). */
export interface KernelExports {
  relu2Gate(g: number, u: number, n: number): void;
  siluGate(g: number, u: number, n: number): void;
  addTo(x: number, y: number, n: number): void;
  rope(x: number, nTok: number, nHeads: number, headDim: number, half: number, cs: number, sn: number): void;
  attnRows(q: number, k: number, v: number, out: number, u0: number, u1: number, nHeads: number, group: number,
    headDim: number, qStride: number, cacheCtx: number, pos0: number, scale: number, scores: number, splits: number, part: number, nTok: number): void;
  attnRowsF16(q: number, k: number, v: number, out: number, u0: number, u1: number, nHeads: number, group: number,
    headDim: number, qStride: number, cacheCtx: number, pos0: number, scale: number, scores: number, splits: number, part: number, nTok: number): void;
  attnBatch(rows: number, nRows: number, perHead: number, u0: number, u1: number, f16: number, nHeads: number, group: number,
    headDim: number, qStride: number, scale: number, scores: number): void;
  attnMerge(out: number, part: number, nTok: number, nHeads: number, headDim: number, qStride: number, splits: number): void;
  quantize(x: number, nTok: number, dim: number, q: number, scales: number, sums: number): void;
  quantizeWide(x: number, nTok: number, dim: number, q16: number, stride: number, scales: number): void;
  quantizeWeightRow(x: number, n: number, q: number, chunkStride: number, tmp: number): number;
  rmsnorm(x: number, w: number, nTok: number, dim: number, eps: number, out: number): void;
  memsum(p: number, bytes: number): number;
  ternR4(w: number, g0: number, g1: number, chunks: number, rows: number, q: number, qStride: number,
    scales: number, sums: number, nTok: number, alpha: number, out: number, scratch: number, interleaved: number): void;
  interleaveActs(q: number, qStride: number, nTok: number, chunks: number, dst: number): void;
  packR4(src: number, rows: number, cols: number, dst: number): number;
  ternLut(w: number, g0: number, g1: number, steps: number, rows: number, tables: number, tableStride: number,
    scales: number, nTok: number, alpha: number, out: number): void;
  lutTables(q: number, qStride: number, nTok: number, cols: number, pairs: number, tables: number): void;
  packLut(src: number, rows: number, cols: number, dst: number): number;
  int8Mm(m: number, d: number, g0: number, g1: number, chunks: number, rows: number, q16: number,
    scales: number, nTok: number, out: number, interleaved: number): void;
  interleaveWide(q16: number, nTok: number, chunks: number, dst: number): void;
  int8Row(m: number, d: number, row: number, chunks: number, cols: number, out: number): void;
  floatMmF16(m: number, g0: number, g1: number, chunks: number, rows: number, x: number, nTok: number, out: number): void;
  floatMmF32(m: number, g0: number, g1: number, chunks: number, rows: number, x: number, nTok: number, out: number): void;
}

export function instantiateKernels(mod: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const inst = new WebAssembly.Instance(mod, { env: { memory, abort: () => { throw new Error('kernels: wasm abort'); } } });
  return inst.exports as unknown as KernelExports;
}
