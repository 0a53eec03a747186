// Tokenizer speed on the real Llama-3 vocabulary (128256 tokens, 280147 merges; oracle llama3-vocab.gguf):
// - load: GGUF header parse (readGGUF) and Tokenizer.fromGGUF, the first run in this process (cold JIT,
//   what a CLI start pays) and the best of the following runs;
// - encode throughput (MB of UTF-8 per second) on English prose and on the multilingual oracle cases,
//   with the piece cache emptied before each run (cold) and kept (warm);
// - decode and streaming-decode throughput (tokens per second).
// Run: npx tsx bench/tokenizer.ts   (or node dist/bench/tokenizer.js after a build)
// Prints the figures and writes bench/results/tokenizer.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { readGGUF } from '../src/gguf/reader.js';
import { StreamDecoder } from '../src/tokenizer/stream-decoder.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

const here = dirname(fileURLToPath(import.meta.url));
// works from bench/ (tsx) and dist/bench/ (compiled)
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');
const fixture = (name: string) => new Uint8Array(gunzipSync(readFileSync(join(root, 'test', 'fixtures', 'oracle', name + '.gz'))));

/** Deterministic English-like prose (words, punctuation, numbers, newlines), about `bytes` long. */
function prose(bytes: number): string {
  const words = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were ' +
    'her she there been one all would when we their has more if will no so can what out up into time could them only other ' +
    'model weights ternary inference quantization tokenizer browser memory kernel throughput latency').split(' ');
  let s = 12345;
  const rnd = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
  const parts: string[] = [];
  let len = 0;
  let sentence = 0;
  while (len < bytes) {
    let w = words[rnd(words.length)];
    if (sentence === 0) w = w[0].toUpperCase() + w.slice(1);
    if (rnd(40) === 0) w = String(rnd(100000));
    sentence++;
    let sep = ' ';
    if (sentence > 6 + rnd(12)) {
      sep = rnd(5) === 0 ? '.\n\n' : rnd(3) === 0 ? ', ' : '. ';
      if (sep !== ', ') sentence = 0;
    }
    parts.push(w, sep);
    len += w.length + sep.length;
  }
  return parts.join('');
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const t0 = performance.now();
  const value = fn();
  return { ms: performance.now() - t0, value };
}

export interface TokenizerBench {
  vocab: number;
  merges: number;
  load: { parseColdMs: number; buildColdMs: number; parseBestMs: number; buildBestMs: number; totalBestMs: number };
  encode: { corpus: string; mb: number; tokens: number; coldMBps: number; warmMBps: number }[];
  decode: { tokens: number; decodeMTokPerS: number; streamMTokPerS: number };
}

export async function runTokenizerBench(): Promise<TokenizerBench> {
  const bytes = fixture('llama3-vocab.gguf');
  const runs: { parse: number; build: number }[] = [];
  let tok: Tokenizer | undefined;
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now();
    const file = await readGGUF(bytes.slice());
    const t1 = performance.now();
    tok = Tokenizer.fromGGUF(file);
    runs.push({ parse: t1 - t0, build: performance.now() - t1 });
  }
  const warm = runs.slice(1);
  const best = (k: 'parse' | 'build') => Math.min(...warm.map((x) => x[k]));
  const bestTotal = Math.min(...warm.map((x) => x.parse + x.build));
  const t = tok!;
  const merges = (await readGGUF(bytes)).get<string[]>('tokenizer.ggml.merges')!.length;

  const cases = JSON.parse(new TextDecoder().decode(fixture('tokenizer-cases.json'))).cases as { text: string }[];
  let multi = '';
  while (multi.length < 1 << 20) multi += cases.map((c) => c.text).join('\n');
  const corpora = { 'english-prose': prose(2 << 20), 'oracle-cases-multilingual': multi };
  const encode: TokenizerBench['encode'] = [];
  for (const [name, text] of Object.entries(corpora)) {
    const mb = new TextEncoder().encode(text).length / 1e6;
    let cold = Infinity;
    let warmMs = Infinity;
    let tokens = 0;
    for (let r = 0; r < 3; r++) {
      t.clearCache();
      const c = time(() => t.encode(text, { addBos: false }));
      cold = Math.min(cold, c.ms);
      tokens = c.value.length;
      warmMs = Math.min(warmMs, time(() => t.encode(text, { addBos: false })).ms);
    }
    encode.push({ corpus: name, mb, tokens, coldMBps: mb / (cold / 1000), warmMBps: mb / (warmMs / 1000) });
  }

  const ids = t.encode(corpora['english-prose'], { addBos: false });
  let dec = Infinity;
  let stream = Infinity;
  for (let r = 0; r < 3; r++) {
    dec = Math.min(dec, time(() => t.decode(ids)).ms);
    const sd = new StreamDecoder(t);
    stream = Math.min(stream, time(() => {
      let n = 0;
      for (let i = 0; i < ids.length; i++) n += sd.push(ids[i]).length;
      return n + sd.flush().length;
    }).ms);
  }
  return {
    vocab: t.vocabSize,
    merges,
    load: { parseColdMs: runs[0].parse, buildColdMs: runs[0].build, parseBestMs: best('parse'), buildBestMs: best('build'), totalBestMs: bestTotal },
    encode,
    decode: { tokens: ids.length, decodeMTokPerS: ids.length / 1e6 / (dec / 1000), streamMTokPerS: ids.length / 1e6 / (stream / 1000) },
  };
}

async function main(): Promise<void> {
  const r = await runTokenizerBench();
  console.log(`tokenizer: Llama-3 vocabulary, ${r.vocab} tokens, ${r.merges} merges (llama3-vocab.gguf)`);
  console.log(`load, first in process: readGGUF ${r.load.parseColdMs.toFixed(0)} ms + Tokenizer.fromGGUF ${r.load.buildColdMs.toFixed(0)} ms`);
  console.log(`load, best of 5 more:   readGGUF ${r.load.parseBestMs.toFixed(0)} ms + Tokenizer.fromGGUF ${r.load.buildBestMs.toFixed(0)} ms (best total ${r.load.totalBestMs.toFixed(0)} ms)`);
  for (const e of r.encode) {
    console.log(`encode ${e.corpus.padEnd(26)} ${e.mb.toFixed(2)} MB -> ${e.tokens} tokens: ${e.coldMBps.toFixed(1)} MB/s cold cache, ${e.warmMBps.toFixed(1)} MB/s warm`);
  }
  console.log(`decode ${r.decode.tokens} tokens: ${r.decode.decodeMTokPerS.toFixed(1)} M tok/s; streaming one id at a time: ${r.decode.streamMTokPerS.toFixed(2)} M tok/s`);
  const out = join(root, 'bench', 'results', 'tokenizer.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ bench: 'tokenizer', node: process.version, date: new Date().toISOString(), ...r }, null, 2));
  console.log(`wrote ${out}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
