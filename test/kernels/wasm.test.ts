// The WebAssembly kernels against the TypeScript reference, bit for bit: quantize (q, scales, sums),
// ternaryMatmul and int8Matmul outputs (equal as float32: both compute f32(f32(f32(dot) / s) * scale)),
// int8Row, floatMatmul (f16 and f32 rows, same summation order), and rmsnorm (the reference sums squares in the kernel's lane order, so it is exact too).
// Tolerance: none anywhere. Both builds (relaxed, plain SIMD), both ternary layouts (r4, lut),
// 1 and 2 threads (the pool forced on even for tiny jobs).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Kernels, QuantizedActs, TernaryMatrix } from '../../src/kernels/api.js';
import { availablePaths, createKernels } from '../../src/node/kernels.js';
import { createReferenceKernels } from '../../src/kernels/reference.js';
import { f32ToF16 } from '../../src/formats/half.js';
import type { TernaryLayout } from '../../src/kernels/wasm-backend.js';

/** A source module's URL as this test runs: the .ts under tsx, the compiled .js otherwise. */
const srcExt = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const srcUrl = (path: string): string => new URL(`../../src/${path}${srcExt}`, import.meta.url).href;
const KERNELS_URL = srcUrl('node/kernels');

/** Runs `code` (an ES module) in a child node with this process's options less the test runner's,
 *  after `nodeArgs`. */
function runModule(code: string, o: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  return spawnSync(process.execPath, [...(o.nodeArgs ?? []), ...process.execArgv.filter((a) => !a.startsWith('--test')), '--input-type=module', '-e', code],
    { timeout: o.timeout ?? 30000, encoding: 'utf8', env: o.env ?? process.env });
}

const ref = createReferenceKernels();

let seed = 99;
function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
}
function randInt(lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}
function codes(n: number, kind: 'random' | 'plus' | 'minus' | 'zero' = 'random'): Int8Array {
  const c = new Int8Array(n);
  for (let i = 0; i < n; i++) c[i] = kind === 'random' ? randInt(-1, 1) : kind === 'plus' ? 1 : kind === 'minus' ? -1 : 0;
  return c;
}
function floats(n: number, scale = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() * 2 - 1) * scale;
  return x;
}
function assertSameF32(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length >= expected.length, true, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(actual[i] === 0 && expected[i] === 0)) {
      assert.fail(`${what}: element ${i}: ${actual[i]} !== ${expected[i]}`);
    }
  }
}
/** Quantizes x on both sides, runs the ternary matmul on both and compares the outputs bit for bit. */
function assertMatmulMatches(k: Kernels, w: TernaryMatrix, wr: TernaryMatrix, x: Float32Array, nTok: number, rows: number, cols: number, what: string): void {
  const a = k.allocActs(nTok, cols), b = ref.allocActs(nTok, cols);
  k.quantize(x, nTok, cols, a);
  ref.quantize(x, nTok, cols, b);
  const out = k.allocF32(nTok * rows), expect = new Float32Array(nTok * rows);
  k.ternaryMatmul(w, a, nTok, out);
  ref.ternaryMatmul(wr, b, nTok, expect);
  assertSameF32(out, expect, what);
}
function assertSameActs(a: QuantizedActs, b: QuantizedActs, nTok: number, what: string): void {
  const n = nTok * a.dim;
  for (let i = 0; i < n; i++) if (a.q[i] !== b.q[i]) assert.fail(`${what}: q[${i}] ${a.q[i]} !== ${b.q[i]}`);
  for (let t = 0; t < nTok; t++) {
    assert.equal(a.scales[t], b.scales[t], `${what}: scales[${t}]`);
    assert.equal(a.sums[t], b.sums[t], `${what}: sums[${t}]`);
  }
}

const available = await availablePaths();
const relaxedOk = available.includes('relaxed');
const paths = relaxedOk ? (['relaxed', 'simd'] as const) : (['simd'] as const);
if (!relaxedOk) test('relaxed SIMD unavailable here: only the plain build is tested', { skip: true }, () => {});

