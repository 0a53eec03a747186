// Grammar fuzz harness, long form (a benchmark, not a test; the short form is
// test/server/grammar-fuzz.test.ts). Against a wf_server process of its own (the demo model, on
// 127.0.0.1), it checks issue #18's "done means" for the grammar engine and reports figures:
//
//   1. hostile inputs: --grammars seeded malformed grammars of each class and --schemas malformed
//      schemas of each class (test/helpers/grammar-cases.ts), one after another; each must be a 200
//      or a 400 naming its field; per class: cases, answers by status, slowest answer;
//   2. then a valid json_schema request must return JSON that validates (ajv);
//   3. memory: --enums distinct schemas, each an enum of --enum-size strings (issue #18's leak),
//      against a server with --grammar-max-bytes (and --grammar-timeout) raised so they compile,
//      then the slowest inputs again on it (the time budget decides); resident memory
//      (process_resident_memory_bytes) after the first 10 and at the end must stay within 300 MB;
//   4. the slowest inputs: a 254 KB nested anyOf schema and `root ::= ("x"{0,1000}){0,1000}`, each
//      answered (a 400 naming a limit, or compiled within the budget);
//   5. SIGTERM: the server drains and exits with 0.
// Throughout, GET /health is polled every 100 ms: the worst wait must stay under 1 s.
//
// Run: npm run build && node dist/bench/fuzz-grammar.js [--seed 18] [--grammars 300] [--schemas 60]
//      [--enums 60] [--enum-size 20000] [--enum-timeout 30000] [--threads 1] [--out FILE.json]
// Prints the figures and writes bench/results/fuzz-grammar.json (or --out); exits 1 when a
// criterion fails (the verdict says which).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parseArgs, type OptionSpec } from '../src/cli/args.js';
import { parseExposition } from '../src/server/metrics.js';
import { enumSchema, fuzzCases, healthProbe, type GrammarCase } from '../test/helpers/grammar-cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');

const OPTIONS: OptionSpec[] = [
  { name: 'seed', type: 'number', default: 18, description: 'seed of the generated cases' },
  { name: 'grammars', type: 'number', default: 300, description: 'malformed grammars of each class' },
  { name: 'schemas', type: 'number', default: 60, description: 'malformed schemas of each class' },
  { name: 'enums', type: 'number', default: 60, description: 'distinct large-enum schemas of the memory phase' },
  { name: 'enum-size', type: 'number', default: 20000, description: 'strings in each enum' },
  { name: 'enum-timeout', type: 'number', default: 30000, description: '--grammar-timeout of the memory phase (a 20,000-string enum compiles in about 3 s on an idle core)' },
  { name: 'threads', type: 'number', default: 1, description: 'kernel threads of the server' },
  { name: 'out', type: 'string', description: 'where to write the JSON report (default bench/results/fuzz-grammar.json)' },
];

const SCHEMA = { type: 'object', properties: { word: { type: 'string', maxLength: 6 }, n: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['word', 'n'], additionalProperties: false };

interface Server {
  url: string;
  child: ChildProcess;
  stderr: () => string;
}

function startServer(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [join(root, 'bin', 'wf_server.js'), '--port', '0', '-q', ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'listening' line:\n${err}`)), 120000);
    const onData = () => {
      const m = /listening on (http:\/\/\S+) /.exec(err);
      if (!m) return;
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      resolve({ url: m[1]!, child, stderr: () => err });
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the server exited (code ${code}) before listening:\n${err}`)));
  });
}

async function post(url: string, body: unknown): Promise<{ status: number; json: any; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120000),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, ms: performance.now() - t0 };
}

async function metrics(url: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of parseExposition(await (await fetch(`${url}/metrics`)).text()).samples) if (Object.keys(s.labels).length === 0) out[s.name] = s.value;
  return out;
}

/** Sends SIGTERM and waits for the exit: code and milliseconds. */
function stop(s: Server): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 60000);
    s.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: performance.now() - t0 });
    });
    s.child.kill('SIGTERM');
  });
}

