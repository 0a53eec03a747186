// Decode-step cost against batch size: B sequences (each with a prompt already cached) advance one
// token each in ONE forward pass, as the server's continuous batching does. Prints ms per step,
// aggregate tokens/s and the per-kernel split of the step (time inside each Kernels method), for
// B = 1, 2, 4, 8 on the 2B4T-shaped synthetic model. The ratio that matters for serving is
// "B rows per step / cost of the step" against B = 1.
//
//   npm run build && node dist/bench/batch-step.js [--threads 2] [--type tq2_0] [--steps 16] [--ctx 128]
//                                                 [--batches 1,2,4,8] [--model FILE] [--out bench/results/batch-step.json]
//                                                 [--prompt 512 [--prompt-batch 64]]
// --prompt N also reads an N-token prompt from an empty cache in batches of --prompt-batch rows (as
// pp512 does), three times, and prints that pass's split by kernel the same way.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { BITNET_2B4T_SHAPE, byteLevelTokenizer } from '../src/model/synthetic.js';
import { writeSyntheticModelFile } from './synthetic-file.js';
import { loadModelFile } from '../src/node/model-file.js';
import { addRows, createBatch } from '../src/model/forward.js';
import { KVCache } from '../src/model/kv-cache.js';
import type { Kernels } from '../src/kernels/api.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const threads = Number(arg('threads', '2'));
  const type = arg('type', 'tq2_0') as 'tq2_0' | 'i2_s' | 'tq1_0';
  const steps = Number(arg('steps', '16'));
  const ctx = Number(arg('ctx', '128'));
  const batches = arg('batches', '1,2,4,8').split(',').map(Number);
  const out = arg('out', 'bench/results/batch-step.json');
  const dir = join(tmpdir(), 'wf-bench');
  mkdirSync(dir, { recursive: true });
  const given = process.argv.includes('--model') ? arg('model', '') : '';
  const path = given || join(dir, `bitnet-2b4t-shape-30L-${type}.gguf`);
  if (!existsSync(path)) {
    await writeSyntheticModelFile(path, { ...BITNET_2B4T_SHAPE, weightType: type, tokenizer: byteLevelTokenizer(128256), name: 'synthetic 2B4T-shaped', seed: 1 });
  }
  const lm = await loadModelFile(path, { threads });
  const k = lm.kernels as unknown as Record<string, unknown>;
  const split = new Map<string, number>();
  // ternaryMatmuls (q, k, v or gate, up in one job) counts as ternaryMatmul; only the outermost
  // call is timed (a backend that runs ternaryMatmuls matrix by matrix calls ternaryMatmul inside)
  let depth = 0;
  for (const name of ['quantize', 'ternaryMatmul', 'ternaryMatmuls', 'int8Matmul', 'floatMatmul', 'rmsnorm', 'gatedActivation', 'addInPlace', 'rope', 'attention', 'attentionRows', 'int8Row']) {
    const f = k[name] as (...a: unknown[]) => unknown;
    const label = name === 'ternaryMatmuls' ? 'ternaryMatmul' : name;
    k[name] = (...a: unknown[]) => {
      const t = performance.now();
      depth++;
      try {
        return f.apply(lm.kernels, a);
      } finally {
        if (--depth === 0) split.set(label, (split.get(label) ?? 0) + performance.now() - t);
      }
    };
  }
  const maxB = Math.max(...batches);
  const c = lm.config;
  const fwd = lm.model.createForward(maxB, maxB, ctx + steps + 8);
  const caches = Array.from({ length: maxB }, () => new KVCache(lm.kernels as Kernels, c.nLayers, ctx + steps + 8, c.nKVHeads, c.headDim));
  const b = createBatch(maxB);
  const prompt = Array.from({ length: ctx }, (_, i) => (i * 7919) % 256);
  for (let s = 0; s < maxB; s++) {
    for (let i = 0; i < ctx; i += maxB) {
      b.n = 0;
      addRows(b, s, prompt.slice(i, i + maxB), i, 'none');
      await fwd.run(b, caches);
    }
  }
  // warm-up of the decode path at every batch size
  for (const B of batches) {
    b.n = 0;
    for (let s = 0; s < B; s++) addRows(b, s, [1], ctx);
    await fwd.run(b, caches);
  }
  const rows: Record<string, unknown>[] = [];
  for (const B of batches) {
    split.clear();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      b.n = 0;
      for (let s = 0; s < B; s++) addRows(b, s, [1 + i], ctx + i);
      await fwd.run(b, caches);
    }
    const ms = (performance.now() - t0) / steps;
    const per = Object.fromEntries([...split].map(([n, t]) => [n, +(t / steps).toFixed(2)]));
    const row = { batch: B, ms_per_step: +ms.toFixed(2), tokens_per_s: +((B * 1000) / ms).toFixed(2), split_ms: per };
    rows.push(row);
    console.log(`B=${B}  ${ms.toFixed(1)} ms/step  ${((B * 1000) / ms).toFixed(1)} tok/s  ` +
      [...split].sort((x, y) => y[1] - x[1]).map(([n, t]) => `${n} ${(t / steps).toFixed(1)}`).join('  '));
  }
  const promptLen = Number(arg('prompt', '0'));
  let promptPass: Record<string, unknown> | undefined;
  if (promptLen > 0) {
    const pb = Number(arg('prompt-batch', '64'));
    const pf = lm.model.createForward(pb, 1, promptLen + 8);
    const pc = new KVCache(lm.kernels as Kernels, c.nLayers, promptLen + 8, c.nKVHeads, c.headDim);
    const pbatch = createBatch(pb);
    const toks = Array.from({ length: promptLen }, (_, i) => (1000 + i * 7919) % c.vocabSize);
    const reps: { ms: number; split: Record<string, number> }[] = [];
    for (let rep = 0; rep < 3; rep++) {
      split.clear();
      const t0 = performance.now();
      // the same positions every time: each pass overwrites the cache rows of the one before
      for (let i = 0; i < promptLen; i += pb) {
        pbatch.n = 0;
        addRows(pbatch, 0, toks.slice(i, i + pb), i, i + pb >= promptLen ? 'last' : 'none');
        await pf.run(pbatch, [pc]);
      }
      const ms = performance.now() - t0;
      reps.push({ ms, split: Object.fromEntries([...split].map(([n, t]) => [n, +t.toFixed(1)])) });
      console.log(`pp${promptLen} (batches of ${pb})  ${((promptLen * 1000) / ms).toFixed(1)} tok/s  ${ms.toFixed(0)} ms  ` +
        [...split].sort((x, y) => y[1] - x[1]).map(([n, t]) => `${n} ${t.toFixed(0)}`).join('  '));
    }
    promptPass = { tokens: promptLen, batch: pb, reps };
  }
  const base = rows[0] as { tokens_per_s: number };
  for (const r of rows as { batch: number; tokens_per_s: number }[]) console.log(`B=${r.batch}: x${(r.tokens_per_s / base.tokens_per_s).toFixed(2)} of B=${(rows[0] as { batch: number }).batch}`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), threads, type, ctx, kernels: lm.kernels.name, rows, prompt: promptPass }, null, 2));
  lm.dispose();
}

void main();
