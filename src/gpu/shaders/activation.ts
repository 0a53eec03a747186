// The gated FFN activation in place over (rows, nFF): gate = act(gate) * up, act = relu(x)^2 (exact:
// the CPU's bits) or silu (x * sigmoid(x), f32 here against the CPU's double). CPU reference:
// Kernels.gatedActivation.
import { META } from './common.js';

export const ACTIVATION_WGSL = /* wgsl */ `
struct Params { n_ff: u32, silu: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;
@group(0) @binding(3) var<storage, read> up: array<f32>;
${META}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let i = wg.x * 64u + tid;
  if (i >= p.n_ff || wg.y >= n_rows()) { return; }
  let o = wg.y * p.n_ff + i;
  let g = gate[o];
  if (p.silu != 0u) {
    gate[o] = g / (1.0 + exp(-g)) * up[o];
  } else {
    let rl = max(g, 0.0);
    gate[o] = rl * rl * up[o];
  }
}
`;
