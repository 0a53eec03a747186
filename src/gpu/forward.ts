// The forward step on WebGPU: model/forward.ts step for step (its comments state the math), with
// the weights, the activations and the KV cache on the GPU. Pipelines, buffers and bind groups are
// made once, when the runner is made; a step writes two small buffers (the batch's embedding rows
// and its per-row table), records its dispatches into ONE command buffer, submits it, and reads back
// only the logits asked for.
//
// Dispatches per step: 14 per layer (norm+quantize, q, k, v, rope+KV store, attention,
// norm+quantize, o (+residual), norm+quantize, gate, up, activation, norm+quantize, down
// (+residual)), then the final norm, a quantize (int8 head) and one matmul per chunk of head rows.
import { ModelError, type ModelConfig } from '../model/config.js';
import type { Batch } from '../model/forward.js';
import type { KVCache, KVPool } from '../model/kv-cache.js';
import { checkBatch, type ForwardStep } from '../model/step.js';
import type { ModelWeights } from '../model/weights.js';
import { checkDevice, GpuError, MAP_READ_MODE, Usage, storageBuffer, uniformBuffer, uploadBuffer, type GpuContext } from './context.js';
import { GpuKV } from './kv.js';
import { bindGroup, createPipelines, type Pipelines } from './pipelines.js';
import { int8Words } from './shaders/matmul.js';
import type { GpuFloat, GpuInt8, GpuTernary } from './weights.js';

const MAX_GRID = 65535;

/** host f32 arrays (the norms) uploaded once per device */
const uploaded = new WeakMap<Float32Array, GPUBuffer>();
function normBuffer(ctx: GpuContext, a: Float32Array): GPUBuffer {
  let b = uploaded.get(a);
  if (!b) uploaded.set(a, (b = uploadBuffer(ctx, a)));
  return b;
}

interface Dispatch {
  pipeline: GPUComputePipeline;
  group: GPUBindGroup;
  /** workgroups (x, y) for a step of n rows of which m ask for logits */
  grid: (n: number, m: number) => [number, number];
}

const perRow = (n: number): [number, number] => [n, 1]; // one workgroup per batch row (x = row)
const perOutRow = (_n: number, m: number): [number, number] => [m, 1];
/** x workgroups for each batch row (y = row) */
const xByRows = (x: number) => (n: number): [number, number] => [x, n];
/** one workgroup per matrix row (x) and tile of 4 batch rows (y) */
/** one thread per matrix row (64 to a workgroup along x) and tile of 4 batch rows (y) */
const xByTiles = (rows: number) => (n: number): [number, number] => [Math.ceil(rows / 64), Math.ceil(n / 4)];
const xByOutTiles = (rows: number) => (_n: number, m: number): [number, number] => [Math.ceil(rows / 64), Math.ceil(m / 4)];

export class GpuForward implements ForwardStep {
  readonly device = 'webgpu';
  readonly maxLogitRows: number;
  private readonly p: Pipelines;
  private readonly meta: GPUBuffer;
  private readonly metaHost: Uint32Array<ArrayBuffer>;
  private readonly xHost: Float32Array<ArrayBuffer>;
  private readonly b: Record<'x' | 'q' | 'k' | 'v' | 'att' | 'gate' | 'up' | 'acts' | 'scales' | 'sums' | 'xn' | 'logits' | 'scores' | 'rope', GPUBuffer>;
  private readonly readback: GPUBuffer;
  private readonly logitsHost: Float32Array;
  /** a step's dispatches, made once per KV pool (the attention and KV-store bind groups name its buffers) */
  private readonly perPool = new WeakMap<KVPool, Dispatch[]>();
  private busy = false;

  constructor(private readonly ctx: GpuContext, readonly cfg: ModelConfig, private readonly w: ModelWeights,
              readonly maxRows: number, maxLogitRows: number, readonly maxPos: number) {
    if (!(Number.isInteger(maxRows) && maxRows > 0)) throw new ModelError(`batch rows must be a positive integer, got ${maxRows}`);
    if (cfg.headDim > 256) throw new GpuError(`head dimension ${cfg.headDim} is more than the 256 the attention shader holds`);
    this.maxLogitRows = Math.max(1, Math.min(maxLogitRows, maxRows));
    const { nEmbd: D, nFF, kvDim, vocabSize: V, nHeads } = cfg;
    const R = maxRows, M = this.maxLogitRows;
    this.p = createPipelines(ctx, R);
    const f32 = (n: number) => storageBuffer(ctx, n * 4);
    const half = cfg.ropeDim / 2;
    const rope = new Float32Array(2 * maxPos * half);
    for (let i = 0; i < half; i++) {
      const freq = Math.pow(cfg.ropeTheta, (-2 * i) / (2 * half)); // the CPU's table (forward.ts RopeTable)
      for (let p = 0; p < maxPos; p++) {
        rope[p * half + i] = Math.cos(p * freq);
        rope[maxPos * half + p * half + i] = Math.sin(p * freq);
      }
    }
    this.b = {
      x: f32(R * D), q: f32(R * D), k: f32(R * kvDim), v: f32(R * kvDim), att: f32(R * D), gate: f32(R * nFF), up: f32(R * nFF),
      acts: storageBuffer(ctx, R * int8Words(Math.max(D, nFF)) * 4), scales: f32(R), sums: f32(R),
      xn: f32(M * D), logits: f32(M * V), scores: f32(R * nHeads * maxPos), rope: uploadBuffer(ctx, rope),
    };
    this.meta = storageBuffer(ctx, (4 + 3 * R) * 4);
    this.metaHost = new Uint32Array(4 + 3 * R);
    this.xHost = new Float32Array(R * D);
    this.logitsHost = new Float32Array(M * V);
    this.readback = ctx.device.createBuffer({ size: M * V * 4, usage: Usage.MAP_READ | Usage.COPY_DST });
  }

