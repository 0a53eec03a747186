// Embeddings from the loaded model (llama-server with --embedding): the final-norm hidden states of
// the input's tokens, pooled into one vector per input and L2-normalised (llama-server's default).
//
//   POST /v1/embeddings, /embeddings   OpenAI's: {input: text | texts | token ids | lists of ids,
//                                      encoding_format: float | base64} -> {data: [{embedding, index}], usage}
//   POST /embedding                    llama-server's: {content, embd_normalize?} -> [{index, embedding: [[...]]}]
//                                      (with --pooling none, one vector per token)
//   POST /v1/rerank, /rerank           501: ranking needs a reranker model (a classification head); a
//                                      text generator has none, and cosine similarity of embeddings
//                                      would be a different thing under the same name
//
// Pooling (--pooling): mean (default), last (the last token's state, what a causal model has seen
// everything by), cls (the first token's), none (per token; /embedding only). Off unless the server
// was started with --embedding (501 naming the flag, as llama-server). The inputs run one at a time
// on a sequence of their own (made on first use, --embedding-ctx tokens, f16 cache), beside the
// generation slots, so long inputs slow generation down while they run.
import type { Sequence } from '../model/forward.js';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.js';
import { type Ctx, readJson, sendJson } from './http.js';
import type { LlamaRouteHost } from './llama-routes.js';
import { asObject } from './requests.js';
import type { GenerationService } from './service.js';

export type Pooling = 'mean' | 'last' | 'cls' | 'none';
export const POOLINGS: readonly Pooling[] = ['mean', 'last', 'cls', 'none'];

export interface EmbeddingOptions {
  pooling: Pooling;
  /** most tokens of one input (default 2048, at most the model's context) */
  ctx?: number;
}

/** Pools per-token states (n, D) into one vector. */
export function pool(states: Float32Array, n: number, D: number, how: Exclude<Pooling, 'none'>): Float32Array {
  const out = new Float32Array(D);
  if (how === 'cls') out.set(states.subarray(0, D));
  else if (how === 'last') out.set(states.subarray((n - 1) * D, n * D));
  else {
    for (let t = 0; t < n; t++) for (let i = 0; i < D; i++) out[i] += states[t * D + i]!;
    for (let i = 0; i < D; i++) out[i] /= n;
  }
  return out;
}

/** llama.cpp's embd_normalize: -1 none, 0 max-abs (int16 scale), 1 taxicab, 2 Euclidean (default), p > 2 p-norm. */
export function normalize(v: Float32Array, p: number): number[] {
  let norm = 1;
  if (p === 0) norm = Math.max(...Array.from(v, Math.abs)) / 32760;
  else if (p > 0) {
    let sum = 0;
    for (const x of v) sum += Math.abs(x) ** p;
    norm = sum ** (1 / p);
  }
  const k = p < 0 || norm === 0 ? 1 : 1 / norm;
  return Array.from(v, (x) => x * k);
}

class Embedder {
  private seq: Sequence | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  readonly ctx: number;

  constructor(private readonly service: GenerationService, readonly opts: EmbeddingOptions) {
    this.ctx = Math.min(opts.ctx ?? 2048, service.model.config.contextLength);
    // the sequence lives in the model's memory: it goes when the server sleeps (sleep.ts), and is made again after
    service.onRelease(() => (this.seq = undefined));
  }

