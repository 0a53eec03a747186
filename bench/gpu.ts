// The forward step on WebGPU against the CPU path, llama-bench style: pp512 (prompt tokens/s) and
// tg128 (generated tokens/s, greedy) on a 2B4T-shaped synthetic model (no model can be downloaded),
// on whatever adapter Dawn finds, with the CPU kernels measured in the same run. Prints the adapter,
// the figures, and the arithmetic of a decode step (dispatches, bytes read, bytes read back), with
// the memory-bandwidth bound it implies for --bandwidth GB/s. Writes JSON (bench/results/gpu.json).
//
//   npm run build && node dist/bench/gpu.js [--layers 30] [--pp 512] [--tg 128] [--reps 1]
//        [--threads 2] [--lm-head int8|f16] [--type i2_s|tq2_0] [--model FILE] [--no-cpu]
//        [--bandwidth 3350] [--out FILE]
// Without a GPU: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (SwiftShader, a CPU
// Vulkan: figures that say nothing about a GPU, only that the path runs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { BITNET_2B4T_SHAPE } from '../src/model/synthetic.js';
import { ensure2B4TShapeFile } from './synthetic-file.js';
import { loadModelFile } from '../src/node/model-file.js';
import { openNodeGpu } from '../src/node/webgpu.js';
import type { LoadedModel } from '../src/engine.js';
import type { LmHeadPrecision } from '../src/model/lm-head.js';

interface Args {
  layers: number; pp: number; tg: number; reps: number; threads: number; lmHead: LmHeadPrecision;
  type: 'i2_s' | 'tq2_0'; model?: string; cpu: boolean; bandwidth: number; out: string;
}

