// Plain TypeScript implementation of the Kernels interface (api.ts): the readable statement of
// the math that the WebAssembly kernels must reproduce bit for bit (integer parts) and op for op
// in float32 (rescales). Slow; used by tests, as a fallback (WF_KERNELS=reference) and as docs.
//
// Float32 semantics are emulated with Math.fround after every operation that float32 code rounds.
//
// Activation quantization (SPEC.md §2, as bitnet.cpp's quantize_row_i8_s does it):
//   m = max(1e-5, max_k |x_k|)          (taken in double)
//   s = f32(127 / m)                    (the per-token scale, stored in acts.scales)
//   q_k = clamp(round_half_even(f32(x_k * s)), -128, 127)
//   sums[t] = sum_k q_k                 (what the unsigned-code trick subtracts)
// Ternary matmul: dot = sum_k T[r][k] * q[t][k] (exact int32), out = f32(f32(f32(dot) / s) * scale),
//   the operation order of bitnet.cpp's I2_S kernel ((float)sum - row_sum) / s * alpha.
// Int8 matrix (lm_head / embedding): per row d_r = f32(max|row| / 127), M[r][k] = quantize with
//   s_r = f32(127 / max|row|) exactly like activations (a zero row gives d_r = 0 and all-zero codes).
//   int8Matmul quantizes x[t] with the activation quantizer, then out = f32(f32(f32(dot) / s_t) * d_r).
//   int8Row: out[k] = f32(M[r][k] * d_r).
// Float matrix (the lm_head at full precision): f16 or f32 rows, f32 activations, no quantization;
//   out = floatDot(row, x): sixteen f32 partial sums in a fixed order (see floatDot), as the SIMD kernel.
// RMSNorm as ggml: sum of f32 squares accumulated in double (in the SIMD kernel's lane order), mean = f32(sum / n),
//   scale = f32(1 / f32(sqrt(f32(mean + eps)))), out = f32(f32(x * scale) * weight).

import type { FloatMatrix, Int8Matrix, Kernels, QuantizedActs, TernaryMatrix } from './api.js';
import { f16ToF32 } from '../formats/half.js';

const fround = Math.fround;
const EPS_SCALE = 1e-5;

/** Round half to even (ties go to the even integer), for finite x. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The per-token activation scale s = f32(127 / max(1e-5, max|x|)) over x[off .. off+n). */
export function actScale(x: ArrayLike<number>, off: number, n: number): number {
  let m = EPS_SCALE;
  for (let k = 0; k < n; k++) {
    const a = Math.abs(x[off + k]!);
    if (a > m) m = a;
  }
  return fround(127 / m);
}

/** q[qOff + k] = clamp(rhe(f32(x[xOff + k] * s)), -128, 127); returns sum of q. */
export function quantizeRow(x: ArrayLike<number>, xOff: number, n: number, s: number, q: Int8Array, qOff: number): number {
  let sum = 0;
  for (let k = 0; k < n; k++) {
    let v = roundHalfEven(fround(x[xOff + k]! * s));
    if (v > 127) v = 127;
    else if (v < -128) v = -128;
    q[qOff + k] = v;
    sum += v;
  }
  return sum;
}

export function checkCount(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a non-negative integer, got ${n}`);
}

export function checkPositive(what: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} must be a positive integer, got ${n}`);
}

/** Validates ternary codes (-1, 0, +1) of a rows x cols matrix. */
export function checkTernaryCodes(codes: Int8Array, rows: number, cols: number): void {
  checkPositive('ternaryMatrix rows', rows);
  checkPositive('ternaryMatrix cols', cols);
  if (codes.length !== rows * cols) {
    throw new Error(`ternaryMatrix: ${codes.length} codes given for ${rows} x ${cols} = ${rows * cols}`);
  }
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c < -1 || c > 1) throw new Error(`ternaryMatrix: code ${c} at index ${i} is not -1, 0 or +1`);
  }
}

export function checkActs(fn: string, acts: QuantizedActs, nTok: number, dim: number): void {
  checkCount(`${fn} nTok`, nTok);
  if (nTok > acts.capacity) throw new Error(`${fn}: nTok ${nTok} exceeds the activation buffer capacity ${acts.capacity}`);
  if (dim !== acts.dim) throw new Error(`${fn}: dim ${dim} does not match the activation buffer dim ${acts.dim}`);
}

/** Element reader of an f32 or f16 (Uint16Array of bits) cache. */
function widen(c: Float32Array | Uint16Array): (i: number) => number {
  return c instanceof Uint16Array ? (i) => f16ToF32(c[i]!) : (i) => c[i]!;
}

