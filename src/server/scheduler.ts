// Request scheduling for the server, independent of HTTP (unit-tested without sockets).
//
// Two resources are shared between requests:
//   - slots: each slot owns one session (its own KV cache). A request leases a slot for the whole
//     generation; when every slot is busy the request waits in a FIFO queue (bounded: a full queue
//     is refused with QueueFullError, which the HTTP layer turns into 503). A request that is
//     aborted while it waits leaves the queue (AbortError).
//   - the compute kernels: they are not re-entrant, so only ONE forward pass may run at a time
//     across all slots. Every step of a generation (one iterator.next(), which runs at most the
//     prompt or one token's forward pass) runs under a FIFO lock. With several slots busy, their
//     steps therefore interleave token by token (round robin), never overlap. Between steps the
//     event loop gets a turn (setImmediate), so I/O is served while a generation runs.
//
// Slot choice: among the idle slots, the one whose cached tokens share the longest prefix with the
// new prompt (so a chat's next turn lands where its earlier turns are cached) when that prefix is at
// least half the prompt; otherwise the least recently used idle slot (so a prompt that only shares
// BOS and a role name does not evict another conversation's cache).

/** Share of the prompt a slot's cache must already hold to be chosen over the least recently used slot. */
const MIN_SIMILARITY = 0.5;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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

/** A FIFO mutex: run(fn) calls fn when every earlier caller's fn has settled. */
export class FifoLock {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private held = false;

  get locked(): boolean {
    return this.held;
  }
  /** callers waiting for the lock (not counting the holder) */
  get pending(): number {
    return this.waiting;
  }

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.waiting++;
    const result = this.tail.then(async () => {
      this.waiting--;
      this.held = true;
      try {
        return await fn();
      } finally {
        this.held = false;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export interface SchedulerOptions {
  /** requests allowed to wait for a slot (default 64); more are refused with QueueFullError */
  maxQueue?: number;
}

export interface SlotLease<S> {
  readonly slot: number;
  readonly session: S;
  /** tokens of the prompt found in this slot's cache record when it was chosen */
  readonly matchedPrefix: number;
  /** Gives the slot back; `cached` records the tokens now in its cache (for prefix matching). */
  release(cached?: readonly number[]): void;
}

interface Slot<S> {
  id: number;
  session: S;
  busy: boolean;
  cached: readonly number[];
  lastUsed: number;
}

interface Waiter<S> {
  prompt: readonly number[];
  resolve: (lease: SlotLease<S>) => void;
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

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class Scheduler<S> {
  private readonly slots: Slot<S>[];
  private readonly queue: Waiter<S>[] = [];
  private readonly maxQueue: number;
  private readonly lock = new FifoLock();
  private clock = 0;
  private started = 0;
  private closed = false;

  constructor(sessions: readonly S[], opts: SchedulerOptions = {}) {
    if (sessions.length === 0) throw new Error('scheduler needs at least one slot');
    const maxQueue = opts.maxQueue ?? 64;
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new Error(`maxQueue must be a non-negative integer, got ${maxQueue}`);
    this.maxQueue = maxQueue;
    this.slots = sessions.map((session, id) => ({ id, session, busy: false, cached: [], lastUsed: 0 }));
  }

  stats(): SchedulerStats {
    const busy = this.slots.filter((s) => s.busy).length;
    return { slots: this.slots.length, idle: this.slots.length - busy, busy, queued: this.queue.length, started: this.started };
  }

  /** Each slot's id, session and whether it is leased, in slot order (for /slots and /metrics). */
  slotStates(): { id: number; session: S; busy: boolean }[] {
    return this.slots.map((s) => ({ id: s.id, session: s.session, busy: s.busy }));
  }

  /** The sessions, in slot order (e.g. to dispose them). */
  sessions(): S[] {
    return this.slots.map((s) => s.session);
  }

  /**
   * Leases a slot for a generation on `prompt`: at once when one is idle, else after the requests
   * queued before it. Rejects with QueueFullError when the queue is full, AbortError when `signal`
   * aborts first, SchedulerClosedError after close().
   */
  acquire(prompt: readonly number[] = [], signal?: AbortSignal): Promise<SlotLease<S>> {
    if (this.closed) return Promise.reject(new SchedulerClosedError('server is shutting down'));
    if (signal?.aborted) return Promise.reject(new AbortError('request aborted'));
    const slot = this.pickIdle(prompt);
    if (slot) return Promise.resolve(this.lease(slot, prompt));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new QueueFullError(`server busy: all ${this.slots.length} slot(s) in use and ${this.queue.length} request(s) queued`),
      );
    }
    return new Promise<SlotLease<S>>((resolve, reject) => {
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(new AbortError('request aborted while queued'));
      };
      const waiter: Waiter<S> = {
        prompt,
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /**
   * Runs one step of work that uses the kernels (a forward pass) under the global lock. Steps of
   * all slots run one at a time, in the order they were asked for.
   */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.lock.run(fn);
  }

  /**
   * Wraps a generation iterator so that each of its steps runs under the global lock. The events
   * pass through unchanged; the iterator's return value is returned.
   */
  async *steps<E, R>(it: AsyncIterator<E, R>): AsyncGenerator<E, R, undefined> {
    let finished = false;
    try {
      for (;;) {
        // let the event loop run between steps (socket writes, disconnects, new requests): a
        // forward pass on one thread may complete without ever leaving the microtask queue
        await yieldToEventLoop();
        const r = await this.lock.run(() => it.next());
        if (r.done) {
          finished = true;
          return r.value;
        }
        yield r.value;
      }
    } finally {
      // the consumer stopped early (or a step threw): let the iterator clean up, under the lock
      if (!finished && it.return) await this.lock.run(() => it.return!(undefined as unknown as R)).catch(() => undefined);
    }
  }

  /** Refuses new requests and rejects the queued ones; running leases finish normally. */
  close(): void {
    this.closed = true;
    for (const w of this.queue.splice(0)) {
      w.cleanup();
      w.reject(new SchedulerClosedError('server is shutting down'));
    }
  }

  private pickIdle(prompt: readonly number[]): Slot<S> | undefined {
    let best: Slot<S> | undefined;
    let bestLen = 0;
    let lru: Slot<S> | undefined;
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

  private lease(slot: Slot<S>, prompt: readonly number[]): SlotLease<S> {
    slot.busy = true;
    slot.lastUsed = ++this.clock;
    this.started++;
    let released = false;
    return {
      slot: slot.id,
      session: slot.session,
      matchedPrefix: commonPrefix(slot.cached, prompt),
      release: (cached?: readonly number[]) => {
        if (released) return;
        released = true;
        slot.cached = cached ? cached.slice() : [];
        slot.busy = false;
        slot.lastUsed = ++this.clock;
        this.handOff(slot);
      },
    };
  }

  /** Gives a freed slot to the oldest waiting request. */
  private handOff(slot: Slot<S>): void {
    const w = this.queue.shift();
    if (!w) return;
    w.cleanup();
    w.resolve(this.lease(slot, w.prompt));
  }
}
