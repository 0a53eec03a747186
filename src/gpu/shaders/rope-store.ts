// NEOX RoPE on the batch's queries (in place) and keys, and the keys and values written into the
// KV pool at each row's position. CPU references: Kernels.rope and KVCache.write.
//   in each head, pairs (i, i + half), i < half, turn by the angle of the row's position:
//   (a, b) -> (a c - b s, a s + b c), c = cs[pos * half + i], s = cs[sin_off + pos * half + i]
//   (the CPU's table, uploaded). The CPU computes each pair in double and rounds once; here f32,
//   so within an ulp or two.
// Pool layout (kv-cache.ts): per layer (kv head, pool position, headDim), pool_size positions per
// head; a row's position p of head g sits at ((g * pool_size) + start + p) * headDim.
// Threads per batch row: nHeads * half query pairs, then kvDim keys, then kvDim values.
import { META } from './common.js';

export const ROPE_STORE_WGSL = /* wgsl */ `
struct Params { n_heads: u32, n_kv: u32, head_dim: u32, half: u32, pool_size: u32, sin_off: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read_write> qb: array<f32>;
@group(0) @binding(3) var<storage, read> kb: array<f32>;
@group(0) @binding(4) var<storage, read> vb: array<f32>;
@group(0) @binding(5) var<storage, read_write> kc: array<f32>;
@group(0) @binding(6) var<storage, read_write> vc: array<f32>;
@group(0) @binding(7) var<storage, read> cs: array<f32>;
${META}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let r = wg.y;
  let idx = wg.x * 64u + tid;
  let hd = p.head_dim;
  let kv_dim = p.n_kv * hd;
  let nq = p.n_heads * p.half;
  let pos = row_pos(r);
  let tab = pos * p.half;
  if (idx < nq) {
    let h = idx / p.half;
    let i = idx % p.half;
    let o = (r * p.n_heads + h) * hd + i;
    let a = qb[o];
    let b = qb[o + p.half];
    let c = cs[tab + i];
    let s = cs[p.sin_off + tab + i];
    qb[o] = a * c - b * s;
    qb[o + p.half] = a * s + b * c;
    return;
  }
  let e = idx - nq;
  if (e >= 2u * kv_dim) { return; }
  let is_v = e >= kv_dim;
  let el = select(e, e - kv_dim, is_v);
  let g = el / hd;
  let d = el % hd;
  let dst = (g * p.pool_size + row_start(r) + pos) * hd + d;
  let src = r * kv_dim + el;
  if (is_v) { vc[dst] = vb[src]; return; }
  var v = kb[src];
  if (d < p.half) {
    let c = cs[tab + d];
    let s = cs[p.sin_off + tab + d];
    v = kb[src] * c - kb[src + p.half] * s;
  } else if (d < 2u * p.half) {
    let c = cs[tab + d - p.half];
    let s = cs[p.sin_off + tab + d - p.half];
    v = kb[src - p.half] * s + kb[src] * c;
  }
  kc[dst] = v;
}
`;