const configs: { path: 'relaxed' | 'simd'; layout: TernaryLayout; threads: number }[] = [];
for (const path of paths) for (const layout of ['r4', 'lut'] as const) for (const threads of [1, 2]) configs.push({ path, layout, threads });

const SHAPES: [number, number][] = [[1, 128], [5, 128], [37, 256], [16, 384], [33, 640], [3, 100], [19, 72], [7, 1000], [64, 2304],
  [301, 136], [250, 64]]; // the last two: enough row groups per claimed range for the two-stream GEMV (and an odd one left), with and without a partial last group
const TOKENS = [1, 3, 7, 17, 64]; // 7 and 17: tiles of 4 tokens plus 3 and 1 run one at a time

for (const cfg of configs) {
  describe(`wasm ${cfg.path} ${cfg.layout} threads=${cfg.threads}`, () => {
    let k: Kernels;
    const ready = createKernels({ path: cfg.path, layout: cfg.layout, threads: cfg.threads, minParallelWork: 0 }).then((x) => (k = x));
    after(() => k?.dispose());

    test('name and threads', async () => {
      await ready;
      assert.equal(k.name, `wasm-${cfg.path}`);
      assert.equal(k.threads, cfg.threads);
    });

    test('quantize: random rows, ties, tiny and zero rows', async () => {
      await ready;
      for (const dim of [1, 5, 16, 17, 64, 100, 2560]) {
        const nTok = 4;
        const x = floats(nTok * dim, 3);
        x.fill(0, dim, 2 * dim); // token 1: all zero
        for (let i = 2 * dim; i < 3 * dim; i++) x[i] = (rand() - 0.5) * 1e-6; // token 2: below the 1e-5 floor
        const a = k.allocActs(nTok, dim), b = ref.allocActs(nTok, dim);
        k.quantize(x, nTok, dim, a);
        ref.quantize(x, nTok, dim, b);
        assertSameActs(a, b, nTok, `dim ${dim}`);
      }
      // exact half-way products (s = 1): ties go to even
      const x = new Float32Array(32);
      x[0] = 127;
      for (let i = 1; i < 32; i++) x[i] = (i - 16) + 0.5;
      const a = k.allocActs(1, 32), b = ref.allocActs(1, 32);
      k.quantize(x, 1, 32, a);
      ref.quantize(x, 1, 32, b);
      assertSameActs(a, b, 1, 'ties');
      assert.equal(a.q[1], -14); // -14.5 -> -14
      assert.equal(a.q[2], -14); // -13.5 -> -14
      assert.equal(a.q[3], -12); // -12.5 -> -12
    });

    test('ternaryMatmul: random shapes and token counts', async () => {
      await ready;
      for (const [rows, cols] of SHAPES) {
        const c = codes(rows * cols);
        const scale = 0.25 + rand();
        const w = k.ternaryMatrix(c, rows, cols, scale);
        const wr = ref.ternaryMatrix(c, rows, cols, scale);
        for (const nTok of TOKENS) {
          if (rows * cols * nTok > 3e6) continue;
          assertMatmulMatches(k, w, wr, floats(nTok * cols, 2), nTok, rows, cols, `${rows}x${cols} nTok ${nTok}`);
        }
      }
    });

    test('ternaryMatmuls: q, k, v (and gate, up) in one job give the bits of one call each', async () => {
      await ready;
      // row counts with a partial last group and an odd group count, so chunk boundaries cross matrices
      for (const [cols, rowsList] of [[640, [37, 8, 130]], [128, [250, 5]], [2112, [21, 64, 3]]] as [number, number[]][]) {
        const ws = rowsList.map((rows) => {
          const c = codes(rows * cols);
          const scale = 0.25 + rand();
          return { rows, w: k.ternaryMatrix(c, rows, cols, scale), wr: ref.ternaryMatrix(c, rows, cols, scale) };
        });
        for (const nTok of [1, 3, 8, 17]) {
          const x = floats(nTok * cols, 2);
          const a = k.allocActs(nTok, cols), b = ref.allocActs(nTok, cols);
          k.quantize(x, nTok, cols, a);
          ref.quantize(x, nTok, cols, b);
          // outputs longer than needed (the forward's buffers hold its largest batch)
          const outs = ws.map((m) => k.allocF32(nTok * m.rows + 7));
          for (const o of outs) o.fill(NaN);
          k.ternaryMatmuls(ws.map((m) => m.w), a, nTok, outs);
          ws.forEach((m, i) => {
            const expect = new Float32Array(nTok * m.rows);
            ref.ternaryMatmul(m.wr, b, nTok, expect);
            assertSameF32(outs[i]!, expect, `ternaryMatmuls ${m.rows}x${cols} nTok ${nTok} matrix ${i}`);
            assert.ok(Number.isNaN(outs[i]![nTok * m.rows]), 'nothing written past the rows');
          });
          // outputs outside the kernel memory take the matrix-by-matrix path: same bits
          const plain = ws.map((m) => new Float32Array(nTok * m.rows));
          k.ternaryMatmuls(ws.map((m) => m.w), a, nTok, plain);
          ws.forEach((m, i) => assertSameF32(plain[i]!, outs[i]!.subarray(0, nTok * m.rows), `ternaryMatmuls staged, matrix ${i}`));
        }
      }
      const w = k.ternaryMatrix(codes(8 * 64), 8, 64, 1), w2 = k.ternaryMatrix(codes(8 * 128), 8, 128, 1);
      const a = k.allocActs(1, 64);
      k.quantize(floats(64), 1, 64, a);
      assert.throws(() => k.ternaryMatmuls([w, w], a, 1, [k.allocF32(8)]), /2 matrices but 1 outputs/);
      assert.throws(() => k.ternaryMatmuls([w, w], a, 1, [k.allocF32(8), k.allocF32(7)]), /holds 7 values, needs at least 8/);
      assert.throws(() => k.ternaryMatmuls([w, ref.ternaryMatrix(codes(8 * 64), 8, 64, 1)], a, 1, [k.allocF32(8), k.allocF32(8)]), /not made by this backend/);
      assert.throws(() => k.ternaryMatmuls([w, w2], a, 1, [k.allocF32(8), k.allocF32(8)]), /dim 128 does not match the activation buffer dim 64/);
    });

    test('ternaryMatmul: edge activations (-128, 127, 0) and weights (all +1, all -1, zero rows)', async () => {
      await ready;
      for (const cols of [128, 1024, 1088, 2112]) {
        const rows = 21;
        const c = new Int8Array(rows * cols);
        c.set(codes(cols, 'plus'), 0);
        c.set(codes(cols, 'minus'), cols);
        // row 2 stays zero
        c.set(codes((rows - 3) * cols), 3 * cols);
        const w = k.ternaryMatrix(c, rows, cols, 1);
        const wr = ref.ternaryMatrix(c, rows, cols, 1);
        const nTok = 5;
        // the quantizer never makes -128; set the activations directly: all -128, all 127, alternating, zero, random
        const a = k.allocActs(nTok, cols), b = ref.allocActs(nTok, cols);
        for (let t = 0; t < nTok; t++) {
          let sum = 0;
          for (let i = 0; i < cols; i++) {
            const v = t === 0 ? -128 : t === 1 ? 127 : t === 2 ? (i & 1 ? 127 : -128) : t === 3 ? 0 : randInt(-128, 127);
            a.q[t * cols + i] = v;
            b.q[t * cols + i] = v;
            sum += v;
          }
          a.sums[t] = b.sums[t] = sum;
          a.scales[t] = b.scales[t] = 0.5 + t;
        }
        const out = k.allocF32(nTok * rows), expect = new Float32Array(nTok * rows);
        k.ternaryMatmul(w, a, nTok, out);
        ref.ternaryMatmul(wr, b, nTok, expect);
        assertSameF32(out, expect, `edges cols ${cols}`);
        assert.equal(expect[0], Math.fround(Math.fround(-128 * cols / 0.5) * 1)); // all +1 row x all -128
        assert.equal(expect[rows + 1], Math.fround(Math.fround(-127 * cols / 1.5) * 1)); // all -1 row x all 127
      }
    });

    test('arrays that are not views of the kernel memory are staged (inputs and outputs)', async () => {
      await ready;
      const rows = 13, cols = 200, nTok = 3;
      const c = codes(rows * cols);
      const w = k.ternaryMatrix(c, rows, cols, 0.5), wr = ref.ternaryMatrix(c, rows, cols, 0.5);
      const x = floats(nTok * cols);
      const a = ref.allocActs(nTok, cols), b = ref.allocActs(nTok, cols); // plain arrays
      k.quantize(x, nTok, cols, a);
      ref.quantize(x, nTok, cols, b);
      assertSameActs(a, b, nTok, 'staged quantize');
      const out = new Float32Array(nTok * rows), expect = new Float32Array(nTok * rows);
      k.ternaryMatmul(w, a, nTok, out);
      ref.ternaryMatmul(wr, b, nTok, expect);
      assertSameF32(out, expect, 'staged matmul');
      // a subarray of an allocF32 buffer (owned, offset) works in place
      const big = k.allocF32(10 + nTok * rows);
      k.ternaryMatmul(w, a, nTok, big.subarray(10));
      assertSameF32(big.subarray(10), expect, 'subarray output');
    });

    test('int8Matrix, int8Row, int8Matmul', async () => {
      await ready;
      for (const [rows, cols] of [[1, 16], [7, 100], [37, 256], [130, 2560]] as [number, number][]) {
        const data = floats(rows * cols, 0.1);
        data.fill(0, 0, cols); // row 0 all zero
        if (rows > 2) data[2 * cols + 3] = -5; // a spike
        const get = (r: number, o: Float32Array) => o.set(data.subarray(r * cols, (r + 1) * cols));
        const m = k.int8Matrix(rows, cols, get);
        const mr = ref.int8Matrix(rows, cols, get);
        const row = k.allocF32(cols), rowr = new Float32Array(cols);
        for (const r of [0, rows - 1, Math.floor(rows / 2)]) {
          k.int8Row(m, r, row);
          ref.int8Row(mr, r, rowr);
          assertSameF32(row, rowr, `int8Row ${r}`);
        }
        for (const nTok of [1, 3, 8, 17]) { // 8 and 17: tiles of 4 tokens (17: plus one left over)
          const x = floats(nTok * cols, 4);
          const out = k.allocF32(nTok * rows), expect = new Float32Array(nTok * rows);
          k.int8Matmul(m, x, nTok, out);
          ref.int8Matmul(mr, x, nTok, expect);
          assertSameF32(out, expect, `int8Matmul ${rows}x${cols} nTok ${nTok}`);
          const plain = new Float32Array(nTok * rows);
          k.int8Matmul(m, x, nTok, plain); // staged output
          assertSameF32(plain, expect, 'int8Matmul staged');
        }
      }
      assert.throws(() => k.int8Matrix(2, 4, (r, o) => o.set([1, NaN, 0, 0])), /row 0 holds a non-finite value/);
    });

    test('f16Matrix, f32Matrix, floatMatmul (the float lm_head)', async () => {
      await ready;
      for (const [rows, cols] of [[1, 16], [7, 100], [37, 256], [130, 2560], [5, 8]] as [number, number][]) {
        const data = floats(rows * cols, 0.5);
        if (rows > 2) data.fill(0, cols, 2 * cols); // a zero row
        const bits = Uint16Array.from(data, (v) => f32ToF16(v));
        bits[0] = 0x0001; // a subnormal half
        if (bits.length > 1) bits[1] = 0x83ff; // the largest negative subnormal
        const m16 = k.f16Matrix(rows, cols, (r, o) => o.set(bits.subarray(r * cols, (r + 1) * cols)));
        const r16 = ref.f16Matrix(rows, cols, (r, o) => o.set(bits.subarray(r * cols, (r + 1) * cols)));
        const m32 = k.f32Matrix(rows, cols, (r, o) => o.set(data.subarray(r * cols, (r + 1) * cols)));
        const r32 = ref.f32Matrix(rows, cols, (r, o) => o.set(data.subarray(r * cols, (r + 1) * cols)));
        for (const nTok of [1, 2, 5, 17]) {
          const x = floats(nTok * cols, 3);
          for (const [m, mr, what] of [[m16, r16, 'f16'], [m32, r32, 'f32']] as const) {
            const out = k.allocF32(nTok * rows), expect = new Float32Array(nTok * rows);
            const xin = k.allocF32(nTok * cols);
            xin.set(x);
            k.floatMatmul(m, xin, nTok, out); // activations in kernel memory (in place when cols % 16 == 0)
            ref.floatMatmul(mr, x, nTok, expect);
            assertSameF32(out, expect, `floatMatmul ${what} ${rows}x${cols} nTok ${nTok}`);
            const plain = new Float32Array(nTok * rows);
            k.floatMatmul(m, x, nTok, plain); // staged input and output
            assertSameF32(plain, expect, `floatMatmul ${what} staged`);
          }
        }
      }
      // activations of 2^16 and more cannot be prescaled by 2^112: the same bits come from the fallback
      const big = Uint16Array.from(floats(3 * 40, 1), (v) => f32ToF16(v));
      const mb = k.f16Matrix(3, 40, (r, o) => o.set(big.subarray(r * 40, (r + 1) * 40)));
      const rb = ref.f16Matrix(3, 40, (r, o) => o.set(big.subarray(r * 40, (r + 1) * 40)));
      const xb = floats(2 * 40, 1);
      xb[5] = 70000;
      xb[47] = -1e30;
      const ob = new Float32Array(6), eb = new Float32Array(6);
      k.floatMatmul(mb, xb, 2, ob);
      ref.floatMatmul(rb, xb, 2, eb);
      assertSameF32(ob, eb, 'floatMatmul f16, |x| >= 2^16');
      assert.ok(Math.abs(eb[0]!) > 1000 && Math.abs(eb[3]!) > 1e25);
      assert.throws(() => k.f16Matrix(2, 3, (r, o) => o.set(r ? [0, 0, 0xfc00] : [0, 0, 0])), /row 1 holds a non-finite value at column 2/);
      const m = k.f32Matrix(2, 4, (_r, o) => o.fill(1));
      assert.throws(() => k.floatMatmul(m, k.allocF32(4), 1, k.allocF32(1)), /out holds 1 values, needs at least 2/);
      assert.throws(() => k.floatMatmul(ref.f32Matrix(2, 4, () => {}), k.allocF32(4), 1, k.allocF32(2)), /not made by this backend/);
    });

    test('rmsnorm, in place and not', async () => {
      await ready;
      for (const dim of [1, 3, 4, 7, 64, 2560, 6912]) {
        const nTok = 3;
        const x = k.allocF32(nTok * dim);
        x.set(floats(nTok * dim, 5));
        const w = k.allocF32(dim);
        w.set(floats(dim, 2));
        const out = k.allocF32(nTok * dim), expect = new Float32Array(nTok * dim);
        k.rmsnorm(x, w, nTok, dim, 1e-5, out);
        ref.rmsnorm(x, w, nTok, dim, 1e-5, expect);
        assertSameF32(out, expect, `rmsnorm dim ${dim}`);
        k.rmsnorm(x, w, nTok, dim, 1e-5, x);
        assertSameF32(x, expect, `rmsnorm in place dim ${dim}`);
      }
    });

    test('bad input is refused with a clear error', async () => {
      await ready;
      assert.throws(() => k.ternaryMatrix(new Int8Array([0, 1, 2, 0]), 2, 2, 1), /code 2 at index 2 is not -1, 0 or \+1/);
      assert.throws(() => k.ternaryMatrix(new Int8Array(3), 2, 2, 1), /3 codes given for 2 x 2/);
      const w = k.ternaryMatrix(new Int8Array(256), 2, 128, 1);
      const a = k.allocActs(2, 64);
      assert.throws(() => k.ternaryMatmul(w, a, 1, k.allocF32(2)), /dim 128 does not match the activation buffer dim 64/);
      const a2 = k.allocActs(2, 128);
      assert.throws(() => k.ternaryMatmul(w, a2, 3, k.allocF32(6)), /exceeds the activation buffer capacity 2/);
      assert.throws(() => k.ternaryMatmul(w, a2, 2, k.allocF32(3)), /out holds 3 values, needs at least 4/);
      assert.throws(() => k.ternaryMatmul(ref.ternaryMatrix(new Int8Array(256), 2, 128, 1), a2, 1, k.allocF32(2)), /not made by this backend/);
      assert.throws(() => k.allocF32(1.2e9), /4 GiB/);
    });
  });
}

