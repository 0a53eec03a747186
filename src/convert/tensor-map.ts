// Which GGUF tensors a BitNet checkpoint becomes, from which HF tensors, with which HF shapes.
//
// HF name (shape [out, in] / [n])                   GGUF name (ggml dims = reversed: [in, out])
//   model.embed_tokens.weight     [vocab, hidden]    token_embd.weight
//   model.norm.weight             [hidden]           output_norm.weight
//   lm_head.weight                [vocab, hidden]    output.weight (absent = tied to token_embd)
//   model.layers.N.input_layernorm.weight            blk.N.attn_norm.weight
//   model.layers.N.post_attention_layernorm.weight   blk.N.ffn_norm.weight
//   model.layers.N.self_attn.attn_sub_norm.weight    blk.N.attn_sub_norm.weight   (1bitLLM: self_attn.inner_attn_ln)
//   model.layers.N.mlp.ffn_sub_norm.weight  [ffn]    blk.N.ffn_sub_norm.weight    (1bitLLM: mlp.ffn_layernorm)
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight   blk.N.attn_{q,k,v,output}.weight   ternary
//   model.layers.N.mlp.{gate,up,down}_proj.weight    blk.N.ffn_{gate,up,down}.weight    ternary
// q/k are NOT permuted: llama.cpp's converter for BitNet (BitnetModel, a TextModel, not a LlamaModel)
// does not permute them, and its bitnet graphs use NEOX (rotate-half) RoPE, which is HF's layout.
// Pre-packed checkpoints add `<linear>.weight_scale` next to each ternary weight.

import type { ModelHParams } from './hf-config.js';
import { ConvertError } from './errors.js';

export type TensorRole = 'embed' | 'output' | 'norm' | 'ternary';

export interface PlannedTensor {
  gguf: string;
  hf: string;
  role: TensorRole;
  /** expected logical HF shape: [out, in] for matrices, [n] for norms */
  shape: number[];
  /** HF name of the weight_scale tensor (pre-packed / offline forms) */
  scaleName?: string;
}

/** HF tensors that carry nothing a GGUF needs (recomputed buffers). */
const IGNORED = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$|^model\.rotary_emb\.inv_freq$/;

/**
 * The output tensors in file order, resolved against the names present in the checkpoint.
 * Throws a ConvertError for a missing tensor or an unexpected (e.g. misnamed) one.
 */
export function planTensors(hp: ModelHParams, names: Set<string>, withScales: boolean): PlannedTensor[] {
  const out: PlannedTensor[] = [];
  const need = (hf: string | string[], gguf: string, role: TensorRole, shape: number[]) => {
    const alts = Array.isArray(hf) ? hf : [hf];
    const found = alts.find((n) => names.has(n));
    if (!found) {
      throw new ConvertError(`checkpoint is missing tensor '${alts[0]}'${alts.length > 1 ? ` (or '${alts.slice(1).join("' / '")}')` : ''} (for ${gguf})`);
    }
    const t: PlannedTensor = { gguf, hf: found, role, shape };
    if (role === 'ternary' && withScales) {
      t.scaleName = found.replace(/\.weight$/, '.weight_scale');
      if (!names.has(t.scaleName)) {
        throw new ConvertError(`checkpoint is missing tensor '${t.scaleName}' (config.json's quantization_config says the BitNet weights are pre-quantized, so each needs its weight_scale)`);
      }
    }
    out.push(t);
  };
  const { hidden, ffn, vocabSize: vocab } = hp;
  const qDim = hp.heads * hp.headDim;
  const kvDim = hp.kvHeads * hp.headDim;
  need('model.embed_tokens.weight', 'token_embd.weight', 'embed', [vocab, hidden]);
  need('model.norm.weight', 'output_norm.weight', 'norm', [hidden]);
  const hasHead = names.has('lm_head.weight');
  if (hp.tieEmbeddings === false && !hasHead) {
    throw new ConvertError(`checkpoint is missing tensor 'lm_head.weight' (config.json says tie_word_embeddings: false)`);
  }
  const untied = hasHead && hp.tieEmbeddings !== true;
  if (untied) need('lm_head.weight', 'output.weight', 'output', [vocab, hidden]);
  for (let b = 0; b < hp.layers; b++) {
    const p = `model.layers.${b}.`;
    need(p + 'input_layernorm.weight', `blk.${b}.attn_norm.weight`, 'norm', [hidden]);
    need([p + 'self_attn.attn_sub_norm.weight', p + 'self_attn.inner_attn_ln.weight'], `blk.${b}.attn_sub_norm.weight`, 'norm', [hidden]);
    need(p + 'post_attention_layernorm.weight', `blk.${b}.ffn_norm.weight`, 'norm', [hidden]);
    need([p + 'mlp.ffn_sub_norm.weight', p + 'mlp.ffn_layernorm.weight'], `blk.${b}.ffn_sub_norm.weight`, 'norm', [ffn]);
    need(p + 'self_attn.q_proj.weight', `blk.${b}.attn_q.weight`, 'ternary', [qDim, hidden]);
    need(p + 'self_attn.k_proj.weight', `blk.${b}.attn_k.weight`, 'ternary', [kvDim, hidden]);
    need(p + 'self_attn.v_proj.weight', `blk.${b}.attn_v.weight`, 'ternary', [kvDim, hidden]);
    need(p + 'self_attn.o_proj.weight', `blk.${b}.attn_output.weight`, 'ternary', [hidden, qDim]);
    need(p + 'mlp.gate_proj.weight', `blk.${b}.ffn_gate.weight`, 'ternary', [ffn, hidden]);
    need(p + 'mlp.up_proj.weight', `blk.${b}.ffn_up.weight`, 'ternary', [ffn, hidden]);
    need(p + 'mlp.down_proj.weight', `blk.${b}.ffn_down.weight`, 'ternary', [hidden, ffn]);
  }
  // Every checkpoint tensor must be accounted for: a misnamed tensor would otherwise vanish silently.
  const used = new Set<string>();
  for (const t of out) {
    used.add(t.hf);
    if (t.scaleName) used.add(t.scaleName);
  }
  if (hasHead && !untied) used.add('lm_head.weight'); // tied: HF ignores the saved copy
  for (const n of [...names].sort()) {
    if (used.has(n) || IGNORED.test(n)) continue;
    if (!withScales && n.endsWith('.weight_scale')) {
      throw new ConvertError(`checkpoint has '${n}' (pre-quantized BitNet weights), but config.json has no quantization_config saying how to read them`);
    }
    const m = /^model\.layers\.(\d+)\./.exec(n);
    const why = m && Number(m[1]) >= hp.layers ? ` (config.json has num_hidden_layers ${hp.layers})` : '';
    throw new ConvertError(`checkpoint has unexpected tensor '${n}'${why}; it has no place in a BitNet GGUF (misnamed?)`);
  }
  return out;
}
