// Moves a GGUF's tensors into the kernels' memory: ternary matrices repacked for the matmul
// kernels, norms as f32, the lm_head as int8 or float rows (lm-head.ts). The token embedding stays in the file and is
// read one row per token (it is the largest tensor; keeping a second copy would double its memory).
import type { GGUFFile, GGUFTensor } from '../gguf/reader.js';
import type { ByteSource } from '../gguf/source.js';
import { typeName } from '../gguf/types.js';
import { dequantize, getFormat, I2S_LAYOUT_HINT, ternaryFromTensor, type I2SLayout } from '../formats/index.js';
import { GGMLType } from '../gguf/types.js';
import type { Kernels, TernaryMatrix } from '../kernels/api.js';
import { loadLmHead, type LmHead, type LmHeadPrecision } from './lm-head.js';
import { ModelError, type ModelConfig } from './config.js';

/** Where the loader puts the tensors: the CPU kernels' memory, or a device's (src/gpu/weights.ts). */
export type WeightSink = Pick<Kernels, 'allocF32' | 'ternaryMatrix' | 'int8Matrix' | 'f16Matrix' | 'f32Matrix'>;

export interface LayerWeights {
  attnNorm: Float32Array; // (nEmbd)
  wq: TernaryMatrix; // (nEmbd -> nEmbd)
  wk: TernaryMatrix; // (nEmbd -> kvDim)
  wv: TernaryMatrix; // (nEmbd -> kvDim)
  attnSubNorm: Float32Array; // (nEmbd) applied to the attention output BEFORE wo
  wo: TernaryMatrix; // (nEmbd -> nEmbd)
  ffnNorm: Float32Array; // (nEmbd)
  wGate: TernaryMatrix; // (nEmbd -> nFF)
  wUp: TernaryMatrix; // (nEmbd -> nFF)
  ffnSubNorm: Float32Array; // (nFF) applied to act(gate)*up BEFORE down
  wDown: TernaryMatrix; // (nFF -> nEmbd)
}

export interface ModelWeights {
  tokenEmbd: EmbeddingTable; // (vocab, nEmbd)
  layers: LayerWeights[];
  outputNorm: Float32Array; // (nEmbd)
  lmHead: LmHead; // (vocab, nEmbd) int8 or float: output.weight, or token_embd when tied
  tiedOutput: boolean;
}

/** Row lookup into the embedding tensor, read from the file by byte range. */
export class EmbeddingTable {
  private readonly rowBytes: number;
  constructor(
    private readonly tensor: GGUFTensor,
    private readonly source: ByteSource,
    readonly nEmbd: number,
    readonly vocab: number,
  ) {
    this.rowBytes = getFormat(tensor.type).byteSize(nEmbd, nEmbd);
  }
  async row(token: number, out: Float32Array, outOff = 0): Promise<void> {
    if (!(Number.isInteger(token) && token >= 0 && token < this.vocab)) {
      throw new ModelError(`token id ${token} is outside the vocabulary (0..${this.vocab - 1})`);
    }
    // tensors are read through the file's ByteSource: a view for in-memory files, a small read otherwise
    const bytes = await this.source.read(this.tensor.offset + token * this.rowBytes, this.rowBytes);
    out.set(dequantize(this.tensor.type, bytes, this.nEmbd, this.nEmbd), outOff);
  }
}

export interface LoadProgress {
  /** tensors done / total */
  done: number;
  total: number;
  tensor: string;
  bytesDone: number;
  bytesTotal: number;
}