test('memory past 4 GiB: the error says how much was needed', async () => {
  const k = await createKernels({ path: 'simd', threads: 1 });
  try {
    assert.throws(() => k.allocF32(1.1e9), (e: Error) => /needs WebAssembly memory up to 4\.10 GiB/.test(e.message) && /4 GiB limit/.test(e.message));
  } finally {
    k.dispose();
  }
});

test('after dispose() calls fail, and a process using 2 threads exits without dispose()', async () => {
  const k = await createKernels({ path: 'simd', threads: 2, minParallelWork: 0 });
  k.dispose();
  assert.throws(() => k.allocF32(4), /after dispose/);
  const code = `const { createKernels } = await import(${JSON.stringify(KERNELS_URL)});
    const k = await createKernels({ threads: 2, minParallelWork: 0 });
    const a = k.allocActs(1, 128); k.quantize(new Float32Array(128).fill(1), 1, 128, a);
    const w = k.ternaryMatrix(new Int8Array(128 * 8).fill(1), 8, 128, 1); const o = k.allocF32(8);
    k.ternaryMatmul(w, a, 1, o); console.log(k.threads, o[0]);`;
  const r = runModule(code);
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  assert.equal(r.stdout.trim(), '2 128');
});

test('the relaxed SIMD flag is set only where a relaxed instruction does not validate (Node 22+ no longer knows it)', async () => {
  const { enableRelaxedSimd } = await import('../../src/node/threads.js');
  const set: string[] = [];
  assert.equal(enableRelaxedSimd(() => true, (f) => set.push(f)), false);
  assert.equal(set.length, 0, 'a runtime that validates relaxed SIMD gets no flag');
  assert.equal(enableRelaxedSimd(() => false, (f) => set.push(f)), true);
  assert.deepEqual(set, ['--experimental-wasm-relaxed-simd']);
  // and a kernel process writes nothing to stderr (V8 prints "unrecognized flag" for an unknown one)
  const code = `const { createKernels } = await import(${JSON.stringify(KERNELS_URL)}); const k = await createKernels({ threads: 1 }); console.log(k.name); k.dispose();`;
  const r = runModule(code);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('worker threads start when node runs with options workers refuse (--secure-heap=0, --use-largepages=off)', async () => {
  const code = `const { createKernels } = await import(${JSON.stringify(KERNELS_URL)}); const k = await createKernels({ threads: 2 }); console.log(k.threads); k.dispose();`;
  const r = runModule(code, { nodeArgs: ['--secure-heap=0', '--use-largepages=off'] });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '2');
});

test('WF_KERNELS selects the path', async () => {
  const code = `const { createKernels } = await import(${JSON.stringify(KERNELS_URL)}); const k = await createKernels({ threads: 1 }); console.log(k.name); k.dispose();`;
  for (const [env, name] of [['simd', 'wasm-simd'], ['reference', 'reference'], ...(relaxedOk ? [['relaxed', 'wasm-relaxed']] : [])]) {
    const r = runModule(code, { env: { ...process.env, WF_KERNELS: env } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), name);
  }
  const bad = runModule(code, { env: { ...process.env, WF_KERNELS: 'fast' } });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /WF_KERNELS "fast" is not one of relaxed, simd, reference/);
});

