// Constrained decoding benchmark: what a JSON schema costs.
//
//   npm run build && node dist/bench/grammar.js [--threads 2] [--layers 30] [--tg 128] [--reps 3] [--out FILE]
//
// 1. XGrammar on the Llama-3 vocabulary (128256 tokens, the one BitNet b1.58 2B4T uses, from
//    test/fixtures/oracle): vocabulary setup, compile time of a few schemas (first compile, then
//    the cache), and the time of one next-token mask along a JSON text.
// 2. tg128 on a 2B4T-shaped synthetic model (same file as bench/model.ts), N threads: one token at
//    a time, greedy through the Sampler, without a constraint and with a JSON schema ('bounded' below; mask from the
//    Llama-3 grammar engine + sampler with the mask + accept). The random model's tokens are drawn
//    under the mask, so the matcher walks real JSON states; when the JSON is complete (only
//    end-of-generation allowed) a fresh matcher starts. Reps alternate (without, with) so that a
//    busy machine disturbs both alike. Writes bench/results/grammar.json (or --out).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { readGGUF } from '../src/gguf/reader.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { GrammarEngine, grammarVocabulary } from '../src/generate/grammar.js';
import type { TokenConstraint } from '../src/generate/constraint.js';
import { Sampler } from '../src/generate/sampler.js';
import { loadXGrammar } from '../src/node/xgrammar.js';
import { loadModelFile } from '../src/node/model-file.js';
import { BITNET_2B4T_SHAPE } from '../src/model/synthetic.js';
import { ensure2B4TShapeFile } from './synthetic-file.js';

const root = fileURLToPath(new URL('../' + (import.meta.url.includes('/dist/') ? '../' : ''), import.meta.url));

interface Args { threads: number; layers: number; tg: number; reps: number; out: string }
function parse(argv: string[]): Args {
  const a: Args = { threads: 2, layers: BITNET_2B4T_SHAPE.nLayers, tg: 128, reps: 3, out: 'bench/results/grammar.json' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[++i]!;
    switch (argv[i - 1]) {
      case '--threads': a.threads = Number(v); break;
      case '--layers': a.layers = Number(v); break;
      case '--tg': a.tg = Number(v); break;
      case '--reps': a.reps = Number(v); break;
      case '--out': a.out = v; break;
      default: throw new Error(`unknown option ${argv[i - 1]}`);
    }
  }
  return a;
}

