// `wf_server --benchmark`: llama-bench style throughput of the loaded model, no HTTP.
//
//   ppN  prompt processing: N tokens evaluated from an empty cache (in batches of batchSize)
//   tgN  text generation: N single-token forward passes after a one-token context
// Each test runs `iterations` times after one short warm-up; the figure is the mean of the
// per-iteration tokens/s with the sample standard deviation, as llama-bench reports it. Tokens are
// fixed pseudo-random non-control ids (BOS first); sampling is not part of the measurement.
import type { LoadedModel } from '../engine.js';
import { DEFAULT_BATCH_SIZE } from '../model/model.js';
import { typeName } from '../gguf/types.js';

export interface BenchmarkOptions {
  iterations?: number;
  /** prompt tokens of the pp test (default 512; 0 = skip) */
  promptTokens?: number;
  /** generated tokens of the tg test (default 128; 0 = skip) */
  genTokens?: number;
  /** prompt tokens per forward batch (default DEFAULT_BATCH_SIZE, as the server reads a prompt when nothing else runs) */
  batchSize?: number;
  /** called before each measured run */
  onProgress?: (test: string, iteration: number) => void;
}

export interface BenchmarkTest {
  test: string;
  n_prompt: number;
  n_gen: number;
  avg_ts: number;
  stddev_ts: number;
  samples_ts: number[];
  samples_ns: number[];
}

export interface BenchmarkReport {
  model: string;
  model_type: string;
  size_bytes: number;
  n_params: number;
  backend: string;
  threads: number;
  /** what ran it: "webgpu: <adapter>", or the CPU kernels and threads ("wasm-relaxed x2") */
  device: string;
  batch_size: number;
  iterations: number;
  tests: BenchmarkTest[];
}

function benchTokens(lm: LoadedModel, n: number): number[] {
  const tok = lm.tokenizer;
  const V = lm.config.vocabSize;
  const out: number[] = [];
  if (tok.bos !== undefined) out.push(tok.bos);
  let s = 0x2545f491;
  while (out.length < n) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const id = s % V;
    if (!tok.isControl(id)) out.push(id);
  }
  return out.slice(0, n);
}

function stats(samples: number[]): { mean: number; sd: number } {
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  if (samples.length < 2) return { mean, sd: 0 };
  const v = samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (samples.length - 1);
  return { mean, sd: Math.sqrt(v) };
}

export async function runBenchmark(lm: LoadedModel, opts: BenchmarkOptions = {}): Promise<BenchmarkReport> {
  const iterations = opts.iterations ?? 5;
  const pp = opts.promptTokens ?? 512;
  const tg = opts.genTokens ?? 128;
  const batch = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  for (const [k, v, min] of [['iterations', iterations, 1], ['prompt tokens', pp, 0], ['generated tokens', tg, 0], ['batch size', batch, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`benchmark ${k} must be an integer >= ${min}, got ${v}`);
  }
  const ctx = Math.max(pp, tg + 1, 2);
  const session = lm.createSession({ ctxSize: ctx, batchSize: batch });
  const cache = session.cache;
  const tokens = benchTokens(lm, Math.max(pp, tg + 1, 33));
  const now = () => performance.now();

  // warm-up: a short batch and two decode steps (first-call costs, JIT)
  cache.clear();
  await cache.evaluate(tokens.slice(0, Math.min(32, ctx - 2)), 0);
  const w = Math.min(32, ctx - 2);
  await cache.evaluate([tokens[w]!], w);

  const tests: BenchmarkTest[] = [];
  const record = (test: string, nPrompt: number, nGen: number, ms: number[]) => {
    const n = nPrompt + nGen;
    const ts = ms.map((m) => (n * 1000) / m);
    const s = stats(ts);
    tests.push({ test, n_prompt: nPrompt, n_gen: nGen, avg_ts: s.mean, stddev_ts: s.sd, samples_ts: ts, samples_ns: ms.map((m) => Math.round(m * 1e6)) });
  };

  if (pp > 0) {
    const ms: number[] = [];
    for (let i = 0; i < iterations; i++) {
      opts.onProgress?.(`pp${pp}`, i);
      cache.clear();
      const t0 = now();
      await cache.evaluate(tokens.slice(0, pp), 0);
      ms.push(now() - t0);
    }
    record(`pp${pp}`, pp, 0, ms);
  }
  if (tg > 0) {
    const ms: number[] = [];
    for (let i = 0; i < iterations; i++) {
      opts.onProgress?.(`tg${tg}`, i);
      cache.clear();
      await cache.evaluate([tokens[0]!], 0);
      const t0 = now();
      for (let j = 1; j <= tg; j++) await cache.evaluate([tokens[j]!], j);
      ms.push(now() - t0);
    }
    record(`tg${tg}`, 0, tg, ms);
  }
  cache.clear();

  const file = lm.model.file;
  let params = 0;
  let size = 0;
  for (const t of file.tensors) {
    params += t.nElements;
    size += t.byteSize;
  }
  const q = file.tensor('blk.0.attn_q.weight');
  return {
    model: lm.config.name,
    model_type: q ? typeName(q.type, file.architecture) : 'unknown',
    size_bytes: size,
    n_params: params,
    backend: lm.device === 'webgpu' ? 'webgpu' : lm.kernels.name,
    threads: lm.kernels.threads,
    device: lm.deviceName,
    batch_size: batch,
    iterations,
    tests,
  };
}

function human(n: number, units: string[], base: number): string {
  let i = 0;
  while (n >= base && i < units.length - 1) {
    n /= base;
    i++;
  }
  return `${n.toFixed(2)} ${units[i]}`;
}

/** The report as llama-bench's markdown table. */
export function formatBenchmark(r: BenchmarkReport): string {
  const cols = [
    { h: 'model', w: 34, right: false },
    { h: 'size', w: 10, right: true },
    { h: 'params', w: 10, right: true },
    { h: 'backend', w: 12, right: false },
    { h: 'threads', w: 7, right: true },
    { h: 'test', w: 8, right: true },
    { h: 't/s', w: 20, right: true },
  ];
  const row = (cells: string[]) => '| ' + cells.map((c, i) => (cols[i]!.right ? c.padStart(cols[i]!.w) : c.padEnd(cols[i]!.w))).join(' | ') + ' |';
  const lines = [row(cols.map((c) => c.h)), '| ' + cols.map((c) => (c.right ? '-'.repeat(c.w - 1) + ':' : '-'.repeat(c.w))).join(' | ') + ' |'];
  const name = `${r.model} ${r.model_type}`.slice(0, 34);
  for (const t of r.tests) {
    lines.push(
      row([
        name,
        human(r.size_bytes, ['B', 'KiB', 'MiB', 'GiB'], 1024),
        human(r.n_params, ['', 'K', 'M', 'B'], 1000),
        r.backend,
        String(r.threads),
        t.test,
        `${t.avg_ts.toFixed(2)} ± ${t.stddev_ts.toFixed(2)}`,
      ]),
    );
  }
  return lines.join('\n');
}