function parse(argv: string[]): Args {
  const a: Args = { layers: BITNET_2B4T_SHAPE.nLayers, pp: 512, tg: 128, reps: 1, threads: 2, lmHead: 'int8', type: 'i2_s', cpu: true, bandwidth: 3350, out: 'bench/results/gpu.json' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]!;
    switch (argv[i]) {
      case '--layers': a.layers = Number(v); i++; break;
      case '--pp': a.pp = Number(v); i++; break;
      case '--tg': a.tg = Number(v); i++; break;
      case '--reps': a.reps = Number(v); i++; break;
      case '--threads': a.threads = Number(v); i++; break;
      case '--lm-head': a.lmHead = v as LmHeadPrecision; i++; break;
      case '--type': a.type = v as Args['type']; i++; break;
      case '--model': a.model = v; i++; break;
      case '--bandwidth': a.bandwidth = Number(v); i++; break;
      case '--out': a.out = v; i++; break;
      case '--no-cpu': a.cpu = false; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

async function ensureModel(a: Args): Promise<string> {
  return a.model ?? ensure2B4TShapeFile({ layers: a.layers, type: a.type });
}

const tokens = (n: number) => Array.from({ length: n }, (_, i) => (i * 7919) % 256);
const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;

/** pp and tg of one loaded model (after a warm-up that compiles kernels / shaders) */
async function measure(lm: LoadedModel, a: Args): Promise<{ pp: number[]; tg: number[] }> {
  const seq = lm.createSequence({ ctxSize: Math.max(a.pp, a.tg) + 8, batchSize: 64 });
  const V = lm.config.vocabSize;
  await seq.forward(tokens(8));
  await seq.forward([1]);
  const pp: number[] = [], tg: number[] = [];
  for (let r = 0; r < a.reps; r++) {
    if (a.pp > 0) {
      seq.truncate(0);
      const t = performance.now();
      await seq.forward(tokens(a.pp));
      pp.push((a.pp * 1000) / (performance.now() - t));
    }
    if (a.tg > 0) {
      seq.truncate(0);
      let tok = 1;
      const t = performance.now();
      for (let i = 0; i < a.tg; i++) {
        const logits = await seq.forward([tok]);
        let best = 0;
        for (let v = 1; v < V; v++) if (logits[v]! > logits[best]!) best = v;
        tok = best;
      }
      tg.push((a.tg * 1000) / (performance.now() - t));
    }
  }
  return { pp, tg };
}

/** What one decode step costs on the GPU path, from the model's shape (src/gpu/forward.ts). */
function stepArithmetic(lm: LoadedModel, a: Args) {
  const c = lm.config;
  const ternaryBytes = c.nLayers * (2 * c.nEmbd * c.nEmbd + 2 * c.nEmbd * c.kvDim + 3 * c.nEmbd * c.nFF) / 4; // 2 bits a weight
  const headChunks = Math.ceil(c.vocabSize / 16384);
  const headBytes = c.vocabSize * Math.ceil(c.nEmbd / 16) * 16 * (a.lmHead === 'int8' ? 1 : 2);
  const dispatches = 14 * c.nLayers + 1 + (a.lmHead === 'int8' ? 1 : 0) + headChunks;
  const bytes = ternaryBytes + headBytes;
  return {
    dispatches_per_token: dispatches,
    submissions_per_token: 1,
    weight_bytes_per_token: bytes,
    readback_bytes_per_token: c.vocabSize * 4,
    bandwidth_gbs: a.bandwidth,
    tg_bound_tokens_per_s: (a.bandwidth * 1e9) / bytes,
  };
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const path = await ensureModel(a);
  const result: Record<string, unknown> = { model: path, layers: a.layers, lm_head: a.lmHead, pp: a.pp, tg: a.tg, reps: a.reps };
  console.log(`model: ${path}, lm_head ${a.lmHead}, ${a.reps} rep(s)`);
  console.log(`| device | load s | pp${a.pp} t/s | tg${a.tg} t/s |`);
  console.log('|---|---|---|---|');
  const rows: Record<string, unknown>[] = [];
  const run = async (label: 'cpu' | 'webgpu') => {
    const t0 = performance.now();
    const lm = label === 'cpu'
      ? await loadModelFile(path, { threads: a.threads, lmHead: a.lmHead })
      : await loadModelFile(path, { lmHead: a.lmHead, gpu: await openNodeGpu() });
    const loadS = (performance.now() - t0) / 1000;
    const m = await measure(lm, a);
    const row = { device: lm.deviceName, load_s: loadS, [`pp${a.pp}`]: m.pp, [`tg${a.tg}`]: m.tg, pp_mean: m.pp.length ? mean(m.pp) : null, tg_mean: m.tg.length ? mean(m.tg) : null };
    rows.push(row);
    console.log(`| ${lm.deviceName} | ${loadS.toFixed(1)} | ${m.pp.length ? mean(m.pp).toFixed(2) : '-'} | ${m.tg.length ? mean(m.tg).toFixed(2) : '-'} |`);
    if (label === 'webgpu') result.arithmetic = stepArithmetic(lm, a);
    lm.dispose();
    if (lm.model.gpu) lm.model.gpu.device.destroy();
  };
  if (a.cpu) await run('cpu');
  await run('webgpu');
  result.runs = rows;
  const ar = result.arithmetic as ReturnType<typeof stepArithmetic>;
  console.log(`per decode step on the GPU: ${ar.dispatches_per_token} dispatches in ${ar.submissions_per_token} submission, `
    + `${(ar.weight_bytes_per_token / 1e6).toFixed(0)} MB of weights read, ${(ar.readback_bytes_per_token / 1e3).toFixed(0)} KB of logits read back; `
    + `at ${ar.bandwidth_gbs} GB/s the weights alone bound tg at ${ar.tg_bound_tokens_per_s.toFixed(0)} tokens/s`);
  if (a.cpu && rows.length === 2) {
    const [c, g] = rows as { tg_mean: number | null; pp_mean: number | null }[];
    if (c!.tg_mean && g!.tg_mean) console.log(`webgpu / cpu in this run: tg x${(g!.tg_mean / c!.tg_mean).toFixed(2)}${c!.pp_mean && g!.pp_mean ? `, pp x${(g!.pp_mean / c!.pp_mean).toFixed(2)}` : ''}`);
  }
  mkdirSync(dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify(result, null, 2));
  console.log(`wrote ${a.out}`);
  process.exit(0);
}

await main();