const SCHEMAS: Record<string, unknown> = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string' }, age: { type: 'integer', minimum: 0 }, email: { type: 'string' },
      tags: { type: 'array', items: { type: 'string' } }, role: { enum: ['admin', 'user', 'guest'] }, active: { type: 'boolean' },
    },
    required: ['name', 'age', 'role'],
  },
  // bounded strings and arrays: the random model's JSON completes often, so the tg run walks
  // structural states (keys, numbers, enums, the end), not only the inside of a long string
  bounded: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 150 },
      tags: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 }, role: { enum: ['admin', 'user', 'guest'] }, active: { type: 'boolean' },
    },
    required: ['name', 'age', 'role', 'active'],
  },
  nested: {
    type: 'object',
    properties: {
      order: { type: 'object', properties: { id: { type: 'integer' }, items: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' }, qty: { type: 'integer' }, price: { type: 'number' } }, required: ['sku', 'qty'] } } }, required: ['id', 'items'] },
      note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    },
    required: ['order'],
  },
};

const ms = (t0: number) => performance.now() - t0;
const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
const pct = (x: number[], p: number) => [...x].sort((a, b) => a - b)[Math.min(x.length - 1, Math.floor(p * x.length))]!;
const r2 = (x: number) => Math.round(x * 1000) / 1000;

async function modelPath(layers: number): Promise<string> {
  return ensure2B4TShapeFile({ layers, type: 'i2_s' }); // the file bench/model.ts uses
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const vocabFile = gunzipSync(readFileSync(join(root, 'test/fixtures/oracle/llama3-vocab.gguf.gz')));
  const tok = Tokenizer.fromGGUF(await readGGUF(new Uint8Array(vocabFile).buffer));

  // ---- 1. the grammar engine alone
  let t0 = performance.now();
  const xg = loadXGrammar();
  const loadMs = ms(t0);
  t0 = performance.now();
  const engine = await GrammarEngine.create(xg, grammarVocabulary(tok));
  const setupMs = ms(t0);
  const compile: Record<string, { first_ms: number; cached_ms: number }> = {};
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    t0 = performance.now();
    await engine.compile({ type: 'json_schema', schema });
    const first = ms(t0);
    t0 = performance.now();
    await engine.compile({ type: 'json_schema', schema });
    compile[name] = { first_ms: r2(first), cached_ms: r2(ms(t0)) };
  }
  t0 = performance.now();
  await engine.compile({ type: 'json_object' });
  compile.json_object = { first_ms: r2(ms(t0)), cached_ms: 0 };
  const text = '{"name": "Ada Lovelace", "age": 36, "email": "ada@example.org", "tags": ["math", "poetry", "engines"], "role": "admin", "active": true}';
  const c = await (await engine.compile({ type: 'json_schema', schema: SCHEMAS.person })).start();
  const maskTimes: number[] = [];
  for (const id of tok.encode(text, { addBos: false })) {
    t0 = performance.now();
    await c.mask();
    maskTimes.push(ms(t0));
    c.accept(id);
  }
  c.dispose?.();
  console.log(`XGrammar (@mlc-ai/web-xgrammar), Llama-3 vocabulary of ${tok.vocabSize} tokens`);
  console.log(`  module load ${loadMs.toFixed(0)} ms, vocabulary setup ${setupMs.toFixed(0)} ms`);
  for (const [k, v] of Object.entries(compile)) console.log(`  compile ${k}: ${v.first_ms.toFixed(1)} ms (cached ${v.cached_ms.toFixed(3)} ms)`);
  console.log(`  mask: mean ${mean(maskTimes).toFixed(3)} ms, p50 ${pct(maskTimes, 0.5).toFixed(3)}, p90 ${pct(maskTimes, 0.9).toFixed(3)}, max ${Math.max(...maskTimes).toFixed(3)} (${maskTimes.length} tokens)`);

  // ---- 2. tg with and without the schema
  const lm = await loadModelFile(await modelPath(a.layers), { threads: a.threads });
  const V = lm.config.vocabSize;
  if (V !== tok.vocabSize) throw new Error(`model vocabulary ${V} != ${tok.vocabSize}`);
  const seq = lm.createSequence({ ctxSize: a.tg + 8, batchSize: 64 });
  const compiled = await engine.compile({ type: 'json_schema', schema: SCHEMAS.bounded });
  const eog = tok.endOfGenerationIds;
  await seq.forward([1, 2, 3, 4]); // warm-up
  for (let i = 0; i < 4; i++) await seq.forward([1]);

  async function tg(constrained: boolean): Promise<{ tps: number; maskMs: number; sampleMs: number; restarts: number }> {
    const sampler = new Sampler({ temperature: 0 });
    let con: TokenConstraint | undefined = constrained ? await compiled.start() : undefined;
    let maskMs = 0;
    let restarts = 0;
    let sampleMs = 0;
    seq.truncate(0);
    let tokId = tok.bos!;
    const t = performance.now();
    for (let i = 0; i < a.tg; i++) {
      const logits = await seq.forward([tokId]);
      if (con) {
        const m0 = performance.now();
        const mask = await con.mask();
        maskMs += performance.now() - m0;
        const s0 = performance.now();
        tokId = sampler.sample(logits, [], mask);
        sampleMs += performance.now() - s0;
        con.accept(tokId);
        if (eog.has(tokId)) {
          // the JSON is complete: the next one starts (the benchmark wants tg tokens of JSON)
          con.dispose?.();
          con = await compiled.start();
          restarts++;
        }
      } else {
        const s0 = performance.now();
        tokId = sampler.sample(logits, []);
        sampleMs += performance.now() - s0;
      }
    }
    const elapsed = performance.now() - t;
    con?.dispose?.();
    return { tps: (a.tg * 1000) / elapsed, maskMs: maskMs / a.tg, sampleMs: sampleMs / a.tg, restarts };
  }
  const plain: number[] = [];
  const withSchema: number[] = [];
  const maskPerToken: number[] = [];
  const restarts: number[] = [];
  const sampleMs = { plain: [] as number[], masked: [] as number[] };
  for (let r = 0; r < a.reps; r++) {
    const p = await tg(false);
    plain.push(p.tps);
    sampleMs.plain.push(p.sampleMs);
    const w = await tg(true);
    sampleMs.masked.push(w.sampleMs);
    withSchema.push(w.tps);
    maskPerToken.push(w.maskMs);
    restarts.push(w.restarts);
  }
  const cost = 1 - mean(withSchema) / mean(plain);
  console.log(`tg${a.tg}, 2B4T shape (${a.layers} layers), ${lm.kernels.name} x${lm.kernels.threads}:`);
  console.log(`  (JSON texts completed and restarted during the runs: ${restarts.join(', ')})`);
  console.log(`  without schema ${mean(plain).toFixed(2)} t/s, with schema ${mean(withSchema).toFixed(2)} t/s: the schema costs ${(cost * 100).toFixed(1)}% (mask ${mean(maskPerToken).toFixed(3)} ms per token)`);
  console.log(`  per token: ${(1000 / mean(plain)).toFixed(1)} ms without, ${(1000 / mean(withSchema)).toFixed(1)} ms with; sampler ${mean(sampleMs.plain).toFixed(3)} ms without the mask, ${mean(sampleMs.masked).toFixed(3)} ms with it`);
  // the same cost measured inside the loop, less exposed to a busy machine than the tg ratio
  const direct = (mean(maskPerToken) + mean(sampleMs.masked) - mean(sampleMs.plain)) / (1000 / mean(plain));
  console.log(`  measured in the loop: mask + masked sampling cost ${(direct * 100).toFixed(1)}% of the time of a token without the schema`);
  lm.dispose();
  engine.dispose();
  const result = {
    vocabulary: tok.vocabSize, module_load_ms: r2(loadMs), vocabulary_setup_ms: r2(setupMs), compile,
    mask_ms: { mean: r2(mean(maskTimes)), p50: r2(pct(maskTimes, 0.5)), p90: r2(pct(maskTimes, 0.9)), max: r2(Math.max(...maskTimes)) },
    tg: { tokens: a.tg, layers: a.layers, threads: a.threads, without_tps: plain, with_schema_tps: withSchema, mask_ms_per_token: maskPerToken, sample_ms_per_token: sampleMs, cost_fraction: cost, direct_cost_fraction: direct },
  };
  mkdirSync(dirname(a.out), { recursive: true });
  writeFileSync(a.out, JSON.stringify(result, null, 2) + '\n');
}

await main();
