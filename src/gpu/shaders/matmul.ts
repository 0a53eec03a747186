// The integer matmuls: ternary weights (every BitLinear) and int8 rows (the int8 output head), both
// against int8 activations packed four to a u32 (quantize.ts). One thread per output row and tile of
// 4 batch rows, 64 rows to a workgroup; each thread sums its whole row, exact in i32, with no
// barrier (SwiftShader pays dearly for each one). The weights are stored word-major (word w of every
// row, then word w + 1), so the 64 threads of a workgroup read 64 consecutive words at each step,
// and all read the same activation word.
//   CPU references: Kernels.ternaryMatmul and Kernels.int8Matmul (kernels/reference.ts):
//   ternary: out[t][r] = f32(f32(dot) / s_t) * alpha,   dot = sum_k T[r][k] q[t][k]
//   int8:    out[t][r] = f32(f32(dot) / s_t) * d_r,     dot = sum_k M[r][k] q[t][k]
// with the division exact (common.ts), so both give the CPU's bits.
//
// Ternary words (ternaryWords below): ceil(cols / 16) per row; word w of row r, at w * rows + r,
// covers elements 16w .. 16w+15, element 16w + 4i + j at bits 8j + 2i as the code c = T + 1
// (0, 1, 2; zero past cols). (w >> 2i) & 0x03030303 is then four bytes c that line up with
// activation word 4w + i, and sum c q - sum q = sum T q (the trick bitnet.cpp uses: c is never negative).
// Int8 words (int8RowWords): ceil(cols / 16) * 4 per row, four int8 each (zero past cols), at w * rows + r.
// `n_slot` says which count of rows the batch has (common.ts: 0 all rows, 1 the logits rows).
// `accumulate` adds the result to out instead (out = f32(out + v): the residual add, fused).
import { DIV_EXACT, META, dot4 } from './common.js';

export function matmulWgsl(kind: 'ternary' | 'int8', packedDot: boolean): string {
  const ternary = kind === 'ternary';
  return /* wgsl */ `
struct Params { rows: u32, words: u32, out_stride: u32, out_off: u32, scale: f32, accumulate: u32, n_slot: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read> wts: array<u32>;
@group(0) @binding(3) var<storage, read> q: array<u32>;
@group(0) @binding(4) var<storage, read> scales: array<f32>;
@group(0) @binding(5) var<storage, read> ${ternary ? 'sums: array<i32>' : 'row_scale: array<f32>'};
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
${META}
${DIV_EXACT}
${dot4(packedDot)}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= p.rows) { return; }
  let t0 = gid.y * 4u;
  let n = step[p.n_slot]; // the batch's rows (step[0]) or its logits rows (step[1])
  // activation words per batch row; rows past the batch read its last row (results not stored)
  let aw = ${ternary ? '4u * p.words' : 'p.words'};
  let a0 = min(t0, n - 1u) * aw;
  let a1 = min(t0 + 1u, n - 1u) * aw;
  let a2 = min(t0 + 2u, n - 1u) * aw;
  let a3 = min(t0 + 3u, n - 1u) * aw;
  var acc = vec4<i32>(0);
  for (var w = 0u; w < p.words; w = w + 1u) {
    let wv = wts[w * p.rows + row];
${ternary ? `    for (var i = 0u; i < 4u; i = i + 1u) {
      let c = (wv >> (2u * i)) & 0x03030303u;
      let k = 4u * w + i;
      acc = acc + vec4<i32>(dot4(c, q[a0 + k]), dot4(c, q[a1 + k]), dot4(c, q[a2 + k]), dot4(c, q[a3 + k]));
    }` : `    acc = acc + vec4<i32>(dot4(wv, q[a0 + w]), dot4(wv, q[a1 + w]), dot4(wv, q[a2 + w]), dot4(wv, q[a3 + w]));`}
  }
  for (var tt = 0u; tt < 4u; tt = tt + 1u) {
    let t = t0 + tt;
    if (t >= n) { break; }
${ternary ? `    let v = rescale(acc[tt] - sums[t], scales[t]) * p.scale;` : `    let v = rescale(acc[tt], scales[t]) * row_scale[row];`}
    let o = t * p.out_stride + p.out_off + row;
    if (p.accumulate != 0u) { out[o] = out[o] + v; } else { out[o] = v; }
  }
}
`;
}

/** Packs ternary codes T (-1/0/+1, row-major rows x cols) into the layout above. */
export function ternaryWords(codes: Int8Array, rows: number, cols: number): Uint32Array {
  const words = Math.ceil(cols / 16);
  const out = new Uint32Array(rows * words);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    for (let w = 0; w < words; w++) {
      let v = 0;
      for (let e = 0; e < 16; e++) {
        const k = 16 * w + e;
        if (k >= cols) break;
        const i = e >> 2, j = e & 3;
        v |= (codes[src + k]! + 1) << (8 * j + 2 * i);
      }
      out[w * rows + r] = v >>> 0;
    }
  }
  return out;
}

/** Activation (or int8 row) words per row of `cols` values: padded to a multiple of 16 values. */
export function int8Words(cols: number): number {
  return Math.ceil(cols / 16) * 4;
}

/** Reorders int8 rows (row-major, int8Words(cols) words a row) word-major, as the matmul reads them. */
export function int8RowWords(q: Int8Array, rows: number, cols: number): Uint32Array {
  const words = int8Words(cols);
  const src = new Uint32Array(q.buffer, q.byteOffset, rows * words);
  const out = new Uint32Array(rows * words);
  for (let r = 0; r < rows; r++) for (let w = 0; w < words; w++) out[w * rows + r] = src[r * words + w]!;
  return out;
}
