// The BitNet b1.58 forward pass (SPEC.md §1-§2), top to bottom like the model's equations.
// Every BitLinear input is quantized per token to int8 (kernels.quantize) right after the RMSNorm
// that feeds it; q/k/v share one quantization, gate/up share one. Prompt tokens go through in
// batches (the kernels' GEMM path), decode one token at a time (GEMV).
import type { Kernels, QuantizedActs } from '../kernels/api.js';
import type { ModelConfig } from './config.js';
import { ModelError } from './config.js';
import { KVCache, type KVCacheType } from './kv-cache.js';
import type { ModelWeights } from './weights.js';

/** Activation buffers of one sequence, allocated once (nothing is allocated in the token loop). */
class RunState {
  readonly x: Float32Array; // (batch, nEmbd) residual stream
  readonly xn: Float32Array; // (batch, nEmbd) normed input of a sub-block
  readonly q: Float32Array; // (batch, nEmbd) queries
  readonly k: Float32Array; // (batch, kvDim) keys of the batch
  readonly v: Float32Array; // (batch, kvDim) values of the batch
  readonly att: Float32Array; // (batch, nEmbd) attention output (concat of heads)
  readonly tmp: Float32Array; // (batch, nEmbd) a sub-block's output before the residual add
  readonly gate: Float32Array; // (batch, nFF)
  readonly up: Float32Array; // (batch, nFF)
  readonly actsEmbd: QuantizedActs; // int8 of an nEmbd-wide input
  readonly actsFF: QuantizedActs; // int8 of an nFF-wide input
  readonly logits: Float32Array; // (batch, vocab) when every position's logits are asked for

  constructor(k: Kernels, c: ModelConfig, readonly batch: number) {
    this.x = k.allocF32(batch * c.nEmbd);
    this.xn = k.allocF32(batch * c.nEmbd);
    this.q = k.allocF32(batch * c.nEmbd);
    this.k = k.allocF32(batch * c.kvDim);
    this.v = k.allocF32(batch * c.kvDim);
    this.att = k.allocF32(batch * c.nEmbd);
    this.tmp = k.allocF32(batch * c.nEmbd);
    this.gate = k.allocF32(batch * c.nFF);
    this.up = k.allocF32(batch * c.nFF);
    this.actsEmbd = k.allocActs(batch, c.nEmbd);
    this.actsFF = k.allocActs(batch, c.nFF);
    this.logits = k.allocF32(batch * c.vocabSize);
  }
}

/** NEOX ("rotate half") RoPE tables in the kernels' memory: cos/sin of pos * theta^(-2i/ropeDim), i < ropeDim/2. */
class RopeTable {
  readonly cos: Float32Array;
  readonly sin: Float32Array;
  constructor(k: Kernels, readonly half: number, ctx: number, theta: number) {
    this.cos = k.allocF32(ctx * half);
    this.sin = k.allocF32(ctx * half);
    for (let i = 0; i < half; i++) {
      const freq = Math.pow(theta, (-2 * i) / (2 * half));
      for (let p = 0; p < ctx; p++) {
        this.cos[p * half + i] = Math.cos(p * freq);
        this.sin[p * half + i] = Math.sin(p * freq);
      }
    }
  }
}

export interface ForwardOptions {
  /** return the logits of every position of the batch, not just the last */
  allLogits?: boolean;
}

/** One sequence's state (KV cache + buffers) on a loaded model. */
export class Sequence {
  readonly kv: KVCache;
  private readonly s: RunState;
  private readonly rope: RopeTable;
  /** the position the next token goes to */
  position = 0;
  /** positions 0..filled-1 hold keys/values written by earlier calls */
  private filled = 0;

  constructor(
    private readonly k: Kernels,
    readonly cfg: ModelConfig,
    private readonly w: ModelWeights,
    readonly ctxSize: number,
    readonly batchSize: number,
    cacheType: KVCacheType = 'f32',
  ) {
    this.kv = new KVCache(k, cfg.nLayers, ctxSize, cfg.nKVHeads, cfg.headDim, cacheType);
    this.s = new RunState(k, cfg, batchSize);
    this.rope = new RopeTable(k, cfg.ropeDim / 2, ctxSize, cfg.ropeTheta);
  }

  /** forgets everything after `pos` tokens (pos = 0 clears the sequence) */
  truncate(pos: number): void {
    this.seek(pos);
    this.filled = pos;
  }

  /**
   * Moves the next-token position to `pos` without forgetting the cache beyond it: evaluating the
   * same tokens again at the same positions rewrites identical keys/values, so a caller that knows
   * the cached tokens (CachedSequence) can re-run one of them for its logits and keep the rest.
   */
  seek(pos: number): void {
    if (!(Number.isInteger(pos) && pos >= 0 && pos <= this.filled)) {
      throw new ModelError(`cannot move to position ${pos}: only ${this.filled} positions are cached`);
    }
    this.position = pos;
  }

