// Test helper: writes small Hugging Face BitNet checkpoints (safetensors written here, byte by byte,
// independently of src/convert) in every input form the converter handles, plus an independent
// reference ternarization to check the converter's output against.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../helpers/random.js';

export type DType = 'BF16' | 'F16' | 'F32' | 'U8' | 'I8' | string;

export interface StTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** safetensors bytes: u64 header length, JSON header (padded to 8 with spaces), data. */
export function safetensorsBytes(tensors: StTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.length;
  }
  return out;
}

/** Deterministic PRNG (mulberry32) and a normal sampler. */
export function rng(seed: number): { next(): number; normal(): number } {
  const next = mulberry32(seed);
  return {
    next,
    normal: () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next()),
  };
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** f32 -> bf16 bits by truncation of an already bf16-exact value (values below are made bf16-exact). */
export function bf16Exact(x: number): number {
  f32buf[0] = x;
  const top = u32buf[0]! >>> 16;
  u32buf[0] = top << 16;
  return f32buf[0]!;
}

export function encode(values: Float32Array, dtype: 'BF16' | 'F32' | 'F16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.slice().buffer);
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'BF16') {
      f32buf[0] = values[i]!;
      if ((u32buf[0]! & 0xffff) !== 0) throw new Error('helper: value is not bf16-exact');
      dv.setUint16(2 * i, u32buf[0]! >>> 16, true);
    } else {
      dv.setUint16(2 * i, f16Bits(values[i]!), true);
    }
  }
  return out;
}

/** f16 bits of an f16-exact number (helper for F16 test data only). */
function f16Bits(x: number): number {
  if (x === 0) return Object.is(x, -0) ? 0x8000 : 0;
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  if (e < -14) {
    const m = a / 2 ** -24;
    if (!Number.isInteger(m)) throw new Error('helper: not f16-exact');
    return sign | m;
  }
  const m = a / 2 ** e - 1;
  const mant = m * 1024;
  if (!Number.isInteger(mant) || e > 15) throw new Error('helper: not f16-exact');
  return sign | ((e + 15) << 10) | mant;
}

// ---- independent reference math -------------------------------------------------------------

function roundHalfEvenRef(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Round to the nearest f16 value, ties to even (normal and subnormal range; test scales only). */
export function f16RoundRef(x: number): number {
  const a = Math.abs(x);
  if (a === 0) return x;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const r = roundHalfEvenRef(a / ulp) * ulp;
  return Math.sign(x) * r;
}

/** transformers' WeightQuant in float32: s = 1/max(mean|W|, 1e-5); T = clamp(round(W*s), -1, 1). */
export function referenceTernary(w: Float32Array): { codes: Int8Array; scale: number } {
  let sum = 0;
  for (const v of w) sum += Math.abs(v);
  const beta = Math.max(Math.fround(sum / w.length), Math.fround(1e-5));
  const s = Math.fround(1 / beta);
  const codes = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) codes[i] = Math.max(-1, Math.min(1, roundHalfEvenRef(Math.fround(w[i]! * s))));
  return { codes, scale: f16RoundRef(beta) };
}

/** Packs codes [M, K] as transformers' pack_weights: P[r, k] |= (T[i*M/4 + r, k] + 1) << 2i. */
export function hfPack(codes: Int8Array, m: number, k: number): Uint8Array {
  const rows = m / 4;
  const out = new Uint8Array(rows * k);
  for (let i = 0; i < 4; i++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < k; c++) out[r * k + c]! |= (codes[(i * rows + r) * k + c]! + 1) << (2 * i);
    }
  }
  return out;
}

// ---- tiny tokenizer ---------------------------------------------------------------------------