/** A schema of about `bytes` bytes: an anyOf of objects whose properties are anyOfs of enums (issue #18's slow schema). */
function nestedAnyOf(bytes: number): unknown {
  const branches: unknown[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const props: Record<string, unknown> = {};
    for (let j = 0; j < 8; j++) props[`p${i}_${j}`] = { anyOf: [{ enum: Array.from({ length: 6 }, (_, k) => `v${i}-${j}-${k}`) }, { type: 'integer' }, { type: 'array', items: { type: 'string' } }] };
    const b = { type: 'object', properties: props, required: Object.keys(props).slice(0, 4) };
    branches.push(b);
    size += JSON.stringify(b).length;
  }
  return { anyOf: branches };
}

const mb = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;

async function main(): Promise<number> {
  const { options: o } = parseArgs(process.argv.slice(2), OPTIONS);
  const seed = o.seed as number;
  const nGrammars = o.grammars as number;
  const nSchemas = o.schemas as number;
  const nEnums = o.enums as number;
  const enumSize = o['enum-size'] as number;
  const threads = String(o.threads as number);
  const failures: string[] = [];
  const report: Record<string, unknown> = { seed, grammars_per_class: nGrammars, schemas_per_class: nSchemas, enums: nEnums, enum_size: enumSize };

  // ---- 1, 2: hostile inputs on a server with the default limits
  let s = await startServer(['--threads', threads, '-c', '512', '-np', '2']);
  let probe = healthProbe(s.url);
  const cases: GrammarCase[] = fuzzCases(seed, nGrammars, nSchemas);
  const perClass: Record<string, { cases: number; status: Record<string, number>; slowest_ms: number }> = {};
  const t0 = performance.now();
  for (const c of cases) {
    const r = await post(s.url, { prompt: 'x', max_tokens: 4, ...c.body });
    const k = (perClass[c.kind] ??= { cases: 0, status: {}, slowest_ms: 0 });
    k.cases++;
    k.status[r.status] = (k.status[r.status] ?? 0) + 1;
    k.slowest_ms = Math.max(k.slowest_ms, Math.round(r.ms));
    const param = 'grammar' in c.body ? 'grammar' : 'json_schema';
    if (!(r.status === 200 || (r.status === 400 && r.json?.error?.param === param))) {
      failures.push(`${c.kind}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
    }
  }
  const hostileSeconds = (performance.now() - t0) / 1000;
  const valid = await post(s.url, { prompt: 'And God said', json_schema: SCHEMA, max_tokens: 60, seed: 7 });
  let validOk = false;
  try {
    validOk = valid.status === 200 && new Ajv().validate(SCHEMA, JSON.parse(valid.json.choices[0].text));
  } catch {
    validOk = false;
  }
  if (!validOk) failures.push(`the valid json_schema request after the hostile ones: ${valid.status} ${JSON.stringify(valid.json).slice(0, 200)}`);
  const m1 = await metrics(s.url);
  let worst1 = await probe.stop();
  // 4 (default limits): the slow inputs
  probe = healthProbe(s.url);
  const slowDefault = {
    nested_anyof_254kb: await post(s.url, { prompt: 'x', max_tokens: 4, json_schema: nestedAnyOf(254 * 1024) }),
    repeat_1000x1000: await post(s.url, { prompt: 'x', max_tokens: 4, grammar: 'root ::= ("x"{0,1000}){0,1000}' }),
  };
  const worstSlowDefault = await probe.stop();
  const term1 = await stop(s);
  if (term1.code !== 0) failures.push(`SIGTERM after the hostile inputs: exit code ${term1.code}`);
  report.hostile = {
    cases: cases.length,
    seconds: Math.round(hostileSeconds),
    per_class: perClass,
    valid_json_after: validOk,
    health_worst_ms: Math.round(worst1),
    faults: m1.wf_grammar_faults_total,
    restarts: m1.wf_grammar_restarts_total,
    rss_mb_end: mb(m1.process_resident_memory_bytes ?? 0),
    sigterm: term1,
  };
  report.slow_default_limits = {
    health_worst_ms: Math.round(worstSlowDefault),
    ...Object.fromEntries(Object.entries(slowDefault).map(([k, r]) => [k, { status: r.status, ms: Math.round(r.ms), message: r.json?.error?.message ?? null }])),
  };

  // ---- 3, 4: memory, and the slow inputs with the size limit raised (the time budget decides)
  s = await startServer(['--threads', threads, '-c', '512', '-np', '2', '--grammar-max-bytes', String(64 * enumSize + 300 * 1024), '--grammar-timeout', String(o['enum-timeout'])]);
  probe = healthProbe(s.url);
  const rss: number[] = [];
  const grammarBytes: number[] = [];
  const rss0 = (await metrics(s.url)).process_resident_memory_bytes ?? 0;
  for (let i = 0; i < nEnums; i++) {
    const r = await post(s.url, { prompt: 'x', max_tokens: 3, json_schema: enumSchema(`e${seed}-${i}`, enumSize) });
    if (r.status !== 200) failures.push(`enum schema ${i}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
    const m = await metrics(s.url);
    rss.push(m.process_resident_memory_bytes ?? 0);
    grammarBytes.push(m.wf_grammar_cache_bytes ?? 0);
  }
  const after10 = rss[Math.min(9, rss.length - 1)] ?? 0;
  const end = rss[rss.length - 1] ?? 0;
  if (end - after10 > 300 * 2 ** 20) failures.push(`RSS grew ${mb(end - after10)} MB from the 10th enum schema to the last (limit 300 MB)`);
  const slowRaised = {
    nested_anyof_254kb: await post(s.url, { prompt: 'x', max_tokens: 4, json_schema: nestedAnyOf(254 * 1024) }),
    repeat_1000x1000: await post(s.url, { prompt: 'x', max_tokens: 4, grammar: 'root ::= ("x"{0,1000}){0,1000}' }),
  };
  const worst2 = await probe.stop();
  for (const [k, r] of [...Object.entries(slowDefault), ...Object.entries(slowRaised)]) {
    if (!(r.status === 200 || (r.status === 400 && /limit/.test(r.json?.error?.message ?? '')))) failures.push(`${k}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
  }
  const m2 = await metrics(s.url);
  const term2 = await stop(s);
  if (term2.code !== 0) failures.push(`SIGTERM after the memory phase: exit code ${term2.code}`);
  report.memory = {
    rss_mb_start: mb(rss0),
    rss_mb_after_10: mb(after10),
    rss_mb_end: mb(end),
    rss_mb_max: mb(Math.max(...rss)),
    grammar_engine_mb_max: mb(Math.max(...grammarBytes)),
    restarts: m2.wf_grammar_restarts_total,
    rss_mb_each: rss.map(mb),
    sigterm: term2,
  };
  report.slow_raised_size_limit = {
    health_worst_ms: Math.round(worst2),
    ...Object.fromEntries(Object.entries(slowRaised).map(([k, r]) => [k, { status: r.status, ms: Math.round(r.ms), message: r.json?.error?.message ?? null }])),
  };
  worst1 = Math.max(worst1, worstSlowDefault, worst2);
  if (worst1 >= 1000) failures.push(`/health waited ${Math.round(worst1)} ms at worst (limit 1000)`);
  report.health_worst_ms = Math.round(worst1);
  report.failures = failures;

  console.log(JSON.stringify(report, (k, v) => (k === 'rss_mb_each' ? `[${(v as number[]).join(', ')}]` : v), 2));
  console.log(failures.length === 0 ? 'verdict: every criterion met' : `verdict: ${failures.length} failure(s):\n  ${failures.slice(0, 20).join('\n  ')}`);
  const out = (o.out as string | undefined) ?? join(root, 'bench', 'results', 'fuzz-grammar.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${out}`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
