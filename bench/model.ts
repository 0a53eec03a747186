// End-to-end model benchmark, llama-bench style: pp512 (prompt processing, tokens/s) and tg128
// (generation, tokens/s) on a 2B4T-shaped synthetic model (no model can be downloaded), at 1 and 2
// threads, plus load time and peak memory (max RSS of a fresh process per configuration).
//
//   npm run build && node dist/bench/model.js [--reps 3] [--threads 1,2] [--type i2_s] [--kernels relaxed]
//                                           [--layers 30] [--pp 512] [--tg 128]
//                                           [--arch bitnet-b1.58|bitnet] [--embed f16|q8_0] [--model FILE]
//                                           [--depth 0] [--cache-type f32|f16] [--llama-cpp] [--out FILE]
// --depth D measures pp and tg after D tokens already in the KV cache (llama-bench's -d: "tg128 @ d2048"),
// where attention over the cache weighs in; --cache-type sets the KV cache type of both engines.
// --llama-cpp also runs llama.cpp on the same file, same threads, same measurements (through
// node-llama-cpp, which is not a dependency: `mkdir /tmp/nlc && cd /tmp/nlc && npm i node-llama-cpp@3.21.1`,
// then NODE_PATH=/tmp/nlc/node_modules). Mainline llama.cpp reads arch `bitnet` with TQ2_0/TQ1_0
// weights only, and runs its FFN with SiLU, so use --arch bitnet --type tq2_0 (WrinkleFree then
// runs SiLU too). Writes bench/results/model.json (or --out).
import { fork } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BITNET_2B4T_SHAPE } from '../src/model/synthetic.js';
import { ensure2B4TShapeFile } from './synthetic-file.js';

interface Args {
  reps: number; threads: number[]; type: 'i2_s' | 'tq2_0' | 'tq1_0'; kernels?: string; layers: number; pp: number; tg: number;
  arch: 'bitnet-b1.58' | 'bitnet'; embed: 'f16' | 'q8_0'; model?: string; llamaCpp: boolean; out: string;
  depth: number; cacheType: 'f32' | 'f16';
}

function parse(argv: string[]): Args {
  const a: Args = {
    reps: 3, threads: [1, 2], type: 'i2_s', layers: BITNET_2B4T_SHAPE.nLayers, pp: 512, tg: 128,
    arch: 'bitnet-b1.58', embed: 'f16', llamaCpp: false, out: 'bench/results/model.json', depth: 0, cacheType: 'f32',
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--reps': a.reps = Number(v); i++; break;
      case '--threads': a.threads = v.split(',').map(Number); i++; break;
      case '--type': a.type = v as Args['type']; i++; break;
      case '--kernels': a.kernels = v; i++; break;
      case '--layers': a.layers = Number(v); i++; break;
      case '--pp': a.pp = Number(v); i++; break;
      case '--tg': a.tg = Number(v); i++; break;
      case '--arch': a.arch = v as Args['arch']; i++; break;
      case '--embed': a.embed = v as Args['embed']; i++; break;
      case '--model': a.model = v; i++; break;
      case '--out': a.out = v; i++; break;
      case '--depth': a.depth = Number(v); i++; break;
      case '--cache-type': a.cacheType = v as Args['cacheType']; i++; break;
      case '--llama-cpp': a.llamaCpp = true; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (!Number.isInteger(a.depth) || a.depth < 0) throw new Error(`--depth must be a whole number, got ${a.depth}`);
  if (a.cacheType !== 'f32' && a.cacheType !== 'f16') throw new Error(`--cache-type must be f32 or f16, got ${a.cacheType}`);
  return a;
}

/** Token ids of the synthetic prompts: the depth filler, then the timed prompt. */
const tokens = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ((from + i) * 7919) % 256);

async function ensureModel(a: Args): Promise<string> {
  return a.model ?? ensure2B4TShapeFile({ layers: a.layers, type: a.type, arch: a.arch, embed: a.embed });
}

const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
const std = (x: number[]) => (x.length < 2 ? 0 : Math.sqrt(x.reduce((a, b) => a + (b - mean(x)) ** 2, 0) / (x.length - 1)));

/** llama.cpp child (node-llama-cpp from NODE_PATH): the same measurements on the same file. */
async function llamaCppChild(path: string, threads: number, a: Args): Promise<void> {
  const { createRequire } = await import('node:module');
  const require = createRequire(join(process.env.NODE_PATH ?? '/tmp/nlc/node_modules', 'x.js'));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const nlc: any = await import(require.resolve('node-llama-cpp'));
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: path });
  const kv = a.cacheType.toUpperCase();
  const ctx = await model.createContext({
    contextSize: a.depth + Math.max(a.pp, a.tg) + 8, threads, batchSize: a.pp,
    experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv,
  });
  const loadMs = performance.now() - t0;
  const seq = ctx.getSequence();
  const prompt = tokens(a.pp, a.depth);
  await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 16));
  // back to the depth: the filler stays in the cache, what came after it goes
  const toDepth = async () => {
    if (a.depth === 0) return seq.clearHistory();
    if (seq.nextTokenIndex < a.depth) {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(tokens(a.depth));
    } else if (seq.nextTokenIndex > a.depth) {
      await seq.eraseContextTokenRanges([{ start: a.depth, end: seq.nextTokenIndex }]);
    }
  };
  const pp: number[] = [];
  const tg: number[] = [];
  for (let r = 0; r < a.reps; r++) {
    await toDepth();
    let t = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    pp.push((a.pp * 1000) / (performance.now() - t));
    await toDepth();
    let n = 0;
    t = performance.now();
    for await (const _ of seq.evaluate([1], { temperature: 0 })) if (++n >= a.tg) break;
    tg.push((a.tg * 1000) / (performance.now() - t));
  }
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  process.send!({ threads, kernels: `llama.cpp (node-llama-cpp ${nlc.version ?? ''})`.replace(' )', ')'), loadMs, pp, tg, maxRssMB });
  await model.dispose();
  process.exit(0);
}

