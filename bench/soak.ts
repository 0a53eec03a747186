// Reliability run (a benchmark, not a test): many clients against one wf_server on loopback for a
// bounded time, then an account of what went wrong.
//
//   - the server: started here on 127.0.0.1 (the demo model unless --model-path), or --target URL
//     of one already running on loopback (nothing else is accepted);
//   - first, every request of the mix is served alone, greedy: those answers are the references;
//   - then --clients loops (default 64) for --minutes (default 5): a quarter of the clients abort
//     their streams after a few chunks, the others send greedy requests (chat and completions,
//     streamed or whole) with malformed ones mixed in (bad JSON, wrong types, unknown routes,
//     too-large numbers, prompts past the context), which must get a 4xx;
//   - every request has a bounded client deadline (--request-timeout): one that has not finished
//     by then (no answer, or a stream that stops moving) is aborted and counted as a timeout, so a
//     hang is reported, never waited for;
//   - at the end: 5xx and unexpected answers, timeouts, answers cut off (no finish_reason) and
//     network errors, every completed greedy answer compared with its reference, slots still
//     processing once the load is gone (/slots), resident memory after warm-up against the end
//     (/metrics process_resident_memory_bytes), and the server's exit code after SIGTERM.
//
// The server started here gets the server's own defaults for -np and -c unless --np / --ctx-size
// say otherwise (the demo model's default pool is its trained context, so KV room is scarce and
// requests wait for it: that is part of what is tested).
//
// Run: npm run build && node dist/bench/soak.js [--minutes 5] [--clients 64] [--np N] [--ctx-size N]
//      [--max-tokens 24] [--request-timeout 60] [--model-path FILE.gguf] [--threads N]
//      [--target http://127.0.0.1:PORT] [--out FILE.json]
// Prints the figures and writes bench/results/soak.json (or --out); exits 1 when any criterion
// fails (the verdict says which), 2 when the run itself could not be made.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { parseArgs, type OptionSpec } from '../src/cli/args.js';
import { parseExposition } from '../src/server/metrics.js';

const here = dirname(fileURLToPath(import.meta.url));
// works from bench/ (tsx) and dist/bench/ (compiled)
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');

const OPTIONS: OptionSpec[] = [
  { name: 'minutes', type: 'number', default: 5, description: 'length of the load phase' },
  { name: 'clients', type: 'number', default: 64, description: 'concurrent client loops' },
  { name: 'np', type: 'number', description: "slots of the server started here (default: the server's)" },
  { name: 'ctx-size', type: 'number', description: "KV pool of the server started here (default: the server's)" },
  { name: 'request-timeout', type: 'number', default: 60, description: 'seconds a request may take before it counts as a timeout' },
  { name: 'out', type: 'string', description: 'where to write the JSON report (default bench/results/soak.json)' },
  { name: 'threads', type: 'number', description: 'threads of the server started here' },
  { name: 'max-tokens', type: 'number', default: 24, description: 'max_tokens of the greedy requests' },
  { name: 'model-path', type: 'string', description: 'GGUF file for the server started here (default: the demo model)' },
  { name: 'target', type: 'string', description: 'a running server on loopback instead of starting one' },
  { name: 'seed', type: 'number', default: 1, description: "seed of the clients' choices" },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic random stream per client. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

// ---- the request mix

interface GoodRequest {
  key: string;
  kind: 'chat' | 'completion';
  body: Record<string, unknown>;
}

// the last one (about 130 tokens) is read in several chunks (wf_server's -b is 64 rows per step), its
// steps shared with the others' decoding, and takes most of the demo model's default pool of 256
const LONG_PROMPT =
  'And it came to pass in those days, that there went out a decree from the king, that all the world should be taxed. ' +
  'And all went to be taxed, every one into his own city. A fortune: you will find what you seek when you stop looking for it. ' +
  'Patience is a virtue that few possess and fewer enjoy. The road is long, the night is dark, and the lamp burns low; yet the ' +
  'traveller walks on, counting the stars he cannot reach, and singing to himself of home.';
const PROMPTS = ['Once upon a time', 'The weather today', 'List three colors:', 'def fib(n):', 'Bonjour, je', '1, 2, 3,', 'Q: why is the sky blue?\nA:', 'x', LONG_PROMPT];

function goodRequests(maxTokens: number): GoodRequest[] {
  const out: GoodRequest[] = [];
  PROMPTS.forEach((p, i) => {
    out.push({ key: `completion:${i}`, kind: 'completion', body: { model: 'soak', prompt: p, max_tokens: maxTokens, temperature: 0 } });
    out.push({
      key: `chat:${i}`,
      kind: 'chat',
      body: { model: 'soak', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: p }], max_tokens: maxTokens, temperature: 0 },
    });
  });
  return out;
}

