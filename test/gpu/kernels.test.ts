// The WGSL ops against their CPU references (src/kernels/reference.ts) on the same inputs:
// the integer ones (ternary and int8 matmul, activation quantization) bit for bit, on the packed
// dot (dot4I8Packed) and on the portable one; the float ones (RMSNorm) within a stated tolerance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testGpu } from '../helpers/gpu.js';
import { mulberry32 } from '../helpers/random.js';
import { createReferenceKernels, quantizeWeightRow } from '../../src/kernels/reference.js';
import { int8RowWords, int8Words, matmulWgsl, ternaryWords } from '../../src/gpu/shaders/matmul.js';
import { QUANTIZE_WGSL } from '../../src/gpu/shaders/quantize.js';
import { runShader, stepTable } from './run-shader.js';

const ref = createReferenceKernels();

/** f32 bits of each value, so that -0 / 0 and NaN payloads count as differences */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function firstDiff(a: Float32Array, b: Float32Array): string {
  const ba = bits(a), bb = bits(b);
  for (let i = 0; i < a.length; i++) if (ba[i] !== bb[i]) return `index ${i}: cpu ${a[i]} gpu ${b[i]}`;
  return 'none';
}

/** int8 activations of nTok rows of `dim` (wide and narrow rows, so scales vary) quantized by the CPU */
function cpuActs(rand: () => number, nTok: number, dim: number) {
  const x = new Float32Array(nTok * dim);
  for (let i = 0; i < x.length; i++) x[i] = (rand() - 0.5) * (1 + 40 * ((i / dim) | 0));
  const acts = ref.allocActs(nTok, dim);
  ref.quantize(x, nTok, dim, acts);
  // the GPU's layout: rows padded to int8Words(dim) words
  const words = int8Words(dim);
  const q = new Int8Array(nTok * words * 4);
  for (let t = 0; t < nTok; t++) q.set(acts.q.subarray(t * dim, (t + 1) * dim), t * words * 4);
  return { x, acts, q, words };
}

for (const portableDot of [false, true]) {
  const path = portableDot ? 'portable dot' : 'dot4I8Packed';

  test(`ternary matmul (${path}): the same bits as the CPU for the same int8 activations`, async (t) => {
    const ctx = await testGpu({ portableDot });
    if (typeof ctx === 'string') return t.skip(ctx);
    if (!portableDot && !ctx.packedDot) return t.skip('this adapter has no packed_4x8_integer_dot_product');
    const rand = mulberry32(20);
    for (const [rows, cols, nTok] of [[70, 256, 1], [33, 200, 5], [128, 1000, 9]] as const) {
      const codes = new Int8Array(rows * cols).map(() => Math.floor(rand() * 3) - 1);
      const scale = 0.5 + rand();
      const w = ref.ternaryMatrix(codes, rows, cols, scale);
      const { acts, q } = cpuActs(rand, nTok, cols);
      const want = new Float32Array(nTok * rows);
      ref.ternaryMatmul(w, acts, nTok, want);
      const maxRows = 16;
      const [out] = await runShader(ctx, matmulWgsl('ternary', ctx.packedDot), maxRows, [
        { uniform: [rows, Math.ceil(cols / 16), rows, 0, { f: Math.fround(scale) }, 0, 0] },
        { data: stepTable(maxRows, nTok, 0) },
        { data: ternaryWords(codes, rows, cols) },
        { data: q },
        { data: acts.scales },
        { data: acts.sums },
        { out: nTok * rows * 4 },
      ], [Math.ceil(rows / 64), Math.ceil(nTok / 4)]);
      const got = new Float32Array(out!.buffer);
      assert.deepEqual(bits(got), bits(want), `${rows}x${cols}, ${nTok} rows: first difference at ${firstDiff(want, got)}`);
    }
  });

  test(`int8 matmul, the output head (${path}): the same bits as the CPU`, async (t) => {
    const ctx = await testGpu({ portableDot });
    if (typeof ctx === 'string') return t.skip(ctx);
    if (!portableDot && !ctx.packedDot) return t.skip('this adapter has no packed_4x8_integer_dot_product');
    const rand = mulberry32(21);
    const rows = 300, cols = 136, nTok = 3;
    const dense = new Float32Array(rows * cols).map(() => (rand() - 0.5) * 0.2);
    const m = ref.int8Matrix(rows, cols, (r, out) => out.set(dense.subarray(r * cols, (r + 1) * cols)));
    const { x } = cpuActs(rand, nTok, cols);
    const want = new Float32Array(nTok * rows);
    ref.int8Matmul(m, x, nTok, want);
    // the GPU's inputs: the same weight quantization, the activations quantized by the CPU
    const words = int8Words(cols);
    const wq = new Int8Array(rows * words * 4);
    const d = new Float32Array(rows);
    for (let r = 0; r < rows; r++) d[r] = quantizeWeightRow(dense.subarray(r * cols, (r + 1) * cols), cols, wq, r * words * 4);
    const acts = ref.allocActs(nTok, cols);
    ref.quantize(x, nTok, cols, acts);
    const q = new Int8Array(nTok * words * 4);
    for (let i = 0; i < nTok; i++) q.set(acts.q.subarray(i * cols, (i + 1) * cols), i * words * 4);
    const maxRows = 4;
    const [out] = await runShader(ctx, matmulWgsl('int8', ctx.packedDot), maxRows, [
      { uniform: [rows, words, rows, 0, { f: 1 }, 0, 1] },
      { data: stepTable(maxRows, nTok, nTok) },
      { data: int8RowWords(wq, rows, cols) },
      { data: q },
      { data: acts.scales },
      { data: d },
      { out: nTok * rows * 4 },
    ], [Math.ceil(rows / 64), 1]);
    const got = new Float32Array(out!.buffer);
    assert.deepEqual(bits(got), bits(want), `first difference at ${firstDiff(want, got)}`);
  });
}

