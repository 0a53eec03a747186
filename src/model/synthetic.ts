// Synthetic BitNet GGUF files with random ternary weights: test models of a given shape (the random
// demo shape below included) and 2B4T-shaped benchmark models. Deterministic from a seed. (The
// built-in demo model of the CLI and server is a trained one: src/node/demo-model.ts.)
// The file is produced as a sequence of chunks (header, then each tensor) so a 1.2 GB model can be
// streamed to disk without being held twice.
import { buildGGUFHeader, type GGUFTensorSpec } from '../gguf/writer.js';
import { metaArray, metaBool, metaF32, metaString, metaU32, type GGUFMetaValue } from '../gguf/meta.js';
import { GGMLType, GGUFValueType } from '../gguf/types.js';
import { getFormat, getTernaryFormat, packI2S, type I2SLayout } from '../formats/index.js';
import { BYTE_TO_CHAR } from '../tokenizer/byte-level.js';

export interface SyntheticTokenizer {
  tokens: string[];
  tokenTypes: number[];
  merges: string[];
  bos: number;
  eos: number;
  eot?: number;
  /** tokenizer.ggml.pre (default 'llama-bpe'); null leaves the key out, as the official 2B4T file does */
  pre?: string | null;
  addBos?: boolean;
  chatTemplate?: string;
}

export interface SyntheticModelSpec {
  arch?: 'bitnet-b1.58' | 'bitnet';
  name?: string;
  nEmbd: number;
  nLayers: number;
  nFF: number;
  nHeads: number;
  nKVHeads: number;
  contextLength?: number;
  ropeTheta?: number;
  /** ternary storage: I2_S (default), TQ2_0, TQ1_0 or F32 */
  weightType?: 'i2_s' | 'tq2_0' | 'tq1_0' | 'f32';
  /** byte layout of I2_S weights (default x86; arm and x86-interleaved are what other bitnet.cpp builds write) */
  i2sLayout?: I2SLayout;
  /** embedding storage (default f16; q8_0 is close to the int8 WrinkleFree holds it in, for baselines) */
  embedType?: 'f16' | 'f32' | 'q8_0' | 'q6_k';
  /** a tokenizer (default: 256 byte tokens + BOS/EOS/EOT, padded with reserved tokens to vocabSize) */
  tokenizer?: SyntheticTokenizer;
  /** vocabulary size for the default tokenizer (default 288) */
  vocabSize?: number;
  /** write bitnet.hidden_activation for arch 'bitnet' */
  hiddenActivation?: 'relu2' | 'silu';
  seed?: number;
  /** embedding values are uniform in [-embedScale, embedScale] (default 1); small values flatten the logits */
  embedScale?: number;
}

const WEIGHT_TYPES = { i2_s: GGMLType.I2_S, tq2_0: GGMLType.TQ2_0, tq1_0: GGMLType.TQ1_0, f32: GGMLType.F32 } as const;

/** A byte-level tokenizer: the 256 GPT-2 byte tokens, a few merges, then special tokens. */
export function byteLevelTokenizer(vocabSize = 288): SyntheticTokenizer {
  const tokens = [...BYTE_TO_CHAR];
  const merges = ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a'];
  for (const m of merges) tokens.push(m.replace(' ', ''));
  const types = tokens.map(() => 1);
  const special = ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>'];
  const bos = tokens.length;
  for (const s of special) {
    tokens.push(s);
    types.push(3);
  }
  if (vocabSize < tokens.length) throw new Error(`vocabulary of ${vocabSize} is too small for the ${tokens.length} byte and special tokens`);
  while (tokens.length < vocabSize) {
    tokens.push(`<|reserved_${tokens.length}|>`);
    types.push(3);
  }
  return { tokens, tokenTypes: types, merges, bos, eos: bos + 1, eot: bos + 2, pre: 'llama-bpe', addBos: true };
}

/** xorshift32: fast, deterministic, good enough for random weights */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

interface TensorPlan extends GGUFTensorSpec {
  make: () => Uint8Array;
}

