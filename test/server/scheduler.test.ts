// The scheduler without sockets or a model: slot leasing, the FIFO queue, abort while queued, the
// queue limit, shutdown, prefix-based slot choice, admission by KV room in a shared pool (idle
// caches given up oldest first), and each step's plan (decode rows + prompt chunks in a budget).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortError, planStep, QueueFullError, Scheduler, SchedulerClosedError, type KvSpace } from '../../src/server/scheduler.js';
import { KVAllocator } from '../../src/model/kv-cache.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A KV pool as a counter: each slot holds some positions out of `size`. */
function countingKv(size: number): KvSpace & { held: Map<number, number>; log: string[] } {
  const held = new Map<number, number>();
  const log: string[] = [];
  return {
    held,
    log,
    reserve(slot, positions) {
      let other = 0;
      for (const [s, n] of held) if (s !== slot) other += n;
      if (other + positions > size) return false;
      held.set(slot, positions);
      return true;
    },
    release(slot) {
      log.push(`release ${slot}`);
      held.delete(slot);
    },
  };
}

const big = () => countingKv(1 << 20);

test('slots are leased while idle; later requests wait in FIFO order', async () => {
  const s = new Scheduler(2, big());
  const l1 = await s.acquire([1], 8);
  const l2 = await s.acquire([2], 8);
  assert.notEqual(l1.slot, l2.slot);
  assert.deepEqual(s.stats(), { slots: 2, idle: 0, busy: 2, queued: 0, started: 2 });
  const got: string[] = [];
  const p3 = s.acquire([3], 8).then((l) => (got.push('third'), l));
  const p4 = s.acquire([4], 8).then((l) => (got.push('fourth'), l));
  await tick();
  assert.equal(s.stats().queued, 2);
  assert.deepEqual(got, []);
  l2.release([2]);
  const l3 = await p3;
  assert.equal(l3.slot, l2.slot, 'the freed slot goes to the oldest waiter');
  assert.deepEqual(got, ['third']);
  l1.release();
  const l4 = await p4;
  assert.equal(l4.slot, l1.slot);
  assert.deepEqual(got, ['third', 'fourth']);
  l3.release();
  l4.release();
  l4.release(); // a second release is harmless
  assert.deepEqual(s.stats(), { slots: 2, idle: 2, busy: 0, queued: 0, started: 4 });
});

test('a full queue refuses with QueueFullError', async () => {
  const s = new Scheduler(1, big(), { maxQueue: 1 });
  const l1 = await s.acquire([], 8);
  const waiting = s.acquire([], 8);
  await assert.rejects(s.acquire([], 8), QueueFullError);
  l1.release();
  (await waiting).release();
  // maxQueue 0: no waiting at all
  const s0 = new Scheduler(1, big(), { maxQueue: 0 });
  const l = await s0.acquire([], 8);
  await assert.rejects(s0.acquire([], 8), QueueFullError);
  l.release();
  (await s0.acquire([], 8)).release();
});

test('an aborted waiter leaves the queue and does not take a slot', async () => {
  const s = new Scheduler(1, big());
  const l1 = await s.acquire([], 8);
  const ac = new AbortController();
  const p = s.acquire([], 8, ac.signal);
  const next = s.acquire([], 8);
  await tick();
  assert.equal(s.stats().queued, 2);
  ac.abort();
  await assert.rejects(p, AbortError);
  assert.equal(s.stats().queued, 1);
  l1.release();
  const l2 = await next;
  assert.equal(l2.slot, 0);
  l2.release();
  // an already aborted signal fails at once
  await assert.rejects(s.acquire([], 8, AbortSignal.abort()), AbortError);
  assert.equal(s.stats().busy, 0);
});

test('close() rejects waiters and new requests; running leases finish', async () => {
  const s = new Scheduler(1, big());
  const l1 = await s.acquire([], 8);
  const waiting = s.acquire([], 8);
  s.close();
  await assert.rejects(waiting, SchedulerClosedError);
  await assert.rejects(s.acquire([], 8), SchedulerClosedError);
  l1.release();
  assert.equal(s.stats().busy, 0);
});

test('an idle slot whose cache holds at least half the prompt is chosen, else the least recently used', async () => {
  const s = new Scheduler(3, big());
  const a = await s.acquire([9], 8);
  const b = await s.acquire([9], 8);
  const c = await s.acquire([9], 8);
  a.release([1, 2, 3, 4]);
  b.release([1, 2, 7]);
  c.release([5, 6]);
  const l = await s.acquire([1, 2, 7, 8], 8);
  assert.equal(l.slot, 1);
  assert.equal(l.matchedPrefix, 3);
  l.release([1, 2, 7, 8, 10]);
  const m = await s.acquire([1, 2, 3, 4, 5], 8);
  assert.equal(m.slot, 0);
  assert.equal(m.matchedPrefix, 4);
  // no prefix anywhere: the least recently used idle slot (C was released before B and A were reused)
  const n = await s.acquire([42], 8);
  assert.equal(n.slot, 2);
  assert.equal(n.matchedPrefix, 0);
  n.release([42]);
  // a prefix under half the prompt does not count: B (1,2,7,8,10) is the LRU slot now, not A (1,2,3,4)
  m.release([1, 2, 3, 4]);
  const o = await s.acquire([1, 9, 9, 9, 9], 8);
  assert.equal(o.slot, 1);
  o.release();
});

