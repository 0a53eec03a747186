// The forward pass against references nobody here wrote (test/fixtures/oracle, see its README):
// llama.cpp / bitnet.cpp logits and greedy tokens, and a float64 numpy emulation of per-token int8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitNetModel } from '../../src/model/model.js';
import { ORACLE_MODELS, oracleBytes, oracleJson } from '../helpers/oracle.js';
import { testKernels } from '../helpers/kernels.js';

interface PromptRef { tokens: number[]; logits_all: number[][]; logits_last: number[]; greedy?: number[]; greedy_top2_gap?: number[] }

const int8Ref = oracleJson<{ models: Record<string, { prompts: PromptRef[] }> }>('ref-int8-tiny.json');
const VOCAB = 288;
// README: an engine doing this math in float32 with int32 dots stays within 0.25 of the int8 reference.
const INT8_TOL = 0.25;
// README / issue: llama.cpp's quantized paths differ from its own F32 path by up to ~0.65.
const LLAMA_TOL = 0.65;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function argmax(a: ArrayLike<number>, off = 0, n = a.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}
function top2Gap(a: number[]): number {
  const s = [...a].sort((x, y) => y - x);
  return s[0] - s[1];
}

const logitsByModel = new Map<string, Float32Array[]>();

for (const name of ORACLE_MODELS) {
  const act = name.includes('relu2') ? 'relu2' : 'silu';
  test(`${name}: logits at every position match the oracle`, async () => {
    const kernels = await testKernels();
    const model = await BitNetModel.load(oracleBytes(`${name}.gguf`), { kernels });
    assert.equal(model.config.ffnAct, act);
    const llama = oracleJson<{ prompts: PromptRef[] }>(`${name}.json`);
    const all: Float32Array[] = [];
    for (const [pi, p] of int8Ref.models[act].prompts.entries()) {
      const seq = model.createSequence({ ctxSize: 128, batchSize: 16 });
      const logits = await seq.forward(p.tokens, { allLogits: true });
      all.push(logits);
      const lp = llama.prompts[pi];
      assert.deepEqual(lp.tokens, p.tokens);
      for (let i = 0; i < p.tokens.length; i++) {
        const row = logits.subarray(i * VOCAB, (i + 1) * VOCAB);
        const d = maxAbsDiff(row, p.logits_all[i]);
        assert.ok(d <= INT8_TOL, `prompt ${pi} pos ${i}: max |delta| ${d} vs int8 reference > ${INT8_TOL}`);
        const dl = maxAbsDiff(row, lp.logits_all[i]);
        assert.ok(dl <= LLAMA_TOL, `prompt ${pi} pos ${i}: max |delta| ${dl} vs ${name}.json > ${LLAMA_TOL}`);
        // same argmax wherever the reference is decisive
        if (top2Gap(lp.logits_all[i]) >= 0.5) assert.equal(argmax(row), argmax(lp.logits_all[i]), `prompt ${pi} pos ${i}: argmax differs`);
      }
    }
    logitsByModel.set(name, all);
  });

  // The rule (compare up to the first step whose reference top-1/top-2 gap is < 0.5) compares
  // nothing here: these random-weight models have gaps under 0.5 from the first step. We compare up
  // to the first gap < 0.1 instead. Measured (reference kernels): agreement with llama.cpp TQ2_0/TQ1_0
  // runs 22/44/17/15 (silu) and 48/24/20/19 (relu2) tokens, with F32 5/4/17/8 — the same prefix the
  // README reports between llama.cpp's own F32 and TQ2_0 paths.
  test(`${name}: greedy tokens match llama.cpp up to the first near-tie`, async () => {
    const kernels = await testKernels();
    const model = await BitNetModel.load(oracleBytes(`${name}.gguf`), { kernels });
    const llama = oracleJson<{ prompts: PromptRef[] }>(`${name}.json`);
    let compared = 0;
    for (const [pi, p] of llama.prompts.entries()) {
      const seq = model.createSequence({ ctxSize: 128 });
      let logits = await seq.forward(p.tokens);
      const firstNearTie = p.greedy_top2_gap!.findIndex((g) => g < 0.1);
      const n = firstNearTie < 0 ? p.greedy!.length : firstNearTie;
      for (let k = 0; k < n; k++) {
        const tok = argmax(logits);
        assert.equal(tok, p.greedy![k], `prompt ${pi} greedy step ${k} (reference gap ${p.greedy_top2_gap![k]})`);
        compared++;
        logits = await seq.forward([tok]);
      }
    }
    assert.ok(compared >= 2, `only ${compared} greedy steps were decisive enough to compare`);
  });
}

test('the same ternary weights in F32, TQ2_0, TQ1_0 and I2_S give identical logits', async () => {
  const kernels = await testKernels();
  for (const act of ['silu', 'relu2']) {
    const files = ORACLE_MODELS.filter((n) => n.includes(act));
    let base: Float32Array | undefined;
    for (const name of files) {
      const model = await BitNetModel.load(oracleBytes(`${name}.gguf`), { kernels });
      const seq = model.createSequence({ ctxSize: 64 });
      const logits = await seq.forward(int8Ref.models[act].prompts[2].tokens, { allLogits: true });
      if (!base) base = logits;
      else assert.deepEqual(logits, base, `${name} differs from ${files[0]}`);
    }
  }
});