  /**
   * Runs tokens through the model starting at this.position, appending them to the KV cache.
   * Returns the logits after the last token (vocab), or after every token (n * vocab) with allLogits.
   */
  async forward(tokens: readonly number[], opts: ForwardOptions = {}): Promise<Float32Array> {
    const V = this.cfg.vocabSize;
    if (tokens.length === 0) throw new ModelError('forward() needs at least one token');
    if (this.position + tokens.length > this.ctxSize) {
      throw new ModelError(`${tokens.length} tokens at position ${this.position} do not fit the context of ${this.ctxSize} tokens`);
    }
    const out = new Float32Array(opts.allLogits ? tokens.length * V : V);
    for (let i = 0; i < tokens.length; i += this.batchSize) {
      const chunk = tokens.slice(i, i + this.batchSize);
      const wantAll = !!opts.allLogits;
      await this.forwardBatch(chunk, wantAll || i + chunk.length === tokens.length, wantAll);
      if (wantAll) out.set(this.s.logits.subarray(0, chunk.length * V), i * V);
      else if (i + chunk.length === tokens.length) out.set(this.s.logits.subarray((chunk.length - 1) * V, chunk.length * V));
    }
    return out;
  }

  private async forwardBatch(tokens: readonly number[], needLogits: boolean, allRows: boolean): Promise<void> {
    const { k, s, w, cfg } = this;
    const n = tokens.length;
    const { nEmbd: D, kvDim, nFF, nHeads, nKVHeads, headDim, rmsEps: eps } = cfg;
    const pos0 = this.position;

    // token embedding rows
    for (let t = 0; t < n; t++) await w.tokenEmbd.row(tokens[t], s.x, t * D);

    for (let l = 0; l < cfg.nLayers; l++) {
      const L = w.layers[l];
      // --- attention: n = RMSNorm(x); q,k,v = Wq n, Wk n, Wv n (one int8 quantization shared)
      k.rmsnorm(s.x, L.attnNorm, n, D, eps, s.xn);
      k.quantize(s.xn, n, D, s.actsEmbd);
      k.ternaryMatmul(L.wq, s.actsEmbd, n, s.q);
      k.ternaryMatmul(L.wk, s.actsEmbd, n, s.k);
      k.ternaryMatmul(L.wv, s.actsEmbd, n, s.v);
      // RoPE on q and k, then append k, v to the cache
      k.rope(s.q, n, nHeads, headDim, this.rope.half, pos0, this.rope.cos, this.rope.sin);
      k.rope(s.k, n, nKVHeads, headDim, this.rope.half, pos0, this.rope.cos, this.rope.sin);
      this.kv.write(l, pos0, n, s.k, s.v);
      // causal GQA attention over the cache: att = softmax(q K^T / sqrt(headDim)) V
      k.attention(s.q, this.kv.keys(l), this.kv.values(l), s.att, n, pos0, nHeads, nKVHeads, headDim, this.kv.ctx);
      // h = x + Wo(SubNorm(att))
      k.rmsnorm(s.att, L.attnSubNorm, n, D, eps, s.att);
      k.quantize(s.att, n, D, s.actsEmbd);
      k.ternaryMatmul(L.wo, s.actsEmbd, n, s.tmp);
      k.addInPlace(s.x, s.tmp, n * D);

      // --- FFN: m = RMSNorm(h); out = h + Wdown(SubNorm(act(Wgate m) * (Wup m)))
      k.rmsnorm(s.x, L.ffnNorm, n, D, eps, s.xn);
      k.quantize(s.xn, n, D, s.actsEmbd);
      k.ternaryMatmul(L.wGate, s.actsEmbd, n, s.gate);
      k.ternaryMatmul(L.wUp, s.actsEmbd, n, s.up);
      k.gatedActivation(cfg.ffnAct, s.gate, s.up, n * nFF);
      k.rmsnorm(s.gate, L.ffnSubNorm, n, nFF, eps, s.gate);
      k.quantize(s.gate, n, nFF, s.actsFF);
      k.ternaryMatmul(L.wDown, s.actsFF, n, s.tmp);
      k.addInPlace(s.x, s.tmp, n * D);
    }
    this.position += n;
    this.filled = Math.max(this.filled, this.position);
    if (!needLogits) return;

    // final norm and lm_head, for the last row only unless every position's logits are wanted
    const first = allRows ? 0 : n - 1;
    const rows = n - first;
    k.rmsnorm(s.x.subarray(first * D), w.outputNorm, rows, D, eps, s.xn);
    w.lmHead.forward(k, s.xn, rows, allRows ? s.logits : s.logits.subarray((n - 1) * cfg.vocabSize));
  }
}
