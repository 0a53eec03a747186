// Batching must not change results: the GEMM kernels give every row the same bits as the GEMV of
// that row alone, and a ragged batch (prompt chunks and decode rows of several sequences, each with
// its own positions and cache range in one shared pool) gives each sequence the same logits, bit for
// bit, as running it on its own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/engine.js';
import { buildSyntheticModel } from '../../src/model/synthetic.js';
import { addRows, createBatch } from '../../src/model/forward.js';
import { KVCache } from '../../src/model/kv-cache.js';
import { testKernels } from '../helpers/kernels.js';
import { mulberry32 } from '../helpers/random.js';

const kernels = await testKernels();
const lm = await loadModel(
  buildSyntheticModel({ name: 'batch-test', nEmbd: 128, nLayers: 2, nFF: 256, nHeads: 4, nKVHeads: 2, contextLength: 256, vocabSize: 264, seed: 7 }),
  { kernels },
);
after(() => lm.dispose());
const V = lm.config.vocabSize;

const sameBits = (a: Float32Array, b: Float32Array) =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

test('GEMM rows are the same bits as each row alone (ternary and int8 matmuls)', () => {
  const rand = mulberry32(3);
  const rows = 40, cols = 256, nTok = 9;
  const codes = Int8Array.from({ length: rows * cols }, () => Math.floor(rand() * 3) - 1);
  const w = kernels.ternaryMatrix(codes, rows, cols, 0.75);
  const x = kernels.allocF32(nTok * cols);
  for (let i = 0; i < x.length; i++) x[i] = rand() * 4 - 2;
  const acts = kernels.allocActs(nTok, cols);
  kernels.quantize(x, nTok, cols, acts);
  const all = kernels.allocF32(nTok * rows);
  kernels.ternaryMatmul(w, acts, nTok, all);
  const one = kernels.allocActs(1, cols);
  const out = kernels.allocF32(rows);
  const m = kernels.int8Matrix(rows, cols, (r, o) => {
    for (let c = 0; c < cols; c++) o[c] = Math.sin(r * 7 + c);
  });
  const allI8 = kernels.allocF32(nTok * rows);
  kernels.int8Matmul(m, x, nTok, allI8);
  for (let t = 0; t < nTok; t++) {
    kernels.quantize(x.subarray(t * cols, (t + 1) * cols), 1, cols, one);
    kernels.ternaryMatmul(w, one, 1, out);
    assert.ok(sameBits(out, all.subarray(t * rows, (t + 1) * rows)), `ternary row ${t}`);
    kernels.int8Matmul(m, x.subarray(t * cols, (t + 1) * cols), 1, out);
    assert.ok(sameBits(out, allI8.subarray(t * rows, (t + 1) * rows)), `int8 row ${t}`);
  }
});

test('a ragged batch gives every sequence the logits it gets alone, bit for bit', async () => {
  const prompts = [
    [261, 72, 101, 108, 108, 111, 32],
    [261, 87, 111, 114],
    [261, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76],
  ];
  const steps = 5; // generated tokens per sequence
  // alone: each sequence with a cache of its own, prompt in one call, then greedy token by token
  const alone: Float32Array[][] = [];
  for (const p of prompts) {
    const seq = lm.createSequence({ ctxSize: 64, batchSize: 16 });
    const got = [await seq.forward(p)];
    for (let i = 1; i < steps; i++) got.push(await seq.forward([argmax(got[i - 1]!)]));
    alone.push(got);
  }
  // batched: one pool, one forward; prompts arrive at different steps and are cut into chunks,
  // decode rows of the others run beside them (in a shuffled row order)
  const pool = lm.model.createKVPool(100);
  const caches = prompts.map(() => new KVCache(pool));
  caches.forEach((c) => assert.ok(c.reserve(24, 0)));
  const fwd = lm.model.createForward(16, 3, 100);
  const b = createBatch(16);
  const got: Float32Array[][] = prompts.map(() => []);
  const pos = prompts.map(() => 0);
  const next = prompts.map(() => -1);
  // the prompt chunks each step takes: [sequence, tokens] (sequence 2 joins at step 1, in two chunks)
  const chunks: [number, number][][] = [[[0, 7], [1, 2]], [[1, 2], [2, 5]], [[2, 8]]];
  for (let step = 0; got.some((g) => g.length < steps); step++) {
    b.n = 0;
    const order: number[] = [];
    // decode rows first (reversed order, to show row order does not matter), then prompt chunks
    for (let s = prompts.length - 1; s >= 0; s--) {
      if (next[s]! >= 0 && got[s]!.length < steps) {
        addRows(b, s, [next[s]!], pos[s]!);
        pos[s]!++;
        order.push(s);
      }
    }
    for (const [s, n] of chunks[step] ?? []) {
      const p = prompts[s]!;
      const end = pos[s]! + n;
      addRows(b, s, p.slice(pos[s]!, end), pos[s]!, end === p.length ? 'last' : 'none');
      if (end === p.length) order.push(s);
      pos[s] = end;
    }
    const logits = await fwd.run(b, caches);
    assert.equal(logits.length, order.length * V);
    order.forEach((s, i) => {
      const row = logits.slice(i * V, (i + 1) * V);
      got[s]!.push(row);
      next[s] = argmax(row);
    });
  }
  for (let s = 0; s < prompts.length; s++) {
    for (let i = 0; i < steps; i++) assert.ok(sameBits(got[s]![i]!, alone[s]![i]!), `sequence ${s}, logits ${i}`);
  }
  // moving a range (compaction) keeps its keys/values: drop sequence 0, grow sequence 1 past the gap
  caches[0]!.release();
  assert.ok(caches[1]!.reserve(50, pos[1]!)); // no gap of 50: the ranges are compacted, then it moves
  b.n = 0;
  addRows(b, 1, [next[1]!], pos[1]!);
  const moved = await fwd.run(b, caches);
  const ref = lm.createSequence({ ctxSize: 64, batchSize: 16 });
  let l = await ref.forward(prompts[1]!);
  for (let i = 1; i <= steps; i++) l = await ref.forward([argmax(l)]);
  assert.ok(sameBits(moved, l), 'the moved sequence continues exactly');
});

test('forward() refuses rows past a cache range and out-of-vocabulary tokens', async () => {
  const pool = lm.model.createKVPool(32);
  const c = new KVCache(pool);
  assert.ok(c.reserve(4, 0));
  const fwd = lm.model.createForward(8, 2, 32);
  const b = createBatch(8);
  addRows(b, 0, [1, 2, 3, 4, 5], 0);
  await assert.rejects(fwd.run(b, [c]), /does not fit the context of 4/);
  b.n = 0;
  addRows(b, 0, [V], 0);
  await assert.rejects(fwd.run(b, [c]), /outside the vocabulary/);
  b.n = 0;
  addRows(b, 1, [1], 0);
  await assert.rejects(fwd.run(b, [c]), /sequence 1, which has no cache/);
});