  /** norm (optional) + quantize of `src` rows of `dim` into the activations */
  private quantize(src: GPUBuffer, gamma: Float32Array | null, dim: number, grid: Dispatch['grid'] = perRow): Dispatch {
    const { ctx, p } = this;
    const u = uniformBuffer(ctx, [dim, int8Words(dim), { f: this.cfg.rmsEps }, gamma ? 1 : 0]);
    const g = gamma ? normBuffer(ctx, gamma) : src;
    return { pipeline: p.quantize, group: bindGroup(ctx, p.quantize, [u, this.meta, src, g, this.b.acts, this.b.scales, this.b.sums]), grid };
  }

  private ternary(m: GpuTernary, out: GPUBuffer, accumulate = false): Dispatch {
    const { ctx, p } = this;
    const u = uniformBuffer(ctx, [m.rows, m.words, m.rows, 0, { f: m.scale }, accumulate ? 1 : 0, 0]);
    return { pipeline: p.ternary, group: bindGroup(ctx, p.ternary, [u, this.meta, m.buf, this.b.acts, this.b.scales, this.b.sums, out]), grid: xByTiles(m.rows) };
  }

  /** every dispatch of a step, in order, with its bind groups (made once per KV pool) */
  private stepDispatches(kv: GpuKV): Dispatch[] {
    const { ctx, p, b, cfg, w } = this;
    const { nEmbd: D, nFF, nHeads, nKVHeads, headDim, kvDim } = cfg;
    const half = cfg.ropeDim / 2;
    const pool = kv.pool;
    const out: Dispatch[] = [];
    const ropeU = uniformBuffer(ctx, [nHeads, nKVHeads, headDim, half, pool.size, this.maxPos * half]);
    const attU = uniformBuffer(ctx, [nHeads, nKVHeads, headDim, pool.size, this.maxPos, { f: 1 / Math.sqrt(headDim) }]);
    const actU = uniformBuffer(ctx, [nFF, cfg.ffnAct === 'silu' ? 1 : 0]);
    const ropeThreads = nHeads * half + 2 * kvDim;
    for (let l = 0; l < cfg.nLayers; l++) {
      const L = w.layers[l]!;
      // attention: n = RMSNorm(x) quantized; q, k, v
      out.push(this.quantize(b.x, L.attnNorm, D));
      out.push(this.ternary(L.wq as GpuTernary, b.q));
      out.push(this.ternary(L.wk as GpuTernary, b.k));
      out.push(this.ternary(L.wv as GpuTernary, b.v));
      // RoPE on q and k at each row's position; k, v into the row's sequence in the pool
      out.push({ pipeline: p.ropeStore, group: bindGroup(ctx, p.ropeStore, [ropeU, this.meta, b.q, b.k, b.v, kv.k[l]!, kv.v[l]!, b.rope]),
        grid: xByRows(Math.ceil(ropeThreads / 64)) });
      // causal GQA attention per (head, row)
      out.push({ pipeline: p.attention, group: bindGroup(ctx, p.attention, [attU, this.meta, b.q, kv.k[l]!, kv.v[l]!, b.att, b.scores]), grid: xByRows(nHeads) });
      // x += Wo(SubNorm(att))
      out.push(this.quantize(b.att, L.attnSubNorm, D));
      out.push(this.ternary(L.wo as GpuTernary, b.x, true));
      // FFN: m = RMSNorm(x) quantized; x += Wdown(SubNorm(act(Wgate m) * (Wup m)))
      out.push(this.quantize(b.x, L.ffnNorm, D));
      out.push(this.ternary(L.wGate as GpuTernary, b.gate));
      out.push(this.ternary(L.wUp as GpuTernary, b.up));
      out.push({ pipeline: p.activation, group: bindGroup(ctx, p.activation, [actU, this.meta, b.gate, b.up]), grid: xByRows(Math.ceil(nFF / 64)) });
      out.push(this.quantize(b.gate, L.ffnSubNorm, nFF));
      out.push(this.ternary(L.wDown as GpuTernary, b.x, true));
    }
    // final norm of the rows asked for (gathered), then the head
    const normU = uniformBuffer(ctx, [D, { f: cfg.rmsEps }]);
    out.push({ pipeline: p.rmsnorm, group: bindGroup(ctx, p.rmsnorm, [normU, this.meta, b.x, normBuffer(ctx, w.outputNorm), b.xn]), grid: perOutRow });
    const V = cfg.vocabSize;
    if (w.lmHead.precision === 'int8') {
      out.push(this.quantize(b.xn, null, D, perOutRow));
      for (const c of w.lmHead.chunks) {
        const m = c.m as GpuInt8;
        for (const part of m.parts) {
          const u = uniformBuffer(ctx, [part.rows, m.words, V, c.start + part.start, { f: 1 }, 0, 1]);
          out.push({ pipeline: p.int8, group: bindGroup(ctx, p.int8, [u, this.meta, part.buf, b.acts, b.scales, part.scales!, b.logits]), grid: xByOutTiles(part.rows) });
        }
      }
    } else {
      for (const c of w.lmHead.chunks) {
        const m = c.m as GpuFloat;
        const pl = m.type === 'f16' ? p.floatF16 : p.floatF32;
        for (const part of m.parts) {
          const u = uniformBuffer(ctx, [part.rows, m.cols, V, c.start + part.start]);
          out.push({ pipeline: pl, group: bindGroup(ctx, pl, [u, this.meta, part.buf, b.xn, b.logits]), grid: xByOutTiles(part.rows) });
        }
      }
    }
    for (const d of out) {
      const [x, y] = d.grid(this.maxRows, this.maxLogitRows);
      if (x > MAX_GRID || y > MAX_GRID) throw new GpuError(`a dispatch of ${x} x ${y} workgroups is more than one dispatch covers (${MAX_GRID} a side)`);
    }
    return out;
  }

