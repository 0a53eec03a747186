// Hyperparameters of a BitNet model, read from GGUF metadata (SPEC.md §1, §3).
import type { GGUFFile } from '../gguf/reader.js';

export type FfnActivation = 'relu2' | 'silu';

export const SUPPORTED_ARCHS = ['bitnet-b1.58', 'bitnet-25', 'bitnet'] as const;

export class ModelError extends Error {
  override name = 'ModelError';
}

export interface ModelConfig {
  arch: string;
  name: string;
  nEmbd: number; // hidden size (2560 for 2B4T)
  nLayers: number; // transformer blocks (30)
  nFF: number; // FFN inner size (6912)
  nHeads: number; // query heads (20)
  nKVHeads: number; // key/value heads (5)
  headDim: number; // nEmbd / nHeads (128)
  kvDim: number; // nKVHeads * headDim (640)
  ropeDim: number; // rotated dims per head (all 128)
  ropeTheta: number; // 500000
  rmsEps: number; // 1e-5
  contextLength: number; // trained context (4096)
  vocabSize: number; // 128256
  ffnAct: FfnActivation; // relu2 (bitnet-b1.58, bitnet-25) or silu (1bitLLM 'bitnet')
}

export interface ConfigOverrides {
  /** force the FFN activation (`--ffn-act`) */
  ffnAct?: FfnActivation;
}

export function modelConfigFromGGUF(file: GGUFFile, overrides: ConfigOverrides = {}): ModelConfig {
  const arch = file.architecture;
  if (arch === undefined) throw new ModelError('model file has no general.architecture key');
  if (!(SUPPORTED_ARCHS as readonly string[]).includes(arch)) {
    throw new ModelError(`unsupported architecture '${arch}': WrinkleFree runs ${SUPPORTED_ARCHS.join(', ')}`);
  }
  const num = (key: string, fallback?: number): number => {
    const v = file.get<unknown>(`${arch}.${key}`);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw new ModelError(`model file is missing the required key '${arch}.${key}'`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelError(`key '${arch}.${key}' must be a number, found ${String(v)}`);
    return v;
  };
  const nEmbd = num('embedding_length');
  const nHeads = num('attention.head_count');
  const nKVHeads = num('attention.head_count_kv', nHeads);
  const positive = { nEmbd, nHeads, nKVHeads };
  for (const [k, v] of Object.entries(positive)) if (!(Number.isInteger(v) && v > 0)) throw new ModelError(`${k} must be a positive integer, found ${v}`);
  if (nEmbd % nHeads !== 0) throw new ModelError(`embedding_length ${nEmbd} is not a multiple of head_count ${nHeads}`);
  if (nHeads % nKVHeads !== 0) throw new ModelError(`head_count ${nHeads} is not a multiple of head_count_kv ${nKVHeads}`);
  const headDim = nEmbd / nHeads;
  const tokens = file.get<string[]>('tokenizer.ggml.tokens');
  const embd = file.tensor('token_embd.weight');
  const vocabSize = num('vocab_size', tokens?.length ?? embd?.dims[1] ?? 0);
  if (!vocabSize) throw new ModelError('cannot tell the vocabulary size: no vocab_size key, tokenizer or token_embd.weight');

  let ffnAct: FfnActivation = arch === 'bitnet' ? 'silu' : 'relu2';
  const hidden = file.get<unknown>(`${arch}.hidden_activation`);
  if (hidden !== undefined) {
    if (hidden === 'relu2' || hidden === 'silu') ffnAct = hidden;
    else throw new ModelError(`unsupported ${arch}.hidden_activation '${String(hidden)}' (relu2 or silu)`);
  }
  if (overrides.ffnAct) ffnAct = overrides.ffnAct;

  const ropeDim = num('rope.dimension_count', headDim);
  if (ropeDim > headDim || ropeDim % 2 !== 0) throw new ModelError(`rope.dimension_count ${ropeDim} must be even and at most head_dim ${headDim}`);

  // values the forward pass divides by, takes powers or logs of, or sizes buffers with: a bad one would load
  // and then fail (NaN logits, a 500) on every request, so it is a load error naming the key
  const nLayers = num('block_count');
  const nFF = num('feed_forward_length');
  const ropeTheta = num('rope.freq_base', 10000);
  const rmsEps = num('attention.layer_norm_rms_epsilon', 1e-5);
  const contextLength = num('context_length', 2048);
  const wholes: [string, number][] = [['block_count', nLayers], ['feed_forward_length', nFF], ['context_length', contextLength], ['rope.dimension_count', ropeDim]];
  for (const [key, v] of wholes) if (!(Number.isInteger(v) && v > 0)) throw new ModelError(`key '${arch}.${key}' must be a positive integer, found ${v}`);
  if (!(ropeTheta > 0)) throw new ModelError(`key '${arch}.rope.freq_base' must be positive, found ${ropeTheta}`);
  if (!(rmsEps > 0 && rmsEps < 1)) throw new ModelError(`key '${arch}.attention.layer_norm_rms_epsilon' must be between 0 and 1 (exclusive), found ${rmsEps}`);

  return {
    arch,
    name: file.get<string>('general.name') ?? arch,
    nEmbd,
    nLayers,
    nFF,
    nHeads,
    nKVHeads,
    headDim,
    kvDim: nKVHeads * headDim,
    ropeDim,
    ropeTheta,
    rmsEps,
    contextLength,
    vocabSize,
    ffnAct,
  };
}