interface Malformed {
  name: string;
  method: string;
  path: string;
  body?: string;
}

const MALFORMED: Malformed[] = [
  { name: 'truncated JSON', method: 'POST', path: '/v1/completions', body: '{"prompt": "x", "max_tokens": 5' },
  { name: 'array body', method: 'POST', path: '/v1/chat/completions', body: '[]' },
  { name: 'prompt is a number', method: 'POST', path: '/v1/completions', body: '{"prompt": 5}' },
  { name: 'no messages', method: 'POST', path: '/v1/chat/completions', body: '{"messages": []}' },
  { name: 'max_tokens 1e20', method: 'POST', path: '/v1/completions', body: '{"prompt": "x", "max_tokens": 1e20}' },
  { name: 'temperature a string', method: 'POST', path: '/v1/chat/completions', body: '{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}' },
  { name: 'token id out of range', method: 'POST', path: '/v1/completions', body: '{"prompt": [1, 99999999]}' },
  { name: 'prompt past the context', method: 'POST', path: '/v1/completions', body: JSON.stringify({ prompt: 'lorem ipsum '.repeat(3000) }) },
  { name: 'unknown route', method: 'GET', path: '/v1/nothing-here' },
  { name: 'wrong method', method: 'PUT', path: '/v1/completions', body: '{}' },
  { name: 'empty body', method: 'POST', path: '/v1/completions', body: '' },
];

// ---- bookkeeping

interface Tally {
  requests: number;
  completed: number;
  compared: number;
  mismatches: number;
  /** the first few mismatches */
  mismatchExamples: { key: string; stream: boolean; want: string; got: string; finishWant: string; finishGot: string }[];
  aborted: number;
  malformed: number;
  status: Record<string, number>;
  unexpected: { what: string; status: number | string; detail: string }[];
  networkErrors: number;
  /** requests that did not finish within --request-timeout (aborted by the client) */
  timeouts: number;
  /** answers that ended without a finish_reason (a stream cut off) */
  truncated: number;
}

const tally: Tally = { requests: 0, completed: 0, compared: 0, mismatches: 0, mismatchExamples: [], aborted: 0, malformed: 0, status: {}, unexpected: [], networkErrors: 0, timeouts: 0, truncated: 0 };
const count = (status: number | string) => (tally.status[String(status)] = (tally.status[String(status)] ?? 0) + 1);
/** every unexpected answer (the list below keeps the first 50) */
let unexpectedCount = 0;
const unexpected = (what: string, status: number | string, detail: string) => {
  unexpectedCount++;
  if (tally.unexpected.length < 50) tally.unexpected.push({ what, status, detail: detail.slice(0, 300) });
};

interface Answer {
  text: string;
  finish: string;
}