/** Shape checks of Kernels.attention, shared by both implementations. */
export function checkAttention(
  fn: string, q: Float32Array, k: Float32Array | Uint16Array, v: Float32Array | Uint16Array, out: Float32Array,
  nTok: number, pos0: number, nHeads: number, nKVHeads: number, headDim: number, cacheCtx: number,
): void {
  checkCount(`${fn} nTok`, nTok);
  checkCount(`${fn} pos0`, pos0);
  checkPositive(`${fn} nHeads`, nHeads);
  checkPositive(`${fn} nKVHeads`, nKVHeads);
  checkPositive(`${fn} headDim`, headDim);
  if (nHeads % nKVHeads !== 0) throw new Error(`${fn}: nHeads ${nHeads} is not a multiple of nKVHeads ${nKVHeads}`);
  checkLen(fn, 'q', q, nTok * nHeads * headDim);
  checkLen(fn, 'out', out, nTok * nHeads * headDim);
  if (!Number.isInteger(cacheCtx) || cacheCtx < pos0 + nTok) throw new Error(`${fn}: cacheCtx ${cacheCtx} is less than the ${pos0 + nTok} positions attended`);
  // the last kv head's block needs only the positions attended (a sequence's view into a shared pool ends there)
  const cacheLen = ((nKVHeads - 1) * cacheCtx + pos0 + nTok) * headDim;
  checkLen(fn, 'kCache', k, cacheLen);
  checkLen(fn, 'vCache', v, cacheLen);
  if ((k instanceof Uint16Array) !== (v instanceof Uint16Array)) throw new Error(`${fn}: kCache and vCache must both be f32 or both f16`);
}

/** Shape checks of Kernels.attentionRows: the per-row arrays and each row as attention() checks it. */
export function checkAttentionRows(
  q: Float32Array, kCaches: readonly (Float32Array | Uint16Array)[], vCaches: readonly (Float32Array | Uint16Array)[], out: Float32Array,
  n: number, pos: ArrayLike<number>, nHeads: number, nKVHeads: number, headDim: number, cacheCtx: ArrayLike<number>,
): void {
  const fn = 'attentionRows';
  checkCount(`${fn} n`, n);
  checkLen(fn, 'kCaches', kCaches, n);
  checkLen(fn, 'vCaches', vCaches, n);
  checkLen(fn, 'pos', pos, n);
  checkLen(fn, 'cacheCtx', cacheCtx, n);
  checkPositive(`${fn} nHeads`, nHeads);
  checkPositive(`${fn} headDim`, headDim);
  checkLen(fn, 'q', q, n * nHeads * headDim);
  checkLen(fn, 'out', out, n * nHeads * headDim);
  // q and out pass attention()'s check as one row each (they hold at least one)
  for (let r = 0; r < n; r++) checkAttention(fn, q, kCaches[r]!, vCaches[r]!, out, 1, pos[r]!, nHeads, nKVHeads, headDim, cacheCtx[r]!);
}

export function checkRope(x: Float32Array, nTok: number, nHeads: number, headDim: number, half: number, pos0: number,
  cos: Float32Array, sin: Float32Array): void {
  checkCount('rope nTok', nTok);
  checkPositive('rope nHeads', nHeads);
  checkPositive('rope headDim', headDim);
  checkCount('rope pos0', pos0);
  if (!Number.isInteger(half) || half < 0 || 2 * half > headDim) throw new Error(`rope: half ${half} must be an integer in [0, headDim/2 = ${headDim / 2}]`);
  checkLen('rope', 'x', x, nTok * nHeads * headDim);
  checkLen('rope', 'cos', cos, (pos0 + nTok) * half);
  checkLen('rope', 'sin', sin, (pos0 + nTok) * half);
}

export function checkLen(fn: string, name: string, arr: { length: number }, need: number): void {
  if (arr.length < need) throw new Error(`${fn}: ${name} holds ${arr.length} values, needs at least ${need}`);
}

/** Refuses an f16 row holding inf or NaN (exponent bits all ones): the kernel's widening cannot express them. */
export function checkF16Row(row: Uint16Array, r: number): void {
  for (let k = 0; k < row.length; k++) {
    if ((row[k]! & 0x7c00) === 0x7c00) throw new Error(`f16Matrix: row ${r} holds a non-finite value at column ${k}`);
  }
}

/**
 * The dot product of the float head, in the SIMD kernel's order (wasm/float-matmul.ts): columns are
 * zero-padded to a multiple of 16; column k adds f32(w_k * x_k) to partial sum k % 16 (in f32);
 * then with p = the 16 partial sums, v_i = (p_i + p_{4+i}) + (p_{8+i} + p_{12+i}) and the result
 * is (v_0 + v_2) + (v_1 + v_3).
 */
