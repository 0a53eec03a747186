// Browser benchmark: WrinkleFree (the library bundle dist/web/wrinklefree.js) against wllama
// (@wllama/wllama, llama.cpp compiled to WebAssembly) in the same headless Chromium, on the same
// GGUF file, both pages cross-origin isolated, the same thread count. Reports prompt processing
// (pp, tokens/s over N prompt tokens) and generation (tg, tokens/s over M tokens one at a time from
// an empty context), their ratio, load time, and the peak resident memory of the browser's
// processes while each engine ran (sampled from /proc, Linux only).
//
//   npm run build && node dist/bench/browser.js [--model FILE] [--layers 30] [--type tq2_0] [--embed q6_k]
//                                              [--threads 2] [--pp 512] [--tg 128] [--reps 2]
//                                              [--only wf|wllama|app [--file]] [--arch bitnet|bitnet-b1.58] [--out bench/results/browser.json]
// --only app runs the browser app itself on the file (?model=...&prompt=...: the download streamed into
// OPFS, the model read from there), for its load time and peak memory; pp and tg are then the app's
// generation timings (prompt of --pp letters, --tg tokens). --only app --file opens the model with the
// file picker instead (read where it lies on disk: files over 2 GiB) and times one chat reply.
// Without --model it writes (once, into the system's temp folder) a synthetic model of the
// BitNet 2B4T shape: arch `bitnet` (the one mainline llama.cpp reads), TQ2_0 weights, a Q6_K
// embedding. Both engines get the same prompt text, letters that the synthetic byte-level vocabulary
// has no merges for (one token each); the rates divide by the token counts each engine reports.
// Needs Chromium (WF_CHROMIUM or /usr/bin/chromium).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BITNET_2B4T_SHAPE } from '../src/model/synthetic.js';
import { ensure2B4TShapeFile } from './synthetic-file.js';
import { startWebServer } from '../src/cli/web-server.js';
import { CHROMIUM } from '../test/helpers/browser.js';