async function ask(client: OpenAI, r: GoodRequest, stream: boolean, signal?: AbortSignal, abortAfter?: number, abort?: () => void): Promise<Answer | null> {
  if (!stream) {
    if (r.kind === 'chat') {
      const c = await client.chat.completions.create(r.body as any, { signal });
      return { text: c.choices[0]!.message.content ?? '', finish: c.choices[0]!.finish_reason };
    }
    const c = await client.completions.create(r.body as any, { signal });
    return { text: c.choices[0]!.text, finish: c.choices[0]!.finish_reason };
  }
  let text = '';
  let finish = '';
  let chunks = 0;
  const s = (
    r.kind === 'chat'
      ? await client.chat.completions.create({ ...(r.body as any), stream: true }, { signal })
      : await client.completions.create({ ...(r.body as any), stream: true }, { signal })
  ) as unknown as AsyncIterable<any>;
  for await (const c of s) {
    const ch = c.choices[0];
    if (ch) {
      text += r.kind === 'chat' ? (ch.delta?.content ?? '') : (ch.text ?? '');
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    if (abortAfter !== undefined && ++chunks >= abortAfter) {
      abort?.();
      return null;
    }
  }
  return { text, finish };
}

function statusOf(e: unknown): number | string {
  if (e instanceof OpenAI.APIError && typeof e.status === 'number') return e.status;
  return (e as Error)?.name ?? 'error';
}

// ---- the server

interface Server {
  url: string;
  child?: ChildProcess;
  stderr: () => string;
}

function isLoopback(url: string): boolean {
  const h = new URL(url).hostname;
  return h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || h === '::1';
}

async function startServer(o: Record<string, unknown>): Promise<Server> {
  const bin = join(root, 'bin', 'wf_server.js');
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'wf_server.js'))) throw new Error('dist/ is missing: run npm run build first');
  const argv = [bin, '--host', '127.0.0.1', '--port', '0', '--quiet', '--max-queue', String(2 * (o.clients as number))];
  if (o.np !== undefined) argv.push('-np', String(o.np));
  if (o['ctx-size'] !== undefined) argv.push('-c', String(o['ctx-size']));
  if (o['model-path']) argv.push('-m', o['model-path'] as string);
  if (o.threads !== undefined) argv.push('-t', String(o.threads));
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 120 s:\n${err}`)), 120000);
    const check = () => {
      const m = /listening on (http:\/\/\S+) /.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}) before listening:\n${err}`));
    });
  });
  return { url, child, stderr: () => err };
}

/** Monitoring requests get a short deadline of their own: a server that stops answering them fails the run. */
const MONITOR_TIMEOUT_MS = 15000;

async function metrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(MONITOR_TIMEOUT_MS) })).text();
  const out = new Map<string, number>();
  for (const s of parseExposition(text).samples) if (Object.keys(s.labels).length === 0) out.set(s.name, s.value);
  return out;
}

interface SlotInfo {
  id: number;
  is_processing: boolean;
  n_ctx?: number;
}

async function slotList(url: string): Promise<SlotInfo[]> {
  return (await (await fetch(`${url}/slots`, { signal: AbortSignal.timeout(MONITOR_TIMEOUT_MS) })).json()) as SlotInfo[];
}

async function slotsProcessing(url: string): Promise<number[]> {
  return (await slotList(url)).filter((s) => s.is_processing).map((s) => s.id);
}

/**
 * Runs `f` with a signal that aborts after `ms`; a request still running then is a timeout
 * (reported, never waited for). `timedOut()` tells a timeout from the caller's own abort.
 */
function deadlineFor(ms: number): { ac: AbortController; timedOut: () => boolean; clear: () => void } {
  const ac = new AbortController();
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    ac.abort();
  }, ms);
  return { ac, timedOut: () => fired, clear: () => clearTimeout(timer) };
}

// ---- main

/** The server started here, killed if the run fails before it is stopped properly. */
let started: ChildProcess | undefined;

