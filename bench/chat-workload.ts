// Chat workload benchmark: many users, multi-turn conversations sharing one system prompt, where
// reading prompts is the cost on a CPU and the prefix cache is what saves it.
//
//   npm run build && node dist/bench/chat-workload.js [--users 8] [--turns 4] [--system 300] [--user-text 24]
//        [--reply 16] [--concurrency 4] [--model FILE] [--layers 30] [--threads 2] [--np 8] [-c 8192]
//        [--llama-server PATH] [--target URL]... [--out FILE]
//
// Workload: U users, each a conversation of T turns. All share a system prompt of about S tokens (tool
// instructions are this long); each user turn adds about --user-text tokens; replies are R tokens
// (temperature 0, ignore_eos, max_tokens R), and each next turn sends the whole history back with the
// reply as the server returned it (as chat clients do). C conversations run at once (C requests in
// flight); users start in order. Streamed /v1/chat/completions with usage (include_usage).
//
// Per server: total wall time; prompt tokens read against reused (usage.prompt_tokens_details
// .cached_tokens, else timings.cache_n); tokens read per later turn (mean, max) against that turn's new
// text and markup; what users 2..U read of their first turn (the system prompt is shared); time to
// first token p50/p99 for turn 1 and for later turns.
//
// Servers: with no --target, wf_server is started here on --model (default: the 2B4T shape of
// bench/serve.ts, TQ2_0 weights, Q8_0 embedding, generated once in $TMPDIR/wf-bench), and with
// --llama-server PATH native llama-server too, on the same file, threads, -np and -c, one after the
// other, in the same run. Both use the BitNet b1.58 2B4T chat template (llama-server through --jinja
// --chat-template-file). Both render control tokens into replies (wf_server --special, llama-server
// --special): the synthetic vocabulary is mostly reserved control tokens, and a reply that loses them
// comes back different from what was generated. --target URL (repeatable) measures servers already
// running instead. Writes bench/results/chat-workload.json (or --out). Figures only, no assertions.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BITNET_2B4T_SHAPE } from '../src/model/synthetic.js';
import { BITNET_2B4T_TEMPLATE } from '../src/tokenizer/chat-template.js';
import { ensure2B4TShapeFile } from './synthetic-file.js';
import { startServer, stopServer } from './server-process.js';

interface Args {
  users: number; turns: number; system: number; userText: number; reply: number; concurrency: number;
  model?: string; layers: number; threads: number; np: number; ctx: number; llamaServer?: string; targets: string[]; out: string;
}

function parse(argv: string[]): Args {
  const a: Args = { users: 8, turns: 4, system: 300, userText: 24, reply: 16, concurrency: 4, layers: BITNET_2B4T_SHAPE.nLayers, threads: 2, np: 8, ctx: 8192, targets: [], out: 'bench/results/chat-workload.json' };
  const num = (v: string | undefined, name: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!, v = argv[i + 1];
    switch (k) {
      case '--users': a.users = num(v, k); i++; break;
      case '--turns': a.turns = num(v, k); i++; break;
      case '--system': a.system = num(v, k); i++; break;
      case '--user-text': a.userText = num(v, k); i++; break;
      case '--reply': a.reply = num(v, k); i++; break;
      case '--concurrency': a.concurrency = num(v, k); i++; break;
      case '--model': a.model = v; i++; break;
      case '--layers': a.layers = num(v, k); i++; break;
      case '--threads': a.threads = num(v, k); i++; break;
      case '--np': a.np = num(v, k); i++; break;
      case '-c': case '--ctx-size': a.ctx = num(v, k); i++; break;
      case '--llama-server': a.llamaServer = v; i++; break;
      case '--target': a.targets.push(v!); i++; break;
      case '--out': a.out = v!; i++; break;
      default: throw new Error(`unknown option ${k} (see the header of bench/chat-workload.ts)`);
    }
  }
  return a;
}

async function ensureModel(a: Args): Promise<string> {
  return a.model ?? ensure2B4TShapeFile({ layers: a.layers, type: 'tq2_0', arch: 'bitnet', embed: 'q8_0' });
}

// ---- text ---------------------------------------------------------------------------------------

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november'];

/** About n tokens of text (a byte-level vocabulary reads about a token per byte). */
function text(n: number, seed: number): string {
  const out: string[] = [];
  let i = 0;
  while (out.join(' ').length < n) out.push(WORDS[(seed * 7 + i++ * 5) % WORDS.length]!);
  return out.join(' ').slice(0, n);
}

