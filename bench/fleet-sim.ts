// Routing a fleet, on paper: a trace of multi-turn chats replayed against N simulated wf_server pods,
// under three routing policies, for N from 1 to 100 (a simulation, not a measurement of the fleet).
//
// Why it matters: a conversation's KV cache lives in one pod. A turn routed back to that pod reads only
// its new message; routed elsewhere it reads the whole history again (and the history grows every turn).
// The policies:
//   round-robin     each request to the next pod;
//   least-requests  to the pod with the fewest requests running + waiting (what haproxy's leastconn does);
//   affinity        to the pod holding the conversation's cache, unless that pod has `--affinity-slack`
//                   more requests than the least loaded one, then least-requests (the endpoint picker's
//                   prefix-cache scorer, bounded by load). The first turn goes to the least loaded.
//
// Each simulated pod follows wf_server's scheduler: -np slots, one KV pool of -c tokens (a request
// reserves prompt + reply; finished conversations stay cached until the room is needed, least recently
// used first), and steps of one forward pass over one row per generating sequence plus a chunk of a
// waiting prompt, up to -b rows. A step's duration comes from measured ms per step against rows:
// bench/batch-step's JSON (bench/results/batch-step.json when present, or --step-costs FILE), else the
// built-in table below (the README's wf_server figures on the 2B4T shape, 2 threads).
//
// The trace (seeded, or --trace FILE.json: [{start, turns: [{user, reply, think}]}]): conversations
// start as a Poisson process (`--rate` new conversations per pod per minute, so the load per pod stays
// the same as N grows), 1 to 8 turns (mean 4), user messages ~60 tokens, replies ~150, a system prompt
// of 40, a think time of ~20 s between a reply and the next turn.
//
// Run: npm run build && node dist/bench/fleet-sim.js [--pods 1,2,5,10,20,50,100] [--minutes 10]
//      [--rate 2] [--np 8] [--ctx 8192] [--batch 64] [--seed 1] [--out FILE.json]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type OptionSpec } from '../src/cli/args.js';
import { Xoshiro128 } from '../src/generate/rng.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');

// ---- the trace ----

export interface TraceTurn {
  /** tokens of the new user message */
  user: number;
  /** tokens of the reply */
  reply: number;
  /** seconds between the previous reply's end and this turn */
  think: number;
}
export interface TraceChat {
  start: number;
  turns: TraceTurn[];
}

const SYSTEM_TOKENS = 40;

export function syntheticTrace(opts: { seed: number; seconds: number; chatsPerSecond: number }): TraceChat[] {
  const rng = new Xoshiro128(opts.seed);
  const exp = (mean: number) => -Math.log(1 - rng.nextFloat()) * mean;
  // lognormal-ish lengths: exp of a normal (Box-Muller), scaled to the mean wanted
  const len = (mean: number, spread = 0.6) => {
    const z = Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
    return Math.max(4, Math.round(mean * Math.exp(spread * z - (spread * spread) / 2)));
  };
  const chats: TraceChat[] = [];
  for (let t = exp(1 / opts.chatsPerSecond); t < opts.seconds; t += exp(1 / opts.chatsPerSecond)) {
    const n = 1 + Math.min(7, Math.floor(exp(3)));
    chats.push({ start: t, turns: Array.from({ length: n }, (_, i) => ({ user: len(60), reply: len(150), think: i === 0 ? 0 : exp(20) })) });
  }
  return chats;
}

// ---- step costs ----

/** ms per forward step against the rows in it, interpolated from measured points. */
export class StepCost {
  private readonly pts: [number, number][];
  constructor(points: [number, number][]) {
    this.pts = [...points].sort((a, b) => a[0] - b[0]);
    if (this.pts.length < 2) throw new Error('step costs need at least two (rows, ms) points');
  }
  ms(rows: number): number {
    const p = this.pts;
    let i = 1;
    while (i < p.length - 1 && p[i]![0] < rows) i++;
    const [x0, y0] = p[i - 1]!;
    const [x1, y1] = p[i]!;
    return Math.max(0.1, y0 + ((y1 - y0) * (rows - x0)) / (x1 - x0));
  }
}

