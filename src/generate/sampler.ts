// Token sampler: logits -> one token id, following llama.cpp's default chain order
//
//   penalties -> logit bias -> top_k -> top_p -> min_p -> temperature -> softmax -> draw
//
// (llama.cpp's common chain adds the logit bias before the penalties; the two orders differ only
// for a token that is both biased and repeat-penalised, and not at all for bans.)
//
// Semantics, per stage (all "off" values are the defaults):
//   penalties    see penalties.ts (repeat: llama.cpp divide/multiply; presence/frequency: OpenAI's
//                formula), over the last repeatLastN (64) tokens of the history.
//   logit bias   l += bias; a bias <= -100 (OpenAI's "ban" value) or -Infinity bans the token.
//                Banned (-Infinity) tokens are never candidates.
//   temperature  <= 0: greedy = argmax after penalties and bias, ties -> lowest id; the
//                truncation stages and the random generator are then not used at all.
//   top_k        keep the k highest logits (0 = off); ties broken towards the lowest id.
//   top_p        nucleus over the softmax of the (untempered) logits that survive top_k: sort
//                descending, keep the shortest prefix whose probability sum reaches p (the token
//                that crosses p is kept). 1 = off.
//   min_p        keep tokens with p >= min_p * p_max, i.e. logit >= max + ln(min_p). 0 = off.
//   then         softmax of (logit - max) / temperature over the survivors and one uniform draw.
//
// Speed (vocab 128256): one copy of the logits into a reusable buffer, penalties in
// O(repeatLastN), one max scan, then
//   - top_k: partial selection with a size-k min-heap, O(V log k), then only k values sorted;
//   - top_p without top_k: EXACT, without sorting the vocabulary: one pass computes the full
//     softmax normaliser Z and gathers the tokens within 8 nats of the max (and above min_p's
//     floor when set); only those are sorted. If their mass is below p*Z the nucleus reaches
//     further down, so the window widens (x4, then everything) and the gather repeats. Flat
//     distributions therefore cost a full sort; peaked ones (the usual case) a few hundred items;
//   - min_p alone: one gather pass, no sort;
//   - temperature alone: one exp pass over the vocabulary, no sort.
// Buffers (a copy of the logits, candidate ids, weights) are allocated once and reused; they grow
// only if a longer logits vector arrives.
//
// Randomness: xoshiro128** (rng.ts) seeded with `seed`, or with a random seed (reported as
// `sampler.seed`) when none is given. Same seed + same logits/history sequence = same tokens.
//
// Logprobs (`logprobs()` after `sample()`): log-softmax of the logits AFTER penalties and bias,
// BEFORE top_k/top_p/min_p and temperature - the model's distribution as adjusted by the request,
// which is what OpenAI reports. Banned tokens have logprob -Infinity.

import { applyPenalties, penaltiesAreNeutral, type PenaltyOptions } from './penalties.js';
import { randomSeed, Xoshiro128 } from './rng.js';
import { applyTokenMask } from './constraint.js';

/**
 * Sampling found no token it may pick: every logit is -Infinity after the request's logit bias and
 * constraint. Caused by the request (a server answers it with a 400), not by the model.
 */
export class NoTokenError extends Error {
  override name = 'NoTokenError';
  constructor(readonly reason: 'bias' | 'constraint', message: string) {
    super(message);
  }
}

export interface SamplerOptions {
  /** Softmax temperature; <= 0 selects greedy decoding. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off (default). */
  topK?: number;
  /** Nucleus probability in (0, 1]; 1 = off (default). */
  topP?: number;
  /** Minimum probability relative to the top token, in [0, 1); 0 = off (default). */
  minP?: number;
  /** llama.cpp repeat penalty (> 0); 1 = off (default). */
  repeatPenalty?: number;
  /** OpenAI presence penalty; 0 = off (default). */
  presencePenalty?: number;
  /** OpenAI frequency penalty; 0 = off (default). */
  frequencyPenalty?: number;
  /** Tokens of history the penalties look at; -1 = all, 0 = none. Default 64. */
  repeatLastN?: number;
  /** Token id -> additive bias; <= -100 or -Infinity bans the token. */
  logitBias?: ReadonlyMap<number, number> | Readonly<Record<string, number>>;
  /** Seed for the random generator (a safe integer); absent = a random seed. */
  seed?: number;
}

export interface ResolvedSamplerOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repeatLastN: number;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface TokenLogprobs extends TokenLogprob {
  /** The most likely tokens, most likely first (ties: lowest id first); may include `token`. */
  top: TokenLogprob[];
}

