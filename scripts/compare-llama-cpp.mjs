// Manual cross-check (not a test): converts small checkpoints with `wf convert --arch bitnet` and
// compares llama.cpp's next-token log-probabilities (node-llama-cpp 3.21.1, CPU) with WrinkleFree's
// on the same files. node-llama-cpp is not a dependency; install it in a scratch folder:
//   mkdir /tmp/nlc && cd /tmp/nlc && npm i node-llama-cpp@3.21.1
//   cd /work/main && npm run build && NODE_PATH=/tmp/nlc/node_modules node scripts/compare-llama-cpp.mjs
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const require = createRequire(join(process.env.NODE_PATH ?? '/tmp/nlc/node_modules', 'x.js'));
const { getLlama, LlamaLogLevel } = await import(require.resolve('node-llama-cpp'));
const tmp = mkdtempSync(join(tmpdir(), 'wf-llama-cpp-'));
import { buildCheckpoint } from '../dist/test/convert/helpers.js';
import { convertCheckpoint } from '../dist/src/convert/hf-to-gguf.js';
import { loadModelFile } from '../dist/src/node/model-file.js';
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const results = [];
for (const [form, outtype] of [['onebit', 'tq2_0'], ['latent-bf16', 'tq2_0'], ['latent-bf16', 'tq1_0'], ['prepacked', 'tq2_0']]) {
  const c = buildCheckpoint(form, { untied: false });
  const out = `${tmp}/cmp-${form}-${outtype}.gguf`;
  await convertCheckpoint({ checkpointDir: c.dir, outfile: out, outtype, arch: 'bitnet' });
  const model = await llama.loadModel({ modelPath: out });
  const ctx = await model.createContext({ contextSize: 128, threads: 2 });
  const seq = ctx.getSequence();
  const tokens = model.tokenize('the cat sat in a hat and then the dog ran away');
  const input = tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]);
  const res = await seq.controlledEvaluate(input);
  // mainline's bitnet graph is SiLU whatever hidden_activation says: run WrinkleFree the same way
  const wf = await loadModelFile(out, { threads: 2, ffnAct: 'silu' });
  const V = wf.config.vocabSize;
  const logits = await wf.createSequence({ ctxSize: 128 }).forward(tokens, { allLogits: true });
  let maxd = 0, argmaxAgree = 0, worstGap = 0;
  for (let i = 0; i < tokens.length; i++) {
    const probs = res[i].next.probabilities; // Map token -> p
    const lp = new Float64Array(V).fill(-Infinity);
    for (const [t, p] of probs) lp[t] = Math.log(p);
    // center both by their log-sum-exp: logit differences are what softmax preserves
    const row = logits.subarray(i * V, (i + 1) * V);
    let m = -Infinity; for (const x of row) m = Math.max(m, x);
    let s = 0; for (const x of row) s += Math.exp(x - m);
    const lse = m + Math.log(s);
    let a1 = 0, a2 = 0;
    for (let v = 0; v < V; v++) {
      if (lp[v] > -30) maxd = Math.max(maxd, Math.abs(row[v] - lse - lp[v]));
      if (row[v] > row[a1]) a1 = v;
      if (lp[v] > lp[a2]) a2 = v;
    }
    if (a1 === a2) argmaxAgree++;
    else {
      // how decisive was llama.cpp where we disagree? (top-1 minus top-2 log-prob)
      let second = -Infinity;
      for (let v = 0; v < V; v++) if (v !== a2 && lp[v] > second) second = lp[v];
      worstGap = Math.max(worstGap, lp[a2] - second);
    }
  }
  results.push({ form, outtype, positions: tokens.length, max_abs_delta_logprob: +maxd.toFixed(4), argmax_agree: `${argmaxAgree}/${tokens.length}`, largest_gap_where_argmax_differs: +worstGap.toFixed(4) });
  wf.dispose(); await ctx.dispose(); await model.dispose(); c.cleanup();
}
console.table(results);
