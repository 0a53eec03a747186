// Request scheduling for the server: pure bookkeeping, no model and no HTTP (unit-tested alone).
//
// Two decisions live here:
//   - admission (class Scheduler): which request gets which slot, and when. A slot is one sequence
//     that can run at a time (`-np` of them); KV memory is one pool the slots share (`-c` positions
//     in all), and a request also needs room in it for its prompt and output. A request is admitted
//     when an idle slot exists and its KV reservation succeeds (the caches of idle slots, kept for
//     prefix reuse, are given up oldest first to make room); otherwise it waits in a FIFO queue
//     (bounded: a full queue is refused with QueueFullError, which HTTP turns into 503 with
//     Retry-After). A request aborted while it waits leaves the queue (AbortError).
//   - each step's work (function planStep): one forward pass over every active sequence, the next
//     token of every generating sequence plus chunks of waiting prompts within a per-step row
//     budget, so a long prompt never stalls the streams for more than one step.
//
// Slot choice: among the idle slots, the one whose cached tokens share the longest prefix with the
// new prompt (so a chat's next turn lands where its earlier turns are cached) when that prefix is at
// least half the prompt; otherwise the least recently used idle slot (so a prompt that only shares
// BOS and a role name does not evict another conversation's cache).

/** Share of the prompt a slot's cache must already hold to be chosen over the least recently used slot. */
const MIN_SIMILARITY = 0.5;

export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export class SchedulerClosedError extends Error {
  override name = 'SchedulerClosedError';
}

/** Thrown when a waiting request's signal aborts. */
export class AbortError extends Error {
  override name = 'AbortError';
}

// ---- the step plan -----------------------------------------------------------------------------

/** One sequence's outstanding work: `tokens` rows still to run (1 for a generating sequence). */
export interface WorkItem {
  seq: number;
  tokens: number;
  /** generating (its next token) rather than reading a prompt */
  decoding: boolean;
  /** arrival order: earlier prompts get their chunks first */
  order: number;
}

/** What one forward pass runs: `count` rows of each listed sequence, in this order. */
export interface StepPlan {
  parts: { seq: number; count: number }[];
  rows: number;
}

/**
 * Every generating sequence gets its one row; the rest of `budget` rows goes to prompts in arrival
 * order, each taking what it still needs (the last one taken may get a partial chunk).
 */
export function planStep(work: readonly WorkItem[], budget: number): StepPlan {
  if (!Number.isInteger(budget) || budget < 1) throw new Error(`step budget must be a positive integer, got ${budget}`);
  const parts: StepPlan['parts'] = [];
  let rows = 0;
  for (const w of work) {
    if (!w.decoding || w.tokens < 1) continue;
    parts.push({ seq: w.seq, count: 1 });
    rows++;
  }
  const prompts = work.filter((w) => !w.decoding && w.tokens > 0).sort((a, b) => a.order - b.order);
  for (const w of prompts) {
    const room = budget - rows;
    if (room <= 0) break;
    const count = Math.min(room, w.tokens);
    parts.push({ seq: w.seq, count });
    rows += count;
  }
  return { parts, rows };
}

// ---- admission ---------------------------------------------------------------------------------

/** KV memory as the scheduler sees it (the service backs it with a KV pool; tests with a counter). */
export interface KvSpace {
  /** Gives slot `slot` room for `positions` positions keeping its first `keep`; false when the pool cannot. */
  reserve(slot: number, positions: number, keep: number): boolean;
  /** Gives slot `slot`'s positions back to the pool. */
  release(slot: number): void;
}

export interface SchedulerOptions {
  /** requests allowed to wait (default 64); more are refused with QueueFullError */
  maxQueue?: number;
}

export interface SlotLease {
  readonly slot: number;
  /** tokens of the prompt found in this slot's cache record when it was chosen */
  readonly matchedPrefix: number;
  /** Gives the slot back; `cached` records the tokens now in its cache (for prefix matching). */
  release(cached?: readonly number[]): void;
}

interface Slot {
  id: number;
  busy: boolean;
  /** tokens whose keys/values the slot's KV range holds (empty: it holds no range) */
  cached: readonly number[];
  lastUsed: number;
}

