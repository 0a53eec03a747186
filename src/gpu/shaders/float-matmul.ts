// The output head at full precision: f16 rows (two to a u32, unpacked with unpack2x16float, so no
// shader-f16 feature is needed) or f32 rows, times f32 activations, no quantization. One thread per
// head row and tile of 4 rows, 64 rows to a workgroup, weights word-major (as matmul.ts). CPU
// reference: Kernels.floatMatmul, which sums in another fixed order: so within a few ulp of it.
import { META } from './common.js';

export function floatMatmulWgsl(f16: boolean): string {
  return /* wgsl */ `
struct Params { rows: u32, cols: u32, out_stride: u32, out_off: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read> wts: array<${f16 ? 'u32' : 'f32'}>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
${META}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= p.rows) { return; }
  let t0 = gid.y * 4u;
  let n = step[1];
  let x0 = min(t0, n - 1u) * p.cols;
  let x1 = min(t0 + 1u, n - 1u) * p.cols;
  let x2 = min(t0 + 2u, n - 1u) * p.cols;
  let x3 = min(t0 + 3u, n - 1u) * p.cols;
  var acc = vec4<f32>(0.0);
${f16 ? `  // rows padded to an even count of values: (cols + 1) / 2 words a row, word w of row r at w * rows + r
  let words = (p.cols + 1u) / 2u;
  for (var w = 0u; w < words; w = w + 1u) {
    let v = unpack2x16float(wts[w * p.rows + row]);
    let k = 2u * w;
    acc = acc + v.x * vec4<f32>(x[x0 + k], x[x1 + k], x[x2 + k], x[x3 + k]);
    if (k + 1u < p.cols) { acc = acc + v.y * vec4<f32>(x[x0 + k + 1u], x[x1 + k + 1u], x[x2 + k + 1u], x[x3 + k + 1u]); }
  }` : `  for (var k = 0u; k < p.cols; k = k + 1u) {
    let v = wts[k * p.rows + row];
    acc = acc + v * vec4<f32>(x[x0 + k], x[x1 + k], x[x2 + k], x[x3 + k]);
  }`}
  for (var tt = 0u; tt < 4u; tt = tt + 1u) {
    let t = t0 + tt;
    if (t >= n) { break; }
    out[t * p.out_stride + p.out_off + row] = acc[tt];
  }
}
`;
}