  /** The per-token states (n, D) of one input, run after the inputs before it. */
  states(tokens: number[]): Promise<Float32Array> {
    const run = this.queue.then(async () => {
      this.seq ??= this.service.model.createSequence({ ctxSize: this.ctx, cacheType: 'f16' });
      const D = this.service.model.config.nEmbd;
      const out = new Float32Array(tokens.length * D);
      let at = 0;
      this.seq.truncate(0);
      await this.seq.forward(tokens, {
        allLogits: true,
        onHidden: (h) => {
          out.set(h, at);
          at += h.length;
        },
      });
      return out;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** One input's token ids (text is tokenized with BOS as the model adds it). */
function inputs(service: GenerationService, v: unknown, param: string, max: number): number[][] {
  if (v === undefined || v === null) throw missingParam(param);
  const one = (x: unknown, where: string): number[] => {
    let ids: number[];
    if (typeof x === 'string') {
      if (x === '') throw invalidParam(param, `'${where}' is empty`);
      ids = service.tokenize(x, true, false);
    }
    else if (Array.isArray(x) && x.every((t) => typeof t === 'number')) {
      x.forEach((t, i) => {
        if (!Number.isInteger(t) || t < 0 || t >= service.vocabSize) throw invalidParam(param, `'${where}' token ${t} at index ${i} is not a token id of this model`);
      });
      ids = x as number[];
    } else throw invalidType(where, 'a string or token ids', x);
    if (ids.length === 0) throw invalidParam(param, `'${where}' is empty`);
    if (ids.length > max) throw invalidParam(param, `'${where}' has ${ids.length} tokens, more than the ${max} an embedding input may have (--embedding-ctx)`);
    return ids;
  };
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number')) return [one(v, param)];
  if (Array.isArray(v)) {
    if (v.length === 0) throw invalidParam(param, `'${param}' must not be an empty list`);
    return v.map((x, i) => one(x, `${param}[${i}]`));
  }
  return [one(v, param)];
}

export function registerEmbeddingRoutes(host: LlamaRouteHost, opts: EmbeddingOptions | undefined): void {
  const { route, service } = host;
  const off = () => new ApiError(501, 'this server does not compute embeddings: start it with --embedding', 'not_supported_error', null, 'not_supported');
  const embedder = opts ? new Embedder(service, opts) : undefined;
  const D = service.model.config.nEmbd;

  route(['/v1/embeddings', '/embeddings'], 'POST', async (c: Ctx) => {
    if (!embedder) throw off();
    const b = asObject(await readJson(c, host.maxBody));
    if (embedder.opts.pooling === 'none') throw invalidParam('input', "this server pools with 'none' (one vector per token), which OpenAI's embeddings cannot carry: use /embedding");
    const fmt = b.encoding_format ?? 'float';
    if (fmt !== 'float' && fmt !== 'base64') throw invalidParam('encoding_format', `'encoding_format' must be "float" or "base64", got ${JSON.stringify(fmt)}`);
    if (b.dimensions !== undefined && b.dimensions !== null && b.dimensions !== D) {
      throw invalidParam('dimensions', `this model's embeddings have ${D} dimensions; 'dimensions' cannot change that`);
    }
    const list = inputs(service, b.input, 'input', embedder.ctx);
    const data = [];
    let used = 0;
    for (const [index, ids] of list.entries()) {
      const v = normalize(pool(await embedder.states(ids), ids.length, D, embedder.opts.pooling as Exclude<Pooling, 'none'>), 2);
      used += ids.length;
      const embedding = fmt === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
      data.push({ object: 'embedding', index, embedding });
    }
    sendJson(c.res, 200, { object: 'list', data, model: service.modelId, usage: { prompt_tokens: used, total_tokens: used } });
  });

  route(['/embedding'], 'POST', async (c: Ctx) => {
    if (!embedder) throw off();
    const b = asObject(await readJson(c, host.maxBody));
    const p = b.embd_normalize ?? 2;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < -1) throw invalidParam('embd_normalize', `'embd_normalize' must be -1, 0, 1, 2 or a larger integer, got ${JSON.stringify(p)}`);
    const list = inputs(service, b.content ?? b.input, b.content !== undefined ? 'content' : 'input', embedder.ctx);
    const out = [];
    for (const [index, ids] of list.entries()) {
      const states = await embedder.states(ids);
      const how = embedder.opts.pooling;
      const rows = how === 'none' ? ids.map((_, t) => normalize(states.subarray(t * D, (t + 1) * D), p)) : [normalize(pool(states, ids.length, D, how), p)];
      out.push({ index, embedding: rows });
    }
    sendJson(c.res, 200, out);
  });

  route(['/v1/rerank', '/rerank', '/reranking', '/v1/reranking'], 'POST', () => {
    throw new ApiError(
      501,
      'reranking needs a reranker model (one with a classification head, pooling rank); this server\'s model generates text',
      'not_supported_error',
      null,
      'not_supported',
    );
  });
}
