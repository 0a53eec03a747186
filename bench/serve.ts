// Serving benchmark: a load generator on the official `openai` client against wf_server (started
// here, fresh) and optionally against native llama-server on the same file, in the same run.
//
//   npm run build && node dist/bench/serve.js [--model FILE] [--layers 30] [--threads 2] [--np 8] [-c 8192]
//        [--streams 8] [--requests 1] [--tokens 128] [--prompt-tokens 95] [--llama-server PATH] [--target URL] [--out FILE]
//
// Per server, in order:
//   cold     the first request after start (prompt of --prompt-tokens, --tokens greedy tokens): TTFT, tok/s
//   single   the same request again, warm (twice; the better one counts): TTFT when idle, tok/s of one stream
//   load     --streams concurrent streams x --requests requests each: aggregate tok/s (all tokens over
//            the wall time, prompt reading included), the aggregate while every stream decodes (from
//            the last stream's first token to the first stream's last), TTFT p50/p99, time between
//            tokens p50/p99, errors
//   joining  a new request while (streams - 1) streams decode: its TTFT, against the idle TTFT
// Streams use /v1/completions with temperature 0 and ignore_eos (every request generates --tokens).
// Times between tokens are read from the stream's chunks, so every token must send one: wf_server is
// started with --special (a synthetic vocabulary is mostly reserved control tokens, which otherwise
// add no text and send no chunk; llama-server sends a chunk per token anyway). With --target against
// wf_server, start it with --special for the same reason.
// --target URL runs the same load against a server that is already running (nothing is started).
// --llama-server PATH also starts native llama-server on the same file with the same threads, -np and
// -c. Building it from the llama.cpp that node-llama-cpp 3.21.1 bundles (its llama/gitRelease.bundle):
//   git clone <node_modules/node-llama-cpp/llama/gitRelease.bundle> llama.cpp && cd llama.cpp
//   cmake -B build -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF && cmake --build build --target llama-server
// Mainline llama.cpp reads arch `bitnet` with TQ2_0/TQ1_0 weights only (its FFN is SiLU-gated); the
// default model here is such a file: the 2B4T shape, TQ2_0, Q8_0 embedding, generated once in
// $TMPDIR/wf-bench. Writes bench/results/serve.json (or --out). Figures only, no assertions.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { BITNET_2B4T_SHAPE } from '../src/model/synthetic.js';
import { ensure2B4TShapeFile } from './synthetic-file.js';
import { startServer, stopServer } from './server-process.js';

interface Args {
  model?: string; layers: number; threads: number; np: number; ctx: number; streams: number; requests: number;
  tokens: number; promptTokens: number; llamaServer?: string; target?: string; out: string; skipCold: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = { layers: BITNET_2B4T_SHAPE.nLayers, threads: 2, np: 8, ctx: 8192, streams: 8, requests: 1, tokens: 128, promptTokens: 95, out: 'bench/results/serve.json', skipCold: false };
  const num = (v: string | undefined, name: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!, v = argv[i + 1];
    switch (k) {
      case '--model': a.model = v; i++; break;
      case '--layers': a.layers = num(v, k); i++; break;
      case '--threads': a.threads = num(v, k); i++; break;
      case '--np': a.np = num(v, k); i++; break;
      case '-c': case '--ctx-size': a.ctx = num(v, k); i++; break;
      case '--streams': a.streams = num(v, k); i++; break;
      case '--requests': a.requests = num(v, k); i++; break;
      case '--tokens': a.tokens = num(v, k); i++; break;
      case '--prompt-tokens': a.promptTokens = num(v, k); i++; break;
      case '--llama-server': a.llamaServer = v; i++; break;
      case '--target': a.target = v; i++; break;
      case '--out': a.out = v!; i++; break;
      default: throw new Error(`unknown option ${k} (see the header of bench/serve.ts)`);
    }
  }
  return a;
}

async function ensureModel(a: Args): Promise<string> {
  return a.model ?? ensure2B4TShapeFile({ layers: a.layers, type: 'tq2_0', arch: 'bitnet', embed: 'q8_0' });
}

// ---- one stream ------------------------------------------------------------------------------

interface StreamResult {
  ok: boolean;
  error?: string;
  ttftMs: number;
  /** performance.now() of each chunk with a token */
  at: number[];
  /** gaps between consecutive streamed tokens */
  gapsMs: number[];
  tokens: number;
  totalMs: number;
}

/** A prompt of about n tokens (distinct per request: no prefix reuse between requests). */
function promptText(n: number, seed: number): string {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  const out: string[] = [`Request ${seed}:`];
  // byte-level vocabulary: a token per byte, so n bytes are about n tokens
  while (out.join(' ').length < n) out.push(words[(seed * 7 + out.length * 5) % words.length]!);
  return out.join(' ').slice(0, n);
}

