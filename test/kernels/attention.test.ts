// Kernels.attention: the WebAssembly kernel against the float64 reference. Not bit-exact (f32
// lane-order dots, a polynomial exp): |delta| <= 2e-5 relative to the output scale, checked on random
// shapes incl. odd head dims, GQA groups, batches that attend to their own keys, 1 and 2 threads,
// caches with room past the attended positions (filled with NaN: a read there would show), and
// decode steps long enough to be cut into position splits and merged (2 threads).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Kernels } from '../../src/kernels/api.js';
import { availablePaths, createKernels } from '../../src/node/kernels.js';
import { createReferenceKernels } from '../../src/kernels/reference.js';
import { f16ToF32, f32ToF16 } from '../../src/formats/half.js';

const ref = createReferenceKernels();
let seed = 7;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const floats = (n: number, s = 1) => Float32Array.from({ length: n }, () => rand() * s);
const made: Kernels[] = [];
after(() => made.forEach((k) => k.dispose()));

const CASES = [
  { nTok: 1, pos0: 0, nHeads: 4, nKV: 2, headDim: 64 },
  { nTok: 1, pos0: 37, nHeads: 20, nKV: 5, headDim: 128 },
  { nTok: 17, pos0: 0, nHeads: 4, nKV: 1, headDim: 32 },
  { nTok: 5, pos0: 11, nHeads: 6, nKV: 3, headDim: 10 }, // head dim not a multiple of 4
  { nTok: 3, pos0: 200, nHeads: 2, nKV: 2, headDim: 8 },
  // sharp softmax: scores spread over hundreds, so most e^(s - max) underflow (the SIMD exp's clamp)
  { nTok: 2, pos0: 61, nHeads: 4, nKV: 2, headDim: 32, qScale: 40 },
  // several blocks of V positions, for head pairs and for a group's odd head out
  { nTok: 2, pos0: 150, nHeads: 4, nKV: 1, headDim: 64 },
  { nTok: 1, pos0: 70, nHeads: 3, nKV: 1, headDim: 32 },
  // cache capacity beyond the attended positions
  { nTok: 3, pos0: 9, nHeads: 4, nKV: 2, headDim: 16, ctx: 40 },
  // decode steps that 2 threads cut into position splits (2, 4 and 2 of them), incl. an odd head dim
  { nTok: 1, pos0: 700, nHeads: 20, nKV: 5, headDim: 128, ctx: 720 },
  { nTok: 1, pos0: 600, nHeads: 4, nKV: 1, headDim: 64 },
  { nTok: 2, pos0: 300, nHeads: 2, nKV: 1, headDim: 10, ctx: 305 },
];

type Case = (typeof CASES)[number] & { ctx?: number; qScale?: number };

/** Head-major caches (nKV, ctx, headDim) of random values, NaN past the attended positions. */
function caches(c: Case, make: (n: number) => Float32Array): { kc: Float32Array; vc: Float32Array; ctx: number } {
  const len = c.pos0 + c.nTok, ctx = c.ctx ?? len;
  const kc = make(c.nKV * ctx * c.headDim), vc = make(c.nKV * ctx * c.headDim);
  kc.set(floats(kc.length, 2)); vc.set(floats(vc.length));
  for (let g = 0; g < c.nKV; g++) {
    kc.fill(NaN, (g * ctx + len) * c.headDim, (g + 1) * ctx * c.headDim);
    vc.fill(NaN, (g * ctx + len) * c.headDim, (g + 1) * ctx * c.headDim);
  }
  return { kc, vc, ctx };
}

/** One test per kernel path and thread count (1, 2), each with its own kernels. */
function onEveryPath(title: string, body: (k: Kernels) => void): void {
  for (const path of ['relaxed', 'simd'] as const) {
    for (const threads of [1, 2]) {
      test(`${title} (${path}, ${threads} thread${threads > 1 ? 's' : ''})`, async (t) => {
        if (!(await availablePaths()).includes(path)) return t.skip(`${path} not available`);
        const k = await createKernels({ path, threads, minParallelWork: 0 });
        made.push(k);
        body(k);
      });
    }
  }
}

onEveryPath('attention matches the reference', (k) => {
  for (const c of CASES as Case[]) {
    const qd = c.nHeads * c.headDim;
    const q = k.allocF32(c.nTok * qd), out = k.allocF32(c.nTok * qd);
    const { kc, vc, ctx } = caches(c, (n) => k.allocF32(n));
    q.set(floats(q.length, 2 * (c.qScale ?? 1)));
    const expect = new Float32Array(out.length);
    ref.attention(q, kc, vc, expect, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    k.attention(q, kc, vc, out, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - expect[i]));
    assert.ok(worst <= 2e-5, `${JSON.stringify(c)}: max |delta| ${worst}`);
  }
});

