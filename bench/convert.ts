// wf convert on a 2B4T-sized checkpoint: writes a synthetic bf16 checkpoint (hidden 2560, 30 layers,
// FFN 6912, 20/5 heads, vocab 128256, tied embeddings; ~4.8 GB in two shards + index.json) to a temp
// dir under /tmp, streaming, then converts it in a child process and reports checkpoint MB/s read and
// the child's peak RSS (process.resourceUsage().maxRSS). Targets: >= 100 MB/s, peak RSS < 1.5 GB.
// The checkpoint is deleted afterwards. The file was just written, so it is read from the page cache:
// the figure is the converter's own throughput, not the disk's.
// Run: node dist/bench/convert.js [--layers N] [--outtype i2_s|tq2_0|...] [--validate]   (after a build)
// Writes bench/results/convert.json.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HIDDEN = 2560, FFN = 6912, HEADS = 20, KV_HEADS = 5, VOCAB = 128256, HEAD_DIM = 128;
const MB = 1024 * 1024;

interface T { name: string; shape: number[] }

function tensorList(layers: number): T[] {
  const ts: T[] = [{ name: 'model.embed_tokens.weight', shape: [VOCAB, HIDDEN] }, { name: 'model.norm.weight', shape: [HIDDEN] }];
  for (let b = 0; b < layers; b++) {
    const p = `model.layers.${b}.`;
    ts.push(
      { name: p + 'input_layernorm.weight', shape: [HIDDEN] },
      { name: p + 'post_attention_layernorm.weight', shape: [HIDDEN] },
      { name: p + 'self_attn.attn_sub_norm.weight', shape: [HIDDEN] },
      { name: p + 'mlp.ffn_sub_norm.weight', shape: [FFN] },
      { name: p + 'self_attn.q_proj.weight', shape: [HIDDEN, HIDDEN] },
      { name: p + 'self_attn.k_proj.weight', shape: [KV_HEADS * HEAD_DIM, HIDDEN] },
      { name: p + 'self_attn.v_proj.weight', shape: [KV_HEADS * HEAD_DIM, HIDDEN] },
      { name: p + 'self_attn.o_proj.weight', shape: [HIDDEN, HIDDEN] },
      { name: p + 'mlp.gate_proj.weight', shape: [FFN, HIDDEN] },
      { name: p + 'mlp.up_proj.weight', shape: [FFN, HIDDEN] },
      { name: p + 'mlp.down_proj.weight', shape: [HIDDEN, FFN] },
    );
  }
  return ts;
}

/** 32 MB of random bf16 values (|x| around 0.02, random signs), cycled through to fill tensors. */
function randomPool(): Uint8Array {
  const n = 16 * MB;
  const u16 = new Uint16Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    const r = s >>> 0;
    // exponent 2^-9 .. 2^-4 (bias 127), random mantissa and sign: a spread of magnitudes like real weights
    const exp = 118 + (r % 6);
    u16[i] = ((r >>> 31) << 15) | (exp << 7) | ((r >>> 8) & 0x7f);
  }
  return new Uint8Array(u16.buffer);
}

const NORM_POOL = (() => {
  const u16 = new Uint16Array(FFN);
  for (let i = 0; i < FFN; i++) u16[i] = 0x3f80 + (i % 16); // ~1.0..1.1
  return new Uint8Array(u16.buffer);
})();

function writeShard(path: string, tensors: T[], pool: Uint8Array): number {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 2;
    header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const fd = openSync(path, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json));
    let poolPos = 0;
    for (const t of tensors) {
      let left = t.shape.reduce((a, b) => a * b, 1) * 2;
      if (t.shape.length === 1) {
        writeSync(fd, NORM_POOL, 0, left);
        continue;
      }
      while (left > 0) {
        const n = Math.min(left, pool.length - poolPos, 8 * MB);
        writeSync(fd, pool, poolPos, n);
        left -= n;
        poolPos = (poolPos + n + 2 * 4099) % (pool.length - 2 * 8192); // shift so tensors differ
        poolPos -= poolPos % 2;
      }
    }
    return 8 + json.length + off;
  } finally {
    closeSync(fd);
  }
}

function writeTokenizer(dir: string): void {
  const vocab: Record<string, number> = {};
  for (let i = 0; i < 128000; i++) vocab[i < 256 ? String.fromCodePoint(256 + i) : `t${i}`] = i;
  const added = [];
  for (let i = 128000; i < VOCAB; i++) added.push({ id: i, content: i === 128009 ? '<|eot_id|>' : `<|reserved_special_token_${i}|>`, special: true });
  added[0]!.content = '<|begin_of_text|>';
  added[1]!.content = '<|end_of_text|>';
  const regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  const merges: string[] = [];
  for (let i = 0; i < 100000; i++) merges.push(`t${256 + (i % 1000)} t${1256 + (i % 5000)}`);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', added_tokens: added, normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, bl] },
    decoder: bl, model: { type: 'BPE', vocab, merges },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: true, bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' }));
}