function plan(spec: SyntheticModelSpec) {
  const arch = spec.arch ?? 'bitnet-b1.58';
  const tok = spec.tokenizer ?? byteLevelTokenizer(spec.vocabSize);
  const V = tok.tokens.length;
  const { nEmbd: D, nFF: F, nHeads, nKVHeads, nLayers } = spec;
  if (D % nHeads || nHeads % nKVHeads) throw new Error('nEmbd must divide by nHeads and nHeads by nKVHeads');
  const headDim = D / nHeads;
  const kvDim = nKVHeads * headDim;
  const rand = rng(spec.seed ?? 1234);
  const wtype = WEIGHT_TYPES[spec.weightType ?? 'i2_s'];
  const embType = { f16: GGMLType.F16, f32: GGMLType.F32, q8_0: GGMLType.Q8_0, q6_k: GGMLType.Q6_K }[spec.embedType ?? 'f16'];

  const ternary = (rows: number, cols: number) => () => {
    const n = rows * cols;
    const codes = new Int8Array(n);
    for (let i = 0; i < n; i++) codes[i] = Math.floor(rand() * 3) - 1;
    // scale ~ 1/sqrt(2/3 * cols) keeps outputs near unit size for unit-size inputs
    const scale = Math.fround(1 / Math.sqrt((2 / 3) * cols));
    if (wtype === GGMLType.I2_S) return packI2S(codes, scale, cols, spec.i2sLayout ?? 'x86');
    const f = getTernaryFormat(wtype);
    if (f) return f.packTernary(codes, scale, cols);
    const vals = new Float32Array(n);
    for (let i = 0; i < n; i++) vals[i] = codes[i] * scale;
    return new Uint8Array(vals.buffer);
  };
  const norm = (n: number) => () => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = 1 + 0.1 * (rand() * 2 - 1);
    return new Uint8Array(v.buffer);
  };
  const embedding = () => {
    const v = new Float32Array(V * D);
    const e = spec.embedScale ?? 1;
    for (let i = 0; i < v.length; i++) v[i] = (rand() * 2 - 1) * e;
    return getFormat(embType).pack!(v, D);
  };

  const tensors: TensorPlan[] = [{ name: 'token_embd.weight', type: embType, dims: [D, V], make: embedding }];
  for (let l = 0; l < nLayers; l++) {
    const t = (n: string, dims: number[], type: number, make: () => Uint8Array) => tensors.push({ name: `blk.${l}.${n}.weight`, type, dims, make });
    t('attn_norm', [D], GGMLType.F32, norm(D));
    t('attn_q', [D, D], wtype, ternary(D, D));
    t('attn_k', [D, kvDim], wtype, ternary(kvDim, D));
    t('attn_v', [D, kvDim], wtype, ternary(kvDim, D));
    t('attn_output', [D, D], wtype, ternary(D, D));
    t('attn_sub_norm', [D], GGMLType.F32, norm(D));
    t('ffn_norm', [D], GGMLType.F32, norm(D));
    t('ffn_gate', [D, F], wtype, ternary(F, D));
    t('ffn_up', [D, F], wtype, ternary(F, D));
    t('ffn_down', [F, D], wtype, ternary(D, F));
    t('ffn_sub_norm', [F], GGMLType.F32, norm(F));
  }
  tensors.push({ name: 'output_norm.weight', type: GGMLType.F32, dims: [D], make: norm(D) });

  const meta: [string, GGUFMetaValue][] = [
    ['general.architecture', metaString(arch)],
    ['general.name', metaString(spec.name ?? 'wrinklefree-synthetic')],
    // llama.cpp's LLAMA_FTYPE: ALL_F32 0, MOSTLY_TQ1_0 36, MOSTLY_TQ2_0 37; bitnet.cpp's I2_S 40
    ['general.file_type', metaU32(({ i2_s: 40, tq2_0: 37, tq1_0: 36, f32: 0 } as const)[spec.weightType ?? 'i2_s'])],
    [`${arch}.context_length`, metaU32(spec.contextLength ?? 2048)],
    [`${arch}.embedding_length`, metaU32(D)],
    [`${arch}.block_count`, metaU32(nLayers)],
    [`${arch}.feed_forward_length`, metaU32(F)],
    [`${arch}.attention.head_count`, metaU32(nHeads)],
    [`${arch}.attention.head_count_kv`, metaU32(nKVHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, metaF32(1e-5)],
    [`${arch}.rope.freq_base`, metaF32(spec.ropeTheta ?? 500000)],
    [`${arch}.rope.dimension_count`, metaU32(headDim)],
    [`${arch}.vocab_size`, metaU32(V)],
  ];
  if (spec.hiddenActivation) meta.push([`${arch}.hidden_activation`, metaString(spec.hiddenActivation)]);
  meta.push(['tokenizer.ggml.model', metaString('gpt2')]);
  if (tok.pre !== null) meta.push(['tokenizer.ggml.pre', metaString(tok.pre ?? 'llama-bpe')]);
  meta.push(
    ['tokenizer.ggml.tokens', metaArray(GGUFValueType.STRING, tok.tokens)],
    ['tokenizer.ggml.token_type', metaArray(GGUFValueType.INT32, tok.tokenTypes)],
    ['tokenizer.ggml.merges', metaArray(GGUFValueType.STRING, tok.merges)],
    ['tokenizer.ggml.bos_token_id', metaU32(tok.bos)],
    ['tokenizer.ggml.eos_token_id', metaU32(tok.eos)],
  );
  if (tok.eot !== undefined) meta.push(['tokenizer.ggml.eot_token_id', metaU32(tok.eot)]);
  meta.push(['tokenizer.ggml.add_bos_token', metaBool(tok.addBos ?? true)]);
  if (tok.chatTemplate) meta.push(['tokenizer.chat_template', metaString(tok.chatTemplate)]);
  return { meta, tensors };
}