/** Anything generate() can draw tokens with. */
export interface TokenSampler {
  /** `mask`: a constraint's bitmask (constraint.ts); tokens it does not allow are never drawn. */
  sample(logits: Float32Array, history: readonly number[], mask?: Int32Array): number;
  logprobs(token: number, topN: number): TokenLogprobs;
}

/** Bias at or below this bans the token (OpenAI: "-100 should result in a ban"). */
export const BAN_BIAS = -100;
/** Half-width (in nats of logit) of the first candidate window for top_p without top_k. */
const TOP_P_FIRST_WINDOW = 8;
/** Id field of the numeric sort keys (2^21: vocabularies up to ~2M tokens use the fast sort). */
const KEY_ID_RANGE = 2097152;

function checkNumber(name: string, v: number, ok: boolean, want: string): void {
  if (typeof v !== 'number' || Number.isNaN(v) || !ok) {
    throw new Error(`sampler option ${name} must be ${want}, got ${String(v)}`);
  }
}

/** Validates options and fills in the defaults. */
export function resolveSamplerOptions(o: SamplerOptions = {}): ResolvedSamplerOptions {
  const r: ResolvedSamplerOptions = {
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    minP: o.minP ?? 0,
    repeatPenalty: o.repeatPenalty ?? 1,
    presencePenalty: o.presencePenalty ?? 0,
    frequencyPenalty: o.frequencyPenalty ?? 0,
    repeatLastN: o.repeatLastN ?? 64,
  };
  checkNumber('temperature', r.temperature, Number.isFinite(r.temperature), 'a finite number');
  checkNumber('topK', r.topK, Number.isInteger(r.topK) && r.topK >= 0, 'an integer >= 0');
  checkNumber('topP', r.topP, r.topP > 0 && r.topP <= 1, 'in (0, 1]');
  checkNumber('minP', r.minP, r.minP >= 0 && r.minP < 1, 'in [0, 1)');
  checkNumber('repeatPenalty', r.repeatPenalty, r.repeatPenalty > 0 && Number.isFinite(r.repeatPenalty), 'a finite number > 0');
  checkNumber('presencePenalty', r.presencePenalty, Number.isFinite(r.presencePenalty), 'a finite number');
  checkNumber('frequencyPenalty', r.frequencyPenalty, Number.isFinite(r.frequencyPenalty), 'a finite number');
  checkNumber('repeatLastN', r.repeatLastN, Number.isInteger(r.repeatLastN) && r.repeatLastN >= -1, 'an integer >= -1');
  return r;
}

/** Normalises a logit bias (Map or record) to parallel arrays; validates ids and values. */
function resolveBias(bias: SamplerOptions['logitBias']): { ids: Int32Array; values: Float32Array } {
  const entries: [number, number][] = [];
  if (bias instanceof Map) {
    for (const [k, v] of bias) entries.push([Number(k), v]);
  } else if (bias) {
    for (const k of Object.keys(bias)) entries.push([Number(k), (bias as Record<string, number>)[k]!]);
  }
  const ids = new Int32Array(entries.length);
  const values = new Float32Array(entries.length);
  entries.forEach(([id, v], i) => {
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
      throw new Error(`logit bias key ${String(id)} is not a token id`);
    }
    if (typeof v !== 'number' || Number.isNaN(v) || v === Infinity) {
      throw new Error(`logit bias for token ${id} must be a finite number or -Infinity, got ${String(v)}`);
    }
    ids[i] = id;
    values[i] = v <= BAN_BIAS ? -Infinity : v;
  });
  return { ids, values };
}

export class Sampler implements TokenSampler {
  readonly options: Readonly<ResolvedSamplerOptions>;
  /** The seed actually used (the one given, or the random one drawn). */
  readonly seed: number;

  private readonly penalty: PenaltyOptions;
  private readonly biasIds: Int32Array;
  private readonly biasValues: Float32Array;
  private readonly rng: Xoshiro128;
  private readonly counts = new Map<number, number>();

  /** Penalised + biased logits of the last sample() call (first `n` entries valid). */
  private work = new Float32Array(0);
  /** The bits of `work` (for building sort keys). */
  private bits = new Uint32Array(0);
  /** Sort keys (see sortIds). */
  private keys = new Float64Array(0);
  /** Candidate token ids. */
  private ids = new Int32Array(0);
  /** Softmax weights of the candidates (or of the whole vocabulary on the temperature-only path). */
  private weights = new Float64Array(0);
  private n = 0;
  private max = -Infinity;