interface Args {
  model?: string; layers: number; type: 'tq2_0' | 'tq1_0' | 'i2_s'; embed: 'q6_k' | 'q8_0' | 'f16';
  threads: number; pp: number; tg: number; reps: number; only?: 'wf' | 'wllama' | 'app'; out: string; arch: 'bitnet' | 'bitnet-b1.58'; file: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = { layers: BITNET_2B4T_SHAPE.nLayers, type: 'tq2_0', embed: 'q6_k', threads: 2, pp: 512, tg: 128, reps: 2, out: 'bench/results/browser.json', arch: 'bitnet', file: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]!;
    switch (argv[i]) {
      case '--model': a.model = v; i++; break;
      case '--layers': a.layers = Number(v); i++; break;
      case '--type': a.type = v as Args['type']; i++; break;
      case '--embed': a.embed = v as Args['embed']; i++; break;
      case '--threads': a.threads = Number(v); i++; break;
      case '--pp': a.pp = Number(v); i++; break;
      case '--tg': a.tg = Number(v); i++; break;
      case '--reps': a.reps = Number(v); i++; break;
      case '--only': a.only = v as Args['only']; i++; break;
      case '--out': a.out = v; i++; break;
      case '--arch': a.arch = v as Args['arch']; i++; break;
      case '--file': a.file = true; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

async function ensureModel(a: Args): Promise<string> {
  return a.model ?? ensure2B4TShapeFile({ layers: a.layers, type: a.type, arch: a.arch, embed: a.embed });
}

// Both pages get the same numbers: the prompt ids, the thread count, the lengths.
const PAGE_COMMON = (a: Args, model: string) => `
const A = ${JSON.stringify({ threads: a.threads, pp: a.pp, tg: a.tg, reps: a.reps, model })};
const LETTERS = 'bcdfgkmoqsuwxyz';
const text = (n, r) => Array.from({ length: n }, (_, i) => LETTERS[(i * 7 + r * 3) % LETTERS.length]).join('');
const done = (r) => { window.benchResult = r; };
const fail = (e) => { window.benchResult = { error: String(e && e.stack || e) }; };`;

function wfPage(a: Args, model: string): string {
  return `<!doctype html><link rel="icon" href="data:,"><script type="module">
import { loadModel } from '/wrinklefree.js';
${PAGE_COMMON(a, model)}
try {
  const t0 = performance.now();
  const blob = await (await fetch(A.model)).blob();
  const lm = await loadModel(blob, { threads: A.threads });
  const loadMs = performance.now() - t0;
  const seq = lm.createSequence({ ctxSize: Math.max(A.pp, A.tg) + 8 });
  const V = lm.config.vocabSize;
  const ids = (n, r) => lm.tokenizer.encode(text(n, r), { addBos: false });
  await seq.forward(ids(16, 0));
  for (let i = 0; i < 4; i++) await seq.forward([1]);
  const pp = [], tg = [];
  for (let r = 0; r < A.reps; r++) {
    seq.truncate(0);
    let t = performance.now();
    const prompt = ids(A.pp, r + 1);
    await seq.forward(prompt);
    pp.push(prompt.length * 1000 / (performance.now() - t));
    seq.truncate(0);
    let tok = 1;
    t = performance.now();
    for (let i = 0; i < A.tg; i++) {
      const logits = await seq.forward([tok]);
      let best = 0;
      for (let v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
      tok = best;
    }
    tg.push(A.tg * 1000 / (performance.now() - t));
  }
  done({ engine: 'WrinkleFree ' + lm.kernels.name, threads: lm.kernels.threads, isolated: crossOriginIsolated, loadMs, pp, tg });
  lm.dispose();
} catch (e) { fail(e); }
</script>`;
}

function wllamaPage(a: Args, model: string): string {
  return `<!doctype html><link rel="icon" href="data:,"><script type="module">
import { Wllama } from '/wllama/index.js';
${PAGE_COMMON(a, model)}
try {
  const w = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { suppressNativeLog: true });
  const t0 = performance.now();
  await w.loadModelFromUrl(new URL(A.model, location.href).href, {
    n_threads: A.threads, n_ctx: Math.max(A.pp, A.tg) + 64, n_batch: A.pp, n_ubatch: A.pp, n_gpu_layers: 0, useCache: false,
  });
  const loadMs = performance.now() - t0;
  // warm-up, then the same measurements: a prompt of A.pp ids (no cached prefix), A.tg tokens from an empty context
  await w.createCompletion({ prompt: text(16, 0), max_tokens: 4, temperature: 0, cache_prompt: false });
  const pp = [], tg = [];
  for (let r = 0; r < A.reps; r++) {
    const p = await w.createCompletion({ prompt: text(A.pp, r + 1), max_tokens: 1, temperature: 0, cache_prompt: false });
    pp.push(p.timings.prompt_n * 1000 / p.timings.prompt_ms);
    const g = await w.createCompletion({ prompt: 'b', max_tokens: A.tg, temperature: 0, ignore_eos: true, cache_prompt: false });
    tg.push(g.timings.predicted_n * 1000 / g.timings.predicted_ms);
  }
  done({ engine: 'wllama', threads: w.getNumThreads(), multithread: w.isMultithread(), isolated: crossOriginIsolated, loadMs, pp, tg });
  await w.exit();
} catch (e) { fail(e); }
</script>`;
}

/** RSS (MB) of `root` and all its descendants, from /proc: their sum, and the largest renderer (the page, its workers and their memory). */
function treeRssMB(root: number): { sum: number; largest: number } {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(d);
      const ppid = Number(f[1]);
      rss.set(pid, (Number(f[21]) * 4096) / 1048576);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid)!.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  let sum = 0;
  let largest = 0;
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    sum += rss.get(p) ?? 0;
    let renderer = false;
    try {
      renderer = readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--type=renderer');
    } catch {
      // gone meanwhile
    }
    if (renderer) largest = Math.max(largest, rss.get(p) ?? 0);
    stack.push(...(children.get(p) ?? []));
  }
  return { sum, largest };
}

const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;

