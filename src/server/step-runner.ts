// Continuous batching, the doing half (the deciding half is planStep in scheduler.ts).
//
// Each sequence's token loop (generate()) asks for logits through submit(): its prompt once, then
// one token at a time. The runner gathers what every active sequence has asked for, lets planStep
// pick this step's rows (every generating sequence's next token plus prompt chunks within the row
// budget), turns the plan into a ragged batch (token, position, sequence, logits-wanted per row),
// runs ONE forward pass over it, and hands each finished request its row of logits. Sequences join
// and leave between steps: whoever asks while a step runs is in the next one.
//
// Between steps the event loop gets a turn (setImmediate): that is where the token loops sample,
// stream their text and ask again, and where HTTP is served.
//
// Shared prompts are read once: before each step, a prompt whose next tokens another running slot
// has already read gets those rows copied (opts.seed) instead of reading them, and a prompt whose
// next tokens an earlier prompt is still reading waits for it (it gets no rows in that step). So
// users who send the same system prompt at the same moment, and the n choices of one request, read
// it once.
//
// Each slot gets its logits in a buffer of its own, reused from step to step (valid until the
// slot's next submit(): a token loop samples before it asks again). A fresh copy per token would
// be one short-lived buffer per sequence per step (8 KB on the demo, 0.5 MB on a 128k vocabulary)
// that only the garbage collector gives back: under load they pile up outside the JS heap and the
// process's resident memory jumps by tens of MB between collections.
import { addRows, createBatch, type Batch } from '../model/forward.js';
import type { ForwardStep } from '../model/step.js';
import type { KVCache } from '../model/kv-cache.js';
import { planStep } from './scheduler.js';

/** A slot's sequence as the runner sees it. */
export interface RunnerSlot {
  readonly id: number;
  readonly kv: KVCache;
  /** tokens whose keys/values are in kv, in order (the runner appends as rows complete) */
  cached: number[];
  /** prompt tokens copied in by the runner from other slots (reset by the slot's owner per prompt) */
  copied?: number;
  /** rows past this many are not what reading their tokens again would give (after a context shift): never shared */
  exact?: number;
}

interface Request {
  slot: RunnerSlot;
  tokens: readonly number[];
  pos0: number;
  /** rows already run */
  done: number;
  order: number;
  /** told the rows run so far after each step that ran some (prompt progress) */
  onRows?: (done: number) => void;
  resolve: (logits: Float32Array) => void;
  reject: (e: Error) => void;
}

export interface StepRunnerOptions {
  /** most rows per forward pass (generating sequences + prompt chunks) */
  budget: number;
  /** most rows of a pass that carries generating sequences (default: budget) */
  streamBudget?: number;
  vocabSize: number;
  /** Makes room for `positions` KV positions of a slot (keeping its cached ones); false = the pool is full. */
  grow(slot: RunnerSlot, positions: number): boolean;
  /** Copies `from`'s first `n` cached positions into `to` (which has room); without it nothing is shared between running slots. */
  seed?(to: RunnerSlot, from: RunnerSlot, n: number): void;
  /** after each step: rows run, prompt rows among them, and its duration (for metrics) */
  onStep?: (rows: number, promptRows: number, ms: number) => void;
}

export class KvPoolFullError extends Error {
  override name = 'KvPoolFullError';
}

export class StepRunner {
  /** what the slots have asked for, in arrival order */
  private readonly pending: Request[] = [];
  /** requests with rows in the step that is running */
  private readonly inFlight = new Set<Request>();
  /** in-flight requests whose token loop was aborted: dropped when their step ends */
  private readonly cancelled = new Set<Request>();
  private readonly batch: Batch;
  private running = false;
  private order = 0;
  /** logits handed to a cancelled request (never sampled: its token loop sees the abort first) */
  private readonly empty: Float32Array;
  /** each slot's logits buffer (by slot id), made on its first answer */
  private readonly slotLogits = new Map<number, Float32Array>();
  steps = 0;

  constructor(private readonly forward: ForwardStep, private readonly opts: StepRunnerOptions) {
    this.batch = createBatch(opts.budget);
    this.empty = new Float32Array(opts.vocabSize);
  }

  /**
   * Logits after running `tokens` of `slot` at positions pos0.. (the last token's), in the slot's
   * own buffer: valid until the slot's next submit(). `onRows` hears how many of `tokens` have run
   * after each step that ran some of them (a long prompt is read over several steps).
   */
  submit(slot: RunnerSlot, tokens: readonly number[], pos0: number, onRows?: (done: number) => void): Promise<Float32Array> {
    if (tokens.length === 0) return Promise.reject(new Error('submit() needs at least one token'));
    if (pos0 !== slot.cached.length) return Promise.reject(new Error(`slot ${slot.id}: tokens at ${pos0} but ${slot.cached.length} are cached`));
    if (this.pending.some((r) => r.slot === slot)) return Promise.reject(new Error(`slot ${slot.id} already has a request running`));
    return new Promise((resolve, reject) => {
      this.pending.push({ slot, tokens, pos0, done: 0, order: this.order++, onRows, resolve, reject });
      if (!this.running) {
        this.running = true;
        void this.loop();
      }
    });
  }

  /**
   * Drops a slot's waiting request (its token loop was aborted): it gets logits it will not use,
   * at once when no step is running it, else when that step ends.
   */
  cancel(slotId: number): void {
    const i = this.pending.findIndex((r) => r.slot.id === slotId && !this.inFlight.has(r));
    if (i < 0) {
      const r = this.pending.find((q) => q.slot.id === slotId);
      if (r) this.cancelled.add(r);
      return;
    }
    const [r] = this.pending.splice(i, 1);
    r!.resolve(this.empty);
  }

