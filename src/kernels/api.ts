// The compute interface the model is written against. Two implementations: the plain
// TypeScript reference (src/kernels/reference.ts, also the documentation of the math) and the
// WebAssembly SIMD backend (src/kernels/wasm-backend.ts) that runs on shared memory with a worker pool.
//
// Buffers are Float32Array/Int8Array views into the backend's memory, allocated once at load
// (nothing is allocated in the token loop). Shapes are row-major [tokens][features].

/** Ternary weight matrix W (rows = outputs, cols = inputs), W = scale * T, T in {-1,0,+1}. */
export interface TernaryMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly scale: number;
}

/** Dense matrix held as int8 with one f32 scale per row (embedding / lm_head). */
export interface Int8Matrix {
  readonly rows: number;
  readonly cols: number;
}

/** Dense float matrix, f16 or f32 elements as given (the output head at full precision). */
export interface FloatMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly type: 'f16' | 'f32';
}

/** Per-token int8 activations (SPEC.md §2): q = clamp(round_half_even(x * s), -128, 127), s = 127 / max(max|x|, 1e-5). */
export interface QuantizedActs {
  readonly capacity: number; // max tokens
  readonly dim: number;
  readonly q: Int8Array; // [capacity * dim]
  readonly scales: Float32Array; // [capacity] s per token
  readonly sums: Int32Array; // [capacity] sum of q per token
}

export interface Kernels {
  /** 'reference' | 'wasm-relaxed' | 'wasm-simd' */
  readonly name: string;
  readonly threads: number;

  allocF32(n: number): Float32Array;
  /** n f16 values (their bits), e.g. an f16 KV cache. */
  allocF16(n: number): Uint16Array;
  allocActs(capacity: number, dim: number): QuantizedActs;

  /** Takes ternary codes (-1/0/+1, row-major [rows][cols]) into the layout the kernel reads fastest. */
  ternaryMatrix(codes: Int8Array, rows: number, cols: number, scale: number): TernaryMatrix;
  /** Takes a dense f32 matrix [rows][cols] (given row by row, to avoid one huge copy) as int8 + per-row scales. */
  int8Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): Int8Matrix;

  /** Takes a dense matrix of f16 values (their bits, given row by row); inf/NaN halves are refused. */
  f16Matrix(rows: number, cols: number, getRow: (r: number, out: Uint16Array) => void): FloatMatrix;
  /** Takes a dense f32 matrix (given row by row). */
  f32Matrix(rows: number, cols: number, getRow: (r: number, out: Float32Array) => void): FloatMatrix;

  /** acts[t] = quantize(x[t]) for t < nTok. */
  quantize(x: Float32Array, nTok: number, dim: number, acts: QuantizedActs): void;
  /** out[t][r] = W.scale / acts.scales[t] * sum_k T[r][k] * q[t][k], for t < nTok. Exact integer dot. */
  ternaryMatmul(w: TernaryMatrix, acts: QuantizedActs, nTok: number, out: Float32Array): void;
  /** ternaryMatmul(ws[i], acts, nTok, outs[i]) for every i (matrices of the same width reading the
   *  same activations: q, k, v; gate, up), as one job where the backend can: the same bits. */
  ternaryMatmuls(ws: readonly TernaryMatrix[], acts: QuantizedActs, nTok: number, outs: readonly Float32Array[]): void;
  /** out[t][r] ~= sum_k M[r][k] * x[t][k] (the lm_head); x is quantized internally per token. */
  int8Matmul(m: Int8Matrix, x: Float32Array, nTok: number, out: Float32Array): void;
  /** out[t][r] = sum_k M[r][k] * x[t][k] in f32, summed in the lane order of reference.ts floatDot (no quantization). */
  floatMatmul(m: FloatMatrix, x: Float32Array, nTok: number, out: Float32Array): void;
  /** out = M[row] as f32 (embedding lookup). */
  int8Row(m: Int8Matrix, row: number, out: Float32Array): void;

  /** out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * weight, for t < nTok (out may be x). */
  rmsnorm(x: Float32Array, weight: Float32Array, nTok: number, dim: number, eps: number, out: Float32Array): void;

  /** gate[i] = act(gate[i]) * up[i] for i < n: act = relu(x)^2 ('relu2', exact) or x * sigmoid(x) ('silu'). */
  gatedActivation(act: 'relu2' | 'silu', gate: Float32Array, up: Float32Array, n: number): void;
  /** x[i] += y[i] for i < n (the residual add; exact). */
  addInPlace(x: Float32Array, y: Float32Array, n: number): void;

  /**
   * NEOX rotary embedding in place. x: (nTok, nHeads * headDim); token t sits at position pos0 + t.
   * In each head, pairs (i, i + half) for i < half rotate by the angle of table row pos:
   *   (a, b) -> (a c - b s, a s + b c),  c = cos[pos * half + i], s = sin[pos * half + i]
   * computed in f64 and rounded once to f32 (exact: every path gives the same bits).
   */
  rope(x: Float32Array, nTok: number, nHeads: number, headDim: number, half: number, pos0: number,
       cos: Float32Array, sin: Float32Array): void;

  /**
   * Causal grouped-query attention of nTok query rows at positions pos0 .. pos0+nTok-1 over a KV
   * cache holding positions 0 .. pos0+nTok-1 (the batch's own keys included):
   *   out[t,h] = softmax_p(q[t,h] . k[g,p] / sqrt(headDim)) . v[g,p],  p <= pos0+t,  g = h / (nHeads/nKVHeads)
   * q, out: (nTok, nHeads*headDim); kCache, vCache: head-major (nKVHeads, cacheCtx, headDim), so each
   * kv head's positions are one contiguous block; both f32 or both f16 (Uint16Array of f16 bits,
   * widened exactly to f32 as they are read). Float math (not exact).
   */
  attention(
    q: Float32Array, kCache: Float32Array | Uint16Array, vCache: Float32Array | Uint16Array, out: Float32Array,
    nTok: number, pos0: number, nHeads: number, nKVHeads: number, headDim: number, cacheCtx: number,
  ): void;

  /**
   * attention() of a ragged batch of n single query rows, each over its own cache: row r of q and out
   * sits at position pos[r] of the sequence whose caches are kCaches[r], vCaches[r] (cacheCtx[r] between
   * kv heads). Row r's output has the bits of attention() called for that row alone (nTok 1), whatever
   * else is in the batch; the batch is one call instead of one per row.
   */
  attentionRows(
    q: Float32Array, kCaches: readonly (Float32Array | Uint16Array)[], vCaches: readonly (Float32Array | Uint16Array)[], out: Float32Array,
    n: number, pos: ArrayLike<number>, nHeads: number, nKVHeads: number, headDim: number, cacheCtx: ArrayLike<number>,
  ): void;

  /** Frees worker threads. */
  dispose(): void;
}