interface Run {
  engine: string; threads: number; isolated: boolean; loadMs: number; pp: number[]; tg: number[]; peakRssMB?: number; peakRendererRssMB?: number; error?: string;
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM} (apt-get install chromium, or set WF_CHROMIUM)`);
  const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));
  const app = join(root, 'dist/web');
  if (!existsSync(join(app, 'wrinklefree.js'))) throw new Error('dist/web is not built: run npm run build');
  const path = await ensureModel(a);
  const fileMB = statSync(path).size / 1e6;
  const pages = mkdtempSync(join(tmpdir(), 'wf-bench-pages-'));
  const modelUrl = `/models/${encodeURIComponent(basename(path))}`;
  writeFileSync(join(pages, 'wf.html'), wfPage(a, modelUrl));
  writeFileSync(join(pages, 'wllama.html'), wllamaPage(a, modelUrl));
  const srv = await startWebServer({
    port: 0, app, models: dirname(path),
    mounts: { '/bench/': pages, '/wllama/': join(root, 'node_modules/@wllama/wllama/esm') },
  });
  const { chromium } = await import('playwright-core');
  console.log(`model: ${path} (${fileMB.toFixed(0)} MB), ${a.threads} threads, ${a.reps} reps, Chromium ${CHROMIUM}`);
  const runs: Run[] = [];
  try {
    for (const engine of ['wf', 'wllama', 'app'] as const) {
      if (a.only ? a.only !== engine : engine === 'app') continue;
      // a fresh browser per engine, so each one's peak memory is its own
      const server = await chromium.launchServer({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const pid = server.process().pid!;
      let peak = 0;
      let peakOne = 0;
      const timer = setInterval(() => {
        const m = treeRssMB(pid);
        peak = Math.max(peak, m.sum);
        peakOne = Math.max(peakOne, m.largest);
      }, 250);
      try {
        const browser = await chromium.connect(server.wsEndpoint());
        const page = await browser.newPage();
        page.on('console', (m) => { if (m.type() === 'error') console.error(`[${engine}] ${m.text()}`); });
        page.on('response', (res) => { if (res.status() >= 400 && !res.url().endsWith('/favicon.ico')) console.error(`[${engine}] HTTP ${res.status()} ${res.url()}`); });
        let r: Run;
        if (engine === 'app' && a.file) {
          // the file picker: the File is read where it lies on disk (files over 2 GiB)
          const t0 = performance.now();
          await page.goto(srv.url);
          await page.setInputFiles('#file', path);
          await page.waitForFunction(() => /loaded in|Error/.test((document.querySelector('#status')?.textContent ?? '') + (document.querySelector('#error')?.textContent ?? '')), null, { timeout: 3_600_000, polling: 1000 });
          const err = await page.textContent('#error');
          if (err) throw new Error(`app: ${err}`);
          const loadMs = performance.now() - t0;
          await page.click('#chat summary');
          await page.fill('#maxTokens', String(a.tg));
          await page.fill('#temperature', '0');
          await page.fill('#input', 'bcdfgkmoqsuwxyz');
          await page.click('#send');
          await page.waitForFunction(() => /finish:|Error/.test(document.querySelector('#log')?.textContent ?? ''), null, { timeout: 3_600_000, polling: 1000 });
          const log = (await page.textContent('#log')) ?? '';
          const m = / ([\d.]+) tok\/s · finish/.exec(log);
          if (!m) throw new Error(`app: no reply statistics in ${log.slice(-300)}`);
          r = { engine: 'the app, file picker', threads: a.threads, isolated: true, loadMs, pp: [NaN], tg: [Number(m[1])] };
        } else if (engine === 'app') {
          const prompt = Array.from({ length: a.pp }, (_, i) => 'bcdfgkmoqsuwxyz'[(i * 7) % 15]).join('');
          await page.goto(`${srv.url}?model=${encodeURIComponent(modelUrl)}&prompt=${prompt}&n=${a.tg}&temp=0&threads=${a.threads}`);
          const h = await page.waitForFunction(() => (window as unknown as { wfResult?: unknown }).wfResult, null, { timeout: 3_600_000, polling: 1000 });
          const w = (await h.jsonValue()) as { error?: string; kernels: string; threads: number; isolated: boolean; loadMs: number; timings: { promptTokensPerSecond: number; tokensPerSecond: number } };
          if (w.error) throw new Error(`app: ${w.error}`);
          r = { engine: `the app (${w.kernels})`, threads: w.threads, isolated: w.isolated, loadMs: w.loadMs, pp: [w.timings.promptTokensPerSecond], tg: [w.timings.tokensPerSecond] };
        } else {
          await page.goto(`${srv.url}bench/${engine}.html`);
          const h = await page.waitForFunction(() => (window as unknown as { benchResult?: unknown }).benchResult, null, { timeout: 3_600_000, polling: 1000 });
          r = (await h.jsonValue()) as Run;
        }
        if (r.error) throw new Error(`${engine}: ${r.error}`);
        r.peakRssMB = peak;
        r.peakRendererRssMB = peakOne;
        runs.push(r);
        console.log(`${r.engine}: ${r.threads} threads (isolated: ${r.isolated}), load ${(r.loadMs / 1000).toFixed(1)} s, pp${a.pp} ${mean(r.pp).toFixed(2)} t/s [${r.pp.map((x) => x.toFixed(2))}], tg${a.tg} ${mean(r.tg).toFixed(2)} t/s [${r.tg.map((x) => x.toFixed(2))}], peak RSS: browser ${peak.toFixed(0)} MB (all processes), page's renderer ${peakOne.toFixed(0)} MB`);
        await browser.close();
      } finally {
        clearInterval(timer);
        await server.close();
      }
    }
  } finally {
    await srv.close();
    rmSync(pages, { recursive: true, force: true });
  }
  if (runs.length === 2) {
    const [w, l] = runs as [Run, Run];
    console.log(`WrinkleFree / wllama at ${a.threads} threads: pp x${(mean(w.pp) / mean(l.pp)).toFixed(2)}, tg x${(mean(w.tg) / mean(l.tg)).toFixed(2)}`);
  }
  mkdirSync(dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify({ date: new Date().toISOString(), model: path, file_mb: fileMB, args: a, runs }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