test('unshared memory (a page without cross-origin isolation): plain arrays, staged calls, memory growth between calls', async () => {
  const { createWasmKernels } = await import('../../src/kernels/wasm-backend.js');
  for (const path of paths) {
    const k = await createWasmKernels({ path, threads: 2, sharedMemory: false });
    try {
      assert.equal(k.threads, 1);
      const rows = 45, cols = 320, nTok = 5;
      const c = codes(rows * cols);
      const w = k.ternaryMatrix(c, rows, cols, 0.3), wr = ref.ternaryMatrix(c, rows, cols, 0.3);
      const a = k.allocActs(nTok, cols), b = ref.allocActs(nTok, cols);
      assert.equal(a.q.buffer instanceof ArrayBuffer, true);
      const out = k.allocF32(nTok * rows), expect = new Float32Array(nTok * rows);
      const x = floats(nTok * cols);
      k.quantize(x, nTok, cols, a);
      ref.quantize(x, nTok, cols, b);
      // grow the memory after the buffers were handed out
      const big = k.ternaryMatrix(codes(512 * 4096), 512, 4096, 1);
      assert.ok(big);
      k.ternaryMatmul(w, a, nTok, out);
      ref.ternaryMatmul(wr, b, nTok, expect);
      assertSameF32(out, expect, `${path} unshared matmul`);
      const m = k.int8Matrix(9, cols, (r, o) => o.set(x.subarray(0, cols).map((v) => v * (r + 1))));
      const mr = ref.int8Matrix(9, cols, (r, o) => o.set(x.subarray(0, cols).map((v) => v * (r + 1))));
      const lo = k.allocF32(2 * 9), le = new Float32Array(2 * 9);
      k.int8Matmul(m, x, 2, lo);
      ref.int8Matmul(mr, x, 2, le);
      assertSameF32(lo, le, `${path} unshared int8Matmul`);
      const n1 = k.allocF32(cols), n2 = new Float32Array(cols), g = floats(cols);
      k.rmsnorm(x, g, 1, cols, 1e-6, n1);
      ref.rmsnorm(x, g, 1, cols, 1e-6, n2);
      assertSameF32(n1, n2, `${path} unshared rmsnorm`);
    } finally {
      k.dispose();
    }
  }
});

