// What the next-token mask costs the token loop when XGrammar runs in a worker thread
// (src/node/grammar-workers.ts) rather than on the event loop (src/generate/grammar.ts alone).
//
//   npm run build && node dist/bench/grammar-mask.js [--reps 5] [--out FILE]
//
// On the Llama-3 vocabulary (128256 tokens, test/fixtures/oracle), along a JSON text that matches a
// schema (the text's tokens are accepted one by one), the time the token loop waits for each mask:
//   - in-process: getNextTokenBitmask on the event loop (what it costs the loop, all of it);
//   - worker, back to back: accept then mask at once (a round trip per token, nothing to hide it);
//   - worker, with a forward step of F ms between accept and mask (the worker computes the mask
//     while the step runs, as in the server): only what is left to wait.
// Prints the figures and writes bench/results/grammar-mask.json (or --out). Figures from a shared
// machine are only comparable within one run.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { readGGUF } from '../src/gguf/reader.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { GrammarEngine, grammarVocabulary, type GrammarSpec } from '../src/generate/grammar.js';
import type { TokenConstraint } from '../src/generate/constraint.js';
import { loadXGrammar } from '../src/node/xgrammar.js';
import { WorkerGrammarHost } from '../src/node/grammar-workers.js';

const root = fileURLToPath(new URL('../' + (import.meta.url.includes('/dist/') ? '../' : ''), import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SPEC: GrammarSpec = {
  type: 'json_schema',
  schema: {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } }, active: { type: 'boolean' } },
    required: ['name', 'age', 'tags', 'active'],
  },
};
const TEXT = '{"name": "Ada Lovelace of the Analytical Engine", "age": 36, "tags": ["math", "poetry", "engines", "notes", "Bernoulli numbers", "Menabrea"], "active": true}';

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;

/** Waits for each mask along the text; `stepMs` of simulated forward pass between accept and mask. */
async function walk(c: TokenConstraint, ids: number[], stepMs: number): Promise<number[]> {
  const waits: number[] = [];
  for (const id of ids) {
    const t0 = performance.now();
    await c.mask();
    waits.push(performance.now() - t0);
    c.accept(id);
    if (stepMs > 0) await sleep(stepMs);
  }
  return waits;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string, d: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1]! : d;
  };
  const reps = Number(arg('reps', '5'));
  const out = arg('out', join(root, 'bench/results/grammar-mask.json'));
  const tok = Tokenizer.fromGGUF(await readGGUF(new Uint8Array(gunzipSync(readFileSync(join(root, 'test/fixtures/oracle/llama3-vocab.gguf.gz')))).buffer));
  const ids = tok.encode(TEXT, { addBos: false });
  const vocab = grammarVocabulary(tok);

  const engine = await GrammarEngine.create(loadXGrammar(), vocab);
  const compiled = await engine.compile(SPEC);
  const host = new WorkerGrammarHost(vocab);
  await host.whenReady();
  (await host.open(SPEC)).dispose(); // compiled and cached in the worker

  const rows: Record<string, number[]> = { in_process: [], worker_back_to_back: [], worker_step_2ms: [], worker_step_20ms: [] };
  for (let r = 0; r < reps; r++) {
    // alternate, so that a busy machine disturbs each alike
    const a = await compiled.start();
    rows.in_process!.push(...(await walk(a, ids, 0)));
    a.dispose?.();
    for (const [name, step] of [['worker_back_to_back', 0], ['worker_step_2ms', 2], ['worker_step_20ms', 20]] as const) {
      const c = await host.open(SPEC);
      rows[name]!.push(...(await walk(c, ids, step)));
      c.dispose();
    }
  }
  await host.close();
  engine.dispose();
  const report: Record<string, unknown> = { vocab: tok.vocabSize, tokens: ids.length, reps };
  console.log(`mask wait per token, Llama-3 vocabulary (${tok.vocabSize} tokens), ${ids.length} tokens x ${reps} reps:`);
  for (const [k, v] of Object.entries(rows)) {
    const f = { mean_ms: +mean(v).toFixed(4), p50_ms: +pct(v, 0.5).toFixed(4), p90_ms: +pct(v, 0.9).toFixed(4), max_ms: +Math.max(...v).toFixed(3) };
    report[k] = f;
    console.log(`  ${k.padEnd(22)} mean ${f.mean_ms.toFixed(4)} ms  p50 ${f.p50_ms.toFixed(4)}  p90 ${f.p90_ms.toFixed(4)}  max ${f.max_ms.toFixed(3)}`);
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