test('quantize: the same int8 values, scales and sums as the CPU; with RMSNorm in front, within 1 step', async (t) => {
  const ctx = await testGpu();
  if (typeof ctx === 'string') return t.skip(ctx);
  const rand = mulberry32(22);
  const dim = 200, nTok = 5, maxRows = 8;
  const { x, acts, words } = cpuActs(rand, nTok, dim);
  x[3] = 0; // exact ties of x * s would be rare; zeros, tiny rows and the 1e-5 floor are covered below
  x.fill(1e-7, 4 * dim, 5 * dim); // a row under the 1e-5 floor of max|x|
  ref.quantize(x, nTok, dim, acts);
  const gamma = new Float32Array(dim).map(() => 0.5 + rand());
  for (const norm of [0, 1]) {
    const [q, scales, sums] = await runShader(ctx, QUANTIZE_WGSL, maxRows, [
      { uniform: [dim, words, { f: 1e-5 }, norm] },
      { data: stepTable(maxRows, nTok, 0) },
      { data: x },
      { data: gamma },
      { out: nTok * words * 4 },
      { out: nTok * 4 },
      { out: nTok * 4 },
    ], [nTok, 1]);
    const gq = new Int8Array(q!.buffer), gs = new Float32Array(scales!.buffer), gsum = new Int32Array(sums!.buffer);
    if (norm === 0) {
      for (let r = 0; r < nTok; r++) {
        assert.deepEqual(gq.subarray(r * words * 4, r * words * 4 + dim), acts.q.subarray(r * dim, (r + 1) * dim), `row ${r}`);
        assert.equal(gs[r], acts.scales[r], `row ${r} scale`);
        assert.equal(gsum[r], acts.sums[r], `row ${r} sum`);
      }
    } else {
      // the norm's sum of squares is f32 here and double on the CPU: the normed values may differ in
      // their last bits, so a value lying near a rounding boundary may round the other way
      const xn = new Float32Array(nTok * dim);
      ref.rmsnorm(x, gamma, nTok, dim, 1e-5, xn);
      const a2 = ref.allocActs(nTok, dim);
      ref.quantize(xn, nTok, dim, a2);
      for (let r = 0; r < nTok; r++) {
        for (let k = 0; k < dim; k++) {
          const d = Math.abs(gq[r * words * 4 + k]! - a2.q[r * dim + k]!);
          assert.ok(d <= 1, `row ${r} element ${k}: gpu ${gq[r * words * 4 + k]} cpu ${a2.q[r * dim + k]}`);
        }
        assert.ok(Math.abs(gs[r]! - a2.scales[r]!) <= 1e-5 * a2.scales[r]!, `row ${r} scale ${gs[r]} vs ${a2.scales[r]}`);
      }
    }
  }
});
