// gatedActivation, addInPlace and rope: wasm against the reference. relu2, the add and RoPE are
// bit-exact (the same f32 or f64 operations); SiLU uses a polynomial exp, within 1e-6 relative.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Kernels } from '../../src/kernels/api.js';
import { availablePaths, createKernels } from '../../src/node/kernels.js';
import { createReferenceKernels } from '../../src/kernels/reference.js';

const ref = createReferenceKernels();
let seed = 3;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const made: Kernels[] = [];
after(() => made.forEach((k) => k.dispose()));

for (const [path, threads] of [['relaxed', 1], ['simd', 1], ['relaxed', 2], ['simd', 2]] as const) {
  test(`gated activations and residual add match the reference (${path}, ${threads} thread(s))`, async (t) => {
    if (!(await availablePaths()).includes(path)) return t.skip(`${path} not available`);
    // minParallelWork 0: with 2 threads every call is split (the gate in blocks of 4096 elements)
    const k = await createKernels({ path, threads, minParallelWork: 0 });
    made.push(k);
    for (const n of [1, 3, 4, 17, 6912, 3 * 4096 + 5]) {
      for (const owned of [true, false]) {
        const mk = () => (owned ? k.allocF32(n) : new Float32Array(n));
        const g = mk(), u = mk();
        for (let i = 0; i < n; i++) { g[i] = rand() * 20; u[i] = rand() * 3; }
        if (n > 2) { g[0] = 0; g[1] = -0; g[2] = -90; } // edges: zero, negative zero, exp underflow
        for (const act of ['relu2', 'silu'] as const) {
          const a = g.slice(), e = g.slice();
          const ga = owned ? k.allocF32(n) : a;
          ga.set(a);
          k.gatedActivation(act, ga, u, n);
          ref.gatedActivation(act, e, u.slice(), n);
          for (let i = 0; i < n; i++) {
            if (act === 'relu2') assert.equal(ga[i], e[i], `relu2 n=${n} i=${i}`);
            else assert.ok(Math.abs(ga[i] - e[i]) <= 1e-6 * Math.max(1, Math.abs(e[i])), `silu n=${n} i=${i}: ${ga[i]} vs ${e[i]}`);
          }
        }
        const x = mk(), y = mk();
        for (let i = 0; i < n; i++) { x[i] = rand() * 100; y[i] = rand(); }
        const expect = x.slice();
        ref.addInPlace(expect, y, n);
        k.addInPlace(x, y, n);
        assert.deepEqual(Array.from(x), Array.from(expect), `add n=${n}`);
      }
    }
    assert.throws(() => k.gatedActivation('gelu' as 'silu', k.allocF32(4), k.allocF32(4), 4), /unknown activation 'gelu'/);
    assert.throws(() => k.addInPlace(k.allocF32(2), k.allocF32(4), 4), /x holds 2 values, needs at least 4/);
  });
}

for (const path of ['relaxed', 'simd'] as const) {
  test(`rope matches the reference bit for bit (${path})`, async (t) => {
    if (!(await availablePaths()).includes(path)) return t.skip(`${path} not available`);
    const k = await createKernels({ path, threads: 1 });
    made.push(k);
    // [nTok, nHeads, headDim, half, pos0]: full rotary, partial rotary, an odd pair count, a late position
    const cases = [[1, 20, 128, 64, 0], [5, 4, 64, 32, 11], [3, 2, 16, 6, 2], [2, 3, 10, 5, 4090]];
    for (const [nTok, nHeads, headDim, half, pos0] of cases) {
      const ctx = pos0 + nTok;
      for (const owned of [true, false]) {
        const mk = (n: number) => (owned ? k.allocF32(n) : new Float32Array(n));
        const cos = mk(ctx * half), sin = mk(ctx * half);
        for (let p = 0; p < ctx; p++) {
          for (let i = 0; i < half; i++) {
            const a = p * Math.pow(500000, -i / half);
            cos[p * half + i] = Math.cos(a);
            sin[p * half + i] = Math.sin(a);
          }
        }
        const x = mk(nTok * nHeads * headDim);
        for (let i = 0; i < x.length; i++) x[i] = rand() * 3;
        const orig = Float32Array.from(x), expect = Float32Array.from(x);
        ref.rope(expect, nTok, nHeads, headDim, half, pos0, cos, sin);
        k.rope(x, nTok, nHeads, headDim, half, pos0, cos, sin);
        const what = `rope ${JSON.stringify([nTok, nHeads, headDim, half, pos0])} owned=${owned}`;
        assert.deepEqual(Array.from(x), Array.from(expect), what);
        // the rotation really happened (only position 0 is the identity)
        if (pos0 > 0) assert.ok(x.some((v, i) => v !== orig[i]), `${what}: nothing rotated`);
      }
    }
    const x = k.allocF32(64), tab = k.allocF32(16);
    assert.throws(() => k.rope(x, 1, 2, 32, 17, 0, tab, tab), /half 17 must be an integer in \[0, headDim\/2 = 16\]/);
    assert.throws(() => k.rope(x, 1, 2, 32, 16, 1, tab, tab), /cos holds 16 values, needs at least 32/);
  });
}