  constructor(options: SamplerOptions = {}) {
    this.options = Object.freeze(resolveSamplerOptions(options));
    const o = this.options;
    this.penalty = {
      repeatPenalty: o.repeatPenalty,
      presencePenalty: o.presencePenalty,
      frequencyPenalty: o.frequencyPenalty,
      lastN: o.repeatLastN,
    };
    const b = resolveBias(options.logitBias);
    this.biasIds = b.ids;
    this.biasValues = b.values;
    this.seed = options.seed ?? randomSeed();
    this.rng = new Xoshiro128(this.seed);
  }

  /** True when sample() is argmax (temperature <= 0). */
  get greedy(): boolean {
    return this.options.temperature <= 0;
  }

  /**
   * Applies penalties and bias to a copy of `logits` and returns that copy (a view of an internal
   * buffer, valid until the next call). Also records the max for sample()/logprobs(). A constraint's
   * `mask` comes last: the tokens it does not allow become -Infinity whatever their bias.
   */
  process(logits: Float32Array, history: readonly number[] = [], mask?: Int32Array): Float32Array {
    const n = logits.length;
    if (n === 0) throw new Error('cannot sample from an empty logits vector');
    if (this.work.length < n) {
      this.work = new Float32Array(n);
      this.bits = new Uint32Array(this.work.buffer);
      this.ids = new Int32Array(n);
    }
    const w = this.work.subarray(0, n);
    w.set(logits);
    if (!penaltiesAreNeutral(this.penalty)) applyPenalties(w, history, this.penalty, this.counts);
    for (let i = 0; i < this.biasIds.length; i++) {
      const id = this.biasIds[i]!;
      if (id >= n) throw new Error(`logit bias names token ${id} but the vocabulary has ${n} tokens`);
      const v = this.biasValues[i]!;
      w[id] = v === -Infinity ? -Infinity : w[id]! + v;
    }
    if (mask !== undefined) applyTokenMask(w, mask);
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = w[i]!;
      if (v > max) max = v;
      else if (v !== v) throw new Error(`logits contain NaN (token ${i})`);
    }
    if (max === Infinity) throw new Error('logits contain +Infinity');
    if (max === -Infinity) {
      throw mask !== undefined
        ? new NoTokenError(
          'constraint',
          'no token can be sampled: the constraint allows none here (its grammar or schema admits no text, e.g. a $ref loop ' +
            'without a base case), or logit_bias bans every token it allows',
        )
        : new NoTokenError('bias', 'no token can be sampled: logit_bias bans every token of the vocabulary');
    }
    this.n = n;
    this.max = max;
    return w;
  }

  sample(logits: Float32Array, history: readonly number[] = [], mask?: Int32Array): number {
    const w = this.process(logits, history, mask);
    const o = this.options;
    if (o.temperature <= 0) return this.argmax();
    const count = this.truncate();
    const invT = 1 / o.temperature;
    return count < 0 ? this.drawAll(w, this.n, this.max, invT) : this.drawCandidates(w, this.ids, count, this.max, invT);
  }

  /**
   * The tokens sample() would draw from for these inputs: the argmax when greedy, else the
   * survivors of top_k/top_p/min_p (most likely first when a stage sorted them, else by id).
   * For tests and diagnostics; it does not advance the random generator.
   */
  candidates(logits: Float32Array, history: readonly number[] = [], mask?: Int32Array): number[] {
    const w = this.process(logits, history, mask);
    if (this.options.temperature <= 0) return [this.argmax()];
    const count = this.truncate();
    if (count >= 0) return Array.from(this.ids.subarray(0, count));
    const all: number[] = [];
    for (let i = 0; i < this.n; i++) if (w[i] !== -Infinity) all.push(i);
    return all;
  }

  private argmax(): number {
    const w = this.work;
    for (let i = 0; i < this.n; i++) if (w[i] === this.max) return i;
    throw new Error('unreachable: max not found');
  }

  /** Applies top_k, top_p, min_p to the processed logits; survivors in ids[0..count), or -1 = all. */
  private truncate(): number {
    const w = this.work.subarray(0, this.n);
    const n = this.n;
    const max = this.max;
    const o = this.options;
    const lnMinP = o.minP > 0 ? Math.log(o.minP) : -Infinity;
    const ids = this.ids;
    let count: number;
    if (o.topK > 0 && o.topK < n) {
      count = selectTopK(w, o.topK, ids);
      this.sortIds(count);
      if (o.topP < 1) count = nucleusCut(w, ids, count, max, o.topP, sumExp(w, ids, count, max));
      if (o.minP > 0) count = sortedFloorCut(w, ids, count, max + lnMinP);
    } else if (o.topP < 1) {
      count = this.nucleusWithoutTopK(w, n, max, o.topP, lnMinP);
    } else if (o.minP > 0) {
      const floor = max + lnMinP;
      count = 0;
      for (let i = 0; i < n; i++) if (w[i]! >= floor) ids[count++] = i;
    } else {
      count = -1;
    }
    return count;
  }

  /** Top-p over the whole vocabulary (see the header): exact, sorting only a window near the max. */
  private nucleusWithoutTopK(w: Float32Array, n: number, max: number, p: number, lnMinP: number): number {
    const ids = this.ids;
    // Full normaliser, and the first window, in one pass.
    let window = TOP_P_FIRST_WINDOW;
    let floor = Math.max(max - window, max + lnMinP);
    let z = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const v = w[i]!;
      z += Math.exp(v - max);
      if (v >= floor) ids[count++] = i;
    }
    for (;;) {
      this.sortIds(count);
      const minPLimits = max + lnMinP >= floor; // min_p cuts here anyway: nothing below matters
      let cum = 0;
      const target = p * z;
      for (let j = 0; j < count; j++) {
        cum += Math.exp(w[ids[j]!]! - max);
        if (cum >= target) return j + 1;
      }
      if (minPLimits || floor === -Infinity) return count;
      window *= 4;
      floor = window > 256 ? -Infinity : Math.max(max - window, max + lnMinP);
      count = 0;
      for (let i = 0; i < n; i++) if (w[i]! >= floor && w[i]! !== -Infinity) ids[count++] = i;
    }
  }

  /**
   * Sorts ids[0..count) by descending logit, ties by ascending id. Large lists are sorted as
   * numeric keys (no comparator callback, several times faster): the float32 bits mapped to an
   * order-preserving uint32 (-0 read as +0), reversed, times 2^21, plus the id; exact in a
   * double for vocabularies up to 2^21 tokens.
   */
  private sortIds(count: number): void {
    const ids = this.ids;
    if (count < 64 || this.n > KEY_ID_RANGE) {
      sortCandidates(this.work, ids, count);
      return;
    }
    if (this.keys.length < count) this.keys = new Float64Array(Math.max(count, this.n >> 3));
    const keys = this.keys;
    const bits = this.bits;
    for (let j = 0; j < count; j++) {
      const id = ids[j]!;
      let b = bits[id]!;
      if (b === 0x80000000) b = 0;
      const ordered = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
      keys[j] = (0xffffffff - ordered) * KEY_ID_RANGE + id;
    }
    const sorted = keys.subarray(0, count).sort();
    for (let j = 0; j < count; j++) ids[j] = sorted[j]! % KEY_ID_RANGE;
  }

  /** Draws among `count` candidates in ids with weights exp((l - max) / T). */
  private drawCandidates(w: Float32Array, ids: Int32Array, count: number, max: number, invT: number): number {
    if (this.weights.length < count) this.weights = new Float64Array(Math.max(count, 64));
    const p = this.weights;
    let sum = 0;
    for (let j = 0; j < count; j++) {
      const e = Math.exp((w[ids[j]!]! - max) * invT);
      p[j] = e;
      sum += e;
    }
    return ids[this.pick(sum, count)]!;
  }

  /** Draws over the whole vocabulary (temperature only). */
  private drawAll(w: Float32Array, n: number, max: number, invT: number): number {
    if (this.weights.length < n) this.weights = new Float64Array(n);
    const p = this.weights;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp((w[i]! - max) * invT);
      p[i] = e;
      sum += e;
    }
    return this.pick(sum, n);
  }

  /** Index j < count drawn with probability weights[j] / sum (one uniform draw). */
  private pick(sum: number, count: number): number {
    const p = this.weights;
    let u = this.rng.nextFloat() * sum;
    let last = 0;
    for (let j = 0; j < count; j++) {
      const e = p[j]!;
      if (e > 0) {
        last = j;
        if (u < e) return j;
        u -= e;
      }
    }
    return last; // rounding left u just above the total
  }

  /**
   * Logprob of `token` and the `topN` most likely tokens, from the distribution of the last
   * sample()/process() call (after penalties and bias, before truncation and temperature).
   */
  logprobs(token: number, topN: number): TokenLogprobs {
    if (this.n === 0) throw new Error('logprobs() needs a sample() call first');
    return logSoftmaxInfo(this.work.subarray(0, this.n), token, topN, this.max, this.ids);
  }
}