async function child(dir: string, outfile: string, outtype: string, validate: boolean): Promise<void> {
  const { convertCheckpoint } = await import('../src/convert/hf-to-gguf.js');
  const r = await convertCheckpoint({ checkpointDir: dir, outfile, outtype: outtype as 'i2_s', validate });
  const u = process.resourceUsage();
  process.stdout.write(JSON.stringify({ ...r, maxRSSBytes: u.maxRSS * 1024, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6 }) + '\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1]!, args[2]!, args[3]!, args[4] === 'validate');
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  let layers = Number(opt('--layers') ?? 30);
  const outtype = opt('--outtype') ?? 'i2_s';
  const validate = args.includes('--validate');
  const fs = statfsSync('/tmp');
  const free = fs.bavail * fs.bsize;
  const perLayer = (2 * HIDDEN * HIDDEN + 2 * KV_HEADS * HEAD_DIM * HIDDEN + 3 * FFN * HIDDEN) * 2;
  const need = (l: number) => VOCAB * HIDDEN * 2 * 1.5 + l * perLayer * 1.3 + 512 * MB;
  let note = '';
  while (layers > 1 && need(layers) > free) layers--;
  if (layers < 30) note = `only ${(free / 1e9).toFixed(1)} GB free under /tmp: ${layers} layers instead of 30`;
  console.log(`free under /tmp: ${(free / 1e9).toFixed(1)} GB; writing a ${layers}-layer 2B4T-sized bf16 checkpoint ...`);

  const dir = mkdtempSync('/tmp/wf-bench-convert-');
  try {
    const ts = tensorList(layers);
    const half = Math.ceil(ts.length / 2);
    const shards = [ts.slice(0, half), ts.slice(half)];
    const pool = randomPool();
    const weightMap: Record<string, string> = {};
    let total = 0;
    const tw = Date.now();
    shards.forEach((s, i) => {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      for (const t of s) weightMap[t.name] = name;
      total += writeShard(join(dir, name), s, pool);
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      architectures: ['BitNetForCausalLM'], model_type: 'bitnet', hidden_act: 'relu2', hidden_size: HIDDEN, intermediate_size: FFN,
      num_hidden_layers: layers, num_attention_heads: HEADS, num_key_value_heads: KV_HEADS, max_position_embeddings: 4096,
      rms_norm_eps: 1e-5, rope_theta: 500000, vocab_size: VOCAB, tie_word_embeddings: true, bos_token_id: 128000, eos_token_id: 128001,
      torch_dtype: 'bfloat16',
    }));
    writeTokenizer(dir);
    console.log(`wrote ${(total / 1e9).toFixed(2)} GB in ${((Date.now() - tw) / 1000).toFixed(1)} s; converting to ${outtype}${validate ? ' with --validate' : ''} ...`);

    const outfile = join(dir, 'out.gguf');
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync(process.execPath, [...process.execArgv, self, '--child', dir, outfile, outtype, validate ? 'validate' : ''], {
      encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`conversion failed (exit ${r.status})`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const mbps = res.bytesRead / MB / res.seconds;
    const result = {
      layers, outtype, validate, note: note || undefined,
      checkpointBytes: total, outputBytes: res.bytesWritten, seconds: res.seconds,
      readMBps: Number(mbps.toFixed(1)), cpuSeconds: Number(res.cpuSeconds.toFixed(1)),
      /** MB read per CPU-second of the converter (less sensitive to a busy machine than wall-clock MB/s) */
      readMBperCpuSecond: Number((res.bytesRead / MB / res.cpuSeconds).toFixed(1)),
      peakRSSMB: Number((res.maxRSSBytes / MB).toFixed(0)),
      targets: { readMBps: 100, peakRSSMB: 1536 },
      meets: { readMBps: mbps >= 100, peakRSS: res.maxRSSBytes < 1.5 * 1024 * MB },
      node: process.version, cpus: (await import('node:os')).cpus().length,
    };
    console.log(`converted ${(total / MB).toFixed(0)} MB -> ${(res.bytesWritten / MB).toFixed(0)} MB in ${res.seconds.toFixed(1)} s: ` +
      `${mbps.toFixed(1)} MB/s read (${result.readMBperCpuSecond} MB per CPU-second), peak RSS ${result.peakRSSMB} MB`);
    const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', ...(fileURLToPath(import.meta.url).includes('/dist/') ? ['..'] : []), 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'convert.json'), JSON.stringify(result, null, 2) + '\n');
    console.log(`wrote ${join(outDir, 'convert.json')}`);
  } finally {
    if (!process.env.WF_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