// ---- one request ------------------------------------------------------------------------------

interface Message { role: string; content: string }

interface TurnResult {
  user: number;
  turn: number;
  ok: boolean;
  error?: string;
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
  /** prompt tokens the server read (evaluated) */
  readTokens: number;
  reply: string;
}

async function chatTurn(url: string, model: string, messages: Message[], reply: number): Promise<Omit<TurnResult, 'user' | 'turn'>> {
  const t0 = performance.now();
  let ttft = 0;
  let content = '';
  let usage: any;
  let timings: any;
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, messages, max_tokens: reply, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 2);
        if (!ev.startsWith('data:')) continue;
        const data = ev.slice(5).trim();
        if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(JSON.stringify(j.error).slice(0, 300));
        if (j.usage) usage = j.usage;
        if (j.timings) timings = j.timings;
        const delta = j.choices?.[0]?.delta?.content;
        if (typeof delta === 'string' && delta.length > 0) {
          if (ttft === 0) ttft = performance.now() - t0;
          content += delta;
        }
      }
    }
    const prompt = usage?.prompt_tokens ?? timings?.prompt_n + timings?.cache_n;
    const cached = usage?.prompt_tokens_details?.cached_tokens ?? timings?.cache_n ?? 0;
    const read = timings?.prompt_n ?? prompt - cached;
    return { ok: true, ttftMs: ttft || performance.now() - t0, promptTokens: prompt, cachedTokens: cached, readTokens: read, reply: content };
  } catch (e) {
    return { ok: false, error: (e as Error).message, ttftMs: 0, promptTokens: 0, cachedTokens: 0, readTokens: 0, reply: content };
  }
}

// ---- the workload -------------------------------------------------------------------------------

function pct(x: number[], p: number): number {
  if (x.length === 0) return NaN;
  const s = [...x].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

async function tokenCount(url: string, content: string): Promise<number | undefined> {
  try {
    const r = await fetch(`${url}/tokenize`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ content, add_special: false, parse_special: true }) });
    return ((await r.json()) as { tokens: unknown[] }).tokens.length;
  } catch {
    return undefined;
  }
}