/** Child: load the model with N threads, run the measurements, send the figures back. */
async function child(path: string, threads: number, a: Args): Promise<void> {
  const { loadModelFile } = await import('../src/node/model-file.js');
  const t0 = performance.now();
  const lm = await loadModelFile(path, { threads, kernelPath: a.kernels as 'relaxed' | undefined });
  const loadMs = performance.now() - t0;
  const seq = lm.createSequence({ ctxSize: a.depth + Math.max(a.pp, a.tg) + 8, batchSize: 64, cacheType: a.cacheType });
  const V = lm.config.vocabSize;
  const prompt = tokens(a.pp, a.depth);
  // warm-up: compile and tier up the kernels and JS paths before timing
  await seq.forward(prompt.slice(0, 16));
  for (let i = 0; i < 4; i++) await seq.forward([1]);
  // the depth filler, kept in the cache by every rep (truncate only drops what came after it)
  seq.truncate(0);
  if (a.depth > 0) await seq.forward(tokens(a.depth));
  const pp: number[] = [];
  const tg: number[] = [];
  for (let r = 0; r < a.reps; r++) {
    seq.truncate(a.depth);
    let t = performance.now();
    await seq.forward(prompt);
    pp.push((a.pp * 1000) / (performance.now() - t));
    // tg: one token at a time from the depth (an empty context by default), greedy on the logits (llama-bench's tg)
    seq.truncate(a.depth);
    let tok = 1;
    t = performance.now();
    for (let i = 0; i < a.tg; i++) {
      const logits = await seq.forward([tok]);
      let best = 0;
      for (let v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
      tok = best;
    }
    tg.push((a.tg * 1000) / (performance.now() - t));
  }
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  process.send!({ threads, kernels: lm.kernels.name, loadMs, pp, tg, maxRssMB });
  lm.dispose();
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child' || process.argv[2] === '--llama-cpp-child') {
    const [path, threads, json] = process.argv.slice(3);
    return (process.argv[2] === '--child' ? child : llamaCppChild)(path, Number(threads), JSON.parse(json));
  }
  const a = parse(process.argv.slice(2));
  const path = await ensureModel(a);
  const fileMB = statSync(path).size / 1e6;
  const rows: Record<string, unknown>[] = [];
  const at = a.depth > 0 ? ` @ d${a.depth}` : '';
  console.log(`model: ${path} (${fileMB.toFixed(0)} MB), ${a.reps} reps, KV cache ${a.cacheType}${a.depth > 0 ? `, depth ${a.depth}` : ''}`);
  console.log(`| threads | kernels | load s | pp${a.pp}${at} t/s | tg${a.tg}${at} t/s | peak RSS MB | RSS / file |`);
  console.log('|---|---|---|---|---|---|---|');
  const runs: [string, number][] = a.threads.map((t) => ['--child', t]);
  if (a.llamaCpp) runs.push(...a.threads.map((t): [string, number] => ['--llama-cpp-child', t]));
  for (const [mode, threads] of runs) {
    const p = fork(fileURLToPath(import.meta.url), [mode, path, String(threads), JSON.stringify(a)], { stdio: 'inherit' });
    const [msg] = (await once(p, 'message')) as [{ threads: number; kernels: string; loadMs: number; pp: number[]; tg: number[]; maxRssMB: number }];
    await once(p, 'exit');
    const row = {
      threads, kernels: msg.kernels, load_s: msg.loadMs / 1000,
      [`pp${a.pp}`]: { mean: mean(msg.pp), std: std(msg.pp), runs: msg.pp },
      [`tg${a.tg}`]: { mean: mean(msg.tg), std: std(msg.tg), runs: msg.tg },
      peak_rss_mb: msg.maxRssMB, rss_over_file: (msg.maxRssMB * 1.048576) / fileMB,
    };
    rows.push(row);
    console.log(`| ${threads} | ${msg.kernels} | ${row.load_s.toFixed(1)} | ${mean(msg.pp).toFixed(2)} ± ${std(msg.pp).toFixed(2)} | ${mean(msg.tg).toFixed(2)} ± ${std(msg.tg).toFixed(2)} | ${msg.maxRssMB.toFixed(0)} | ${row.rss_over_file.toFixed(2)} |`);
  }
  const base = rows[0] as any;
  for (const r of rows.slice(1, a.threads.length) as any[]) {
    console.log(`ratio vs ${base.threads} thread(s): pp x${(r[`pp${a.pp}`].mean / base[`pp${a.pp}`].mean).toFixed(2)}, tg x${(r[`tg${a.tg}`].mean / base[`tg${a.tg}`].mean).toFixed(2)}`);
  }
  if (a.llamaCpp) {
    for (let i = 0; i < a.threads.length; i++) {
      const w = rows[i] as any, l = rows[a.threads.length + i] as any;
      console.log(`WrinkleFree / llama.cpp at ${w.threads} thread(s): pp x${(w[`pp${a.pp}`].mean / l[`pp${a.pp}`].mean).toFixed(2)}, tg x${(w[`tg${a.tg}`].mean / l[`tg${a.tg}`].mean).toFixed(2)}`);
    }
  }
  mkdirSync(dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify({ date: new Date().toISOString(), model: path, file_mb: fileMB, args: a, rows }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