export async function loadWeights(
  file: GGUFFile,
  cfg: ModelConfig,
  kernels: WeightSink,
  onProgress?: (p: LoadProgress) => void,
  opts: { i2sLayout?: I2SLayout; lmHead?: LmHeadPrecision } = {},
): Promise<ModelWeights> {
  const { nEmbd, nFF, kvDim, nLayers, vocabSize } = cfg;
  const i2sLayout = opts.i2sLayout ?? 'x86';
  const need = (name: string, shape: number[]): GGUFTensor => {
    const t = file.tensor(name);
    if (!t) throw new ModelError(`model file is missing tensor '${name}'`);
    if (t.dims.length !== shape.length || t.dims.some((d, i) => d !== shape[i])) {
      throw new ModelError(`tensor '${name}' has shape [${t.dims}] but the model's hyperparameters need [${shape}] (ggml order)`);
    }
    return t;
  };
  const layerTensor = (i: number, n: string) => `blk.${i}.${n}.weight`;
  const bytesTotal = file.tensors.reduce((a, t) => a + t.byteSize, 0);
  let bytesDone = 0;
  let done = 0;
  const total = file.tensors.length;
  const step = (t: GGUFTensor) => {
    bytesDone += t.byteSize;
    done++;
    onProgress?.({ done, total, tensor: t.name, bytesDone, bytesTotal });
  };

  const norm = async (name: string, n: number): Promise<Float32Array> => {
    const t = need(name, [n]);
    const v = dequantize(t.type, await t.read(), n, n);
    const buf = kernels.allocF32(n);
    buf.set(v);
    step(t);
    return buf;
  };
  const ternary = async (name: string, cols: number, rows: number): Promise<TernaryMatrix> => {
    const t = need(name, [cols, rows]);
    let tern;
    try {
      tern = ternaryFromTensor(t.type, await t.read(), t.nElements, cols, i2sLayout);
    } catch (e) {
      // a code-3 byte is what a file in another I2_S layout can show first: name the option
      const hint = t.type === GGMLType.I2_S ? ` (read in the ${i2sLayout} I2_S layout; ${I2S_LAYOUT_HINT})` : '';
      throw new ModelError(`tensor '${name}' (${typeName(t.type, file.architecture)}): ${(e as Error).message}${hint}`);
    }
    // 1bitLLM files may carry a per-tensor output scale `<name>.scale` (multiplies the matmul output)
    const scaleT = file.tensor(name.replace(/\.weight$/, '.scale'));
    let scale = tern.scale;
    if (scaleT) {
      if (scaleT.nElements !== 1) throw new ModelError(`tensor '${scaleT.name}' must hold one value, has ${scaleT.nElements}`);
      scale *= dequantize(scaleT.type, await scaleT.read(), 1, 1)[0];
      step(scaleT);
    }
    const m = kernels.ternaryMatrix(tern.codes, rows, cols, scale);
    step(t);
    return m;
  };

  const embT = need('token_embd.weight', [nEmbd, vocabSize]);
  const tokenEmbd = new EmbeddingTable(embT, file.source, nEmbd, vocabSize);

  const layers: LayerWeights[] = [];
  for (let i = 0; i < nLayers; i++) {
    layers.push({
      attnNorm: await norm(layerTensor(i, 'attn_norm'), nEmbd),
      wq: await ternary(layerTensor(i, 'attn_q'), nEmbd, nEmbd),
      wk: await ternary(layerTensor(i, 'attn_k'), nEmbd, kvDim),
      wv: await ternary(layerTensor(i, 'attn_v'), nEmbd, kvDim),
      attnSubNorm: await norm(layerTensor(i, 'attn_sub_norm'), nEmbd),
      wo: await ternary(layerTensor(i, 'attn_output'), nEmbd, nEmbd),
      ffnNorm: await norm(layerTensor(i, 'ffn_norm'), nEmbd),
      wGate: await ternary(layerTensor(i, 'ffn_gate'), nEmbd, nFF),
      wUp: await ternary(layerTensor(i, 'ffn_up'), nEmbd, nFF),
      ffnSubNorm: await norm(layerTensor(i, 'ffn_sub_norm'), nFF),
      wDown: await ternary(layerTensor(i, 'ffn_down'), nFF, nEmbd),
    });
  }
  const outputNorm = await norm('output_norm.weight', nEmbd);

  const outT = file.tensor('output.weight');
  const headT = outT ? need('output.weight', [nEmbd, vocabSize]) : embT;
  const lmHead = await loadLmHead(kernels, headT, file.source, vocabSize, nEmbd, opts.lmHead);
  step(embT);
  if (outT) step(outT);
  return { tokenEmbd, layers, outputNorm, lmHead, tiedOutput: !outT };
}