test('a request waits for KV room, idle caches are given up oldest first, and release hands the room on', async () => {
  const kv = countingKv(100);
  const s = new Scheduler(3, kv, { maxQueue: 4 });
  const a = await s.acquire([1, 2], 40);
  const b = await s.acquire([3, 4], 40);
  b.release([3, 4]); // idle, keeps 2 positions for prefix reuse
  assert.equal(kv.held.get(1), 2);
  a.release([1, 2]);
  // 97 positions on the never-used slot 2: fits once one idle cache goes, the older one (slot 1's)
  const c = await s.acquire([7], 97);
  assert.equal(c.slot, 2);
  assert.deepEqual(kv.log, ['release 1']);
  assert.equal(kv.held.get(0), 2, "slot 0's cache stays");
  // the pool is full now: the next request queues (no slot shortage: 3 slots, 1 busy)
  let admitted = false;
  const d = s.acquire([8], 20).then((l) => ((admitted = true), l));
  await tick();
  assert.equal(admitted, false);
  assert.equal(s.stats().queued, 1);
  c.release(); // no cache kept: all 97 positions go back, d gets in
  const ld = await d;
  assert.equal(kv.held.get(ld.slot), 20);
  ld.release();
});

test('a request that does not fit waits, and those behind it wait too (FIFO), until the queue is full', async () => {
  const kv = countingKv(50);
  const s = new Scheduler(4, kv, { maxQueue: 2 });
  const a = await s.acquire([1], 40);
  const order: string[] = [];
  const big1 = s.acquire([2], 30).then((l) => (order.push('big'), l));
  const small = s.acquire([3], 5).then((l) => (order.push('small'), l));
  await tick();
  assert.deepEqual(order, [], 'the small one does not overtake the big one queued before it');
  await assert.rejects(s.acquire([4], 1), QueueFullError);
  a.release();
  const [lb, ls] = await Promise.all([big1, small]);
  assert.deepEqual(order, ['big', 'small']);
  lb.release();
  ls.release();
});

test('grow() gives a running slot more room, evicting idle caches first, and fails when the pool is full', async () => {
  const kv = countingKv(64);
  const s = new Scheduler(2, kv);
  const a = await s.acquire([1], 16);
  const b = await s.acquire([2], 16);
  b.release([2, 2, 2]);
  assert.equal(s.grow(a.slot, 62, 16), true);
  assert.equal(kv.held.has(b.slot), false, "the idle slot's cache went");
  assert.equal(s.grow(a.slot, 65, 62), false);
  a.release();
});

test('planStep: every generating sequence gets one row, prompts share the rest of the budget in arrival order', () => {
  const plan = planStep(
    [
      { seq: 0, tokens: 1, decoding: true, order: 5 },
      { seq: 1, tokens: 100, decoding: false, order: 2 },
      { seq: 2, tokens: 1, decoding: true, order: 1 },
      { seq: 3, tokens: 10, decoding: false, order: 0 },
    ],
    16,
  );
  assert.deepEqual(plan.parts, [
    { seq: 0, count: 1 },
    { seq: 2, count: 1 },
    { seq: 3, count: 10 },
    { seq: 1, count: 4 },
  ]);
  assert.equal(plan.rows, 16);
  // a budget used up by decode rows leaves the prompts for the next step
  assert.deepEqual(planStep([{ seq: 0, tokens: 1, decoding: true, order: 0 }, { seq: 1, tokens: 5, decoding: false, order: 1 }], 1).parts, [{ seq: 0, count: 1 }]);
  // a one-token prompt (the last token of a cached prefix) is a prompt, not a decode row
  assert.deepEqual(planStep([{ seq: 4, tokens: 1, decoding: false, order: 0 }], 8).parts, [{ seq: 4, count: 1 }]);
  assert.throws(() => planStep([], 0), /budget/);
});

