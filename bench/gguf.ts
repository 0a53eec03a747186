// GGUF header speed on a 2B4T-shaped file: 332 tensors (token_embd F16 [2560, 128256], output_norm
// F32, 30 layers x {4 F32 norms, 7 I2_S ternary matrices}) and the real Llama-3 vocabulary from the
// llama3-vocab oracle (128256 tokens, token types, 280147 merges, chat template). The tensor data is
// a sparse temp file (ftruncate): only the header is parsed.
// Measures: buildGGUFHeader (write), readGGUF through FileSource (target: 150 ms) and from memory.
// The cold read is the first readGGUF in a fresh process (JIT cold; the file is in the OS cache).
// Run: npx tsx bench/gguf.ts   (or node dist/bench/gguf.js after a build)
// Prints the figures and writes bench/results/gguf.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  buildGGUFHeader, readGGUF, GGMLType, metaF32, metaString, metaU32,
  type ByteSource, type GGUFMetaValue, type GGUFTensorSpec,
} from '../src/gguf/index.js';
import { FileSource } from '../src/node/file-source.js';
import { oracleBytes } from '../test/helpers/oracle.js';

const TARGET_MS = 150;
const ARCH = 'bitnet-b1.58';
const EMBD = 2560, LAYERS = 30, FF = 6912, HEADS = 20, KV_HEADS = 5, HEAD_DIM = 128, VOCAB = 128256, CTX = 4096;

/** The 2B4T tensor table in ggml order (dims[0] = input / row length). */
export function bitnet2B4TTensors(): GGUFTensorSpec[] {
  const kv = KV_HEADS * HEAD_DIM;
  const t: GGUFTensorSpec[] = [{ name: 'token_embd.weight', type: GGMLType.F16, dims: [EMBD, VOCAB] }];
  for (let l = 0; l < LAYERS; l++) {
    const p = `blk.${l}.`;
    t.push(
      { name: p + 'attn_norm.weight', type: GGMLType.F32, dims: [EMBD] },
      { name: p + 'attn_q.weight', type: GGMLType.I2_S, dims: [EMBD, EMBD] },
      { name: p + 'attn_k.weight', type: GGMLType.I2_S, dims: [EMBD, kv] },
      { name: p + 'attn_v.weight', type: GGMLType.I2_S, dims: [EMBD, kv] },
      { name: p + 'attn_sub_norm.weight', type: GGMLType.F32, dims: [EMBD] },
      { name: p + 'attn_output.weight', type: GGMLType.I2_S, dims: [EMBD, EMBD] },
      { name: p + 'ffn_norm.weight', type: GGMLType.F32, dims: [EMBD] },
      { name: p + 'ffn_gate.weight', type: GGMLType.I2_S, dims: [EMBD, FF] },
      { name: p + 'ffn_up.weight', type: GGMLType.I2_S, dims: [EMBD, FF] },
      { name: p + 'ffn_sub_norm.weight', type: GGMLType.F32, dims: [FF] },
      { name: p + 'ffn_down.weight', type: GGMLType.I2_S, dims: [FF, EMBD] },
    );
  }
  t.push({ name: 'output_norm.weight', type: GGMLType.F32, dims: [EMBD] });
  return t;
}

/** 2B4T metadata: hyperparameters under bitnet-b1.58.*, every tokenizer.* entry of the llama3-vocab oracle. */
async function bitnet2B4TMetadata(): Promise<[string, GGUFMetaValue][]> {
  // (reading the oracle here warms this process's reader; the cold figure comes from a child process)
  const vocab = await readGGUF(oracleBytes('llama3-vocab.gguf'));
  const meta: [string, GGUFMetaValue][] = [
    ['general.architecture', metaString(ARCH)],
    ['general.name', metaString('bitnet-b1.58-2B-4T (bench layout)')],
    ['general.file_type', metaU32(40)],
    [`${ARCH}.context_length`, metaU32(CTX)],
    [`${ARCH}.embedding_length`, metaU32(EMBD)],
    [`${ARCH}.block_count`, metaU32(LAYERS)],
    [`${ARCH}.feed_forward_length`, metaU32(FF)],
    [`${ARCH}.attention.head_count`, metaU32(HEADS)],
    [`${ARCH}.attention.head_count_kv`, metaU32(KV_HEADS)],
    [`${ARCH}.attention.layer_norm_rms_epsilon`, metaF32(1e-5)],
    [`${ARCH}.rope.freq_base`, metaF32(500000)],
    [`${ARCH}.rope.dimension_count`, metaU32(HEAD_DIM)],
    [`${ARCH}.vocab_size`, metaU32(VOCAB)],
  ];
  for (const [k, v] of vocab.metadata) if (k.startsWith('tokenizer.')) meta.push([k, v]);
  meta.push(['general.quantization_version', metaU32(2)]);
  return meta;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Runs { wall: number[]; cpu: number[] }

/** Wall and process CPU time (user + system, ms) of each of n runs. */
async function timeRuns(n: number, fn: () => Promise<unknown> | unknown): Promise<Runs> {
  const out: Runs = { wall: [], cpu: [] };
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    out.wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    out.cpu.push((c.user + c.system) / 1000);
  }
  return out;
}

/** Child mode: one readGGUF of the file in a fresh process, printed as JSON. */
async function coldChild(path: string): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const src = await FileSource.open(path);
  const f = await readGGUF(src);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await src.close();
  console.log(JSON.stringify({ coldMs: ms, coldCpuMs: (c.user + c.system) / 1000, tensors: f.tensors.length, tokens: (f.get<string[]>('tokenizer.ggml.tokens') ?? []).length }));
}