export function floatDot(w: (k: number) => number, x: ArrayLike<number>, xOff: number, cols: number): number {
  const p = new Float64Array(16); // each value an f32, rounded after every add
  const padded = Math.ceil(cols / 16) * 16;
  for (let k = 0; k < padded; k++) {
    const prod = k < cols ? fround(w(k) * x[xOff + k]!) : 0;
    p[k & 15] = fround(p[k & 15]! + prod);
  }
  const v = [0, 1, 2, 3].map((i) => fround(fround(p[i]! + p[4 + i]!) + fround(p[8 + i]! + p[12 + i]!)));
  return fround(fround(v[0]! + v[2]!) + fround(v[1]! + v[3]!));
}

interface RefTernary extends TernaryMatrix {
  readonly codes: Int8Array; // T[r][k], row-major
}

interface RefFloat extends FloatMatrix {
  readonly data: Uint16Array | Float32Array; // [rows][cols]: f16 bits or f32
}

interface RefInt8 extends Int8Matrix {
  readonly q: Int8Array; // [rows][cols]
  readonly d: Float32Array; // [rows] per-row scale
}

/** Quantizes one dense f32 row to int8 codes; returns its scale d = f32(max|row| / 127). */
export function quantizeWeightRow(row: Float32Array, n: number, q: Int8Array, qOff: number): number {
  let m = 0;
  for (let k = 0; k < n; k++) {
    const a = Math.abs(row[k]!);
    if (a > m) m = a;
  }
  if (!Number.isFinite(m)) throw new Error('int8Matrix: row holds a non-finite value');
  if (m === 0) {
    q.fill(0, qOff, qOff + n);
    return 0;
  }
  const s = fround(127 / m);
  quantizeRow(row, 0, n, s, q, qOff);
  return fround(m / 127);
}