interface Waiter {
  prompt: readonly number[];
  positions: number;
  resolve: (lease: SlotLease) => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

export interface SchedulerStats {
  slots: number;
  idle: number;
  busy: number;
  queued: number;
  /** leases handed out so far */
  started: number;
}

export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class Scheduler {
  private readonly slots: Slot[];
  private readonly queue: Waiter[] = [];
  private readonly maxQueue: number;
  private clock = 0;
  private started = 0;
  private closed = false;

  constructor(nSlots: number, private readonly kv: KvSpace, opts: SchedulerOptions = {}) {
    if (!Number.isInteger(nSlots) || nSlots < 1) throw new Error(`scheduler needs at least one slot, got ${nSlots}`);
    const maxQueue = opts.maxQueue ?? 64;
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new Error(`maxQueue must be a non-negative integer, got ${maxQueue}`);
    this.maxQueue = maxQueue;
    this.slots = Array.from({ length: nSlots }, (_, id) => ({ id, busy: false, cached: [], lastUsed: 0 }));
  }

  stats(): SchedulerStats {
    const busy = this.slots.filter((s) => s.busy).length;
    return { slots: this.slots.length, idle: this.slots.length - busy, busy, queued: this.queue.length, started: this.started };
  }

  /** Which slots are leased now, in slot order. */
  busySlots(): boolean[] {
    return this.slots.map((s) => s.busy);
  }

  /**
   * Leases a slot with room for `positions` KV positions for a generation on `prompt`: at once when
   * possible, else after the requests queued before it. Rejects with QueueFullError when the queue
   * is full, AbortError when `signal` aborts first, SchedulerClosedError after close().
   */
  acquire(prompt: readonly number[], positions: number, signal?: AbortSignal): Promise<SlotLease> {
    if (this.closed) return Promise.reject(new SchedulerClosedError('server is shutting down'));
    if (signal?.aborted) return Promise.reject(new AbortError('request aborted'));
    if (this.queue.length === 0) {
      const lease = this.tryAdmit(prompt, positions);
      if (lease) return Promise.resolve(lease);
    }
    if (this.queue.length >= this.maxQueue) {
      const busy = this.slots.filter((s) => s.busy).length;
      return Promise.reject(new QueueFullError(`server busy: ${busy} of ${this.slots.length} slot(s) in use and ${this.queue.length} request(s) queued`));
    }
    return new Promise<SlotLease>((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(new AbortError('request aborted while queued'));
        this.admitWaiting(); // the head of the queue may have been the one blocking the others
      };
      const waiter: Waiter = { prompt, positions, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /**
   * A running sequence needs more KV room: gives up idle slots' caches (oldest first) until the
   * reservation succeeds. Returns false when even that is not enough.
   */
  grow(slot: number, positions: number, keep: number): boolean {
    if (this.kv.reserve(slot, positions, keep)) return true;
    for (const s of this.evictionOrder(slot)) {
      this.evict(s);
      if (this.kv.reserve(slot, positions, keep)) return true;
    }
    return false;
  }

  /** Refuses new requests and rejects the queued ones; running leases finish normally. */
  close(): void {
    this.closed = true;
    for (const w of this.queue.splice(0)) {
      w.cleanup();
      w.reject(new SchedulerClosedError('server is shutting down'));
    }
  }

  /** An idle slot and a KV reservation for the prompt, or undefined (nothing changed then). */
  private tryAdmit(prompt: readonly number[], positions: number): SlotLease | undefined {
    const slot = this.pickIdle(prompt);
    if (!slot) return undefined;
    const keep = commonPrefix(slot.cached, prompt);
    if (!this.kv.reserve(slot.id, positions, keep)) {
      // make room from the other idle slots' caches, oldest first
      let ok = false;
      for (const s of this.evictionOrder(slot.id)) {
        this.evict(s);
        if ((ok = this.kv.reserve(slot.id, positions, keep))) break;
      }
      if (!ok) return undefined;
    }
    return this.lease(slot, keep);
  }

  /** idle slots holding a cache, least recently used first (never `except`) */
  private evictionOrder(except: number): Slot[] {
    return this.slots.filter((s) => !s.busy && s.id !== except && s.cached.length > 0).sort((a, b) => a.lastUsed - b.lastUsed);
  }

  private evict(s: Slot): void {
    this.kv.release(s.id);
    s.cached = [];
  }

  private pickIdle(prompt: readonly number[]): Slot | undefined {
    let best: Slot | undefined;
    let bestLen = 0;
    let lru: Slot | undefined;
    for (const s of this.slots) {
      if (s.busy) continue;
      if (!lru || s.lastUsed < lru.lastUsed) lru = s;
      const len = commonPrefix(s.cached, prompt);
      if (len > bestLen || (len === bestLen && best && s.lastUsed < best.lastUsed)) {
        best = s;
        bestLen = len;
      }
    }
    // a short shared prefix (say BOS and a role name) is not worth another conversation's cache
    return best && bestLen >= MIN_SIMILARITY * prompt.length ? best : lru;
  }

  private lease(slot: Slot, matchedPrefix: number): SlotLease {
    slot.busy = true;
    slot.lastUsed = ++this.clock;
    this.started++;
    let released = false;
    return {
      slot: slot.id,
      matchedPrefix,
      release: (cached?: readonly number[]) => {
        if (released) return;
        released = true;
        slot.cached = cached ? cached.slice() : [];
        // an idle slot keeps only what its cache holds (for prefix reuse); the rest goes back to the pool
        if (slot.cached.length === 0) this.kv.release(slot.id);
        else this.kv.reserve(slot.id, slot.cached.length, slot.cached.length);
        slot.busy = false;
        slot.lastUsed = ++this.clock;
        this.admitWaiting();
      },
    };
  }

  /** Admits queued requests in order while they fit (the first that does not fit blocks the rest: FIFO). */
  private admitWaiting(): void {
    while (this.queue.length > 0) {
      const w = this.queue[0]!;
      const lease = this.tryAdmit(w.prompt, w.positions);
      if (!lease) return;
      this.queue.shift();
      w.cleanup();
      w.resolve(lease);
    }
  }
}
