// Long form of the hardening fuzz harness (issue 18; cases in test/helpers/hardening-fuzz.ts, short form
// in test/server/hardening-fuzz.test.ts). A benchmark, not a test: it prints figures and writes JSON.
//
//   - templates: --cases seeded hostile chat templates rendered in this process under a --template-ms
//     budget: outcomes, the slowest render, this process's RSS before and after;
//   - GGUF headers: --cases crafted headers read in this process: outcomes, the slowest verdict;
//   - HTTP: --cases hostile requests, one after another, against a wf_server started here on 127.0.0.1
//     (the demo model unless --model-path) while /health is polled every 50 ms: status classes, the worst
//     /health wait, the server's RSS (/metrics) before and after, then SIGTERM: the exit code and how
//     long the stop took.
// Any case outside its contract (a 5xx, a foreign exception, a blown budget) is listed with its number.
//
// Run: npm run build && node dist/bench/fuzz.js [--cases 300] [--seed N] [--template-ms 1000]
//      [--model-path FILE.gguf] [--out bench/results/fuzz.json]
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type OptionSpec } from '../src/cli/args.js';
import { parseExposition } from '../src/server/metrics.js';
import { mulberry32 } from '../test/helpers/random.js';
import { ggufCase, httpCase, runGgufCase, runTemplateCase, send, templateCase, watchHealth } from '../test/helpers/hardening-fuzz.js';
import { readGGUF } from '../src/gguf/reader.js';
import { buildSyntheticModel } from '../src/model/synthetic.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

const SPECS: OptionSpec[] = [
  { name: 'cases', type: 'number', description: 'cases per class', default: 300 },
  { name: 'seed', type: 'number', description: 'random seed', default: 0x18f022 },
  { name: 'template-ms', type: 'number', description: 'time budget of one template render', default: 1000 },
  { name: 'model-path', type: 'string', description: 'GGUF for the HTTP server (default: the demo model)' },
  { name: 'out', type: 'string', description: 'JSON output', default: 'bench/results/fuzz.json' },
];

const root = fileURLToPath(new URL('../..', import.meta.url));
const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

interface ClassReport {
  cases: number;
  outcomes: Record<string, number>;
  slowestMs: number;
  failures: string[];
  [k: string]: unknown;
}

function count(o: Record<string, number>, k: string): void {
  o[k] = (o[k] ?? 0) + 1;
}

async function templates(n: number, seed: number, timeMs: number): Promise<ClassReport> {
  // the tiny synthetic model's byte-level vocabulary with BOS/EOS/<|eot_id|>: templates need only a tokenizer
  const tok = Tokenizer.fromGGUF(await readGGUF(buildSyntheticModel({ nEmbd: 128, nLayers: 1, nFF: 256, nHeads: 2, nKVHeads: 1, vocabSize: 264 })));
  const r = mulberry32(seed);
  const rep: ClassReport = { cases: n, outcomes: {}, slowestMs: 0, failures: [], rssStartMiB: mib(process.memoryUsage().rss) };
  for (let i = 0; i < n; i++) {
    const c = templateCase(r);
    try {
      const { outcome, ms } = runTemplateCase(tok, c, timeMs);
      count(rep.outcomes, outcome);
      rep.slowestMs = Math.max(rep.slowestMs, ms);
    } catch (e) {
      count(rep.outcomes, 'failure');
      rep.failures.push(`case ${i}: ${(e as Error).message}`);
    }
  }
  rep.rssEndMiB = mib(process.memoryUsage().rss);
  return rep;
}

async function gguf(n: number, seed: number): Promise<ClassReport> {
  const r = mulberry32(seed);
  const rep: ClassReport = { cases: n, outcomes: {}, slowestMs: 0, failures: [] };
  for (let i = 0; i < n; i++) {
    try {
      const { outcome, ms } = await runGgufCase(ggufCase(r));
      count(rep.outcomes, outcome);
      rep.slowestMs = Math.max(rep.slowestMs, ms);
    } catch (e) {
      count(rep.outcomes, 'failure');
      rep.failures.push(`case ${i}: ${(e as Error).message}`);
    }
  }
  return rep;
}

async function rss(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(15000) })).text();
  const s = parseExposition(text).samples.find((x) => x.name === 'process_resident_memory_bytes');
  return s ? mib(s.value) : NaN;
}

async function http(n: number, seed: number, modelPath: string | undefined): Promise<ClassReport> {
  const argv = [join(root, 'bin', 'wf_server.js'), '--host', '127.0.0.1', '--port', '0', '--quiet'];
  if (modelPath) argv.push('-m', modelPath);
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 120 s:\n${err}`)), 120000);
    child.stderr!.on('data', () => {
      const m = /listening on (http:\/\/\S+) /.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited (code ${code}) before listening:\n${err}`)));
  });
  const info = (await (await fetch(`${url}/v1/models`)).json()) as { data: { meta?: { n_vocab?: number } }[] };
  const vocab = info.data[0]?.meta?.n_vocab ?? 256;
  const rep: ClassReport = { cases: n, outcomes: {}, slowestMs: 0, failures: [], slowCases: [] as string[], rssStartMiB: await rss(url) };
  const health = watchHealth(url);
  const r = mulberry32(seed);
  for (let i = 0; i < n; i++) {
    const c = httpCase(r, vocab);
    const t0 = performance.now();
    try {
      const res = await send(url, c);
      count(rep.outcomes, `${Math.floor(res.status / 100)}xx`);
      if (res.status >= 500) rep.failures.push(`case ${i}: ${c.method} ${c.path} -> ${res.status} ${res.body.slice(0, 200)}`);
    } catch (e) {
      count(rep.outcomes, 'network error');
      rep.failures.push(`case ${i}: ${c.method} ${c.path}: ${(e as Error).message}`);
    }
    const ms = performance.now() - t0;
    if (ms > 1000) (rep.slowCases as string[]).push(`case ${i}: ${c.method} ${c.path} ${Math.round(ms)} ms (${(c.body ?? '').length} body bytes)`);
    rep.slowestMs = Math.max(rep.slowestMs, ms);
  }
  const h = await health.stop();
  rep.healthWorstMs = Math.round(h.worstMs);
  rep.healthPolls = h.polls;
  rep.healthFailures = h.failures;
  rep.rssEndMiB = await rss(url);
  const t0 = performance.now();
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
  rep.sigtermExitCode = await exit;
  clearTimeout(timer);
  rep.sigtermStopMs = Math.round(performance.now() - t0);
  return rep;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2), SPECS).options;
  const n = o.cases as number;
  const seed = o.seed as number;
  const report = {
    seed,
    templateBudgetMs: o['template-ms'] as number,
    templates: await templates(n, seed, o['template-ms'] as number),
    gguf: await gguf(n, seed + 1),
    http: await http(n, seed + 2, o['model-path'] as string | undefined),
  };
  for (const [name, rep] of Object.entries(report)) {
    if (typeof rep !== 'object') continue;
    const { failures, ...figures } = rep;
    console.log(`fuzz ${name}: ${JSON.stringify(figures)}`);
    for (const f of failures.slice(0, 10)) console.log(`  FAIL ${f}`);
  }
  const out = o.out as string;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`fuzz: wrote ${out}`);
}

main().catch((e) => {
  console.error(`fuzz: ${(e as Error).stack ?? e}`);
  process.exit(2);
});