export function createReferenceKernels(): Kernels {
  const ternaries = new WeakSet<object>();
  const int8s = new WeakSet<object>();
  const floats = new WeakSet<object>();

  const k: Kernels = {
    name: 'reference',
    threads: 1,

    allocF32(n: number): Float32Array {
      checkCount('allocF32 n', n);
      return new Float32Array(n);
    },

    allocF16(n: number): Uint16Array {
      checkCount('allocF16 n', n);
      return new Uint16Array(n);
    },

    allocActs(capacity: number, dim: number): QuantizedActs {
      checkPositive('allocActs capacity', capacity);
      checkPositive('allocActs dim', dim);
      return {
        capacity,
        dim,
        q: new Int8Array(capacity * dim),
        scales: new Float32Array(capacity),
        sums: new Int32Array(capacity),
      };
    },

    ternaryMatrix(codes: Int8Array, rows: number, cols: number, scale: number): TernaryMatrix {
      checkTernaryCodes(codes, rows, cols);
      if (!Number.isFinite(scale)) throw new Error(`ternaryMatrix: scale ${scale} is not finite`);
      const m: RefTernary = { rows, cols, scale: fround(scale), codes: codes.slice() };
      ternaries.add(m);
      return m;
    },

    int8Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): Int8Matrix {
      checkPositive('int8Matrix rows', rows);
      checkPositive('int8Matrix cols', cols);
      const q = new Int8Array(rows * cols);
      const d = new Float32Array(rows);
      const row = new Float32Array(cols);
      for (let r = 0; r < rows; r++) {
        row.fill(0);
        getRow(r, row);
        d[r] = quantizeWeightRow(row, cols, q, r * cols);
      }
      const m: RefInt8 = { rows, cols, q, d };
      int8s.add(m);
      return m;
    },

    f16Matrix(rows: number, cols: number, getRow: (r: number, out: Uint16Array) => void): FloatMatrix {
      checkPositive('f16Matrix rows', rows);
      checkPositive('f16Matrix cols', cols);
      const data = new Uint16Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        const row = data.subarray(r * cols, (r + 1) * cols);
        getRow(r, row);
        checkF16Row(row, r);
      }
      const m: RefFloat = { rows, cols, type: 'f16', data };
      floats.add(m);
      return m;
    },

    f32Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): FloatMatrix {
      checkPositive('f32Matrix rows', rows);
      checkPositive('f32Matrix cols', cols);
      const data = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) getRow(r, data.subarray(r * cols, (r + 1) * cols));
      const m: RefFloat = { rows, cols, type: 'f32', data };
      floats.add(m);
      return m;
    },

    floatMatmul(mat: FloatMatrix, x: Float32Array, nTok: number, out: Float32Array): void {
      if (!floats.has(mat)) throw new Error('floatMatmul: matrix was not made by this backend');
      const m = mat as RefFloat;
      const { rows, cols, data } = m;
      checkCount('floatMatmul nTok', nTok);
      checkLen('floatMatmul', 'x', x, nTok * cols);
      checkLen('floatMatmul', 'out', out, nTok * rows);
      for (let r = 0; r < rows; r++) {
        const off = r * cols;
        const w = data instanceof Uint16Array ? (k: number) => f16ToF32(data[off + k]!) : (k: number) => data[off + k]!;
        for (let t = 0; t < nTok; t++) out[t * rows + r] = floatDot(w, x, t * cols, cols);
      }
    },

    quantize(x: Float32Array, nTok: number, dim: number, acts: QuantizedActs): void {
      checkActs('quantize', acts, nTok, dim);
      checkLen('quantize', 'x', x, nTok * dim);
      for (let t = 0; t < nTok; t++) {
        const s = actScale(x, t * dim, dim);
        acts.scales[t] = s;
        acts.sums[t] = quantizeRow(x, t * dim, dim, s, acts.q, t * dim);
      }
    },

    ternaryMatmuls(ws: readonly TernaryMatrix[], acts: QuantizedActs, nTok: number, outs: readonly Float32Array[]): void {
      if (ws.length !== outs.length) throw new Error(`ternaryMatmuls: ${ws.length} matrices but ${outs.length} outputs`);
      for (let i = 0; i < ws.length; i++) k.ternaryMatmul(ws[i]!, acts, nTok, outs[i]!);
    },
    ternaryMatmul(w: TernaryMatrix, acts: QuantizedActs, nTok: number, out: Float32Array): void {
      if (!ternaries.has(w)) throw new Error('ternaryMatmul: matrix was not made by this backend');
      const m = w as RefTernary;
      checkActs('ternaryMatmul', acts, nTok, m.cols);
      checkLen('ternaryMatmul', 'out', out, nTok * m.rows);
      const { rows, cols, codes } = m;
      for (let t = 0; t < nTok; t++) {
        const s = acts.scales[t]!;
        const qo = t * cols;
        for (let r = 0; r < rows; r++) {
          let dot = 0;
          const wo = r * cols;
          for (let c = 0; c < cols; c++) dot += codes[wo + c]! * acts.q[qo + c]!;
          out[t * rows + r] = fround(fround(fround(dot) / s) * m.scale);
        }
      }
    },

    int8Matmul(mat: Int8Matrix, x: Float32Array, nTok: number, out: Float32Array): void {
      if (!int8s.has(mat)) throw new Error('int8Matmul: matrix was not made by this backend');
      const m = mat as RefInt8;
      const { rows, cols } = m;
      checkCount('int8Matmul nTok', nTok);
      checkLen('int8Matmul', 'x', x, nTok * cols);
      checkLen('int8Matmul', 'out', out, nTok * rows);
      const q = new Int8Array(cols);
      for (let t = 0; t < nTok; t++) {
        const s = actScale(x, t * cols, cols);
        quantizeRow(x, t * cols, cols, s, q, 0);
        for (let r = 0; r < rows; r++) {
          let dot = 0;
          const wo = r * cols;
          for (let c = 0; c < cols; c++) dot += m.q[wo + c]! * q[c]!;
          out[t * rows + r] = fround(fround(fround(dot) / s) * m.d[r]!);
        }
      }
    },

    int8Row(mat: Int8Matrix, row: number, out: Float32Array): void {
      if (!int8s.has(mat)) throw new Error('int8Row: matrix was not made by this backend');
      const m = mat as RefInt8;
      if (!Number.isInteger(row) || row < 0 || row >= m.rows) {
        throw new Error(`int8Row: row ${row} is out of range [0, ${m.rows})`);
      }
      checkLen('int8Row', 'out', out, m.cols);
      const d = m.d[row]!;
      const off = row * m.cols;
      for (let c = 0; c < m.cols; c++) out[c] = fround(m.q[off + c]! * d);
    },

    rmsnorm(x: Float32Array, weight: Float32Array, nTok: number, dim: number, eps: number, out: Float32Array): void {
      checkCount('rmsnorm nTok', nTok);
      checkPositive('rmsnorm dim', dim);
      checkLen('rmsnorm', 'x', x, nTok * dim);
      checkLen('rmsnorm', 'weight', weight, dim);
      checkLen('rmsnorm', 'out', out, nTok * dim);
      const e = fround(eps);
      for (let t = 0; t < nTok; t++) {
        const o = t * dim;
        // f32 squares summed in double over four lanes (element c to lane c % 4 for the first
        // dim & ~3 elements), combined as (l0 + l2) + (l1 + l3), then the tail in order: the
        // order of the SIMD kernel, so both give the same bits.
        const lanes = [0, 0, 0, 0];
        const body = dim & ~3;
        for (let c = 0; c < body; c++) {
          const v = x[o + c]!;
          lanes[c & 3] += fround(v * v);
        }
        let sum = (lanes[0]! + lanes[2]!) + (lanes[1]! + lanes[3]!);
        for (let c = body; c < dim; c++) {
          const v = x[o + c]!;
          sum += fround(v * v);
        }
        const mean = fround(sum / dim);
        const scale = fround(1 / fround(Math.sqrt(fround(mean + e))));
        for (let c = 0; c < dim; c++) out[o + c] = fround(fround(x[o + c]! * scale) * weight[c]!);
      }
    },

    gatedActivation(act, gate, up, n): void {
      checkCount('gatedActivation n', n);
      checkLen('gatedActivation', 'gate', gate, n);
      checkLen('gatedActivation', 'up', up, n);
      if (act === 'relu2') {
        for (let i = 0; i < n; i++) {
          const r = gate[i]! > 0 ? gate[i]! : 0;
          gate[i] = fround(fround(r * r) * up[i]!);
        }
      } else if (act === 'silu') {
        for (let i = 0; i < n; i++) gate[i] = (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!;
      } else {
        throw new Error(`gatedActivation: unknown activation '${String(act)}'`);
      }
    },

    addInPlace(x, y, n): void {
      checkCount('addInPlace n', n);
      checkLen('addInPlace', 'x', x, n);
      checkLen('addInPlace', 'y', y, n);
      for (let i = 0; i < n; i++) x[i] = fround(x[i]! + y[i]!);
    },

    rope(x, nTok, nHeads, headDim, half, pos0, cos, sin): void {
      checkRope(x, nTok, nHeads, headDim, half, pos0, cos, sin);
      for (let t = 0; t < nTok; t++) {
        const base = (pos0 + t) * half;
        for (let h = 0; h < nHeads; h++) {
          const o = (t * nHeads + h) * headDim;
          for (let i = 0; i < half; i++) {
            const a = x[o + i]!, b = x[o + i + half]!;
            const c = cos[base + i]!, s = sin[base + i]!;
            x[o + i] = a * c - b * s;
            x[o + i + half] = a * s + b * c;
          }
        }
      }
    },

    attentionRows(q, kCaches, vCaches, out, n, pos, nHeads, nKVHeads, headDim, cacheCtx): void {
      checkAttentionRows(q, kCaches, vCaches, out, n, pos, nHeads, nKVHeads, headDim, cacheCtx);
      const qs = nHeads * headDim;
      for (let r = 0; r < n; r++) {
        k.attention(q.subarray(r * qs, (r + 1) * qs), kCaches[r]!, vCaches[r]!, out.subarray(r * qs, (r + 1) * qs),
          1, pos[r]!, nHeads, nKVHeads, headDim, cacheCtx[r]!);
      }
    },

    attention(q, kCache, vCache, out, nTok, pos0, nHeads, nKVHeads, headDim, cacheCtx): void {
      checkAttention('attention', q, kCache, vCache, out, nTok, pos0, nHeads, nKVHeads, headDim, cacheCtx);
      const kc = widen(kCache), vc = widen(vCache);
      const qStride = nHeads * headDim;
      const group = nHeads / nKVHeads;
      const scale = 1 / Math.sqrt(headDim);
      const scores = new Float64Array(pos0 + nTok);
      for (let t = 0; t < nTok; t++) {
        const last = pos0 + t;
        for (let h = 0; h < nHeads; h++) {
          const qo = t * qStride + h * headDim;
          const ko = Math.floor(h / group) * cacheCtx * headDim; // head-major: (kv head, position, dim)
          let max = -Infinity;
          for (let p = 0; p <= last; p++) {
            let dot = 0;
            for (let i = 0; i < headDim; i++) dot += q[qo + i]! * kc(ko + p * headDim + i);
            scores[p] = dot * scale;
            if (scores[p]! > max) max = scores[p]!;
          }
          let sum = 0;
          for (let p = 0; p <= last; p++) sum += scores[p] = Math.exp(scores[p]! - max);
          for (let i = 0; i < headDim; i++) {
            let acc = 0;
            for (let p = 0; p <= last; p++) acc += scores[p]! * vc(ko + p * headDim + i);
            out[qo + i] = acc / sum;
          }
        }
      }
    },

    dispose(): void {},
  };
  return k;
}