async function stream(client: OpenAI, model: string, prompt: string, tokens: number, onFirst?: () => void): Promise<StreamResult> {
  const t0 = performance.now();
  let first = 0;
  let last = 0;
  const gaps: number[] = [];
  let n = 0;
  let usage = 0;
  const at: number[] = [];
  try {
    const s = await client.completions.create({
      model, prompt, max_tokens: tokens, temperature: 0, stream: true, stream_options: { include_usage: true },
      // extensions both servers read: generate exactly max_tokens
      ...({ ignore_eos: true } as object),
    });
    for await (const chunk of s) {
      if (chunk.usage) usage = chunk.usage.completion_tokens;
      if (!chunk.choices?.length) continue;
      const now = performance.now();
      at.push(now);
      if (n === 0) {
        first = now - t0;
        onFirst?.();
      }
      else gaps.push(now - last);
      last = now;
      n++;
    }
    return { ok: true, ttftMs: first, at, gapsMs: gaps, tokens: usage || n, totalMs: performance.now() - t0 };
  } catch (e) {
    return { ok: false, error: (e as Error).message, ttftMs: 0, at, gapsMs: [], tokens: 0, totalMs: performance.now() - t0 };
  }
}

// ---- figures ----------------------------------------------------------------------------------

function pct(x: number[], p: number): number {
  if (x.length === 0) return NaN;
  const s = [...x].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const r1 = (x: number) => Math.round(x * 10) / 10;
/** Tokens per second of all streams together while every one of them is decoding: the window from
 *  the last stream's first token to the first stream's last token (prompt reading outside it). */
function decodeAggregate(rs: StreamResult[]): number {
  const ok = rs.filter((r) => r.ok && r.at.length > 1);
  if (ok.length === 0) return NaN;
  const from = Math.max(...ok.map((r) => r.at[0]!)), to = Math.min(...ok.map((r) => r.at[r.at.length - 1]!));
  if (!(to > from)) return NaN;
  const n = ok.reduce((s, r) => s + r.at.filter((t) => t > from && t <= to).length, 0);
  return (n * 1000) / (to - from);
}
const decodeRate = (r: StreamResult) => (r.gapsMs.length ? (r.gapsMs.length * 1000) / r.gapsMs.reduce((a, b) => a + b, 0) : 0);

interface ServerFigures {
  server: string;
  cold?: { ttftMs: number; tokPerS: number };
  single: { ttftMs: number; tokPerS: number; runs: { ttftMs: number; tokPerS: number }[] };
  load: { streams: number; requests: number; aggregateTokPerS: number; decodeAggregateTokPerS: number; ttftP50Ms: number; ttftP99Ms: number; tbtP50Ms: number; tbtP99Ms: number; errors: number; errorSamples: string[]; wallS: number };
  joining: { ttftMs: number; ttftVsIdle: number };
}

async function measure(name: string, url: string, a: Args, cold: boolean): Promise<ServerFigures> {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 3_600_000 });
  const models = await client.models.list();
  const model = models.data[0]?.id ?? 'model';
  const log = (s: string) => console.log(`[${name}] ${s}`);
  const f: Partial<ServerFigures> = { server: name };
  let seed = 0;
  if (cold) {
    const r = await stream(client, model, promptText(a.promptTokens, seed++), a.tokens);
    f.cold = { ttftMs: r1(r.ttftMs), tokPerS: r1(decodeRate(r)) };
    log(`cold: first token ${f.cold.ttftMs} ms, ${f.cold.tokPerS} tok/s${r.ok ? '' : ` (error: ${r.error})`}`);
  }
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const r = await stream(client, model, promptText(a.promptTokens, seed++), a.tokens);
    runs.push({ ttftMs: r1(r.ttftMs), tokPerS: r1(decodeRate(r)) });
  }
  f.single = { ttftMs: Math.min(...runs.map((r) => r.ttftMs)), tokPerS: Math.max(...runs.map((r) => r.tokPerS)), runs };
  log(`single (warm, best of 2): first token ${f.single.ttftMs} ms, ${f.single.tokPerS} tok/s`);

  // N concurrent streams x M requests
  const t0 = performance.now();
  const results: StreamResult[] = [];
  await Promise.all(
    Array.from({ length: a.streams }, async () => {
      for (let m = 0; m < a.requests; m++) results.push(await stream(client, model, promptText(a.promptTokens, seed++), a.tokens));
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const ok = results.filter((r) => r.ok);
  const tokens = ok.reduce((s, r) => s + r.tokens, 0);
  const gaps = ok.flatMap((r) => r.gapsMs);
  f.load = {
    streams: a.streams, requests: a.requests, aggregateTokPerS: r1(tokens / wallS), decodeAggregateTokPerS: r1(decodeAggregate(ok)),
    ttftP50Ms: r1(pct(ok.map((r) => r.ttftMs), 50)), ttftP99Ms: r1(pct(ok.map((r) => r.ttftMs), 99)),
    tbtP50Ms: r1(pct(gaps, 50)), tbtP99Ms: r1(pct(gaps, 99)),
    errors: results.length - ok.length, errorSamples: results.filter((r) => !r.ok).slice(0, 3).map((r) => r.error!), wallS: r1(wallS),
  };
  log(`load ${a.streams}x${a.requests}: ${f.load.aggregateTokPerS} tok/s aggregate (prompts included; ${f.load.decodeAggregateTokPerS} while all decode), TTFT p50 ${f.load.ttftP50Ms} / p99 ${f.load.ttftP99Ms} ms, ` +
    `between tokens p50 ${f.load.tbtP50Ms} / p99 ${f.load.tbtP99Ms} ms, ${f.load.errors} error(s), ${f.load.wallS} s`);

  // a new request joins while (streams - 1) streams decode (their prompts done: each has its first token)
  let started = 0;
  let allStarted!: () => void;
  const decoding = new Promise<void>((r) => (allStarted = r));
  const nOthers = Math.max(0, a.streams - 1);
  if (nOthers === 0) allStarted();
  const others = Array.from({ length: nOthers }, () =>
    stream(client, model, promptText(a.promptTokens, seed++), a.tokens, () => {
      if (++started === nOthers) allStarted();
    }),
  );
  await decoding;
  const j = await stream(client, model, promptText(a.promptTokens, seed++), 8);
  await Promise.all(others);
  f.joining = { ttftMs: r1(j.ttftMs), ttftVsIdle: r1(j.ttftMs / f.single.ttftMs) };
  log(`joining while ${a.streams - 1} decode: first token ${f.joining.ttftMs} ms (x${f.joining.ttftVsIdle} of idle)`);
  return f as ServerFigures;
}

// ---- servers -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const results: ServerFigures[] = [];
  const loadAvg = async () => (await import('node:os')).loadavg().map((x) => r1(x));
  const before = await loadAvg();
  if (a.target) {
    results.push(await measure(a.target, a.target.replace(/\/v1\/?$/, ''), a, false));
  } else {
    const model = await ensureModel(a);
    const here = dirname(fileURLToPath(import.meta.url));
    const port = 30000 + Math.floor(Math.random() * 5000);
    const url = `http://127.0.0.1:${port}`;
    const wf = await startServer('wf_server', process.execPath, [join(here, '..', '..', 'bin', 'wf_server.js'), '-m', model, '-t', String(a.threads),
      '-np', String(a.np), '-c', String(a.ctx), '--port', String(port), '-q', '--special'], url);
    try {
      results.push(await measure('wf_server', url, a, true));
    } finally {
      await stopServer(wf);
    }
    if (a.llamaServer) {
      const lport = port + 1;
      const lurl = `http://127.0.0.1:${lport}`;
      const ls = await startServer('llama-server', a.llamaServer, ['-m', model, '-t', String(a.threads), '-tb', String(a.threads), '-np', String(a.np), '-c', String(a.ctx),
        '--port', String(lport), '--host', '127.0.0.1'], lurl);
      try {
        results.push(await measure('llama-server', lurl, a, true));
      } finally {
        await stopServer(ls);
      }
    }
  }
  const after = await loadAvg();
  const [ours, theirs] = results;
  const ratios = ours && {
    aggregateVsSingle: r1(ours.load.aggregateTokPerS / ours.single.tokPerS),
    aggregateVsLlamaServer: theirs ? r1(ours.load.aggregateTokPerS / theirs.load.aggregateTokPerS) : undefined,
    decodeAggregateVsSingle: r1(ours.load.decodeAggregateTokPerS / ours.single.tokPerS),
    decodeAggregateVsLlamaServer: theirs ? r1(ours.load.decodeAggregateTokPerS / theirs.load.decodeAggregateTokPerS) : undefined,
    joiningTtftVsIdle: ours.joining.ttftVsIdle,
    coldTokPerSVsWarm: ours.cold ? r1(ours.cold.tokPerS / ours.single.tokPerS) : undefined,
    coldTtftVsWarm: ours.cold ? r1(ours.cold.ttftMs / ours.single.ttftMs) : undefined,
  };
  console.log('ratios:', JSON.stringify(ratios), `| load average ${before.join(' ')} -> ${after.join(' ')}`);
  mkdirSync(dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify({ args: a, loadAverage: { before, after }, results, ratios }, null, 2));
  console.log(`wrote ${a.out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
