import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Xoshiro128 } from '../../src/generate/rng.js';
import { applyPenalties } from '../../src/generate/penalties.js';
import { logSoftmaxInfo, Sampler, selectTopK, type SamplerOptions } from '../../src/generate/sampler.js';

const f = Math.fround;

/** Logits whose softmax is exactly the given probabilities (up to float32 rounding). */
function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => (p > 0 ? Math.log(p) : -Infinity));
}

/** Empirical distribution of `draws` samples. */
function histogram(opts: SamplerOptions, logits: Float32Array, draws: number, history: number[] = []): number[] {
  const s = new Sampler(opts);
  const h = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) h[s.sample(logits, history)]!++;
  return h.map((c) => c / draws);
}

function softmax(l: ArrayLike<number>, t = 1): number[] {
  let m = -Infinity;
  for (let i = 0; i < l.length; i++) m = Math.max(m, l[i]!);
  const e = Array.from(l, (x) => Math.exp((x - m) / t));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

function assertClose(actual: number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}: token ${i}: got ${actual[i]}, expected ${expected[i]} ±${tol}`);
  }
}

test('xoshiro128** matches the reference output for state (1, 2, 3, 4)', () => {
  const g = Xoshiro128.fromState(1, 2, 3, 4);
  assert.deepEqual([g.nextU32(), g.nextU32(), g.nextU32(), g.nextU32(), g.nextU32(), g.nextU32()], [
    11520, 0, 5927040, 70819200, 2031721883, 1637235492,
  ]);
  const h = new Xoshiro128(42);
  for (let i = 0; i < 1000; i++) {
    const u = h.nextFloat();
    assert.ok(u >= 0 && u < 1);
  }
  assert.throws(() => new Xoshiro128(1.5), /seed must be a safe integer/);
});

test('greedy: argmax after penalties and bias, ties to the lowest id, seed irrelevant', () => {
  const l = Float32Array.from([0.1, 2, -1, 2, 1.9]);
  for (const seed of [1, 2, 3]) assert.equal(new Sampler({ temperature: 0, seed }).sample(l, []), 1);
  assert.equal(new Sampler({ temperature: -1 }).sample(l, []), 1);
  // Bias moves the argmax; a repeat penalty on token 1 (2 / 2 = 1) hands it to token 3.
  assert.equal(new Sampler({ temperature: 0, logitBias: { 4: 0.5 } }).sample(l, []), 4);
  assert.equal(new Sampler({ temperature: 0, repeatPenalty: 2 }).sample(l, [1]), 3);
  // The caller's logits are not modified.
  assert.deepEqual([...l], [f(0.1), 2, -1, 2, f(1.9)]);
});

test('penalties: repeat (divide positive, multiply non-positive), then frequency and presence', () => {
  const base = [2, -2, 1, 0.5, 3, 0];
  const o = { repeatPenalty: 1.5, frequencyPenalty: 0.2, presencePenalty: 0.3, lastN: 4 };
  const l = Float32Array.from(base);
  // Window = the last 4 tokens: [1, 0, 3, 0] -> counts {1: 1, 0: 2, 3: 1}; token 5 (logit 0)
  // and token 4 are outside the window (token 4 only at the start of the history).
  applyPenalties(l, [4, 5, 1, 0, 3, 0], o);
  const exp = (x: number, c: number): number => f(f(x <= 0 ? x * 1.5 : x / 1.5) - (c * 0.2 + 0.3));
  assert.deepEqual([...l], [exp(2, 2), exp(-2, 1), 1, exp(0.5, 1), 3, 0]);

  // Zero logit: multiplied by the penalty (stays 0), then the presence/frequency terms.
  const z = Float32Array.from(base);
  applyPenalties(z, [5, 5, 5], { repeatPenalty: 1.5, frequencyPenalty: 0.1, presencePenalty: 0, lastN: -1 });
  assert.equal(z[5], f(0 - 3 * 0.1));

  // lastN = 0 turns everything off; -1 = whole history.
  const off = Float32Array.from(base);
  applyPenalties(off, [0, 1, 2], { ...o, lastN: 0 });
  assert.deepEqual([...off], base);
  const all = Float32Array.from(base);
  applyPenalties(all, [4, 0], { repeatPenalty: 2, frequencyPenalty: 0, presencePenalty: 0, lastN: -1 });
  assert.deepEqual([...all], [1, -2, 1, 0.5, 1.5, 0]);

  assert.throws(() => applyPenalties(Float32Array.from(base), [9], o), /outside the vocabulary/);
});

test('penalties inside the sampler change the distribution by the specified amounts', () => {
  // Token 0 and 1 equal; history has token 0 twice: frequency 0.5 -> logit 1 - 1 = 0 vs 1.
  const l = Float32Array.from([1, 1]);
  const s = new Sampler({ frequencyPenalty: 0.5, seed: 9 });
  s.sample(l, [0, 0]);
  const lp = s.logprobs(0, 2);
  const ref = softmax([0, 1]);
  assert.ok(Math.abs(lp.logprob - Math.log(ref[0]!)) < 1e-6);
  assert.deepEqual(
    lp.top.map((t) => t.token),
    [1, 0],
  );
});

test('logit bias: -Infinity and -100 ban, +bias adds; bad biases are errors', () => {
  const l = Float32Array.from([3, 2.9, 0, -1]);
  assert.equal(new Sampler({ temperature: 0, logitBias: new Map([[0, -Infinity]]) }).sample(l, []), 1);
  assert.equal(new Sampler({ temperature: 0, logitBias: { 0: -100 } }).sample(l, []), 1);
  assert.equal(new Sampler({ temperature: 0, logitBias: { 3: 5 } }).sample(l, []), 3);
  // A banned token never appears even at a high temperature.
  const h = histogram({ temperature: 5, seed: 1, logitBias: { 0: -100, 2: -Infinity } }, l, 3000);
  assert.equal(h[0], 0);
  assert.equal(h[2], 0);
  assert.ok(h[1]! > 0.3 && h[3]! > 0.2, `both remaining tokens drawn: ${h}`);
  assert.throws(() => new Sampler({ logitBias: { 10: 1 } }).sample(l, []), /logit bias names token 10/);
  assert.throws(() => new Sampler({ logitBias: { 1: NaN } }), /logit bias for token 1/);
  assert.throws(() => new Sampler({ logitBias: { x: 1 } as Record<string, number> }), /not a token id/);
  assert.throws(
    () => new Sampler({ logitBias: { 0: -100, 1: -100, 2: -100, 3: -Infinity } }).sample(l, []),
    /logit_bias bans every token/,
  );
});

test('same seed and inputs give the same tokens; different seeds differ; no seed is random but reported', () => {
  const l = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);
  const run = (seed?: number): { toks: number[]; seed: number } => {
    const s = new Sampler({ temperature: 1.2, topP: 0.95, seed });
    const toks: number[] = [];
    for (let i = 0; i < 200; i++) toks.push(s.sample(l, toks));
    return { toks, seed: s.seed };
  };
  assert.deepEqual(run(7).toks, run(7).toks);
  assert.notDeepEqual(run(7).toks, run(8).toks);
  const r = run();
  assert.deepEqual(run(r.seed).toks, r.toks, 'replaying the reported random seed reproduces the run');
});

test('top_k = 1 equals greedy at any temperature', () => {
  const s = new Sampler({ temperature: 2, topK: 1, seed: 3 });
  const g = new Sampler({ temperature: 0 });
  for (let r = 0; r < 50; r++) {
    const l = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 0.37 + r * 1.3) * 4);
    assert.equal(s.sample(l, []), g.sample(l, []));
  }
});

test('top_k keeps the k best tokens, distributed as the renormalised softmax', () => {
  const probs = [0.05, 0.4, 0.1, 0.25, 0.2];
  const l = logitsOf(probs);
  const h = histogram({ topK: 3, seed: 11 }, l, 20000);
  const z = 0.4 + 0.25 + 0.2;
  assertClose(h, [0, 0.4 / z, 0, 0.25 / z, 0.2 / z], 0.02, 'top_k=3');
});

test('selectTopK agrees with a full sort (ties to the lowest id, -Infinity skipped)', () => {
  const rng = new Xoshiro128(5);
  for (const [n, k] of [
    [1000, 1],
    [1000, 40],
    [1000, 999],
    [128256, 40],
  ] as const) {
    const w = Float32Array.from({ length: n }, () => Math.floor(rng.nextFloat() * 50) / 10); // many ties
    w[3] = -Infinity;
    const out = new Int32Array(k);
    const c = selectTopK(w, k, out);
    const got = [...out.subarray(0, c)].sort((a, b) => a - b);
    const want = [...Array(n).keys()]
      .filter((i) => w[i] !== -Infinity)
      .sort((a, b) => w[b]! - w[a]! || a - b)
      .slice(0, k)
      .sort((a, b) => a - b);
    assert.deepEqual(got, want, `n=${n} k=${k}`);
  }
});

test('top_p keeps the shortest prefix reaching p, on small and large vocabularies', () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const l = logitsOf(probs);
  // cum 0.5 < 0.75 <= 0.8: tokens 0 and 1 survive.
  assertClose(histogram({ topP: 0.75, seed: 4 }, l, 20000), [0.625, 0.375, 0, 0], 0.02, 'top_p=0.75');
  // With top_k first, top_p works on the renormalised top-k distribution: top_k=3 gives
  // {0.5, 0.3, 0.15}/0.95; cum 0.526 < 0.55 -> tokens 0 and 1.
  assertClose(histogram({ topK: 3, topP: 0.55, seed: 4 }, l, 20000), [0.625, 0.375, 0, 0], 0.02, 'top_k+top_p');

  // A peak plus a long flat tail holding ~11% of the mass: the nucleus has to reach far into the
  // tail (beyond the sampler's first window), cut at an exact, tie-broken position.
  const n = 1000;
  const tail = Float32Array.from({ length: n }, (_, i) => (i === 0 ? 0 : -9));
  const z = 1 + (n - 1) * Math.exp(-9);
  let cut = 0;
  for (let cum = 0; cum < 0.95 * z; cut++) cum += cut === 0 ? 1 : Math.exp(-9);
  assert.ok(cut > 100 && cut < n - 100, `test setup: cut ${cut}`);
  const s = new Sampler({ topP: 0.95, seed: 2 });
  assert.deepEqual(s.candidates(tail, []), [...Array(cut).keys()]);
  // Draws stay inside the nucleus.
  for (let i = 0; i < 300; i++) assert.ok(s.sample(tail, []) < cut);
  // The same on a 128256-token vocabulary with a random spread of logits, against a full sort.
  const rng = new Xoshiro128(99);
  const big = Float32Array.from({ length: 128256 }, () => rng.nextFloat() * 12);
  const order = [...big.keys()].sort((a, b) => big[b]! - big[a]! || a - b);
  const mx = big[order[0]!]!;
  let zBig = 0;
  for (const v of big) zBig += Math.exp(v - mx);
  for (const p of [0.1, 0.5, 0.9]) {
    let k = 0;
    for (let cum = 0; cum < p * zBig; k++) cum += Math.exp(big[order[k]!]! - mx);
    assert.deepEqual(new Sampler({ topP: p }).candidates(big, []), order.slice(0, k), `top_p=${p}`);
  }
});

test('min_p removes tokens below min_p * p_max, alone and combined', () => {
  const probs = [0.5, 0.3, 0.15, 0.05];
  const l = logitsOf(probs);
  // threshold 0.25 * 0.5 = 0.125: tokens 0, 1, 2.
  assertClose(histogram({ minP: 0.25, seed: 6 }, l, 20000), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], 0.02, 'min_p');
  // top_p 0.9 keeps 0..2, min_p 0.5 (threshold 0.25) then keeps 0..1.
  assertClose(histogram({ topP: 0.9, minP: 0.5, seed: 6 }, l, 20000), [0.625, 0.375, 0, 0], 0.02, 'top_p+min_p');
  // top_k 3 then min_p 0.5: tokens 0..1.
  assertClose(histogram({ topK: 3, minP: 0.5, seed: 6 }, l, 20000), [0.625, 0.375, 0, 0], 0.02, 'top_k+min_p');
});

test('temperature scales the logits before the softmax', () => {
  const l = Float32Array.from([1, 0, -1, 0.5]);
  for (const t of [0.5, 1, 2]) {
    assertClose(histogram({ temperature: t, seed: 13 }, l, 20000), softmax(l, t), 0.02, `T=${t}`);
  }
  // Truncation happens before temperature: top_k 2 at T=2 -> softmax of {1, 0.5} / 2.
  const two = softmax([1 / 2, 0.5 / 2]);
  assertClose(histogram({ temperature: 2, topK: 2, seed: 13 }, l, 20000), [two[0]!, 0, 0, two[1]!], 0.02, 'top_k then T');
});

test('logprobs: log-softmax after penalties and bias, before truncation and temperature', () => {
  const l = Float32Array.from([2, 1, 0.5, -1, 1]);
  const s = new Sampler({ temperature: 0.3, topK: 1, logitBias: { 3: -Infinity }, seed: 1 });
  const tok = s.sample(l, []);
  assert.equal(tok, 0);
  const lp = s.logprobs(tok, 3);
  const ref = softmax([2, 1, 0.5, -Infinity, 1]);
  assert.ok(Math.abs(lp.logprob - Math.log(ref[0]!)) < 1e-6, `${lp.logprob}`);
  assert.deepEqual(
    lp.top.map((t) => t.token),
    [0, 1, 4],
  );
  for (const t of lp.top) assert.ok(Math.abs(t.logprob - Math.log(ref[t.token]!)) < 1e-6);
  assert.equal(s.logprobs(3, 0).logprob, -Infinity);
  assert.deepEqual(s.logprobs(3, 0).top, []);
  // The free function agrees.
  const direct = logSoftmaxInfo(Float32Array.from([2, 1, 0.5, -Infinity, 1]), 0, 3);
  assert.deepEqual(direct, lp);
  assert.throws(() => new Sampler().logprobs(0, 1), /needs a sample\(\) call first/);
});

test('bad options and bad logits are clear errors', () => {
  assert.throws(() => new Sampler({ topP: 0 }), /topP must be in \(0, 1\]/);
  assert.throws(() => new Sampler({ topP: 1.5 }), /topP/);
  assert.throws(() => new Sampler({ minP: 1 }), /minP/);
  assert.throws(() => new Sampler({ topK: -1 }), /topK/);
  assert.throws(() => new Sampler({ topK: 2.5 }), /topK/);
  assert.throws(() => new Sampler({ temperature: NaN }), /temperature/);
  assert.throws(() => new Sampler({ repeatPenalty: 0 }), /repeatPenalty/);
  assert.throws(() => new Sampler({ repeatLastN: -2 }), /repeatLastN/);
  assert.throws(() => new Sampler({ seed: 0.5 }), /seed/);
  const s = new Sampler({ seed: 1 });
  assert.throws(() => s.sample(new Float32Array(0), []), /empty logits/);
  assert.throws(() => s.sample(Float32Array.from([0, NaN, 1]), []), /NaN \(token 1\)/);
  assert.throws(() => s.sample(Float32Array.from([0, Infinity]), []), /\+Infinity/);
  assert.throws(() => new Sampler({ repeatPenalty: 1.1 }).sample(Float32Array.from([0, 1]), [5]), /outside the vocabulary/);
});
