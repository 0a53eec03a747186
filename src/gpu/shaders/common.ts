// WGSL shared by the shaders: the batch's per-row data, the exact division, the packed int8 dot.
//
// Every shader binds `step`, the step's small table written once per step (see forward.ts):
//   step[0] = rows in the batch, step[1] = rows whose logits are asked for,
//   step[4 + r] = row r's position, step[4 + MAX_ROWS + r] = the start of its sequence's range in
//   the KV pool, step[4 + 2 * MAX_ROWS + m] = the row of the m-th logits row.
export const META = /* wgsl */ `
override MAX_ROWS: u32 = 1u;
fn n_rows() -> u32 { return step[0]; }
fn row_pos(r: u32) -> u32 { return step[4u + r]; }
fn row_start(r: u32) -> u32 { return step[4u + MAX_ROWS + r]; }
fn out_row(m: u32) -> u32 { return step[4u + 2u * MAX_ROWS + m]; }
`;

// WGSL's f32 division may be off by 2.5 ulp; the CPU path's is correctly rounded. The rescale of an
// integer dot (dot / s) and the activation scale (127 / max|x|) go through this long division of the
// mantissas instead, so they give the CPU's bits (reference: kernels/reference.ts).
export const DIV_EXACT = /* wgsl */ `
// a / b rounded to nearest even, for finite positive normal a and b whose quotient is normal
fn div_exact(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let mb = (ub & 0x7fffffu) | 0x800000u;
  var r = (ua & 0x7fffffu) | 0x800000u;
  var e = i32((ua >> 23u) & 0xffu) - i32((ub >> 23u) & 0xffu);
  if (r < mb) { r = r << 1u; e = e - 1; }
  // 24 quotient bits (1.xxx) and one more for rounding; the remainder left says whether any bit below is set
  var q = 0u;
  for (var i = 0u; i < 25u; i = i + 1u) {
    q = q << 1u;
    if (r >= mb) { r = r - mb; q = q | 1u; }
    r = r << 1u;
  }
  let half = q & 1u;
  q = q >> 1u;
  if (half == 1u && (r != 0u || (q & 1u) == 1u)) { q = q + 1u; }
  if (q == 0x1000000u) { q = q >> 1u; e = e + 1; }
  return bitcast<f32>((u32(e + 127) << 23u) | (q & 0x7fffffu));
}

// f32(dot) / s as the CPU computes it (0 for a zero dot)
fn rescale(dot: i32, s: f32) -> f32 {
  if (dot == 0) { return 0.0; }
  let v = div_exact(f32(abs(dot)), s);
  return select(v, -v, dot < 0);
}
`;

/** The dot of four signed bytes: the built-in where the WGSL feature exists, else unpacked by hand. */
export function dot4(packed: boolean): string {
  return packed
    ? /* wgsl */ `fn dot4(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }`
    : /* wgsl */ `fn dot4(a: u32, b: u32) -> i32 {
  let ia = bitcast<i32>(a);
  let ib = bitcast<i32>(b);
  let va = vec4<i32>(extractBits(ia, 0u, 8u), extractBits(ia, 8u, 8u), extractBits(ia, 16u, 8u), extractBits(ia, 24u, 8u));
  let vb = vec4<i32>(extractBits(ib, 0u, 8u), extractBits(ib, 8u, 8u), extractBits(ib, 16u, 8u), extractBits(ib, 24u, 8u));
  return dot(va, vb);
}`;
}

/** Tree reductions over a workgroup of 64 threads (call from uniform control flow). */
export const REDUCE = /* wgsl */ `
var<workgroup> red_f: array<f32, 64>;
var<workgroup> red_i: array<i32, 64>;
fn sum_f(v: f32, tid: u32) -> f32 {
  red_f[tid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_f[tid] = red_f[tid] + red_f[tid + s]; }
    workgroupBarrier();
  }
  let r = red_f[0];
  workgroupBarrier();
  return r;
}
fn max_f(v: f32, tid: u32) -> f32 {
  red_f[tid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_f[tid] = max(red_f[tid], red_f[tid + s]); }
    workgroupBarrier();
  }
  let r = red_f[0];
  workgroupBarrier();
  return r;
}
fn sum_i(v: i32, tid: u32) -> i32 {
  red_i[tid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_i[tid] = red_i[tid] + red_i[tid + s]; }
    workgroupBarrier();
  }
  let r = red_i[0];
  workgroupBarrier();
  return r;
}
`;