  /** ForwardStep.run (model/step.ts) */
  async run(batch: Batch, caches: readonly KVCache[]): Promise<Float32Array> {
    const { ctx, cfg, b } = this;
    checkDevice(ctx);
    checkBatch(batch, caches, cfg, this.maxRows, this.maxPos, this.maxLogitRows);
    if (this.busy) throw new ModelError('a GPU forward step is already running on this runner');
    const n = batch.n, D = cfg.nEmbd, V = cfg.vocabSize;
    const pool = caches[batch.seq[0]!]!.pool;
    for (let r = 0; r < n; r++) {
      if (caches[batch.seq[r]!]!.pool !== pool) throw new ModelError('on the GPU, the sequences of one batch must share one KV pool');
    }
    const kv = GpuKV.of(ctx, pool);
    let dispatches = this.perPool.get(pool);
    if (!dispatches) this.perPool.set(pool, (dispatches = this.stepDispatches(kv)));

    this.busy = true;
    try {
      // token embedding rows (read from the file on the host), and the per-row table
      for (let r = 0; r < n; r++) await this.w.tokenEmbd.row(batch.token[r]!, this.xHost, r * D);
      const meta = this.metaHost, R = this.maxRows;
      meta.fill(0);
      let m = 0;
      for (let r = 0; r < n; r++) {
        const c = caches[batch.seq[r]!]!;
        meta[4 + r] = batch.pos[r]!;
        meta[4 + R + r] = c.start;
        if (batch.logits[r]) meta[4 + 2 * R + m++] = r;
      }
      meta[0] = n;
      meta[1] = m;
      for (let r = 0; r < n; r++) {
        const c = caches[batch.seq[r]!]!;
        pool.allocator.written(c.id, batch.pos[r]! + 1); // what KVCache.write notes on the CPU
      }

      const dev = ctx.device;
      dev.pushErrorScope('validation');
      dev.pushErrorScope('out-of-memory');
      dev.queue.writeBuffer(b.x, 0, this.xHost, 0, n * D);
      dev.queue.writeBuffer(this.meta, 0, meta);
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      for (const d of dispatches) {
        const [x, y] = d.grid(n, m);
        if (x === 0 || y === 0) continue;
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.group);
        pass.dispatchWorkgroups(x, y);
      }
      pass.end();
      if (m > 0) enc.copyBufferToBuffer(b.logits, 0, this.readback, 0, m * V * 4);
      dev.queue.submit([enc.finish()]);
      const [oom, invalid] = await Promise.all([dev.popErrorScope(), dev.popErrorScope()]);
      if (oom) throw new GpuError(`the GPU ran out of memory in a forward step: ${oom.message}`);
      if (invalid) throw new GpuError(`the GPU refused a forward step: ${invalid.message}`);
      if (m === 0) {
        await dev.queue.onSubmittedWorkDone();
        return this.logitsHost.subarray(0, 0);
      }
      try {
        await this.readback.mapAsync(MAP_READ_MODE, 0, m * V * 4);
      } catch (e) {
        checkDevice(ctx);
        throw new GpuError(`reading the logits back from the GPU failed: ${(e as Error).message}`);
      }
      this.logitsHost.set(new Float32Array(this.readback.getMappedRange(0, m * V * 4)));
      this.readback.unmap();
      return this.logitsHost.subarray(0, m * V);
    } finally {
      this.busy = false;
    }
  }
}