/** GPT-2's bytes_to_unicode table: byte -> printable character. */
export function byteChars(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

export const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const MERGES = ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a'];
export const ADDED = [
  { id: 261, content: '<|begin_of_text|>', special: true },
  { id: 262, content: '<|end_of_text|>', special: true },
  { id: 263, content: '<|eot_id|>', special: true },
  { id: 264, content: '<custom>', special: false },
];

export function tokenizerJson(opts: { pairMerges?: boolean; pre?: 'llama3' | 'gpt2' | 'other' } = {}): unknown {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, i) => (vocab[c] = i));
  ['Ġt', 'he', 'Ġthe', 'in', 'Ġa'].forEach((t, i) => (vocab[t] = 256 + i));
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  const pre =
    opts.pre === 'gpt2'
      ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }
      : opts.pre === 'other'
        ? { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '\\p{N}' }, behavior: 'Isolated', invert: false }, bl] }
        : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: LLAMA3_REGEX }, behavior: 'Isolated', invert: false }, bl] };
  return {
    version: '1.0',
    added_tokens: ADDED.map((a) => ({ ...a, single_word: false, lstrip: false, rstrip: false, normalized: false })),
    normalizer: null,
    pre_tokenizer: pre,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    },
    decoder: bl,
    model: {
      type: 'BPE', dropout: null, unk_token: null, byte_fallback: false, ignore_merges: true,
      vocab,
      merges: opts.pairMerges ? MERGES.map((m) => m.split(' ')) : MERGES,
    },
  };
}

export const CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|eot_id|>{% endfor %}";

// ---- checkpoints -------------------------------------------------------------------------------

export type Form = 'latent-bf16' | 'latent-f32' | 'prepacked' | 'sharded' | 'onebit';
export const FORMS: Form[] = ['latent-bf16', 'latent-f32', 'prepacked', 'sharded', 'onebit'];

export interface Dims {
  hidden: number;
  layers: number;
  ffn: number;
  heads: number;
  kvHeads: number;
  vocab: number;
}
export const TINY: Dims = { hidden: 256, layers: 2, ffn: 512, heads: 4, kvHeads: 2, vocab: 300 };

export const LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export const GGUF_OF: Record<(typeof LINEARS)[number], string> = {
  q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', o_proj: 'attn_output', gate_proj: 'ffn_gate', up_proj: 'ffn_up', down_proj: 'ffn_down',
};

export function linearShape(d: Dims, l: (typeof LINEARS)[number]): [number, number] {
  const hd = d.hidden / d.heads;
  switch (l) {
    case 'q_proj': return [d.hidden, d.hidden];
    case 'k_proj':
    case 'v_proj': return [d.kvHeads * hd, d.hidden];
    case 'o_proj': return [d.hidden, d.hidden];
    case 'gate_proj':
    case 'up_proj': return [d.ffn, d.hidden];
    case 'down_proj': return [d.hidden, d.ffn];
  }
}

export interface Built {
  dir: string;
  /** expected ternary codes + scale per GGUF tensor name */
  ternary: Map<string, { codes: Int8Array; scale: number }>;
  /** source float values per GGUF name for norms / embeddings */
  floats: Map<string, Float32Array>;
  tensors: StTensor[];
  config: Record<string, unknown>;
  cleanup(): void;
}

export interface BuildOptions {
  dims?: Dims;
  seed?: number;
  untied?: boolean;
  /** mutate the tensor list before writing (error tests) */
  mutate?: (tensors: StTensor[]) => void;
  mutateConfig?: (cfg: Record<string, unknown>) => void;
  /** skip writing these files */
  omit?: string[];
  tokenizer?: unknown;
}

function randomValues(r: ReturnType<typeof rng>, n: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = bf16Exact(r.normal() * scale);
  return v;
}

