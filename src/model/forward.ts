// The BitNet b1.58 forward pass (SPEC.md §1-§2), top to bottom like the model's equations, over a
// ragged batch: every row is one token of some sequence at some position (llama.cpp's llama_batch).
// Rows of several sequences go through each ternary matmul together as ONE GEMM (the weights are
// read and unpacked once for all of them); attention runs per row against its own sequence's KV
// cache. Which rows belong to which sequence is data (Batch.seq), not logic of this module.
//
// Every BitLinear input is quantized per token (per row) to int8 (kernels.quantize) right after the
// RMSNorm that feeds it; q/k/v share one quantization, gate/up share one. Nothing in a row's math
// depends on the other rows (per-row quantization, exact integer dots, attention computed per row),
// so a sequence's logits are the same bits whether it runs alone or batched with others.
import type { Kernels, QuantizedActs } from '../kernels/api.js';
import type { ModelConfig } from './config.js';
import { ModelError } from './config.js';
import { KVCache, type KVCacheType } from './kv-cache.js';
import type { ModelWeights } from './weights.js';
import { checkBatch, type ForwardStep } from './step.js';

/** A ragged batch: parallel arrays, one entry per row (capacity rows, the first n in use). */
export interface Batch {
  n: number;
  readonly token: Int32Array; // (capacity) token id of the row
  readonly pos: Int32Array; // (capacity) its position in its sequence
  readonly seq: Int32Array; // (capacity) its sequence: an index into the caches given to forward()
  readonly logits: Uint8Array; // (capacity) 1 = return this row's logits
}

export function createBatch(capacity: number): Batch {
  return { n: 0, token: new Int32Array(capacity), pos: new Int32Array(capacity), seq: new Int32Array(capacity), logits: new Uint8Array(capacity) };
}

/** Appends rows: tokens of sequence `seq` at positions pos0.., logits for the last one (or all). */
export function addRows(b: Batch, seq: number, tokens: readonly number[], pos0: number, logits: 'last' | 'all' | 'none' = 'last'): void {
  if (b.n + tokens.length > b.token.length) throw new ModelError(`batch holds ${b.token.length} rows, ${b.n + tokens.length} given`);
  for (let i = 0; i < tokens.length; i++) {
    const r = b.n++;
    b.token[r] = tokens[i]!;
    b.pos[r] = pos0 + i;
    b.seq[r] = seq;
    b.logits[r] = logits === 'all' || (logits === 'last' && i === tokens.length - 1) ? 1 : 0;
  }
}

/** Activation buffers for up to `rows` rows, allocated once (nothing is allocated per step). */
class RunState {
  readonly x: Float32Array; // (rows, nEmbd) residual stream
  readonly xn: Float32Array; // (rows, nEmbd) normed input of a sub-block
  readonly q: Float32Array; // (rows, nEmbd) queries
  readonly k: Float32Array; // (rows, kvDim) keys of the batch
  readonly v: Float32Array; // (rows, kvDim) values of the batch
  readonly att: Float32Array; // (rows, nEmbd) attention output (concat of heads)
  readonly tmp: Float32Array; // (rows, nEmbd) a sub-block's output before the residual add
  readonly gate: Float32Array; // (rows, nFF)
  readonly up: Float32Array; // (rows, nFF)
  readonly actsEmbd: QuantizedActs; // int8 of an nEmbd-wide input
  readonly actsFF: QuantizedActs; // int8 of an nFF-wide input
  readonly logits: Float32Array; // (logitRows, vocab) the rows whose logits are asked for

  constructor(k: Kernels, c: ModelConfig, readonly rows: number, readonly logitRows: number) {
    this.x = k.allocF32(rows * c.nEmbd);
    this.xn = k.allocF32(rows * c.nEmbd);
    this.q = k.allocF32(rows * c.nEmbd);
    this.k = k.allocF32(rows * c.kvDim);
    this.v = k.allocF32(rows * c.kvDim);
    this.att = k.allocF32(rows * c.nEmbd);
    this.tmp = k.allocF32(rows * c.nEmbd);
    this.gate = k.allocF32(rows * c.nFF);
    this.up = k.allocF32(rows * c.nFF);
    this.actsEmbd = k.allocActs(rows, c.nEmbd);
    this.actsFF = k.allocActs(rows, c.nFF);
    this.logits = k.allocF32(logitRows * c.vocabSize);
  }
}