// From the README's serving figures (bench/serve.js, 2B4T-shaped TQ2_0 file, 2 threads, this machine):
// one stream 25.9 tok/s (1 row: 38.6 ms), 8 streams all decoding 32.3 tok/s (8 rows: 248 ms), a 95-token
// prompt's first token after 1.45 s (~65 prompt rows/s: 64 rows ~977 ms)
const BUILT_IN_COSTS: [number, number][] = [
  [1, 38.6],
  [8, 248],
  [64, 977],
];

// ---- the pods ----

interface Request {
  chat: number;
  turn: number;
  arrival: number;
  /** tokens before the new message (system + earlier turns) */
  history: number;
  user: number;
  reply: number;
  /** prompt tokens still to read */
  toRead: number;
  generated: number;
  firstToken: number | null;
  cachedFrom: number;
}

interface CacheEntry {
  tokens: number;
  lastUse: number;
}

class Pod {
  queue: Request[] = [];
  running: Request[] = [];
  /** finished conversations' caches, by chat */
  cache = new Map<number, CacheEntry>();
  reserved = 0;
  stepEnd = Infinity;
  busyMs = 0;
  constructor(readonly id: number, readonly slots: number, readonly ctx: number, readonly batch: number, readonly cost: StepCost) {}

  get load(): number {
    return this.running.length + this.queue.length;
  }
  cachedTokens(): number {
    let n = 0;
    for (const e of this.cache.values()) n += e.tokens;
    return n;
  }

  /** Admits waiting requests while a slot and KV room exist (evicting cached conversations, LRU). */
  admit(now: number): void {
    while (this.queue.length && this.running.length < this.slots) {
      const r = this.queue[0]!;
      const own = this.cache.get(r.chat);
      const need = r.history + r.user + r.reply;
      if (need > this.ctx) {
        // past the pool: served with what fits (the server would refuse; the trace keeps it small)
        r.reply = Math.max(1, this.ctx - r.history - r.user);
      }
      let free = this.ctx - this.reserved - this.cachedTokens() + (own?.tokens ?? 0);
      if (free < need) {
        const lru = [...this.cache].filter(([c]) => c !== r.chat).sort((a, b) => a[1].lastUse - b[1].lastUse);
        for (const [c, e] of lru) {
          if (free >= need) break;
          this.cache.delete(c);
          free += e.tokens;
        }
      }
      if (free < need) return;
      this.queue.shift();
      // the cached prefix: this conversation's history, if this pod still holds it
      r.cachedFrom = own && own.tokens <= r.history ? own.tokens : 0;
      this.cache.delete(r.chat);
      r.toRead = r.history + r.user - r.cachedFrom;
      this.reserved += need;
      this.running.push(r);
    }
    void now;
  }

  /** Starts a step if there is work; returns its end time. */
  startStep(now: number): void {
    this.admit(now);
    if (this.running.length === 0) {
      this.stepEnd = Infinity;
      return;
    }
    const generating = this.running.filter((r) => r.toRead === 0).length;
    let room = Math.max(0, this.batch - generating);
    let rows = generating;
    for (const r of this.running) {
      if (r.toRead === 0 || room === 0) continue;
      const take = Math.min(room, r.toRead);
      rows += take;
      room -= take;
    }
    const ms = this.cost.ms(rows);
    this.busyMs += ms;
    this.stepEnd = now + ms / 1000;
  }

  /** Ends the step: prompt chunks read, one token per generating sequence; returns the finished requests. */
  endStep(now: number): Request[] {
    const generating = this.running.filter((r) => r.toRead === 0);
    let room = Math.max(0, this.batch - generating.length);
    for (const r of generating) {
      r.generated++;
      if (r.firstToken === null) r.firstToken = now;
    }
    for (const r of this.running) {
      if (r.toRead === 0 || room === 0 || generating.includes(r)) continue;
      const take = Math.min(room, r.toRead);
      r.toRead -= take;
      room -= take;
      // the step that reads a prompt's last chunk also samples its first token
      if (r.toRead === 0) {
        r.generated = 1;
        r.firstToken = now;
      }
    }
    const done = this.running.filter((r) => r.generated >= r.reply);
    this.running = this.running.filter((r) => r.generated < r.reply);
    for (const r of done) {
      this.reserved -= r.history + r.user + r.reply;
      this.cache.set(r.chat, { tokens: r.history + r.user + r.reply, lastUse: now });
    }
    return done;
  }
}