/** The file as chunks: the header, then each tensor's bytes followed by its alignment padding. */
export function* syntheticModelChunks(spec: SyntheticModelSpec): Generator<Uint8Array> {
  const { meta, tensors } = plan(spec);
  const layout = buildGGUFHeader({ metadata: meta, tensors });
  yield layout.header;
  let pos = 0;
  for (let i = 0; i < tensors.length; i++) {
    const data = tensors[i].make();
    if (data.length !== layout.tensorSizes[i]) throw new Error(`synthetic tensor ${tensors[i].name}: ${data.length} bytes, expected ${layout.tensorSizes[i]}`);
    yield data;
    pos = layout.tensorOffsets[i] + data.length;
    const next = i + 1 < tensors.length ? layout.tensorOffsets[i + 1] : layout.totalSize - layout.dataOffset;
    if (next > pos) yield new Uint8Array(next - pos);
  }
}

/** The whole file in memory (small models). */
export function buildSyntheticModel(spec: SyntheticModelSpec): Uint8Array {
  const chunks = [...syntheticModelChunks(spec)];
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** A small random-weight model with a byte-level tokenizer (its text is noise): the browser tests' model.
 *  The built-in demo model of wf_server / wf chat / wf run is the trained models/wrinklefree-demo.gguf. */
export const DEMO_MODEL_SPEC: SyntheticModelSpec = {
  arch: 'bitnet-b1.58',
  name: 'wrinklefree-demo (random weights)',
  nEmbd: 256,
  nLayers: 4,
  nFF: 768,
  nHeads: 4,
  nKVHeads: 2,
  contextLength: 1024,
  vocabSize: 264, // the byte tokens, 5 merges and 3 specials: no reserved tokens to emit
  seed: 42,
  embedScale: 0.1, // flatter logits: varied noise instead of one token repeated
};

/** The shapes of BitNet b1.58 2B4T (SPEC.md §1), for benchmarks. */
export const BITNET_2B4T_SHAPE = { nEmbd: 2560, nLayers: 30, nFF: 6912, nHeads: 20, nKVHeads: 5, contextLength: 4096 } as const;