  get busy(): boolean {
    return this.running;
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        // let every token loop that is about to ask do so (they run in this turn's callbacks)
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.pending.length === 0) break;
        await this.step();
      }
    } finally {
      this.running = false;
    }
  }

  private async step(): Promise<void> {
    const t0 = performance.now();
    const waiting = this.share();
    const plan = planStep(
      this.pending.filter((r) => !waiting.has(r)).map((r) => ({ seq: r.order, tokens: r.tokens.length - r.done, decoding: r.tokens.length === 1, order: r.order })),
      this.opts.budget,
      this.opts.streamBudget,
    );
    const byOrder = new Map(this.pending.map((r) => [r.order, r]));
    const b = this.batch;
    b.n = 0;
    const caches: KVCache[] = [];
    const parts: { r: Request; count: number }[] = [];
    let promptRows = 0;
    for (const p of plan.parts) {
      const r = byOrder.get(p.seq)!;
      const from = r.pos0 + r.done;
      if (from + p.count > r.slot.kv.capacity && !this.opts.grow(r.slot, from + p.count)) {
        this.remove(r);
        r.reject(new KvPoolFullError(`the KV cache pool is full (slot ${r.slot.id} needs ${from + p.count} positions)`));
        continue;
      }
      const last = r.done + p.count === r.tokens.length;
      addRows(b, caches.length, r.tokens.slice(r.done, r.done + p.count), from, last ? 'last' : 'none');
      caches.push(r.slot.kv);
      parts.push({ r, count: p.count });
      if (r.tokens.length > 1) promptRows += p.count;
      this.inFlight.add(r);
    }
    if (b.n === 0) return;
    let logits: Float32Array;
    try {
      logits = await this.forward.run(b, caches);
    } catch (e) {
      for (const { r } of parts) {
        this.remove(r);
        r.reject(e as Error);
      }
      return;
    } finally {
      this.inFlight.clear();
    }
    const V = this.opts.vocabSize;
    let row = 0;
    for (const { r, count } of parts) {
      r.slot.cached.push(...r.tokens.slice(r.done, r.done + count));
      r.done += count;
      if (r.onRows) {
        try {
          r.onRows(r.done);
        } catch {
          // a listener's fault (a client gone mid-write) is not the step's
        }
      }
      if (r.done < r.tokens.length) {
        if (this.cancelled.has(r)) this.finishCancelled(r);
        continue;
      }
      let out = this.slotLogits.get(r.slot.id);
      if (!out) this.slotLogits.set(r.slot.id, (out = new Float32Array(V)));
      out.set(logits.subarray(row * V, (row + 1) * V));
      row++;
      this.remove(r);
      r.resolve(out);
    }
    this.steps++;
    this.opts.onStep?.(b.n, promptRows, performance.now() - t0);
  }

  /**
   * Copies into each waiting prompt the rows of its next tokens that another running slot already
   * holds, and returns the prompts that must wait because an earlier prompt is still reading their
   * next tokens. The last token of a request always runs (its logits are the answer).
   */
  private share(): Set<Request> {
    const waiting = new Set<Request>();
    const seed = this.opts.seed;
    if (!seed) return waiting;
    const prompts = this.pending.filter((r) => r.tokens.length - r.done > 1).sort((a, b) => a.order - b.order);
    if (prompts.length === 0) return waiting;
    const slots = new Set(this.pending.map((r) => r.slot));
    for (const r of prompts) {
      const at = r.pos0 + r.done;
      // the sequence this request ends with: what the slot held before it, then its tokens
      const target = (i: number) => (i < r.pos0 ? r.slot.cached[i] : r.tokens[i - r.pos0]);
      const end = at + r.tokens.length - r.done - 1; // positions that may be copied: below the last token
      let best: RunnerSlot | undefined;
      let bestN = at;
      for (const q of slots) {
        if (q === r.slot) continue;
        let n = 0;
        const usable = Math.min(q.cached.length, q.exact ?? Infinity);
        while (n < end && n < usable && q.cached[n] === target(n)) n++;
        if (n > bestN) {
          best = q;
          bestN = n;
        }
      }
      if (best && (bestN <= r.slot.kv.capacity || this.opts.grow(r.slot, bestN))) {
        seed(r.slot, best, bestN);
        r.slot.copied = (r.slot.copied ?? 0) + bestN - at;
        r.done += bestN - at;
      }
      // an earlier prompt still to read this one's next tokens: wait for it rather than read them twice
      const next = r.pos0 + r.done;
      for (const q of prompts) {
        if (q === r) break;
        const qAt = q.pos0 + q.done;
        if (qAt > next || waiting.has(q)) continue;
        const qTarget = (i: number) => (i < q.pos0 ? q.slot.cached[i] : q.tokens[i - q.pos0]);
        const qEnd = q.pos0 + q.tokens.length;
        let n = 0;
        while (n <= next && n < qEnd && qTarget(n) === target(n)) n++;
        if (n > next && next < end) {
          waiting.add(r);
          break;
        }
      }
    }
    return waiting;
  }

  private finishCancelled(r: Request): void {
    this.remove(r);
    r.resolve(this.empty);
  }

  private remove(r: Request): void {
    const i = this.pending.indexOf(r);
    if (i >= 0) this.pending.splice(i, 1);
    this.cancelled.delete(r);
  }
}