test('an f16 KV cache: half the bytes, logits at every position still within the oracle tolerances', async () => {
  const name = 'bitnet-tiny-silu-tq2_0';
  const kernels = await testKernels();
  const model = await BitNetModel.load(oracleBytes(`${name}.gguf`), { kernels });
  const llama = oracleJson<{ prompts: PromptRef[] }>(`${name}.json`);
  let worstVsF32 = 0;
  for (const [pi, p] of int8Ref.models.silu.prompts.entries()) {
    const f16 = model.createSequence({ ctxSize: 128, batchSize: 16, cacheType: 'f16' });
    const f32 = model.createSequence({ ctxSize: 128, batchSize: 16 });
    assert.equal(f16.kv.byteSize * 2, f32.kv.byteSize);
    const a = await f16.forward(p.tokens, { allLogits: true });
    const b = await f32.forward(p.tokens, { allLogits: true });
    worstVsF32 = Math.max(worstVsF32, maxAbsDiff(a, b));
    for (let i = 0; i < p.tokens.length; i++) {
      const row = a.subarray(i * VOCAB, (i + 1) * VOCAB);
      assert.ok(maxAbsDiff(row, p.logits_all[i]) <= INT8_TOL, `f16 cache, prompt ${pi} pos ${i}: vs int8 reference`);
      assert.ok(maxAbsDiff(row, llama.prompts[pi].logits_all[i]) <= LLAMA_TOL, `f16 cache, prompt ${pi} pos ${i}: vs llama.cpp`);
    }
  }
  // the f16 cache is really in use: its rounding moves the logits, a little
  assert.ok(worstVsF32 > 0 && worstVsF32 < INT8_TOL, `f16 vs f32 cache: max |delta| ${worstVsF32}`);
  assert.throws(() => model.createSequence({ cacheType: 'q8_0' as 'f16' }), /KV cache type must be f32 or f16, got 'q8_0'/);
});

// lm_head f16 (the file's own rows, float activations): the head adds no int8 rounding, so position 0
// (BOS: its hidden state goes through the int8 layers, whose rounding the reference does exactly)
// matches the float64 int8 reference to float32 rounding. With the int8 head it is ~0.04 off.
test('--lm-head f16: position 0 of every oracle prompt within 1e-3 of ref-int8-tiny.json (int8: about 0.04 off)', async () => {
  const kernels = await testKernels();
  for (const name of ['bitnet-tiny-silu-f32', 'bitnet-tiny-silu-tq2_0', 'bitnet-tiny-silu-i2_s', 'bitnet-tiny-relu2-f32', 'bitnet-tiny-relu2-tq1_0']) {
    const act = name.includes('relu2') ? 'relu2' : 'silu';
    const f16 = await BitNetModel.load(oracleBytes(`${name}.gguf`), { kernels, lmHead: 'f16' });
    const int8 = await BitNetModel.load(oracleBytes(`${name}.gguf`), { kernels, lmHead: 'int8' });
    assert.equal(f16.lmHead, 'f16');
    assert.equal(int8.lmHead, 'int8');
    let worstInt8 = 0;
    for (const [pi, p] of int8Ref.models[act].prompts.entries()) {
      const a = await f16.createSequence({ ctxSize: 128, batchSize: 16 }).forward(p.tokens, { allLogits: true });
      const b = await int8.createSequence({ ctxSize: 128, batchSize: 16 }).forward(p.tokens, { allLogits: true });
      const d0 = maxAbsDiff(a.subarray(0, VOCAB), p.logits_all[0]);
      assert.ok(d0 <= 1e-3, `${name} prompt ${pi} pos 0: f16 head max |delta| ${d0} > 1e-3`);
      worstInt8 = Math.max(worstInt8, maxAbsDiff(b.subarray(0, VOCAB), p.logits_all[0]));
      for (let i = 0; i < p.tokens.length; i++) {
        const d = maxAbsDiff(a.subarray(i * VOCAB, (i + 1) * VOCAB), p.logits_all[i]);
        assert.ok(d <= INT8_TOL, `${name} prompt ${pi} pos ${i}: f16 head max |delta| ${d} > ${INT8_TOL}`);
      }
    }
    // the int8 head really is coarser at position 0: the check above could tell the two apart
    assert.ok(worstInt8 > 1e-2, `${name}: int8 head at position 0 is ${worstInt8} off, expected ~0.04`);
  }
  await assert.rejects(BitNetModel.load(oracleBytes('bitnet-tiny-silu-f32.gguf'), { kernels, lmHead: 'f8' as 'f16' }), /lm_head precision must be int8 or f16, got 'f8'/);
});
