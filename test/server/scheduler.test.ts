// The scheduler without sockets or a model: slot leasing, the FIFO queue, abort while queued, the
// queue limit, shutdown, prefix-based slot choice, and that generation steps never overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortError, FifoLock, QueueFullError, Scheduler, SchedulerClosedError } from '../../src/server/scheduler.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

test('FifoLock runs callers one at a time, in order, and survives a throwing caller', async () => {
  const lock = new FifoLock();
  const order: string[] = [];
  let inside = 0;
  let maxInside = 0;
  const job = (name: string, fail = false) =>
    lock.run(async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      order.push(`start ${name}`);
      await tick();
      order.push(`end ${name}`);
      inside--;
      if (fail) throw new Error(`fail ${name}`);
      return name;
    });
  const results = await Promise.allSettled([job('a'), job('b', true), job('c')]);
  assert.equal(maxInside, 1);
  assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[1].status, 'rejected');
  assert.equal((results[2] as PromiseFulfilledResult<string>).value, 'c');
});

test('slots are leased while idle; later requests wait in FIFO order', async () => {
  const s = new Scheduler(['A', 'B']);
  const l1 = await s.acquire([1]);
  const l2 = await s.acquire([2]);
  assert.notEqual(l1.slot, l2.slot);
  assert.deepEqual(s.stats(), { slots: 2, idle: 0, busy: 2, queued: 0, started: 2 });
  const got: string[] = [];
  const p3 = s.acquire([3]).then((l) => (got.push('third'), l));
  const p4 = s.acquire([4]).then((l) => (got.push('fourth'), l));
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
  const s = new Scheduler(['A'], { maxQueue: 1 });
  const l1 = await s.acquire();
  const waiting = s.acquire();
  await assert.rejects(s.acquire(), QueueFullError);
  l1.release();
  (await waiting).release();
  // maxQueue 0: no waiting at all
  const s0 = new Scheduler(['A'], { maxQueue: 0 });
  const l = await s0.acquire();
  await assert.rejects(s0.acquire(), QueueFullError);
  l.release();
  (await s0.acquire()).release();
});

test('an aborted waiter leaves the queue and does not take a slot', async () => {
  const s = new Scheduler(['A']);
  const l1 = await s.acquire();
  const ac = new AbortController();
  const p = s.acquire([], ac.signal);
  const next = s.acquire();
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
  await assert.rejects(s.acquire([], AbortSignal.abort()), AbortError);
  assert.equal(s.stats().busy, 0);
});

test('close() rejects waiters and new requests; running leases finish', async () => {
  const s = new Scheduler(['A']);
  const l1 = await s.acquire();
  const waiting = s.acquire();
  s.close();
  await assert.rejects(waiting, SchedulerClosedError);
  await assert.rejects(s.acquire(), SchedulerClosedError);
  l1.release();
  assert.equal(s.stats().busy, 0);
});

test('an idle slot whose cache holds at least half the prompt is chosen, else the least recently used', async () => {
  const s = new Scheduler(['A', 'B', 'C']);
  const a = await s.acquire([9]);
  const b = await s.acquire([9]);
  const c = await s.acquire([9]);
  a.release([1, 2, 3, 4]);
  b.release([1, 2, 7]);
  c.release([5, 6]);
  const l = await s.acquire([1, 2, 7, 8]);
  assert.equal(l.session, 'B');
  assert.equal(l.matchedPrefix, 3);
  l.release([1, 2, 7, 8, 10]);
  const m = await s.acquire([1, 2, 3, 4, 5]);
  assert.equal(m.session, 'A');
  assert.equal(m.matchedPrefix, 4);
  // no prefix anywhere: the least recently used idle slot (C was released before B and A were reused)
  const n = await s.acquire([42]);
  assert.equal(n.session, 'C');
  assert.equal(n.matchedPrefix, 0);
  n.release([42]);
  // a prefix under half the prompt does not count: B (1,2,7,8,10) is the LRU slot now, not A (1,2,3,4)
  m.release([1, 2, 3, 4]);
  const o = await s.acquire([1, 9, 9, 9, 9]);
  assert.equal(o.session, 'B');
  o.release();
});

/** A fake generation: each step "runs a forward pass" that must not overlap any other. */
function fakeGeneration(name: string, steps: number, probe: { inside: number; max: number; trace: string[] }) {
  return (async function* (): AsyncGenerator<string, string> {
    for (let i = 0; i < steps; i++) {
      probe.inside++;
      probe.max = Math.max(probe.max, probe.inside);
      await tick(); // the "forward pass" takes a turn of the event loop
      await tick();
      probe.inside--;
      probe.trace.push(`${name}${i}`);
      yield `${name}${i}`;
    }
    return `${name} done`;
  })();
}

test('steps() serializes the steps of concurrent generations and interleaves them', async () => {
  const s = new Scheduler(['A', 'B']);
  const probe = { inside: 0, max: 0, trace: [] as string[] };
  const drain = async (name: string) => {
    const events: string[] = [];
    const it = s.steps(fakeGeneration(name, 4, probe));
    for (;;) {
      const r = await it.next();
      if (r.done) return { events, result: r.value };
      events.push(r.value);
    }
  };
  const [x, y] = await Promise.all([drain('x'), drain('y')]);
  assert.equal(probe.max, 1, 'two steps ran at the same time');
  assert.deepEqual(x, { events: ['x0', 'x1', 'x2', 'x3'], result: 'x done' });
  assert.deepEqual(y, { events: ['y0', 'y1', 'y2', 'y3'], result: 'y done' });
  // round robin: neither generation ran all its steps before the other started
  assert.ok(probe.trace.indexOf('y0') < probe.trace.indexOf('x3'), probe.trace.join(' '));
  assert.ok(probe.trace.indexOf('x0') < probe.trace.indexOf('y3'), probe.trace.join(' '));
});

test('steps() closes the inner iterator when the consumer stops early', async () => {
  const s = new Scheduler(['A']);
  let closed = false;
  const inner = (async function* () {
    try {
      for (let i = 0; ; i++) yield i;
    } finally {
      closed = true;
    }
  })();
  for await (const v of s.steps(inner)) if (v === 2) break;
  assert.ok(closed);
});

test('bad scheduler options are errors', () => {
  assert.throws(() => new Scheduler([]), /at least one slot/);
  assert.throws(() => new Scheduler(['A'], { maxQueue: -1 }), /maxQueue/);
});