/** wall-clock ms (median, min) and process CPU ms (median) over the runs */
interface Stat { median: number; min: number; cpuMedian: number; runs: number }

export interface GGUFBenchResult {
  tensors: number;
  metadataEntries: number;
  headerBytes: number;
  fileBytes: number;
  /** 1-minute load average when the bench ended, and the CPU count: a busy machine inflates wall times */
  loadAvg: number;
  cpus: number;
  write: { buildHeader: Stat };
  read: {
    cold: { wallMs: number; cpuMs: number } | null;
    file: Stat;
    memory: Stat;
    targetMs: number;
    meetsTarget: boolean;
  };
}

export async function runGGUFBench(runs = 7): Promise<GGUFBenchResult> {
  const tensors = bitnet2B4TTensors();
  const dir = await mkdtemp(join(tmpdir(), 'wf-bench-gguf-'));
  const path = join(dir, 'bitnet-2b4t-shaped.gguf');
  try {
    const metadata = await bitnet2B4TMetadata();
    // write: lay out the header (the streaming writer's first step for a 1.2 GB file)
    const layout = buildGGUFHeader({ metadata, tensors });
    const writeTimes = await timeRuns(runs, () => buildGGUFHeader({ metadata, tensors }));

    const fh = await open(path, 'w');
    await fh.write(layout.header, 0, layout.header.length, 0);
    await fh.truncate(layout.totalSize); // sparse: the tensor data is never read
    await fh.close();

    // cold: a fresh process whose first readGGUF is this one
    const script = fileURLToPath(import.meta.url);
    const child = spawnSync(process.execPath, [...process.execArgv, script, '--cold-read', path], { encoding: 'utf8', timeout: 120_000 });
    let cold: { wallMs: number; cpuMs: number } | null = null;
    if (child.status === 0) {
      const line = child.stdout.trim().split('\n').pop()!;
      const r = JSON.parse(line);
      if (r.tensors !== tensors.length || r.tokens !== VOCAB) throw new Error(`cold read saw ${r.tensors} tensors, ${r.tokens} tokens`);
      cold = { wallMs: +r.coldMs.toFixed(2), cpuMs: +r.coldCpuMs.toFixed(2) };
    } else {
      console.error(`cold-read child failed (status ${child.status}): ${child.stderr}`);
    }

    // warm, through FileSource (a 16 MiB prefix read + parse), then from memory
    const readFile = async () => {
      const src = await FileSource.open(path);
      try {
        const f = await readGGUF(src);
        if (f.tensors.length !== tensors.length) throw new Error('wrong tensor count');
      } finally {
        await src.close();
      }
    };
    await readFile(); // warm-up
    const fileTimes = await timeRuns(runs, readFile);
    const header = layout.header;
    const memSource: ByteSource = {
      size: layout.totalSize,
      async read(offset, length) {
        const out = new Uint8Array(length); // zeros past the header, like the sparse file
        if (offset < header.length) out.set(header.subarray(offset, Math.min(header.length, offset + length)));
        return out;
      },
    };
    const memTimes = await timeRuns(runs, () => readGGUF(memSource));

    const stat = (r: Runs): Stat => ({
      median: +median(r.wall).toFixed(2), min: +Math.min(...r.wall).toFixed(2), cpuMedian: +median(r.cpu).toFixed(2), runs: r.wall.length,
    });
    const fileStat = stat(fileTimes);
    return {
      tensors: tensors.length,
      metadataEntries: metadata.length,
      headerBytes: layout.dataOffset,
      fileBytes: layout.totalSize,
      loadAvg: +loadavg()[0].toFixed(2),
      cpus: cpus().length,
      write: { buildHeader: stat(writeTimes) },
      read: {
        cold,
        file: fileStat,
        memory: stat(memTimes),
        targetMs: TARGET_MS,
        meetsTarget: fileStat.median <= TARGET_MS && (cold === null || cold.wallMs <= TARGET_MS),
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const r = await runGGUFBench();
  const mb = (n: number) => (n / 1e6).toFixed(2);
  console.log(`gguf: 2B4T-shaped header, ${r.tensors} tensors, ${r.metadataEntries} metadata entries, header ${mb(r.headerBytes)} MB, file ${mb(r.fileBytes)} MB (sparse)`);
  const line = (label: string, s: Stat) =>
    console.log(`  ${label.padEnd(30)} median ${s.median.toFixed(1).padStart(6)} ms  min ${s.min.toFixed(1).padStart(6)} ms  CPU median ${s.cpuMedian.toFixed(1).padStart(6)} ms  (${s.runs} runs)`);
  line('buildGGUFHeader (write)', r.write.buildHeader);
  const c = r.read.cold;
  console.log(`  ${'readGGUF cold (fresh process)'.padEnd(30)} ${c ? `       ${c.wallMs.toFixed(1).padStart(6)} ms                    CPU ${c.cpuMs.toFixed(1).padStart(6)} ms` : 'n/a'}`);
  line('readGGUF FileSource, warm', r.read.file);
  line('readGGUF in memory, warm', r.read.memory);
  console.log(`  target ${r.read.targetMs} ms (cold and warm FileSource median, wall): ${r.read.meetsTarget ? 'met' : 'NOT met'}; load average ${r.loadAvg} on ${r.cpus} CPUs`);
  const here = dirname(fileURLToPath(import.meta.url));
  // works from bench/ (tsx) and dist/bench/ (compiled)
  const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');
  const out = join(root, 'bench', 'results', 'gguf.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ bench: 'gguf', node: process.version, date: new Date().toISOString(), ...r }, null, 2));
  console.log(`wrote ${out}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--cold-read');
  if (i > 0) await coldChild(process.argv[i + 1]);
  else await main();
}
