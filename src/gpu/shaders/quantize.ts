// quantize (with an optional RMSNorm in front): one workgroup per row t of x (rows, dim).
//   CPU references: Kernels.rmsnorm then Kernels.quantize (kernels/reference.ts).
//   v_k = norm ? x_k * rsqrt(mean(x^2) + eps) * gamma_k : x_k
//   s = 127 / max(max_k |v_k|, 1e-5)  (exact division);  q_k = clamp(round_half_even(v_k * s), -128, 127)
// Output: q packed four int8 to a u32 (element 4w + j in byte j of word w), words per row padded
// with zeros to a multiple of 4 (what the matmuls read); scales[t] = s, sums[t] = sum_k q_k.
// The quantization is exact (the same bits as the CPU given the same v); the norm's sum of squares
// runs in f32 in another order than the CPU's double, so v may differ from it in the last bits.
import { DIV_EXACT, META, REDUCE } from './common.js';

export const QUANTIZE_WGSL = /* wgsl */ `
struct Params { dim: u32, words: u32, eps: f32, norm: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<u32>;
@group(0) @binding(5) var<storage, read_write> scales: array<f32>;
@group(0) @binding(6) var<storage, read_write> sums: array<i32>;
${META}
${DIV_EXACT}
${REDUCE}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wg.x;
  let base = t * p.dim;
  var ss = 0.0;
  if (p.norm != 0u) {
    for (var i = tid; i < p.dim; i = i + 64u) { let v = x[base + i]; ss = ss + v * v; }
  }
  let total = sum_f(ss, tid);
  var scale = 1.0;
  if (p.norm != 0u) { scale = 1.0 / sqrt(total / f32(p.dim) + p.eps); }

  var m = 0.0;
  for (var i = tid; i < p.dim; i = i + 64u) {
    var v = x[base + i];
    if (p.norm != 0u) { v = v * scale * gamma[i]; }
    m = max(m, abs(v));
  }
  let amax = max_f(m, tid);
  let s = div_exact(127.0, max(amax, 1e-5));

  var sum = 0;
  for (var w = tid; w < p.words; w = w + 64u) {
    var word = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) {
      let k = w * 4u + j;
      var qv = 0;
      if (k < p.dim) {
        var v = x[base + k];
        if (p.norm != 0u) { v = v * scale * gamma[k]; }
        qv = i32(clamp(round(v * s), -128.0, 127.0));
      }
      sum = sum + qv;
      word = word | ((u32(qv) & 0xffu) << (8u * j));
    }
    q[t * p.words + w] = word;
  }
  let total_q = sum_i(sum, tid);
  if (tid == 0u && t < n_rows()) {
    scales[t] = s;
    sums[t] = total_q;
  }
}
`;