test('spin 0 (threads sleep in Atomics.wait at once): pool results still match the reference', async () => {
  const k = await createKernels({ path: paths[0], threads: 2, minParallelWork: 0, spin: 0 });
  try {
    const rows = 70, cols = 320;
    const c = codes(rows * cols);
    const w = k.ternaryMatrix(c, rows, cols, 0.7), wr = ref.ternaryMatrix(c, rows, cols, 0.7);
    for (const nTok of [1, 6]) {
      for (let rep = 0; rep < 20; rep++) {
        assertMatmulMatches(k, w, wr, floats(nTok * cols), nTok, rows, cols, `spin 0 nTok ${nTok} rep ${rep}`);
      }
    }
  } finally {
    k.dispose();
  }
});

test('back-to-back jobs of 1 and 16 chunks: every result matches (a stale claim would corrupt or hang)', { timeout: 60000 }, async () => {
  // A worker finishing a job races the caller posting the next one; a claim that mixed the old job's
  // counter with the new job's chunk count once ran a chunk that did not exist. The race is rare, so
  // this runs many short alternating jobs and checks every output.
  const k = await createKernels({ path: paths[0], threads: 2, minParallelWork: 0 });
  try {
    const cols = 64;
    const small = codes(4 * cols), large = codes(256 * cols);
    const ws = k.ternaryMatrix(small, 4, cols, 1), wl = k.ternaryMatrix(large, 256, cols, 1);
    const wsr = ref.ternaryMatrix(small, 4, cols, 1), wlr = ref.ternaryMatrix(large, 256, cols, 1);
    const x = floats(cols);
    const a = k.allocActs(1, cols), b = ref.allocActs(1, cols);
    k.quantize(x, 1, cols, a);
    ref.quantize(x, 1, cols, b);
    const outS = k.allocF32(4), outL = k.allocF32(256);
    const expS = new Float32Array(4), expL = new Float32Array(256);
    ref.ternaryMatmul(wsr, b, 1, expS);
    ref.ternaryMatmul(wlr, b, 1, expL);
    for (let rep = 0; rep < 3000; rep++) {
      outS.fill(NaN);
      outL.fill(NaN);
      k.ternaryMatmul(ws, a, 1, outS);
      k.ternaryMatmul(wl, a, 1, outL);
      if (rep % 100 === 0 || outS.some(Number.isNaN) || outL.some(Number.isNaN)) {
        assertSameF32(outS, expS, `small job, rep ${rep}`);
        assertSameF32(outL, expL, `large job, rep ${rep}`);
      }
    }
    assertSameF32(outL, expL, 'large job, last rep');
  } finally {
    k.dispose();
  }
});