async function measure(name: string, url: string, a: Args) {
  const model = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data[0]?.id ?? 'model';
  const log = (s: string) => console.log(`[${name}] ${s}`);
  const system = text(a.system, 1);
  const results: TurnResult[] = [];
  const t0 = performance.now();
  let nextUser = 0;
  await Promise.all(
    Array.from({ length: Math.min(a.concurrency, a.users) }, async () => {
      for (let u = nextUser++; u < a.users; u = nextUser++) {
        const messages: Message[] = [{ role: 'system', content: system }];
        for (let t = 0; t < a.turns; t++) {
          messages.push({ role: 'user', content: `User ${u} turn ${t}: ${text(a.userText, 100 + u * 31 + t)}` });
          const r = await chatTurn(url, model, messages, a.reply);
          results.push({ user: u, turn: t, ...r });
          if (!r.ok) {
            log(`user ${u} turn ${t}: ${r.error}`);
            break;
          }
          messages.push({ role: 'assistant', content: r.reply });
        }
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const ok = results.filter((r) => r.ok);
  const first = ok.filter((r) => r.turn === 0);
  const later = ok.filter((r) => r.turn > 0);
  // a later turn's new text and markup: the reply's end of turn, the user message, the generation prompt
  const markup = await tokenCount(url, `<|eot_id|>User: User 0 turn 1: ${text(a.userText, 132)}<|eot_id|>Assistant: `);
  const systemTokens = await tokenCount(url, `<|begin_of_text|>System: ${system}<|eot_id|>`);
  const sum = (rs: TurnResult[], f: (r: TurnResult) => number) => rs.reduce((s, r) => s + f(r), 0);
  const f = {
    server: name,
    wallS: r1(wallS),
    requests: results.length,
    errors: results.length - ok.length,
    errorSamples: results.filter((r) => !r.ok).slice(0, 3).map((r) => r.error),
    promptTokens: sum(ok, (r) => r.promptTokens),
    promptTokensRead: sum(ok, (r) => r.readTokens),
    promptTokensReused: sum(ok, (r) => r.cachedTokens),
    laterTurnReadMean: r1(sum(later, (r) => r.readTokens) / Math.max(1, later.length)),
    laterTurnReadMax: Math.max(0, ...later.map((r) => r.readTokens)),
    laterTurnNewTextAndMarkup: markup,
    systemPromptTokens: systemTokens,
    firstTurnReadUser1: first.find((r) => r.user === 0)?.readTokens,
    firstTurnReadOtherUsersMean: r1(sum(first.filter((r) => r.user > 0), (r) => r.readTokens) / Math.max(1, first.length - 1)),
    firstTurnPromptMean: r1(sum(first, (r) => r.promptTokens) / Math.max(1, first.length)),
    ttftTurn1P50Ms: r1(pct(first.map((r) => r.ttftMs), 50)),
    ttftTurn1P99Ms: r1(pct(first.map((r) => r.ttftMs), 99)),
    ttftLaterP50Ms: r1(pct(later.map((r) => r.ttftMs), 50)),
    ttftLaterP99Ms: r1(pct(later.map((r) => r.ttftMs), 99)),
  };
  log(`${a.users} users x ${a.turns} turns, ${Math.min(a.concurrency, a.users)} at once: wall ${f.wallS} s, ${f.errors} error(s)`);
  log(`prompt tokens: ${f.promptTokens}, read ${f.promptTokensRead}, reused ${f.promptTokensReused}`);
  log(`later turns read ${f.laterTurnReadMean} tokens (max ${f.laterTurnReadMax}); their new text + markup is ${f.laterTurnNewTextAndMarkup}`);
  log(`first turns read: user 1 ${f.firstTurnReadUser1}, the others ${f.firstTurnReadOtherUsersMean} (prompt ${f.firstTurnPromptMean}, system prompt ${f.systemPromptTokens})`);
  log(`TTFT turn 1 p50 ${f.ttftTurn1P50Ms} / p99 ${f.ttftTurn1P99Ms} ms; later turns p50 ${f.ttftLaterP50Ms} / p99 ${f.ttftLaterP99Ms} ms`);
  return f;
}

// ---- servers -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const results = [];
  const before = loadavg().map(r1);
  if (a.targets.length > 0) {
    for (const t of a.targets) results.push(await measure(t, t.replace(/\/v1\/?$/, ''), a));
  } else {
    const model = await ensureModel(a);
    const here = dirname(fileURLToPath(import.meta.url));
    const port = 35000 + Math.floor(Math.random() * 5000);
    const url = `http://127.0.0.1:${port}`;
    const wf = await startServer('wf_server', process.execPath, [join(here, '..', '..', 'bin', 'wf_server.js'), '-m', model, '-t', String(a.threads),
      '-np', String(a.np), '-c', String(a.ctx), '--port', String(port), '-q', '--special'], url);
    try {
      results.push(await measure('wf_server', url, a));
    } finally {
      await stopServer(wf);
    }
    if (a.llamaServer) {
      const templateFile = join(tmpdir(), 'wf-bench', 'bitnet-2b4t.jinja');
      writeFileSync(templateFile, BITNET_2B4T_TEMPLATE);
      const lurl = `http://127.0.0.1:${port + 1}`;
      const ls = await startServer('llama-server', a.llamaServer, ['-m', model, '-t', String(a.threads), '-tb', String(a.threads), '-np', String(a.np), '-c', String(a.ctx),
        '--jinja', '--chat-template-file', templateFile, '--special', '--port', String(port + 1), '--host', '127.0.0.1'], lurl);
      try {
        results.push(await measure('llama-server', lurl, a));
      } finally {
        await stopServer(ls);
      }
    }
  }
  const after = loadavg().map(r1);
  const [ours, theirs] = results;
  const ratios = ours && theirs
    ? { wall: r2(ours.wallS / theirs.wallS), ttftLaterP50: r2(ours.ttftLaterP50Ms / theirs.ttftLaterP50Ms), ttftTurn1P50: r2(ours.ttftTurn1P50Ms / theirs.ttftTurn1P50Ms) }
    : undefined;
  if (ratios) console.log(`ratios ${results[0]!.server} / ${results[1]!.server}: wall x${ratios.wall}, later-turn TTFT p50 x${ratios.ttftLaterP50}, turn-1 TTFT p50 x${ratios.ttftTurn1P50}`);
  console.log(`load average before ${before.join(' ')}, after ${after.join(' ')} (the machine is shared: compare ratios within one run)`);
  mkdirSync(dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify({ args: a, results, ratios, loadAverage: { before, after }, date: new Date().toISOString() }, null, 2));
  console.log(`wrote ${a.out}`);
}

await main();
