// config.json of a Hugging Face BitNet checkpoint -> the hyperparameters and GGUF architecture.
//
//   architectures[0] "BitNetForCausalLM" (microsoft 2B4T, relu2 FFN)  -> GGUF arch 'bitnet-b1.58'
//   architectures[0] "BitnetForCausalLM" (1bitLLM, SiLU-gated FFN)    -> GGUF arch 'bitnet'
// `--arch bitnet` forces 'bitnet' (the name mainline llama.cpp loads); a relu2 model then carries
// bitnet.hidden_activation = "relu2" (mainline ignores that key and computes SiLU; see the report).
//
// quantization_config (transformers' BitNetQuantConfig) decides how the linear weights are stored:
//   absent                                            latent floats: ternarize (absmean)
//   quant_method "bitnet", linear_class "bitlinear"   uint8 [M/4, K] + weight_scale, alpha = 1/weight_scale
//     (the default class)                             (BitLinear divides: y = T.q / (s * weight_scale))
//   linear_class "autobitlinear", mode "offline"      uint8 (or float -1/0/+1) + weight_scale, alpha = weight_scale
//                                                     (AutoBitLinear multiplies: y = F.linear(x, T) * weight_scale)
//   linear_class "autobitlinear", mode "online"       latent floats, ternarized on the fly: ternarize (absmean)
// Anything else is refused rather than guessed: no linear_class (the scale's direction would be a
// guess), use_rms_norm true (transformers then adds an RMSNorm inside every linear, which GGUF BitNet
// files do not have), modules_to_not_convert naming a BitNet linear (it would stay full precision),
// and keys transformers' BitNetQuantConfig does not have (QUANT_CONFIG_KEYS), each named.

import { ConvertError } from './errors.js';

export type GGUFArch = 'bitnet' | 'bitnet-b1.58';
export type Activation = 'relu2' | 'silu';
export type WeightForm = 'latent' | 'packed-divide' | 'offline-multiply';

export interface ModelHParams {
  hfArchitecture: string;
  arch: GGUFArch;
  activation: Activation;
  hidden: number;
  layers: number;
  ffn: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  contextLength: number;
  rmsEps: number;
  ropeTheta: number;
  vocabSize: number;
  tieEmbeddings: boolean | undefined;
  weightForm: WeightForm;
  bosTokenId?: number;
  eosTokenIds: number[];
}

const ARCHS: Record<string, { arch: GGUFArch; activation: Activation }> = {
  BitNetForCausalLM: { arch: 'bitnet-b1.58', activation: 'relu2' },
  BitnetForCausalLM: { arch: 'bitnet', activation: 'silu' },
};

function posInt(cfg: Record<string, unknown>, key: string, path: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (v === undefined) throw new ConvertError(`${path}: missing '${key}'`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new ConvertError(`${path}: '${key}' must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function posNum(cfg: Record<string, unknown>, key: string, path: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (v === undefined) throw new ConvertError(`${path}: missing '${key}'`);
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new ConvertError(`${path}: '${key}' must be a positive number, got ${JSON.stringify(v)}`);
  }
  // GGUF stores these as float32: a value that rounds to 0 or Infinity there would give a file the loader refuses
  const f = Math.fround(v);
  if (!(f > 0) || !Number.isFinite(f)) {
    throw new ConvertError(`${path}: '${key}' = ${v} does not fit the float32 a GGUF stores it in (it would become ${f})`);
  }
  return v;
}

function tokenIds(v: unknown): number[] {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
  return [];
}

/** The keys of transformers' BitNetQuantConfig (quantization_config of a BitNet checkpoint). */
export const QUANT_CONFIG_KEYS = ['quant_method', 'linear_class', 'quantization_mode', 'use_rms_norm', 'rms_norm_eps', 'modules_to_not_convert'] as const;

export function weightFormOf(qc: unknown, path: string): WeightForm {
  if (qc === undefined || qc === null) return 'latent';
  if (typeof qc !== 'object' || Array.isArray(qc)) throw new ConvertError(`${path}: quantization_config must be an object`);
  const q = qc as Record<string, unknown>;
  for (const key of Object.keys(q)) {
    if (!(QUANT_CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new ConvertError(
        `${path}: quantization_config.${key} is not a key of transformers' BitNetQuantConfig (known: ${QUANT_CONFIG_KEYS.join(', ')}); ` +
          'refusing to guess what it changes',
      );
    }
  }
  if (q.quant_method !== 'bitnet') {
    throw new ConvertError(`${path}: quantization_config.quant_method ${JSON.stringify(q.quant_method)} is not supported (only "bitnet" or none)`);
  }
  if (q.use_rms_norm !== undefined && q.use_rms_norm !== null && q.use_rms_norm !== false) {
    throw new ConvertError(
      `${path}: quantization_config.use_rms_norm is ${JSON.stringify(q.use_rms_norm)}: transformers then applies an extra RMSNorm inside every ` +
        'BitNet linear layer, which GGUF BitNet files (and this converter) have no place for',
    );
  }
  if (q.rms_norm_eps !== undefined && q.rms_norm_eps !== null && typeof q.rms_norm_eps !== 'number') {
    throw new ConvertError(`${path}: quantization_config.rms_norm_eps must be a number, got ${JSON.stringify(q.rms_norm_eps)}`);
  }
  const cls = q.linear_class;
  if (cls === undefined || cls === null) {
    throw new ConvertError(
      `${path}: quantization_config has no linear_class, so the direction of the packed weights' weight_scale would be a guess ` +
        '(transformers\' BitLinear divides by it, AutoBitLinear multiplies). Add "linear_class": "bitlinear" or "autobitlinear" to config.json',
    );
  }
  const mode = q.quantization_mode ?? 'offline';
  if (cls === 'bitlinear') {
    if (mode !== 'offline') throw new ConvertError(`${path}: linear_class "bitlinear" with quantization_mode ${JSON.stringify(mode)} is not a transformers BitNet form`);
    return 'packed-divide';
  }
  if (cls === 'autobitlinear') {
    if (mode === 'online') return 'latent';
    if (mode === 'offline') return 'offline-multiply';
    throw new ConvertError(`${path}: quantization_mode ${JSON.stringify(mode)} is not supported (expected "online" or "offline")`);
  }
  throw new ConvertError(`${path}: quantization_config.linear_class ${JSON.stringify(cls)} is not supported (expected "bitlinear" or "autobitlinear")`);
}

