// rmsnorm of the rows whose logits are asked for, gathered: out[m] = RMSNorm(x[out_row(m)]) * gamma.
// One workgroup of 64 threads per output row. CPU reference: Kernels.rmsnorm (kernels/reference.ts),
// which sums the squares in double: here f32 in a tree, so within a few ulp of it, not the same bits.
import { META, REDUCE } from './common.js';

export const RMSNORM_WGSL = /* wgsl */ `
struct Params { dim: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
${META}
${REDUCE}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let m = wg.x;
  let src = out_row(m) * p.dim;
  var ss = 0.0;
  for (var i = tid; i < p.dim; i = i + 64u) { let v = x[src + i]; ss = ss + v * v; }
  let total = sum_f(ss, tid);
  let scale = 1.0 / sqrt(total / f32(p.dim) + p.eps);
  for (var i = tid; i < p.dim; i = i + 64u) { out[m * p.dim + i] = x[src + i] * scale * gamma[i]; }
}
`;
