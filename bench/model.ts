// End-to-end model benchmark, llama-bench style: pp512 (prompt processing, tokens/s) and tg128
// (generation, tokens/s) on a 2B4T-shaped synthetic model (no model can be downloaded), at 1 and 2
// threads, plus load time and peak memory (max RSS of a fresh process per configuration).
//
//   npm run build && node dist/bench/model.js [--reps 3] [--threads 1,2] [--type i2_s] [--kernels relaxed]
//                                           [--layers 30] [--pp 512] [--tg 128]
// Writes bench/results/model.json.
import { fork } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BITNET_2B4T_SHAPE, byteLevelTokenizer, syntheticModelChunks, type SyntheticModelSpec } from '../src/model/synthetic.js';

interface Args { reps: number; threads: number[]; type: 'i2_s' | 'tq2_0' | 'tq1_0'; kernels?: string; layers: number; pp: number; tg: number }

function parse(argv: string[]): Args {
  const a: Args = { reps: 3, threads: [1, 2], type: 'i2_s', layers: BITNET_2B4T_SHAPE.nLayers, pp: 512, tg: 128 };
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
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

async function ensureModel(a: Args): Promise<string> {
  const dir = join(tmpdir(), 'wf-bench');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `bitnet-2b4t-shape-${a.layers}L-${a.type}.gguf`);
  if (existsSync(path)) return path;
  const spec: SyntheticModelSpec = { ...BITNET_2B4T_SHAPE, nLayers: a.layers, weightType: a.type, tokenizer: byteLevelTokenizer(128256), name: 'synthetic 2B4T-shaped', seed: 1 };
  const t0 = performance.now();
  const tmp = path + '.tmp';
  const out = createWriteStream(tmp);
  for (const chunk of syntheticModelChunks(spec)) if (!out.write(chunk)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  const { renameSync } = await import('node:fs');
  renameSync(tmp, path);
  console.log(`wrote ${path} (${(statSync(path).size / 1e6).toFixed(0)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
const std = (x: number[]) => (x.length < 2 ? 0 : Math.sqrt(x.reduce((a, b) => a + (b - mean(x)) ** 2, 0) / (x.length - 1)));

/** Child: load the model with N threads, run the measurements, send the figures back. */
async function child(path: string, threads: number, a: Args): Promise<void> {
  const { loadModelFile } = await import('../src/node/model-file.js');
  const t0 = performance.now();
  const lm = await loadModelFile(path, { threads, kernelPath: a.kernels as 'relaxed' | undefined });
  const loadMs = performance.now() - t0;
  const seq = lm.createSequence({ ctxSize: Math.max(a.pp, a.tg) + 8, batchSize: 64 });
  const V = lm.config.vocabSize;
  const prompt = Array.from({ length: a.pp }, (_, i) => (i * 7919) % 256);
  // warm-up: compile and tier up the kernels and JS paths before timing
  await seq.forward(prompt.slice(0, 16));
  for (let i = 0; i < 4; i++) await seq.forward([1]);
  const pp: number[] = [];
  const tg: number[] = [];
  for (let r = 0; r < a.reps; r++) {
    seq.truncate(0);
    let t = performance.now();
    await seq.forward(prompt);
    pp.push((a.pp * 1000) / (performance.now() - t));
    // tg: one token at a time from an empty context, greedy on the logits (llama-bench's tg)
    seq.truncate(0);
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
  if (process.argv[2] === '--child') {
    const [path, threads, json] = process.argv.slice(3);
    return child(path, Number(threads), JSON.parse(json));
  }
  const a = parse(process.argv.slice(2));
  const path = await ensureModel(a);
  const fileMB = statSync(path).size / 1e6;
  const rows: Record<string, unknown>[] = [];
  console.log(`model: ${path} (${fileMB.toFixed(0)} MB), ${a.reps} reps`);
  console.log('| threads | kernels | load s | pp' + a.pp + ' t/s | tg' + a.tg + ' t/s | peak RSS MB | RSS / file |');
  console.log('|---|---|---|---|---|---|---|');
  for (const threads of a.threads) {
    const p = fork(fileURLToPath(import.meta.url), ['--child', path, String(threads), JSON.stringify(a)], { stdio: 'inherit' });
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
  for (const r of rows.slice(1) as any[]) {
    console.log(`ratio vs ${base.threads} thread(s): pp x${(r[`pp${a.pp}`].mean / base[`pp${a.pp}`].mean).toFixed(2)}, tg x${(r[`tg${a.tg}`].mean / base[`tg${a.tg}`].mean).toFixed(2)}`);
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/model.json', JSON.stringify({ date: new Date().toISOString(), model: path, file_mb: fileMB, args: a, rows }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