// ---- routing ----

export type Policy = 'round-robin' | 'least-requests' | 'affinity';

function router(policy: Policy, pods: Pod[], slack: number) {
  let next = 0;
  const least = () => pods.reduce((a, b) => (b.load < a.load ? b : a));
  return (r: Request): Pod => {
    if (policy === 'round-robin') return pods[next++ % pods.length]!;
    const l = least();
    if (policy === 'least-requests') return l;
    const home = pods.find((p) => p.cache.has(r.chat));
    return home && home.load <= l.load + slack ? home : l;
  };
}

// ---- the simulation ----

class Heap<T> {
  private a: [number, T][] = [];
  get size(): number {
    return this.a.length;
  }
  push(k: number, v: T): void {
    const a = this.a;
    a.push([k, v]);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p]![0] <= a[i]![0]) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  peek(): number {
    return this.a.length ? this.a[0]![0] : Infinity;
  }
  pop(): [number, T] {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]![0] < a[m]![0]) m = l;
        if (r < a.length && a[r]![0] < a[m]![0]) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export interface SimResult {
  pods: number;
  policy: Policy;
  requests: number;
  ttftP50: number;
  ttftP99: number;
  /** generated tokens per second over the run */
  tokensPerSecond: number;
  /** prompt tokens found in a cache / all prompt tokens */
  cacheHitRatio: number;
  /** share of the pods' time spent in steps */
  utilization: number;
}

export function simulate(trace: TraceChat[], opts: { pods: number; policy: Policy; slots: number; ctx: number; batch: number; cost: StepCost; slack: number }): SimResult {
  const pods = Array.from({ length: opts.pods }, (_, i) => new Pod(i, opts.slots, opts.ctx, opts.batch, opts.cost));
  const route = router(opts.policy, pods, opts.slack);
  const arrivals = new Heap<Request>();
  const history = new Map<number, number>();
  for (let c = 0; c < trace.length; c++) {
    const t = trace[c]!.turns[0]!;
    arrivals.push(trace[c]!.start, { chat: c, turn: 0, arrival: trace[c]!.start, history: SYSTEM_TOKENS, user: t.user, reply: t.reply, toRead: 0, generated: 0, firstToken: null, cachedFrom: 0 });
  }
  const ttft: number[] = [];
  let generated = 0;
  let promptTokens = 0;
  let cachedTokens = 0;
  let now = 0;
  for (;;) {
    let pod: Pod | null = null;
    for (const p of pods) if (p.stepEnd < (pod?.stepEnd ?? Infinity)) pod = p;
    const nextArrival = arrivals.peek();
    if (!pod && nextArrival === Infinity) break;
    if (nextArrival <= (pod?.stepEnd ?? Infinity)) {
      const [t, r] = arrivals.pop();
      now = t;
      const p = route(r);
      p.queue.push(r);
      if (p.stepEnd === Infinity) p.startStep(now);
      continue;
    }
    now = pod!.stepEnd;
    for (const r of pod!.endStep(now)) {
      ttft.push(r.firstToken! - r.arrival);
      generated += r.reply;
      promptTokens += r.history + r.user;
      cachedTokens += r.cachedFrom;
      const chat = trace[r.chat]!;
      const h = r.history + r.user + r.reply;
      history.set(r.chat, h);
      const nextTurn = chat.turns[r.turn + 1];
      if (nextTurn) {
        const at = now + nextTurn.think;
        arrivals.push(at, { chat: r.chat, turn: r.turn + 1, arrival: at, history: h, user: nextTurn.user, reply: nextTurn.reply, toRead: 0, generated: 0, firstToken: null, cachedFrom: 0 });
      }
    }
    pod!.startStep(now);
  }
  ttft.sort((a, b) => a - b);
  const q = (p: number) => ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))] ?? NaN;
  const busy = pods.reduce((a, p) => a + p.busyMs, 0) / 1000;
  return {
    pods: opts.pods,
    policy: opts.policy,
    requests: ttft.length,
    ttftP50: q(0.5),
    ttftP99: q(0.99),
    tokensPerSecond: generated / now,
    cacheHitRatio: promptTokens > 0 ? cachedTokens / promptTokens : 0,
    utilization: busy / (now * opts.pods),
  };
}