test('WF_KERNEL_SPIN: a bad value is refused by name', () => {
  const code = `const { createKernels } = await import(${JSON.stringify(KERNELS_URL)}); const k = await createKernels({ threads: 2 }); console.log(k.threads); k.dispose();`;
  const run = (v: string) => runModule(code, { env: { ...process.env, WF_KERNEL_SPIN: v } });
  const ok = run('500');
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), '2');
  const bad = run('-3');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /WF_KERNEL_SPIN "-3" is not a non-negative integer/);
});

test('both V8 tiers (Liftoff only, TurboFan only) give the reference results', async () => {
  // Node 20's baseline compiler once returned wrong results for a relaxed instruction until the code
  // was re-optimized; the kernels avoid that instruction, and this checks each tier on its own.
  const code = `
    const { createKernels } = await import(${JSON.stringify(KERNELS_URL)});
    const { createReferenceKernels } = await import(${JSON.stringify(srcUrl('kernels/reference'))});
    const ref = createReferenceKernels();
    let seed = 7; const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    let bad = 0, checked = 0;
    for (const path of ${JSON.stringify(paths)}) for (const layout of ['r4', 'lut']) {
      const k = await createKernels({ path, layout, threads: 1 });
      const rows = 37, cols = 384;
      const c = new Int8Array(rows * cols).map(() => Math.floor(rnd() * 3) - 1);
      const w = k.ternaryMatrix(c, rows, cols, 0.5), wr = ref.ternaryMatrix(c, rows, cols, 0.5);
      for (const nTok of [1, 9]) {
        const x = new Float32Array(nTok * cols).map(() => rnd() * 2 - 1);
        const a = k.allocActs(nTok, cols), b = ref.allocActs(nTok, cols);
        k.quantize(x, nTok, cols, a); ref.quantize(x, nTok, cols, b);
        const o = new Float32Array(nTok * rows), e = new Float32Array(nTok * rows);
        k.ternaryMatmul(w, a, nTok, o); ref.ternaryMatmul(wr, b, nTok, e);
        for (let i = 0; i < e.length; i++) { checked++; if (o[i] !== e[i]) bad++; }
        for (let i = 0; i < nTok * cols; i++) { checked++; if (a.q[i] !== b.q[i]) bad++; }
      }
      k.dispose();
    }
    console.log(bad + '/' + checked);`;
  for (const flag of ['--liftoff-only', '--no-liftoff']) {
    const r = runModule(code, { nodeArgs: [flag], timeout: 60000 });
    assert.equal(r.status, 0, `${flag}: ${r.stderr}`);
    const [bad, checked] = r.stdout.trim().split('/').map(Number);
    assert.ok(checked! > 1000, `${flag}: ${r.stdout}`);
    assert.equal(bad, 0, `${flag}: ${bad} of ${checked} values differ from the reference`);
  }
});
