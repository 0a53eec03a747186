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
// Slot choice, among the idle slots: the one whose whole cache the prompt continues (a chat's next
// turn lands where its earlier turns are), else one holding nothing, else one whose cache holds at
// least half the prompt, else the least recently used.
//
// Prefix cache (when the KvSpace can copy): the cached sequences are every slot's (leased or idle)
// and "parked" ones: finished conversations kept in the pool after their slot went to another
// request. A new request starts from the longest prefix of its prompt cached anywhere: its rows are
// copied into the slot (bit-identical to reading them again, far cheaper). A slot's cache that the
// new request would overwrite is parked first when the pool has room (or when older entries can
// give it up). Idle and parked caches are given up least recently used first (a copy's source
// counts as used) whenever a request or a growing sequence needs the room.
//
// With `cacheIdleSlots` (llama-server's --cache-idle-slots; needs KvSpace.move): when a request
// starts, every other idle slot's cache becomes a parked entry (its rows change owner, nothing is
// copied) and the slot is left empty; a request then prefers the slot whose cache holds most of its
// prompt, else an empty one, and an empty slot takes a parked prefix back the same way (no copy).
// Idle slots thus hold nothing: every finished conversation is in one prompt cache any slot reads.

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
 * Every generating sequence gets its one row; the rest of `budget` rows (of `streamBudget` when a
 * sequence is generating) goes to prompts in arrival order, each taking what it still needs (the
 * last one taken may get a partial chunk).
 */