test('attention on arrays outside the kernel memory (copied through scratch) gives the same result', async () => {
  const k = await createKernels({ threads: 2, minParallelWork: 0 });
  made.push(k);
  for (const c of [CASES[1], CASES[8], CASES[9]] as Case[]) { // one with cache room past the positions, one split
    const qd = c.nHeads * c.headDim;
    const q = floats(c.nTok * qd), { kc, vc, ctx } = caches(c, (n) => new Float32Array(n));
    const plain = new Float32Array(c.nTok * qd);
    k.attention(q, kc, vc, plain, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    const qo = k.allocF32(q.length), ko = k.allocF32(kc.length), vo = k.allocF32(vc.length), oo = k.allocF32(plain.length);
    qo.set(q); ko.set(kc); vo.set(vc);
    k.attention(qo, ko, vo, oo, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    assert.deepEqual(plain, oo, JSON.stringify(c));
    // one cache inside the memory and one outside
    k.attention(qo, ko, vc, oo, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    assert.deepEqual(plain, oo, JSON.stringify(c));
  }
});

onEveryPath('attention over an f16 cache matches the reference reading the same f16 values', (k) => {
  for (const c of CASES as Case[]) {
    const qd = c.nHeads * c.headDim;
    const q = k.allocF32(c.nTok * qd), out = k.allocF32(c.nTok * qd);
    q.set(floats(q.length, 2 * (c.qScale ?? 1)));
    const { kc: kf, vc: vf, ctx } = caches(c, (n) => new Float32Array(n));
    const kh = k.allocF16(kf.length), vh = k.allocF16(vf.length);
    kf[0] = 3e-6; kf[1] = -0; vf[0] = -6e-8; // f16 subnormals and a negative zero
    for (let i = 0; i < kh.length; i++) { kh[i] = f32ToF16(kf[i]!); vh[i] = f32ToF16(vf[i]!); }
    const expect = new Float32Array(out.length);
    ref.attention(q, kh, vh, expect, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    k.attention(q, kh, vh, out, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - expect[i]));
    assert.ok(worst <= 2e-5, `f16 ${JSON.stringify(c)}: max |delta| ${worst}`);
    // and the reference really read f16: the same math over the widened values as f32 agrees
    const ref32 = new Float32Array(out.length);
    ref.attention(q, Float32Array.from(kh, f16ToF32), Float32Array.from(vh, f16ToF32), ref32, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    assert.deepEqual(expect, ref32);
  }
  // unshared copies of an f16 cache give the same result
  for (const c of [CASES[1], CASES[9]] as Case[]) {
    const qd = c.nHeads * c.headDim, { kc: kf, vc: vf, ctx } = caches(c, (n) => new Float32Array(n));
    const kh = k.allocF16(kf.length), vh = k.allocF16(vf.length);
    for (let i = 0; i < kh.length; i++) { kh[i] = f32ToF16(kf[i]!); vh[i] = f32ToF16(vf[i]!); }
    const q = k.allocF32(c.nTok * qd), a = k.allocF32(q.length), b = new Float32Array(q.length);
    q.set(floats(q.length));
    k.attention(q, kh, vh, a, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    k.attention(Float32Array.from(q), Uint16Array.from(kh), Uint16Array.from(vh), b, c.nTok, c.pos0, c.nHeads, c.nKV, c.headDim, ctx);
    assert.deepEqual(b, a, JSON.stringify(c));
  }
});

test('attention shape errors name the argument', async () => {
  const k = await createKernels({ threads: 1 });
  made.push(k);
  const a = k.allocF32(64);
  assert.throws(() => k.attention(a, a, a, a, 1, 0, 3, 2, 8, 1), /nHeads 3 is not a multiple of nKVHeads 2/);
  assert.throws(() => k.attention(a, k.allocF32(8), a, a, 1, 4, 2, 1, 8, 5), /kCache holds 8 values, needs at least 40/);
  assert.throws(() => k.attention(a, a, a, a, 1, 4, 2, 1, 8, 4), /cacheCtx 4 is less than the 5 positions attended/);
  assert.throws(() => k.attention(a, k.allocF32(24), k.allocF32(48), a, 1, 0, 2, 2, 8, 3), /kCache holds 24 values, needs at least 32/);
  assert.throws(() => k.attention(a, k.allocF16(64), a, a, 1, 0, 2, 1, 8, 1), /kCache and vCache must both be f32 or both f16/);
});

/** A ragged batch: rows of three sequences (caches of different capacities), prompt-like runs of
 *  consecutive positions and lone decode rows, positions long enough to be split (2 threads). */
const RAGGED = { nHeads: 20, nKV: 5, headDim: 128, ctx: [700, 320, 40], rows: [[0, 650], [1, 300], [0, 651], [2, 3], [2, 4], [2, 5], [1, 0], [0, 200]] };

function raggedBatch(k: Kernels, f16: boolean) {
  const { nHeads, nKV, headDim } = RAGGED;
  const qd = nHeads * headDim, n = RAGGED.rows.length;
  const caches = RAGGED.ctx.map((ctx) => {
    const kc = new Float32Array(nKV * ctx * headDim), vc = new Float32Array(kc.length);
    kc.set(floats(kc.length, 2)); vc.set(floats(vc.length));
    if (!f16) {
      const ko = k.allocF32(kc.length), vo = k.allocF32(vc.length);
      ko.set(kc); vo.set(vc);
      return { k: ko as Float32Array | Uint16Array, v: vo as Float32Array | Uint16Array, ctx };
    }
    const kh = k.allocF16(kc.length), vh = k.allocF16(vc.length);
    for (let i = 0; i < kh.length; i++) { kh[i] = f32ToF16(kc[i]!); vh[i] = f32ToF16(vc[i]!); }
    return { k: kh as Float32Array | Uint16Array, v: vh as Float32Array | Uint16Array, ctx };
  });
  const q = k.allocF32(n * qd);
  q.set(floats(q.length, 2));
  const seqOf = RAGGED.rows.map(([s]) => caches[s!]!);
  return {
    q, n, qd, nHeads, nKV, headDim,
    kRows: seqOf.map((c) => c.k), vRows: seqOf.map((c) => c.v), ctx: seqOf.map((c) => c.ctx), pos: RAGGED.rows.map(([, p]) => p!),
  };
}

onEveryPath('attentionRows gives every row of a ragged batch the bits of attention() on that row alone', (k) => {
  for (const f16 of [false, true]) {
    const b = raggedBatch(k, f16);
    const out = k.allocF32(b.n * b.qd);
    out.fill(NaN);
    k.attentionRows(b.q, b.kRows, b.vRows, out, b.n, b.pos, b.nHeads, b.nKV, b.headDim, b.ctx);
    for (let r = 0; r < b.n; r++) {
      const alone = k.allocF32(b.qd);
      k.attention(b.q.subarray(r * b.qd, (r + 1) * b.qd), b.kRows[r]!, b.vRows[r]!, alone, 1, b.pos[r]!, b.nHeads, b.nKV, b.headDim, b.ctx[r]!);
      assert.deepEqual(out.subarray(r * b.qd, (r + 1) * b.qd), alone, `${f16 ? 'f16' : 'f32'} row ${r}`);
      // and the reference agrees within attention's float bound
      const expect = new Float32Array(b.qd);
      ref.attention(b.q.subarray(r * b.qd, (r + 1) * b.qd), b.kRows[r]!, b.vRows[r]!, expect, 1, b.pos[r]!, b.nHeads, b.nKV, b.headDim, b.ctx[r]!);
      let worst = 0;
      for (let i = 0; i < b.qd; i++) worst = Math.max(worst, Math.abs(alone[i]! - expect[i]!));
      assert.ok(worst <= 2e-5, `row ${r}: max |delta| ${worst}`);
    }
  }
});

test('attentionRows on arrays outside the kernel memory, and on the reference kernels, gives the same bits', async () => {
  const k = await createKernels({ threads: 2, minParallelWork: 0 });
  made.push(k);
  const b = raggedBatch(k, false);
  const inside = k.allocF32(b.n * b.qd);
  k.attentionRows(b.q, b.kRows, b.vRows, inside, b.n, b.pos, b.nHeads, b.nKV, b.headDim, b.ctx);
  const outside = new Float32Array(b.n * b.qd);
  k.attentionRows(Float32Array.from(b.q), b.kRows.map((c) => Float32Array.from(c)), b.vRows, outside, b.n, b.pos, b.nHeads, b.nKV, b.headDim, b.ctx);
  assert.deepEqual(outside, inside);
  const byRef = new Float32Array(b.n * b.qd), rowByRow = new Float32Array(b.n * b.qd);
  ref.attentionRows(b.q, b.kRows, b.vRows, byRef, b.n, b.pos, b.nHeads, b.nKV, b.headDim, b.ctx);
  for (let r = 0; r < b.n; r++) {
    ref.attention(b.q.subarray(r * b.qd, (r + 1) * b.qd), b.kRows[r]!, b.vRows[r]!, rowByRow.subarray(r * b.qd, (r + 1) * b.qd), 1, b.pos[r]!, b.nHeads, b.nKV, b.headDim, b.ctx[r]!);
  }
  assert.deepEqual(byRef, rowByRow);
});

test('attentionRows shape errors name the argument', async () => {
  const k = await createKernels({ threads: 1 });
  made.push(k);
  const a = k.allocF32(64), c = k.allocF32(64);
  assert.throws(() => k.attentionRows(a, [c], [c], a, 2, [0, 0], 2, 1, 8, [4, 4]), /kCaches holds 1 values, needs at least 2/);
  assert.throws(() => k.attentionRows(a, [c, c], [c, c], a, 2, [0, 9], 2, 1, 8, [4, 4]), /cacheCtx 4 is less than the 10 positions attended/);
  assert.throws(() => k.attentionRows(a, [c, k.allocF16(64)], [c, c], a, 2, [0, 0], 2, 1, 8, [4, 4]), /kCache and vCache must both be f32 or both f16/);
  assert.throws(() => k.attentionRows(a, [c], [c], a, 5, [0, 0, 0, 0, 0], 2, 1, 8, [4, 4, 4, 4, 4]), /kCaches holds 1 values/);
});