/** Writes a checkpoint of the given form into a fresh temp dir. */
export function buildCheckpoint(form: Form, opts: BuildOptions = {}): Built {
  const d = opts.dims ?? TINY;
  const r = rng(opts.seed ?? 42);
  const dir = mkdtempSync(join(tmpdir(), `wf-conv-${form}-`));
  const onebit = form === 'onebit';
  const packed = form === 'prepacked';
  const floatDtype: 'BF16' | 'F32' = form === 'latent-f32' ? 'F32' : 'BF16';
  const tensors: StTensor[] = [];
  const ternary = new Map<string, { codes: Int8Array; scale: number }>();
  const floats = new Map<string, Float32Array>();
  const addFloat = (name: string, gguf: string, shape: number[], values: Float32Array) => {
    tensors.push({ name, dtype: floatDtype, shape, data: encode(values, floatDtype) });
    floats.set(gguf, values);
  };
  const norm = (n: number) => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = bf16Exact(1 + 0.1 * r.normal());
    return v;
  };
  addFloat('model.embed_tokens.weight', 'token_embd.weight', [d.vocab, d.hidden], randomValues(r, d.vocab * d.hidden, 0.05));
  const untied = opts.untied ?? onebit;
  if (untied) addFloat('lm_head.weight', 'output.weight', [d.vocab, d.hidden], randomValues(r, d.vocab * d.hidden, 0.05));
  addFloat('model.norm.weight', 'output_norm.weight', [d.hidden], norm(d.hidden));
  for (let b = 0; b < d.layers; b++) {
    const p = `model.layers.${b}.`;
    addFloat(p + 'input_layernorm.weight', `blk.${b}.attn_norm.weight`, [d.hidden], norm(d.hidden));
    addFloat(p + 'post_attention_layernorm.weight', `blk.${b}.ffn_norm.weight`, [d.hidden], norm(d.hidden));
    addFloat(p + (onebit ? 'self_attn.inner_attn_ln.weight' : 'self_attn.attn_sub_norm.weight'), `blk.${b}.attn_sub_norm.weight`, [d.hidden], norm(d.hidden));
    addFloat(p + (onebit ? 'mlp.ffn_layernorm.weight' : 'mlp.ffn_sub_norm.weight'), `blk.${b}.ffn_sub_norm.weight`, [d.ffn], norm(d.ffn));
    for (const l of LINEARS) {
      const [m, k] = linearShape(d, l);
      const name = `${p}${l.startsWith('gate') || l.startsWith('up') || l.startsWith('down') ? 'mlp' : 'self_attn'}.${l}.weight`;
      const gguf = `blk.${b}.${GGUF_OF[l]}.weight`;
      if (packed) {
        const codes = new Int8Array(m * k);
        for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(r.next() * 3) - 1;
        const ws = bf16Exact(20 + 40 * r.next()); // transformers BitLinear divides by it
        tensors.push({ name, dtype: 'U8', shape: [m / 4, k], data: hfPack(codes, m, k) });
        tensors.push({ name: name.replace(/weight$/, 'weight_scale'), dtype: 'BF16', shape: [1], data: encode(new Float32Array([ws]), 'BF16') });
        ternary.set(gguf, { codes, scale: f16RoundRef(Math.fround(1 / ws)) });
      } else {
        const w = randomValues(r, m * k, 0.02 * (1 + b));
        tensors.push({ name, dtype: floatDtype, shape: [m, k], data: encode(w, floatDtype) });
        ternary.set(gguf, referenceTernary(w));
      }
    }
  }
  opts.mutate?.(tensors);

  const config: Record<string, unknown> = {
    architectures: [onebit ? 'BitnetForCausalLM' : 'BitNetForCausalLM'],
    model_type: onebit ? 'llama' : 'bitnet',
    hidden_act: onebit ? 'silu' : 'relu2',
    hidden_size: d.hidden,
    intermediate_size: d.ffn,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: onebit ? 10000 : 500000,
    vocab_size: d.vocab,
    tie_word_embeddings: !untied,
    bos_token_id: 261,
    eos_token_id: 262,
    torch_dtype: floatDtype === 'F32' ? 'float32' : 'bfloat16',
  };
  if (packed) config.quantization_config = { quant_method: 'bitnet', linear_class: 'bitlinear', quantization_mode: 'offline' };
  opts.mutateConfig?.(config);

  const omit = new Set(opts.omit ?? []);
  const write = (name: string, data: string | Uint8Array) => {
    if (!omit.has(name)) writeFileSync(join(dir, name), data);
  };
  write('config.json', JSON.stringify(config, null, 2));
  write('tokenizer.json', JSON.stringify(opts.tokenizer ?? tokenizerJson({ pairMerges: form === 'sharded' })));
  write('tokenizer_config.json', JSON.stringify({ add_bos_token: true, bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', chat_template: CHAT_TEMPLATE }));
  write('generation_config.json', JSON.stringify({ bos_token_id: 261, eos_token_id: [262, 263] }));
  if (form === 'sharded') {
    const half = Math.ceil(tensors.length / 2);
    const shards = [tensors.slice(0, half), tensors.slice(half)];
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      for (const t of s) weightMap[t.name] = names[i]!;
      write(names[i]!, safetensorsBytes(s, { format: 'pt' }));
    });
    write('model.safetensors.index.json', JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  } else {
    write('model.safetensors', safetensorsBytes(tensors, { format: 'pt' }));
  }
  return { dir, ternary, floats, tensors, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