export function planStep(work: readonly WorkItem[], budget: number, streamBudget = budget): StepPlan {
  if (!Number.isInteger(budget) || budget < 1) throw new Error(`step budget must be a positive integer, got ${budget}`);
  if (!Number.isInteger(streamBudget) || streamBudget < 1 || streamBudget > budget) {
    throw new Error(`stream step budget must be an integer in 1..${budget}, got ${streamBudget}`);
  }
  const parts: StepPlan['parts'] = [];
  let rows = 0;
  for (const w of work) {
    if (!w.decoding || w.tokens < 1) continue;
    parts.push({ seq: w.seq, count: 1 });
    rows++;
  }
  const prompts = work.filter((w) => !w.decoding && w.tokens > 0).sort((a, b) => a.order - b.order);
  const cap = rows > 0 ? streamBudget : budget;
  for (const w of prompts) {
    const room = cap - rows;
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
  /**
   * Gives entry `slot` room for `positions` positions keeping its first `keep`; false when the pool
   * cannot. Entries 0..slots-1 are the slots; higher ids are parked caches (made on first reserve).
   */
  reserve(slot: number, positions: number, keep: number): boolean;
  /** Gives entry `slot`'s positions back to the pool (a parked entry is gone after this). */
  release(slot: number): void;
  /** Copies entry `from`'s first `n` positions into entry `to` (which has room). Without it: no sharing across slots. */
  copy?(from: number, to: number, n: number): void;
  /** the tokens a leased slot's cache holds now (it grows as the slot runs) */
  live?(slot: number): readonly number[];
  /** positions no entry holds */
  free?(): number;
  /** Hands entry `from`'s rows and tokens to entry `to` (which holds none): no copy; `from` then holds nothing. */
  move?(from: number, to: number): void;
}

/** What the scheduler did with the prompt cache (parked entries), for --verbose logs. */
export type SchedulerEvent =
  /** an idle slot's cache went to the prompt cache as another request started (cacheIdleSlots); `held`: another entry had it already */
  | { type: 'idle-slot-cached'; slot: number; entry: number; tokens: number; held: boolean }
  /** a request's prefix came from the prompt cache: handed over (`moved`) or copied */
  | { type: 'prompt-restored'; slot: number; entry: number; tokens: number; moved: boolean };

/** A cached sequence the scheduler knows of (for matching, reporting and /slots). */
export interface CacheEntry {
  /** a slot id (< slots) or a parked entry's id */
  id: number;
  tokens: readonly number[];
  /** a leased slot (its tokens grow) */
  busy: boolean;
  parked: boolean;
  lastUsed: number;
}

export interface SchedulerOptions {
  /** requests allowed to wait (default 64); more are refused with QueueFullError */
  maxQueue?: number;
  /** most parked caches kept (default 64); past that the least recently used goes */
  maxParked?: number;
  /** move idle slots' caches to the prompt cache when a request starts (see the header; needs KvSpace.move) */
  cacheIdleSlots?: boolean;
  /** told what happens to the prompt cache */
  onEvent?: (e: SchedulerEvent) => void;
}

/** Caches shorter than this are not worth parking. */
const MIN_PARK = 8;

export interface SlotLease {
  readonly slot: number;
  /** tokens of the prompt the slot's cache holds when leased (its own, or copied from another entry) */
  readonly matchedPrefix: number;
  /** the entry the prefix was copied from (undefined: the slot's own cache, or none) */
  readonly seededFrom?: number;
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
  /** the slot asked for (llama-server's id_slot), or undefined for any */
  slot?: number;
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
  private readonly maxParked: number;
  private readonly cacheIdleSlots: boolean;
  private readonly onEvent: ((e: SchedulerEvent) => void) | undefined;
  /** finished conversations kept after their slot went to another request, by entry id */
  private readonly parked = new Map<number, { id: number; cached: readonly number[]; lastUsed: number }>();
  private nextParked: number;
  private clock = 0;
  private started = 0;
  private closed = false;

  constructor(nSlots: number, private readonly kv: KvSpace, opts: SchedulerOptions = {}) {
    if (!Number.isInteger(nSlots) || nSlots < 1) throw new Error(`scheduler needs at least one slot, got ${nSlots}`);
    const maxQueue = opts.maxQueue ?? 64;
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new Error(`maxQueue must be a non-negative integer, got ${maxQueue}`);
    this.maxQueue = maxQueue;
    const maxParked = opts.maxParked ?? 64;
    if (!Number.isInteger(maxParked) || maxParked < 0) throw new Error(`maxParked must be a non-negative integer, got ${maxParked}`);
    this.maxParked = maxParked;
    this.cacheIdleSlots = !!opts.cacheIdleSlots && !!kv.move && maxParked > 0;
    this.onEvent = opts.onEvent;
    this.nextParked = nSlots;
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
   * possible, else after the requests queued before it. `slot` asks for that slot (waiting while it
   * is busy) instead of the best idle one. Rejects with QueueFullError when the queue is full,
   * AbortError when `signal` aborts first, SchedulerClosedError after close().
   */
  acquire(prompt: readonly number[], positions: number, signal?: AbortSignal, slot?: number): Promise<SlotLease> {
    if (this.closed) return Promise.reject(new SchedulerClosedError('server is shutting down'));
    if (signal?.aborted) return Promise.reject(new AbortError('request aborted'));
    if (slot !== undefined && !(Number.isInteger(slot) && slot >= 0 && slot < this.slots.length)) {
      return Promise.reject(new RangeError(`no slot ${slot} (slots 0..${this.slots.length - 1})`));
    }
    if (this.queue.length === 0) {
      const lease = this.tryAdmit(prompt, positions, slot);
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
      const waiter: Waiter = { prompt, positions, slot, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
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
    for (const e of this.evictionOrder(slot)) {
      this.evictEntry(e.id);
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

  /** Gives up every idle slot's cache and every parked one (their memory is about to go: the server sleeps). */
  dropCaches(): void {
    for (const e of this.entries()) if (!e.busy && (e.parked || e.tokens.length > 0)) this.evictEntry(e.id);
  }

  /** Every cached sequence: the slots' (leased ones as they are now) and the parked ones. */
  entries(): CacheEntry[] {
    const out: CacheEntry[] = [];
    for (const s of this.slots) out.push({ id: s.id, tokens: this.tokensOf(s.id), busy: s.busy, parked: false, lastUsed: s.lastUsed });
    for (const p of this.parked.values()) out.push({ id: p.id, tokens: p.cached, busy: false, parked: true, lastUsed: p.lastUsed });
    return out;
  }

  /** The longest prefix of `tokens` cached anywhere (never entry `except`): its entry and length. */
  longestPrefix(tokens: readonly number[], except = -1): { id: number; n: number } | undefined {
    let best: { id: number; n: number } | undefined;
    for (const e of this.entries()) {
      if (e.id === except) continue;
      const n = commonPrefix(e.tokens, tokens);
      if (n > 0 && (!best || n > best.n)) best = { id: e.id, n };
    }
    return best;
  }

  /** Marks an entry as used now (it just served as a copy's source). */
  touch(id: number): void {
    const e = id < this.slots.length ? this.slots[id] : this.parked.get(id);
    if (e) e.lastUsed = ++this.clock;
  }

  private tokensOf(id: number): readonly number[] {
    if (id >= this.slots.length) return this.parked.get(id)?.cached ?? [];
    const s = this.slots[id]!;
    return s.busy && this.kv.live ? this.kv.live(id) : s.cached;
  }

  /** An idle slot and a KV reservation for the prompt, or undefined (nothing needed was lost then). */
  private tryAdmit(prompt: readonly number[], positions: number, wanted?: number): SlotLease | undefined {
    const slot = wanted === undefined ? this.pickIdle(prompt) : this.slots[wanted];
    if (!slot || slot.busy) return undefined;
    let own = commonPrefix(slot.cached, prompt);
    let seed = this.kv.copy ? this.longestPrefix(prompt, slot.id) : undefined;
    if (seed && seed.n <= own) seed = undefined;
    // an empty slot takes a parked prefix by handing its rows over, no copy
    const parked = seed && slot.cached.length === 0 && this.kv.move ? this.parked.get(seed.id) : undefined;
    if (seed && parked) {
      this.kv.move!(parked.id, slot.id);
      this.parked.delete(parked.id);
      slot.cached = parked.cached;
      own = seed.n;
      this.onEvent?.({ type: 'prompt-restored', slot: slot.id, entry: parked.id, tokens: seed.n, moved: true });
      seed = undefined;
    }
    // what the request would overwrite of this slot's cache is kept elsewhere if it can be
    if (slot.cached.length > own) this.park(slot, positions, seed?.id);
    const keep = seed ? 0 : own;
    if (!this.reserveEvicting(slot.id, positions, keep, seed?.id)) {
      // the seed's source was all that could still be given up
      if (!seed || !this.reserveEvicting(slot.id, positions, 0)) return undefined;
    }
    slot.cached = slot.cached.slice(0, keep);
    if (seed && this.tokensOf(seed.id).length >= seed.n) {
      this.kv.copy!(seed.id, slot.id, seed.n);
      this.touch(seed.id);
      if (this.parked.has(seed.id)) this.onEvent?.({ type: 'prompt-restored', slot: slot.id, entry: seed.id, tokens: seed.n, moved: false });
      slot.cached = prompt.slice(0, seed.n);
      return this.lease(slot, seed.n, seed.id);
    }
    return this.lease(slot, keep);
  }

  /** Reserves, giving up idle and parked caches (least recently used first, never `protect`) until it fits. */
  private reserveEvicting(id: number, positions: number, keep: number, protect?: number): boolean {
    if (this.kv.reserve(id, positions, keep)) return true;
    for (const e of this.evictionOrder(id, protect)) {
      this.evictEntry(e.id);
      if (this.kv.reserve(id, positions, keep)) return true;
    }
    return false;
  }

  /**
   * Keeps a copy of `slot`'s cache as a parked entry, when the pool has room for it besides the
   * `positions` the new request needs: room made by giving up entries used less recently than this
   * one (never `protect`), else not at all. Nothing is parked that another entry already holds.
   */
  private park(slot: Slot, positions: number, protect?: number): void {
    const kv = this.kv;
    const tokens = slot.cached;
    if (!kv.copy || !kv.free || this.maxParked === 0 || tokens.length < MIN_PARK) return;
    for (const e of this.entries()) if (e.id !== slot.id && commonPrefix(e.tokens, tokens) === tokens.length) return;
    const need = tokens.length + positions;
    for (const e of this.evictionOrder(slot.id, protect)) {
      if (kv.free() >= need || e.lastUsed > slot.lastUsed) break;
      this.evictEntry(e.id);
    }
    if (kv.free() < need) return;
    const id = this.nextParked++;
    if (!kv.reserve(id, tokens.length, 0)) {
      kv.release(id);
      return;
    }
    kv.copy(slot.id, id, tokens.length);
    this.parked.set(id, { id, cached: tokens, lastUsed: slot.lastUsed });
    this.trimParked();
  }

  /** Gives up the least recently used parked caches past maxParked. */
  private trimParked(): void {
    while (this.parked.size > this.maxParked) {
      const oldest = [...this.parked.values()].sort((a, b) => a.lastUsed - b.lastUsed)[0]!;
      this.evictEntry(oldest.id);
    }
  }

  /** idle slots holding a cache and parked caches, least recently used first (never `except` or `protect`) */
  private evictionOrder(except: number, protect?: number): CacheEntry[] {
    return this.entries()
      .filter((e) => !e.busy && e.id !== except && e.id !== protect && e.tokens.length > 0)
      .sort((a, b) => a.lastUsed - b.lastUsed);
  }

  private evictEntry(id: number): void {
    this.kv.release(id);
    if (id < this.slots.length) this.slots[id]!.cached = [];
    else this.parked.delete(id);
  }

  /**
   * cacheIdleSlots: every idle slot but `started` hands its cache to a parked entry (or drops it when
   * another entry holds it all already) and is left empty.
   */
  private cacheIdle(started: Slot): void {
    for (const s of this.slots) {
      if (s === started || s.busy || s.cached.length < MIN_PARK) continue;
      const tokens = s.cached;
      const held = this.entries().find((e) => e.id !== s.id && !e.busy && commonPrefix(e.tokens, tokens) === tokens.length);
      if (held) {
        this.evictEntry(s.id);
        this.onEvent?.({ type: 'idle-slot-cached', slot: s.id, entry: held.id, tokens: tokens.length, held: true });
        continue;
      }
      const id = this.nextParked++;
      this.kv.move!(s.id, id);
      this.parked.set(id, { id, cached: tokens, lastUsed: s.lastUsed });
      s.cached = [];
      this.onEvent?.({ type: 'idle-slot-cached', slot: s.id, entry: id, tokens: tokens.length, held: false });
      this.trimParked();
    }
  }

  private pickIdle(prompt: readonly number[]): Slot | undefined {
    let continued: Slot | undefined;
    let empty: Slot | undefined;
    let best: Slot | undefined;
    let bestLen = 0;
    let lru: Slot | undefined;
    for (const s of this.slots) {
      if (s.busy) continue;
      if (!lru || s.lastUsed < lru.lastUsed) lru = s;
      if (s.cached.length === 0) {
        empty ??= s;
        continue;
      }
      const len = commonPrefix(s.cached, prompt);
      if (len === s.cached.length && (!continued || len > continued.cached.length)) continued = s;
      if (len > bestLen || (len === bestLen && best && s.lastUsed < best.lastUsed)) {
        best = s;
        bestLen = len;
      }
    }
    // a short shared prefix (say BOS and a role name) is not worth another conversation's cache
    const similar = best && bestLen >= MIN_SIMILARITY * prompt.length ? best : undefined;
    // idle caches go to the prompt cache anyway (cacheIdleSlots): the one that holds most of the prompt stays where it is
    if (this.cacheIdleSlots) return continued ?? similar ?? empty ?? lru;
    return continued ?? empty ?? similar ?? lru;
  }

  private lease(slot: Slot, matchedPrefix: number, seededFrom?: number): SlotLease {
    slot.busy = true;
    slot.lastUsed = ++this.clock;
    this.started++;
    if (this.cacheIdleSlots) this.cacheIdle(slot);
    let released = false;
    return {
      slot: slot.id,
      matchedPrefix,
      seededFrom,
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
      const lease = this.tryAdmit(w.prompt, w.positions, w.slot);
      if (!lease) return;
      this.queue.shift();
      w.cleanup();
      w.resolve(lease);
    }
  }
}