/** NEOX ("rotate half") RoPE tables in the kernels' memory: cos/sin of pos * theta^(-2i/ropeDim), i < ropeDim/2. */
class RopeTable {
  readonly cos: Float32Array;
  readonly sin: Float32Array;
  constructor(k: Kernels, readonly half: number, readonly ctx: number, theta: number) {
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

/**
 * The model's forward pass over ragged batches of up to `maxRows` rows (of which at most
 * `maxLogitRows` ask for logits), positions below `maxPos`. Not re-entrant: one batch at a time.
 */
export class Forward implements ForwardStep {
  readonly device = 'cpu';
  private readonly s: RunState;
  private readonly rope: RopeTable;
  // each row's caches of the layer at hand (its sequence's), handed to attentionRows
  private readonly kRows: (Float32Array | Uint16Array)[] = [];
  private readonly vRows: (Float32Array | Uint16Array)[] = [];
  private readonly ctxRows: Int32Array;

  constructor(private readonly k: Kernels, readonly cfg: ModelConfig, private readonly w: ModelWeights,
              readonly maxRows: number, maxLogitRows: number, readonly maxPos: number) {
    if (!(Number.isInteger(maxRows) && maxRows > 0)) throw new ModelError(`batch rows must be a positive integer, got ${maxRows}`);
    this.s = new RunState(k, cfg, maxRows, Math.max(1, Math.min(maxLogitRows, maxRows)));
    this.rope = new RopeTable(k, cfg.ropeDim / 2, maxPos, cfg.ropeTheta);
    this.ctxRows = new Int32Array(maxRows);
  }

  get maxLogitRows(): number {
    return this.s.logitRows;
  }

  /** ForwardStep.run (step.ts) */
  async run(b: Batch, caches: readonly KVCache[]): Promise<Float32Array> {
    const { k, s, w, cfg } = this;
    const n = b.n;
    const { nEmbd: D, nFF, nHeads, nKVHeads, headDim, kvDim, rmsEps: eps, vocabSize: V } = cfg;
    this.check(b, caches);

    // token embedding rows: x (n, D)
    for (let r = 0; r < n; r++) await w.tokenEmbd.row(b.token[r]!, s.x, r * D);

    for (let l = 0; l < cfg.nLayers; l++) {
      const L = w.layers[l]!;
      // --- attention: n = RMSNorm(x); q,k,v = Wq n, Wk n, Wv n (one int8 quantization shared; one GEMM each over all rows)
      k.rmsnorm(s.x, L.attnNorm, n, D, eps, s.xn);
      k.quantize(s.xn, n, D, s.actsEmbd);
      k.ternaryMatmuls([L.wq, L.wk, L.wv], s.actsEmbd, n, [s.q, s.k, s.v]); // q (n, D), k and v (n, kvDim)
      // RoPE on q and k at each row's own position, then append k, v to the row's sequence cache
      // (runs of consecutive positions of one sequence go together)
      for (let r = 0; r < n; ) {
        const run = this.runLength(b, r);
        const pos0 = b.pos[r]!;
        k.rope(s.q.subarray(r * D, (r + run) * D), run, nHeads, headDim, this.rope.half, pos0, this.rope.cos, this.rope.sin);
        k.rope(s.k.subarray(r * kvDim, (r + run) * kvDim), run, nKVHeads, headDim, this.rope.half, pos0, this.rope.cos, this.rope.sin);
        caches[b.seq[r]!]!.write(l, pos0, run, s.k.subarray(r * kvDim, (r + run) * kvDim), s.v.subarray(r * kvDim, (r + run) * kvDim));
        r += run;
      }
      // causal GQA attention, every row over its own cache (positions 0..pos), one kernel call for the batch:
      // att[r] = softmax(q[r] K^T / sqrt(headDim)) V
      for (let r = 0; r < n; r++) {
        const kv = caches[b.seq[r]!]!;
        this.kRows[r] = kv.keys(l);
        this.vRows[r] = kv.values(l);
        this.ctxRows[r] = kv.stride;
      }
      k.attentionRows(s.q, this.kRows, this.vRows, s.att, n, b.pos, nHeads, nKVHeads, headDim, this.ctxRows);
      // h = x + Wo(SubNorm(att))
      k.rmsnorm(s.att, L.attnSubNorm, n, D, eps, s.att);
      k.quantize(s.att, n, D, s.actsEmbd);
      k.ternaryMatmul(L.wo, s.actsEmbd, n, s.tmp);
      k.addInPlace(s.x, s.tmp, n * D);

      // --- FFN: m = RMSNorm(h); out = h + Wdown(SubNorm(act(Wgate m) * (Wup m)))
      k.rmsnorm(s.x, L.ffnNorm, n, D, eps, s.xn);
      k.quantize(s.xn, n, D, s.actsEmbd);
      k.ternaryMatmuls([L.wGate, L.wUp], s.actsEmbd, n, [s.gate, s.up]); // (n, nFF) each
      k.gatedActivation(cfg.ffnAct, s.gate, s.up, n * nFF);
      k.rmsnorm(s.gate, L.ffnSubNorm, n, nFF, eps, s.gate);
      k.quantize(s.gate, n, nFF, s.actsFF);
      k.ternaryMatmul(L.wDown, s.actsFF, n, s.tmp); // (n, D)
      k.addInPlace(s.x, s.tmp, n * D);
    }

    // final norm and lm_head for the flagged rows only: gathered into xn (m, D), logits (m, V)
    let m = 0;
    for (let r = 0; r < n; r++) {
      if (!b.logits[r]) continue;
      if (m !== r) s.x.copyWithin(m * D, r * D, (r + 1) * D);
      m++;
    }
    this.hiddenRows = 0;
    if (m === 0) return s.logits.subarray(0, 0);
    k.rmsnorm(s.x, w.outputNorm, m, D, eps, s.xn);
    w.lmHead.forward(k, s.xn, m, s.logits);
    this.hiddenRows = m;
    return s.logits.subarray(0, m * V);
  }

  private hiddenRows = 0;

  /** The final-norm hidden states (m, nEmbd) of the rows whose logits the last run() returned (a view, valid until the next run). */
  lastHidden(): Float32Array {
    return this.s.xn.subarray(0, this.hiddenRows * this.cfg.nEmbd);
  }

  /** rows r, r+1, ... of one sequence at consecutive positions */
  private runLength(b: Batch, r: number): number {
    let e = r + 1;
    while (e < b.n && b.seq[e] === b.seq[r] && b.pos[e] === b.pos[e - 1]! + 1) e++;
    return e - r;
  }

  private check(b: Batch, caches: readonly KVCache[]): void {
    checkBatch(b, caches, this.cfg, this.maxRows, this.maxPos, this.s.logitRows);
  }
}

export interface ForwardOptions {
  /** return the logits of every position of the batch, not just the last */
  allLogits?: boolean;
  /**
   * called after each chunk with the final-norm hidden states (rows, nEmbd) of the rows whose logits
   * it computed (every row with allLogits), first position first; a view valid during the call
   */
  onHidden?: (hidden: Float32Array, rows: number) => void;
}

/** One sequence with a cache of its own on a loaded model: the single-sequence use of Forward. */
export class Sequence {
  private readonly batch: Batch;
  /** the position the next token goes to */
  position = 0;
  /** positions 0..filled-1 hold keys/values written by earlier calls */
  private filled = 0;

  /** kv: a cache of ctxSize positions; fwd: a step of batchSize rows (all asking for logits) on the same device */
  constructor(
    readonly cfg: ModelConfig,
    readonly kv: KVCache,
    private readonly fwd: ForwardStep,
    readonly ctxSize: number,
    readonly batchSize: number,
  ) {
    this.batch = createBatch(batchSize);
  }

  /** the CPU sequence: a cache of its own in the kernels' memory */
  static onCpu(k: Kernels, cfg: ModelConfig, w: ModelWeights, ctxSize: number, batchSize: number, cacheType: KVCacheType = 'f32'): Sequence {
    const kv = new KVCache(k, cfg.nLayers, ctxSize, cfg.nKVHeads, cfg.headDim, cacheType);
    return new Sequence(cfg, kv, new Forward(k, cfg, w, batchSize, batchSize, ctxSize), ctxSize, batchSize);
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
   * Runs tokens through the model starting at this.position, appending them to the KV cache, in
   * batches of batchSize rows. Returns the logits after the last token (vocab), or after every token
   * (n * vocab) with allLogits.
   */
  async forward(tokens: readonly number[], opts: ForwardOptions = {}): Promise<Float32Array> {
    const V = this.cfg.vocabSize;
    if (tokens.length === 0) throw new ModelError('forward() needs at least one token');
    if (this.position + tokens.length > this.ctxSize) {
      throw new ModelError(`${tokens.length} tokens at position ${this.position} do not fit the context of ${this.ctxSize} tokens`);
    }
    const wantAll = !!opts.allLogits;
    const out = new Float32Array(wantAll ? tokens.length * V : V);
    for (let i = 0; i < tokens.length; i += this.batchSize) {
      const chunk = tokens.slice(i, i + this.batchSize);
      const last = i + chunk.length === tokens.length;
      this.batch.n = 0;
      addRows(this.batch, 0, chunk, this.position, wantAll ? 'all' : last ? 'last' : 'none');
      const logits = await this.fwd.run(this.batch, [this.kv]);
      if (opts.onHidden) {
        if (!this.fwd.lastHidden) throw new ModelError(`hidden states are not available on the ${this.fwd.device} path`);
        const h = this.fwd.lastHidden();
        opts.onHidden(h, h.length / this.cfg.nEmbd);
      }
      this.position += chunk.length;
      this.filled = Math.max(this.filled, this.position);
      if (wantAll) out.set(logits, i * V);
      else if (last) out.set(logits);
    }
    return out;
  }
}
