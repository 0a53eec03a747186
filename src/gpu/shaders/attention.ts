// Causal grouped-query attention, one workgroup of 64 threads per (head, batch row):
//   out[r,h] = softmax_p(q[r,h] . k[g,p] / sqrt(headDim)) . v[g,p],  p <= pos(r),  g = h / (nHeads / nKV)
// over the row's sequence in the KV pool (rope-store.ts gives the layout). The scores go through a
// scratch buffer (row, head, maxPos). CPU reference: Kernels.attention, which works in double: here
// f32, so within about 1e-5 relative.
import { META, REDUCE } from './common.js';

export const ATTENTION_WGSL = /* wgsl */ `
struct Params { n_heads: u32, n_kv: u32, head_dim: u32, pool_size: u32, max_pos: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read> qb: array<f32>;
@group(0) @binding(3) var<storage, read> kc: array<f32>;
@group(0) @binding(4) var<storage, read> vc: array<f32>;
@group(0) @binding(5) var<storage, read_write> att: array<f32>;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
${META}
${REDUCE}
var<workgroup> qs: array<f32, 256>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let r = wg.y;
  let hd = p.head_dim;
  let g = h / (p.n_heads / p.n_kv);
  let last = row_pos(r);
  let kbase = (g * p.pool_size + row_start(r)) * hd;
  let qo = (r * p.n_heads + h) * hd;
  let sbase = (r * p.n_heads + h) * p.max_pos;
  for (var i = tid; i < hd; i = i + 64u) { qs[i] = qb[qo + i]; }
  workgroupBarrier();
  var m = -3.4e38;
  for (var pp = tid; pp <= last; pp = pp + 64u) {
    var dot = 0.0;
    let ko = kbase + pp * hd;
    for (var i = 0u; i < hd; i = i + 1u) { dot = dot + qs[i] * kc[ko + i]; }
    let s = dot * p.scale;
    scores[sbase + pp] = s;
    m = max(m, s);
  }
  let mx = max_f(m, tid);
  var sum = 0.0;
  for (var pp = tid; pp <= last; pp = pp + 64u) {
    let e = exp(scores[sbase + pp] - mx);
    scores[sbase + pp] = e;
    sum = sum + e;
  }
  let total = sum_f(sum, tid);
  storageBarrier();
  workgroupBarrier();
  for (var d = tid; d < hd; d = d + 64u) {
    var acc = 0.0;
    for (var pp = 0u; pp <= last; pp = pp + 1u) { acc = acc + scores[sbase + pp] * vc[kbase + pp * hd + d]; }
    att[qo + d] = acc / total;
  }
}
`;