function loadCosts(file: string | undefined): { cost: StepCost; source: string } {
  const path = file ?? join(root, 'bench', 'results', 'batch-step.json');
  if (existsSync(path)) {
    const j = JSON.parse(readFileSync(path, 'utf8')) as { rows: { batch: number; ms_per_step: number }[] };
    if (j.rows?.length >= 2) return { cost: new StepCost(j.rows.map((r) => [r.batch, r.ms_per_step])), source: path };
  }
  if (file) throw new Error(`--step-costs ${file}: no rows of at least two batch sizes`);
  return { cost: new StepCost(BUILT_IN_COSTS), source: "the built-in table (the README's wf_server figures, 2B4T shape, 2 threads)" };
}

function main(): void {
  const OPTIONS: OptionSpec[] = [
    { name: 'pods', type: 'string', description: 'pod counts to simulate', default: '1,2,5,10,20,50,100' },
    { name: 'minutes', type: 'number', description: 'minutes of conversation starts', default: 10 },
    { name: 'rate', type: 'number', description: 'new conversations per pod per minute', default: 2 },
    { name: 'np', type: 'number', description: 'slots per pod', default: 8 },
    { name: 'ctx', type: 'number', description: 'KV pool per pod, tokens', default: 8192 },
    { name: 'batch', type: 'number', description: 'rows per forward pass', default: 64 },
    { name: 'affinity-slack', type: 'number', description: 'extra requests a conversation\'s pod may have before affinity gives way', default: 4 },
    { name: 'seed', type: 'number', description: 'trace seed', default: 1 },
    { name: 'trace', type: 'string', description: 'a trace file instead of the synthetic one: [{start, turns: [{user, reply, think}]}] (for every N)' },
    { name: 'step-costs', type: 'string', description: 'bench/batch-step JSON with rows [{batch, ms_per_step}]' },
    { name: 'out', type: 'string', description: 'JSON report', default: join(root, 'bench', 'results', 'fleet-sim.json') },
  ];
  const o = parseArgs(process.argv.slice(2), OPTIONS).options;
  const { cost, source } = loadCosts(o['step-costs'] as string | undefined);
  console.log(`step costs from ${source}: 1 row ${cost.ms(1).toFixed(1)} ms, 8 rows ${cost.ms(8).toFixed(1)} ms, 64 rows ${cost.ms(64).toFixed(1)} ms`);
  const results: SimResult[] = [];
  const policies: Policy[] = ['round-robin', 'least-requests', 'affinity'];
  console.log('pods  policy          requests  TTFT p50   TTFT p99   tok/s    cache hit  busy');
  for (const n of String(o.pods).split(',').map(Number)) {
    const trace = o.trace
      ? (JSON.parse(readFileSync(String(o.trace), 'utf8')) as TraceChat[])
      : syntheticTrace({ seed: o.seed as number, seconds: (o.minutes as number) * 60, chatsPerSecond: ((o.rate as number) * n) / 60 });
    for (const policy of policies) {
      const r = simulate(trace, { pods: n, policy, slots: o.np as number, ctx: o.ctx as number, batch: o.batch as number, cost, slack: o['affinity-slack'] as number });
      results.push(r);
      console.log(
        `${String(n).padStart(4)}  ${policy.padEnd(15)} ${String(r.requests).padStart(8)}  ${r.ttftP50.toFixed(2).padStart(7)} s  ${r.ttftP99.toFixed(2).padStart(7)} s  ${r.tokensPerSecond.toFixed(1).padStart(7)}  ${(100 * r.cacheHitRatio).toFixed(1).padStart(7)} %  ${(100 * r.utilization).toFixed(0).padStart(3)} %`,
      );
    }
  }
  const out = String(o.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ stepCosts: source, options: o, results }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