async function main(): Promise<boolean> {
  const { options: o } = parseArgs(process.argv.slice(2), OPTIONS);
  const minutes = o.minutes as number;
  const clients = o.clients as number;
  const maxTokens = o['max-tokens'] as number;
  const requestTimeoutMs = (o['request-timeout'] as number) * 1000;
  if (!(minutes > 0 && minutes <= 120)) throw new Error(`--minutes must be in (0, 120], got ${minutes}`);
  if (!(Number.isInteger(clients) && clients >= 1 && clients <= 1024)) throw new Error(`--clients must be 1..1024, got ${clients}`);
  if (!(requestTimeoutMs >= 1000 && requestTimeoutMs <= 600000)) throw new Error(`--request-timeout must be 1..600 seconds, got ${o['request-timeout']}`);
  const target = o.target as string | undefined;
  if (target && !isLoopback(target)) throw new Error(`--target must be a loopback address (127.0.0.1, localhost, ::1), got ${target}`);

  const t0 = Date.now();
  const server: Server = target ? { url: target.replace(/\/$/, ''), stderr: () => '' } : await startServer(o);
  started = server.child;
  const slotInfo = await slotList(server.url);
  console.log(
    `soak: server ${server.url}${server.child ? ' (started here)' : ''}, ${slotInfo.length} slots, KV pool ${slotInfo[0]?.n_ctx ?? '?'} positions; ` +
      `${clients} clients for ${minutes} min, max_tokens ${maxTokens}, request timeout ${requestTimeoutMs / 1000} s`,
  );
  // the SDK's own timeout is a backstop: the per-request deadline below is what counts
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: process.env.WF_API_KEY ?? 'soak', maxRetries: 0, timeout: requestTimeoutMs + 5000 });

  // references: each request alone, whole and streamed (they must agree with each other too)
  const mix = goodRequests(maxTokens);
  const refs = new Map<string, Answer>();
  const tRef = Date.now();
  const alone = async (r: GoodRequest, stream: boolean): Promise<Answer> => {
    const d = deadlineFor(requestTimeoutMs);
    try {
      const a = (await ask(client, r, stream, d.ac.signal))!;
      if (!a.finish) throw new Error(`reference request ${r.key}${stream ? ' (stream)' : ''} ended without a finish_reason`);
      return a;
    } catch (e) {
      if (d.timedOut()) throw new Error(`reference request ${r.key}${stream ? ' (stream)' : ''} did not finish within ${requestTimeoutMs / 1000} s`);
      throw e;
    } finally {
      d.clear();
    }
  };
  for (const r of mix) {
    const whole = await alone(r, false);
    const streamed = await alone(r, true);
    if (whole.text !== streamed.text || whole.finish !== streamed.finish) {
      tally.mismatches++;
      tally.mismatchExamples.push({ key: r.key + ' (alone: whole vs streamed)', stream: true, want: whole.text, got: streamed.text, finishWant: whole.finish, finishGot: streamed.finish });
    }
    refs.set(r.key, whole);
  }
  const refSeconds = (Date.now() - tRef) / 1000;
  const rssStart = (await metrics(server.url)).get('process_resident_memory_bytes') ?? NaN;
  console.log(`soak: ${mix.length} reference answers in ${refSeconds.toFixed(1)} s; RSS ${(rssStart / 2 ** 20).toFixed(1)} MiB`);

  // the load
  const loadMs = minutes * 60000;
  const tLoad = Date.now();
  const deadline = tLoad + loadMs;
  const warmAt = tLoad + Math.min(60000, loadMs * 0.2);
  let rssWarm = NaN;
  let heapWarm = NaN;
  let heapTotalWarm = NaN;
  const warmSample = (async () => {
    await sleep(warmAt - Date.now());
    const m = await metrics(server.url).catch((e) => {
      console.log(`soak: /metrics after warm-up failed: ${(e as Error)?.message ?? String(e)}`);
      return new Map<string, number>();
    });
    rssWarm = m.get('process_resident_memory_bytes') ?? NaN;
    heapWarm = m.get('nodejs_heap_size_used_bytes') ?? NaN;
    heapTotalWarm = m.get('nodejs_heap_size_total_bytes') ?? NaN;
    console.log(`soak: RSS after warm-up (${((warmAt - tLoad) / 1000).toFixed(0)} s of load): ${(rssWarm / 2 ** 20).toFixed(1)} MiB`);
  })();
  const rssSeries: { s: number; rss_mib: number; heap_mib: number; heap_total_mib: number; external_mib: number }[] = [];
  const progress = setInterval(async () => {
    const s = Math.round((Date.now() - tLoad) / 1000);
    const m = await metrics(server.url).catch(() => new Map<string, number>());
    const rss = mib(m.get('process_resident_memory_bytes') ?? NaN);
    const heap = mib(m.get('nodejs_heap_size_used_bytes') ?? NaN);
    const heapTotal = mib(m.get('nodejs_heap_size_total_bytes') ?? NaN);
    rssSeries.push({ s, rss_mib: rss, heap_mib: heap, heap_total_mib: heapTotal, external_mib: mib(m.get('nodejs_external_memory_bytes') ?? NaN) });
    console.log(
      `soak: ${s} s: ${tally.requests} requests, ${tally.completed} completed, ${tally.aborted} aborted, ${tally.malformed} malformed, ` +
        `5xx ${fiveXX()}, timeouts ${tally.timeouts}, mismatches ${tally.mismatches}; RSS ${rss} MiB, JS heap ${heap} of ${heapTotal} MiB`,
    );
  }, 15000);

  const loop = async (id: number) => {
    const pick = rng(((o.seed as number) * 7919 + id * 104729) >>> 0);
    const aborter = id % 4 === 0; // a quarter of the clients abort mid-stream
    while (Date.now() < deadline) {
      tally.requests++;
      const d = deadlineFor(requestTimeoutMs);
      if (!aborter && pick(10) === 0) {
        const m = MALFORMED[pick(MALFORMED.length)]!;
        tally.malformed++;
        try {
          const res = await fetch(server.url + m.path, { method: m.method, headers: { 'Content-Type': 'application/json' }, body: m.body, signal: d.ac.signal });
          await res.arrayBuffer();
          count(res.status);
          if (res.status < 400 || res.status >= 500) unexpected(`malformed: ${m.name}`, res.status, '');
        } catch (e) {
          if (d.timedOut()) {
            tally.timeouts++;
            count('timeout');
            unexpected(`malformed: ${m.name}`, 'timeout', `no answer within ${requestTimeoutMs / 1000} s`);
          } else {
            tally.networkErrors++;
            count('network');
            unexpected(`malformed: ${m.name}`, 'network', String(e));
          }
        } finally {
          d.clear();
        }
        continue;
      }
      const r = mix[pick(mix.length)]!;
      const stream = aborter || pick(2) === 0;
      let abortedByUs = false;
      try {
        const a = await ask(client, r, stream, d.ac.signal, aborter ? 1 + pick(Math.max(1, maxTokens >> 1)) : undefined, () => {
          abortedByUs = true;
          d.ac.abort();
        });
        if (a === null) {
          tally.aborted++;
          count('aborted');
          continue;
        }
        if (!a.finish) {
          // the answer ended without saying why: a stream cut off (the connection closed early)
          tally.truncated++;
          count('truncated');
          unexpected(`${r.key}${stream ? ' (stream)' : ''}`, 'truncated', `ended without a finish_reason after ${JSON.stringify(a.text)}`);
          continue;
        }
        count(200);
        tally.completed++;
        tally.compared++;
        const want = refs.get(r.key)!;
        if (a.text !== want.text || a.finish !== want.finish) {
          tally.mismatches++;
          if (tally.mismatchExamples.length < 5) tally.mismatchExamples.push({ key: r.key, stream, want: want.text, got: a.text, finishWant: want.finish, finishGot: a.finish });
        }
      } catch (e) {
        if (d.timedOut()) {
          tally.timeouts++;
          count('timeout');
          unexpected(`${r.key}${stream ? ' (stream)' : ''}`, 'timeout', `not finished within ${requestTimeoutMs / 1000} s`);
          continue;
        }
        if (abortedByUs) {
          tally.aborted++;
          count('aborted');
          continue;
        }
        const st = statusOf(e);
        count(st);
        if (typeof st !== 'number') tally.networkErrors++;
        unexpected(`${r.key}${stream ? ' (stream)' : ''}`, st, (e as Error)?.message ?? String(e));
      } finally {
        d.clear();
      }
    }
  };
  const loops = Array.from({ length: clients }, (_, i) => loop(i));
  const settle = Promise.allSettled(loops);
  // every request has a deadline, so every loop ends by deadline + request timeout; the margin is a backstop
  await Promise.race([settle, sleep(loadMs + requestTimeoutMs + 30000)]);
  clearInterval(progress);
  const loadSeconds = (Date.now() - tLoad) / 1000;
  const clientsStillWaiting = (await Promise.race([settle.then(() => 0), sleep(0).then(() => -1)])) === -1;
  await warmSample;

  // after the load: nothing may stay busy
  let stuck: number[] = [];
  const tIdle = Date.now();
  do {
    stuck = await slotsProcessing(server.url).catch(() => [-1]);
    if (stuck.length === 0) break;
    await sleep(250);
  } while (Date.now() - tIdle < 10000);
  await sleep(2000);
  const end = await metrics(server.url).catch(() => new Map<string, number>());
  const rssEnd = end.get('process_resident_memory_bytes') ?? NaN;
  const heapEnd = end.get('nodejs_heap_size_used_bytes') ?? NaN;
  const heapTotalEnd = end.get('nodejs_heap_size_total_bytes') ?? NaN;

  let exitCode: number | null | string = 'not started here';
  if (server.child) {
    const child = server.child;
    const exited = new Promise<number | string | null>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? `signal ${child.signalCode}`);
      else child.once('exit', (code, signal) => resolve(code ?? `signal ${signal}`));
    });
    child.kill('SIGTERM');
    exitCode = await Promise.race([exited, sleep(60000).then(() => 'no exit within 60 s')]);
    if (exitCode === 'no exit within 60 s') child.kill('SIGKILL');
    started = undefined;
  }

  const report = {
    bench: 'soak',
    date: new Date().toISOString(),
    command: `node dist/bench/soak.js ${process.argv.slice(2).join(' ')}`.trim(),
    server: server.url,
    started_here: !!server.child,
    model: (o['model-path'] as string | undefined) ?? (server.child ? 'demo (models/wrinklefree-demo.gguf)' : 'unknown'),
    slots: slotInfo.length,
    kv_pool_positions: slotInfo[0]?.n_ctx ?? null,
    clients,
    minutes,
    max_tokens: maxTokens,
    request_timeout_s: requestTimeoutMs / 1000,
    load_seconds: Math.round(loadSeconds * 10) / 10,
    reference_seconds: Math.round(refSeconds * 10) / 10,
    requests: tally.requests,
    completed: tally.completed,
    aborted: tally.aborted,
    malformed: tally.malformed,
    status: tally.status,
    five_xx: fiveXX(),
    timeouts: tally.timeouts,
    truncated: tally.truncated,
    network_errors: tally.networkErrors,
    unexpected_answers: unexpectedCount,
    compared_with_alone: tally.compared,
    mismatches: tally.mismatches,
    mismatch_examples: tally.mismatchExamples,
    unexpected: tally.unexpected,
    clients_still_waiting: clientsStillWaiting,
    stuck_slots: stuck,
    requests_processing_end: end.get('wf_requests_processing') ?? null,
    requests_queued_end: end.get('wf_requests_queued') ?? null,
    tokens_predicted_total: end.get('wf_tokens_predicted_total') ?? null,
    rss_mib: { after_references: mib(rssStart), after_warmup: mib(rssWarm), end: mib(rssEnd) },
    rss_end_vs_warmup: Math.round((rssEnd / rssWarm) * 1000) / 1000,
    // a leak is a trend: the least-squares slope of the samples after warm-up (a one-off step of the
    // allocator's heap moves end/warm-up but not much the slope)
    rss_slope_mib_per_min_after_warmup: slope(rssSeries.filter((x) => x.s * 1000 >= warmAt - tLoad).map((x) => [x.s / 60, x.rss_mib])),
    js_heap_mib: { after_warmup: mib(heapWarm), end: mib(heapEnd) },
    js_heap_total_mib: { after_warmup: mib(heapTotalWarm), end: mib(heapTotalEnd) },
    memory_every_15s: rssSeries,
    exit_code_after_sigterm: exitCode,
    wall_seconds: Math.round((Date.now() - t0) / 100) / 10,
  };
  const verdict = {
    no_5xx: report.five_xx === 0,
    no_timeouts: report.timeouts === 0 && !clientsStillWaiting,
    no_network_errors: report.network_errors === 0,
    no_truncated_answers: report.truncated === 0,
    no_unexpected_answers: unexpectedCount === 0,
    no_stuck_slot: stuck.length === 0 && report.requests_processing_end === 0 && report.requests_queued_end === 0,
    rss_within_10_percent: Math.abs(report.rss_end_vs_warmup - 1) <= 0.1,
    greedy_answers_identical: report.mismatches === 0 && report.compared_with_alone > 0,
    clean_exit_after_sigterm: server.child ? exitCode === 0 : true,
  };
  console.log(
    `soak: ${report.requests} requests in ${report.load_seconds} s: ${report.completed} completed (compared with alone: ${report.mismatches} differ), ` +
      `${report.aborted} aborted, ${report.malformed} malformed; 5xx ${report.five_xx}; timeouts ${report.timeouts}; truncated ${report.truncated}; network errors ${report.network_errors}; unexpected answers ${unexpectedCount}`,
  );
  console.log(`soak: status counts ${JSON.stringify(report.status)}`);
  for (const u of tally.unexpected.slice(0, 5)) console.log(`soak: unexpected: ${u.what}: ${u.status} ${u.detail}`);
  for (const m of tally.mismatchExamples.slice(0, 3)) console.log(`soak: mismatch: ${m.key}${m.stream ? ' (stream)' : ''}: want ${JSON.stringify(m.want)} (${m.finishWant}), got ${JSON.stringify(m.got)} (${m.finishGot})`);
  console.log(`soak: stuck slots ${JSON.stringify(stuck)}; processing/queued at the end ${report.requests_processing_end}/${report.requests_queued_end}; clients still waiting ${clientsStillWaiting}`);
  console.log(`soak: RSS MiB after references ${report.rss_mib.after_references}, after warm-up ${report.rss_mib.after_warmup}, end ${report.rss_mib.end} (end/warm-up ${report.rss_end_vs_warmup}, slope after warm-up ${report.rss_slope_mib_per_min_after_warmup} MiB/min); JS heap after warm-up ${report.js_heap_mib.after_warmup} of ${report.js_heap_total_mib.after_warmup}, end ${report.js_heap_mib.end} of ${report.js_heap_total_mib.end}`);
  console.log(`soak: exit code after SIGTERM ${exitCode}`);
  console.log(`soak: ${JSON.stringify(verdict)}`);
  const out = (o.out as string | undefined) ?? join(root, 'bench', 'results', 'soak.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ ...report, verdict }, null, 2) + '\n');
  console.log(`soak: wrote ${out}`);
  const failed = Object.entries(verdict).filter(([, ok]) => !ok).map(([k]) => k);
  console.log(failed.length ? `soak: FAIL (${failed.join(', ')})` : 'soak: PASS');
  return failed.length === 0;
}

function fiveXX(): number {
  return Object.entries(tally.status).reduce((a, [k, v]) => (/^5\d\d$/.test(k) ? a + v : a), 0);
}

/** least-squares slope of y over x, rounded (NaN with fewer than 3 points) */
function slope(points: [number, number][]): number {
  const p = points.filter(([, y]) => Number.isFinite(y));
  if (p.length < 3) return NaN;
  const mx = p.reduce((a, [x]) => a + x, 0) / p.length;
  const my = p.reduce((a, [, y]) => a + y, 0) / p.length;
  const sxy = p.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = p.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return Math.round((sxy / sxx) * 100) / 100;
}

const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

// an interrupted run takes its server with it
process.once('SIGINT', () => {
  started?.kill('SIGKILL');
  process.exit(130);
});

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    console.error(`soak: the run could not be made: ${(e as Error)?.message ?? String(e)}`);
    started?.kill('SIGKILL');
    process.exit(2);
  },
);