/**
 * Log-softmax facts about `logits`: the logprob of `token` and the topN most likely tokens.
 * `max` (the largest logit) and `scratch` (>= topN ids) may be passed to save work.
 */
export function logSoftmaxInfo(
  logits: Float32Array,
  token: number,
  topN: number,
  max?: number,
  scratch?: Int32Array,
): TokenLogprobs {
  const n = logits.length;
  if (!Number.isInteger(token) || token < 0 || token >= n) {
    throw new Error(`token ${token} is outside the vocabulary (0..${n - 1})`);
  }
  if (!Number.isInteger(topN) || topN < 0) throw new Error(`top logprobs count must be an integer >= 0, got ${topN}`);
  let m = max ?? -Infinity;
  if (max === undefined) for (let i = 0; i < n; i++) if (logits[i]! > m) m = logits[i]!;
  let z = 0;
  for (let i = 0; i < n; i++) z += Math.exp(logits[i]! - m);
  const logZ = m + Math.log(z);
  const k = Math.min(topN, n);
  const ids = scratch && scratch.length >= k ? scratch : new Int32Array(k);
  const count = selectTopK(logits, k, ids);
  sortCandidates(logits, ids, count);
  const top: TokenLogprob[] = [];
  for (let j = 0; j < count; j++) top.push({ token: ids[j]!, logprob: logits[ids[j]!]! - logZ });
  return { token, logprob: logits[token]! - logZ, top };
}