/** BitNet linear modules of a model, as transformers names them (what modules_to_not_convert is matched against). */
const LINEARS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

/**
 * modules_to_not_convert keeps matching modules (transformers: the entry is a substring of the module's
 * name) in full precision; a GGUF BitNet file has ternary weights there, so such a checkpoint is refused.
 */
function checkModulesNotConverted(qc: unknown, layers: number, path: string): void {
  if (qc === null || typeof qc !== 'object') return;
  const list = (qc as Record<string, unknown>).modules_to_not_convert;
  if (list === undefined || list === null) return;
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) {
    throw new ConvertError(`${path}: quantization_config.modules_to_not_convert must be a list of module names`);
  }
  for (let l = 0; l < layers; l++) {
    for (const lin of LINEARS) {
      const name = `model.layers.${l}.${lin}`;
      const hit = (list as string[]).find((entry) => entry.length > 0 && name.includes(entry));
      if (hit !== undefined) {
        throw new ConvertError(
          `${path}: quantization_config.modules_to_not_convert entry '${hit}' keeps ${name} in full precision; ` +
            'GGUF BitNet files hold every such layer ternary, so this checkpoint cannot be converted faithfully',
        );
      }
    }
  }
}

/** Parses config.json; `archOverride` is --arch. */
export function parseHFConfig(cfgRaw: unknown, path: string, archOverride?: GGUFArch): ModelHParams {
  if (cfgRaw === null || typeof cfgRaw !== 'object' || Array.isArray(cfgRaw)) throw new ConvertError(`${path} is not a JSON object`);
  const cfg = cfgRaw as Record<string, unknown>;
  const archs = cfg.architectures;
  if (!Array.isArray(archs) || typeof archs[0] !== 'string') throw new ConvertError(`${path}: missing 'architectures' (expected ["BitNetForCausalLM"] or ["BitnetForCausalLM"])`);
  const hfArchitecture = archs[0];
  const known = ARCHS[hfArchitecture];
  if (!known) {
    throw new ConvertError(
      `${path}: architecture '${hfArchitecture}' is not supported; wf convert handles BitNetForCausalLM (BitNet b1.58 2B4T, relu2) and BitnetForCausalLM (1bitLLM, SiLU)`,
    );
  }
  const act = cfg.hidden_act ?? (known.activation === 'silu' ? 'silu' : undefined);
  if (act !== known.activation) {
    throw new ConvertError(`${path}: ${hfArchitecture} models use hidden_act "${known.activation}", but this config says ${JSON.stringify(cfg.hidden_act)}`);
  }
  const arch = archOverride ?? known.arch;
  if (arch === 'bitnet-b1.58' && known.activation !== 'relu2') {
    throw new ConvertError(`--arch bitnet-b1.58 means a relu2 FFN, but ${hfArchitecture} uses ${known.activation}; use --arch bitnet`);
  }
  const hidden = posInt(cfg, 'hidden_size', path);
  const heads = posInt(cfg, 'num_attention_heads', path);
  const kvHeads = posInt(cfg, 'num_key_value_heads', path, heads);
  if (heads % kvHeads !== 0) throw new ConvertError(`${path}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const headDim = posInt(cfg, 'head_dim', path, hidden % heads === 0 ? hidden / heads : undefined);
  if (headDim * heads !== hidden) {
    throw new ConvertError(`${path}: head_dim ${headDim} x num_attention_heads ${heads} != hidden_size ${hidden}; such models are not supported`);
  }
  if (headDim % 2 !== 0) throw new ConvertError(`${path}: head dimension ${headDim} must be even for RoPE`);
  const rs = cfg.rope_scaling;
  if (rs !== undefined && rs !== null) {
    const r = rs as Record<string, unknown>;
    const type = r.rope_type ?? r.type;
    if (!(type === 'linear' || type === 'default') || (r.factor !== undefined && r.factor !== 1)) {
      throw new ConvertError(`${path}: rope_scaling ${JSON.stringify(rs)} is not supported (BitNet models use plain RoPE)`);
    }
  }
  const tie = cfg.tie_word_embeddings;
  const layers = posInt(cfg, 'num_hidden_layers', path);
  const weightForm = weightFormOf(cfg.quantization_config, path);
  checkModulesNotConverted(cfg.quantization_config, layers, path);
  return {
    hfArchitecture,
    arch,
    activation: known.activation,
    hidden,
    layers,
    ffn: posInt(cfg, 'intermediate_size', path),
    heads,
    kvHeads,
    headDim,
    contextLength: posInt(cfg, 'max_position_embeddings', path),
    rmsEps: posNum(cfg, 'rms_norm_eps', path),
    ropeTheta: posNum(cfg, 'rope_theta', path, 10000),
    vocabSize: posInt(cfg, 'vocab_size', path),
    tieEmbeddings: typeof tie === 'boolean' ? tie : undefined,
    weightForm,
    bosTokenId: tokenIds(cfg.bos_token_id)[0],
    eosTokenIds: tokenIds(cfg.eos_token_id),
  };
}