test('planStep: a step with generating sequences takes at most streamBudget rows; prompts alone take the whole budget', () => {
  const prompt = { seq: 1, tokens: 500, decoding: false, order: 1 };
  // prompts alone: the whole budget
  assert.deepEqual(planStep([prompt, { seq: 2, tokens: 30, decoding: false, order: 2 }], 128, 64).parts, [{ seq: 1, count: 128 }]);
  // with two streams: 64 rows in all, the streams' two included
  const mixed = planStep([{ seq: 0, tokens: 1, decoding: true, order: 0 }, prompt, { seq: 3, tokens: 1, decoding: true, order: 3 }], 128, 64);
  assert.deepEqual(mixed.parts, [{ seq: 0, count: 1 }, { seq: 3, count: 1 }, { seq: 1, count: 62 }]);
  assert.equal(mixed.rows, 64);
  // without streamBudget: the budget either way (as before)
  assert.equal(planStep([{ seq: 0, tokens: 1, decoding: true, order: 0 }, prompt], 128).rows, 128);
  assert.throws(() => planStep([prompt], 64, 128), /stream step budget must be an integer in 1\.\.64, got 128/);
  assert.throws(() => planStep([prompt], 64, 0), /stream step budget/);
});

test('KVAllocator: first fit, in-place shrink, compaction when fragmented, refusal when full', () => {
  const a = new KVAllocator(100);
  assert.equal(a.resize(1, 30).ok, true);
  assert.equal(a.resize(2, 30).ok, true);
  assert.equal(a.resize(3, 30).ok, true);
  assert.deepEqual([a.range(1)!.start, a.range(2)!.start, a.range(3)!.start], [0, 30, 60]);
  a.release(2);
  a.setUsed(3, 20);
  // 40 free (30 in the middle, 10 at the end): a range of 35 needs compaction; range 3 moves left with its 20 used positions
  const r = a.resize(4, 35);
  assert.equal(r.ok, true);
  assert.deepEqual(r.moves, [{ from: 60, to: 30, n: 20 }]);
  assert.deepEqual(a.range(4), { start: 60, capacity: 35 });
  assert.equal(a.free, 5);
  assert.equal(a.resize(5, 6).ok, false);
  // a range grows over its own old place (memmove): range 1 (used 10) to 35 positions fails, shrink works
  a.setUsed(1, 10);
  assert.equal(a.resize(1, 36).ok, false);
  assert.deepEqual(a.resize(1, 10), { ok: true, moves: [] });
  assert.equal(a.free, 25);
  assert.equal(a.resize(1, 30).ok, true);
  assert.throws(() => new KVAllocator(0), /positive integer/);
});

test('KVAllocator: a range boxed in by its right neighbour grows when the free total allows (neighbours move aside)', () => {
  const a = new KVAllocator(100);
  a.resize(1, 30);
  a.resize(2, 30);
  a.resize(3, 30);
  a.setUsed(1, 30);
  a.setUsed(2, 25);
  a.setUsed(3, 20);
  // 10 free, at the back: range 2 (in the middle) grows by 10; range 3 moves right, range 2 stays
  const r = a.resize(2, 40);
  assert.equal(r.ok, true);
  assert.deepEqual(r.moves, [{ from: 60, to: 70, n: 20 }]);
  assert.deepEqual([a.range(1), a.range(2), a.range(3)], [{ start: 0, capacity: 30 }, { start: 30, capacity: 40 }, { start: 70, capacity: 30 }]);
  assert.equal(a.free, 0);
  // gaps on both sides: 1 and 3 shrink, then 2 (between them) grows into both gaps at once
  a.resize(1, 20);
  a.setUsed(1, 20);
  a.resize(3, 20);
  a.setUsed(3, 20);
  const g = a.resize(2, 60);
  assert.equal(g.ok, true);
  // range 2 moves left to follow range 1, range 3 moves to the back (right)
  assert.deepEqual(g.moves, [{ from: 30, to: 20, n: 25 }, { from: 70, to: 80, n: 20 }]);
  assert.deepEqual([a.range(1), a.range(2), a.range(3)], [{ start: 0, capacity: 20 }, { start: 20, capacity: 60 }, { start: 80, capacity: 20 }]);
  // and the moves, copied one after the other, keep every range's data
  const mem = Array.from({ length: 100 }, () => -1);
  const fill = (start: number, n: number, tag: number) => { for (let i = 0; i < n; i++) mem[start + i] = tag * 1000 + i; };
  const b = new KVAllocator(100);
  b.resize(1, 20); b.setUsed(1, 20); fill(0, 20, 1);
  b.resize(2, 30); b.setUsed(2, 25); fill(20, 25, 2);
  b.resize(4, 10); b.setUsed(4, 10); fill(50, 10, 4);
  b.resize(3, 30); b.setUsed(3, 20); fill(60, 20, 3);
  b.release(4); // a gap of 10 after range 2, and 10 free at the back
  const m = b.resize(1, 40); // range 1 (first) grows by 20: ranges 2 and 3 move right
  assert.equal(m.ok, true);
  for (const mv of m.moves) mem.copyWithin(mv.to, mv.from, mv.from + mv.n);
  for (const [id, n] of [[1, 20], [2, 25], [3, 20]] as const) {
    const st = b.range(id)!.start;
    assert.deepEqual(mem.slice(st, st + n), Array.from({ length: n }, (_, i) => id * 1000 + i), `range ${id}`);
  }
});