/** True when a ranks before b: higher value, or equal value and lower id. */
function before(w: Float32Array, a: number, b: number): boolean {
  const va = w[a]!;
  const vb = w[b]!;
  return va > vb || (va === vb && a < b);
}

/**
 * Puts the ids of the k best-ranked finite entries of w into out[0..count) (unordered) with a
 * size-k min-heap whose root is the worst kept entry. Returns count (< k when fewer are finite).
 */
export function selectTopK(w: Float32Array, k: number, out: Int32Array): number {
  const n = w.length;
  let size = 0;
  if (k <= 0) return 0;
  for (let i = 0; i < n; i++) {
    const v = w[i]!;
    if (v === -Infinity) continue;
    if (size < k) {
      // sift up
      let c = size++;
      out[c] = i;
      while (c > 0) {
        const parent = (c - 1) >> 1;
        if (before(w, out[parent]!, out[c]!)) {
          const t = out[parent]!;
          out[parent] = out[c]!;
          out[c] = t;
          c = parent;
        } else break;
      }
    } else if (v > w[out[0]!]!) {
      // i beats the worst kept entry (equal values keep the earlier, lower id); replace the root
      out[0] = i;
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= size) break;
        const r = l + 1;
        let worst = l;
        if (r < size && before(w, out[l]!, out[r]!)) worst = r;
        if (before(w, out[c]!, out[worst]!)) {
          const t = out[c]!;
          out[c] = out[worst]!;
          out[worst] = t;
          c = worst;
        } else break;
      }
    }
  }
  return size;
}

/** Sorts ids[0..count) by descending value, ties by ascending id. */
function sortCandidates(w: Float32Array, ids: Int32Array, count: number): void {
  ids.subarray(0, count).sort((a, b) => w[b]! - w[a]! || a - b);
}

function sumExp(w: Float32Array, ids: Int32Array, count: number, max: number): number {
  let z = 0;
  for (let j = 0; j < count; j++) z += Math.exp(w[ids[j]!]! - max);
  return z;
}

/** Shortest sorted prefix whose softmax mass (over normaliser z) reaches p. */
function nucleusCut(w: Float32Array, ids: Int32Array, count: number, max: number, p: number, z: number): number {
  const target = p * z;
  let cum = 0;
  for (let j = 0; j < count; j++) {
    cum += Math.exp(w[ids[j]!]! - max);
    if (cum >= target) return j + 1;
  }
  return count;
}

/** Sorted prefix with values >= floor (at least one). */
function sortedFloorCut(w: Float32Array, ids: Int32Array, count: number, floor: number): number {
  let j = 1;
  while (j < count && w[ids[j]!]! >= floor) j++;
  return Math.min(j, count);
}
