// bench/fleet-sim's model holds together: every turn of the trace is served, one pod makes the
// policies equal, a turn routed back to its conversation's pod reads only its new tokens (so affinity
// finds the cache that round robin loses), and step costs interpolate between measured points.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulate, StepCost, syntheticTrace, type TraceChat } from '../../bench/fleet-sim.js';

const cost = new StepCost([[1, 40], [8, 240], [64, 960]]);
const base = { slots: 8, ctx: 8192, batch: 64, cost, slack: 4 };

test('step costs interpolate and extrapolate from the measured points', () => {
  assert.equal(cost.ms(1), 40);
  assert.equal(cost.ms(8), 240);
  assert.ok(Math.abs(cost.ms(36) - 600) < 1e-9);
  assert.ok(cost.ms(128) > 960);
});

test('a hand-made trace: two turns on one pod, the second reads only its new message', () => {
  const trace: TraceChat[] = [{ start: 0, turns: [{ user: 10, reply: 5, think: 0 }, { user: 7, reply: 3, think: 1 }] }];
  const r = simulate(trace, { ...base, pods: 1, policy: 'round-robin' });
  assert.equal(r.requests, 2);
  // prompts: 40 + 10, then 40 + 10 + 5 + 7 of which 55 cached
  assert.ok(Math.abs(r.cacheHitRatio - 55 / (50 + 62)) < 1e-9, String(r.cacheHitRatio));
  // first turn: one 50-row prompt step; its first token comes out of that step
  assert.ok(r.ttftP50 > 0 && r.ttftP50 <= cost.ms(50) / 1000 + 1e-9, String(r.ttftP50));
});

test('policies on a synthetic trace: all turns served; one pod makes them equal; affinity keeps the caches', () => {
  const one = syntheticTrace({ seed: 3, seconds: 120, chatsPerSecond: 2 / 60 });
  const turns = one.reduce((a, c) => a + c.turns.length, 0);
  const single = (['round-robin', 'least-requests', 'affinity'] as const).map((policy) => simulate(one, { ...base, pods: 1, policy }));
  for (const r of single) assert.equal(r.requests, turns);
  assert.deepEqual(single[1], { ...single[0], policy: 'least-requests' });

  const five = syntheticTrace({ seed: 3, seconds: 300, chatsPerSecond: (5 * 2) / 60 });
  const rr = simulate(five, { ...base, pods: 5, policy: 'round-robin' });
  const aff = simulate(five, { ...base, pods: 5, policy: 'affinity' });
  assert.equal(rr.requests, aff.requests);
  assert.ok(aff.cacheHitRatio > rr.cacheHitRatio + 0.3, `affinity ${aff.cacheHitRatio} vs round robin ${rr.cacheHitRatio}`);
  assert.ok(aff.ttftP50 < rr.ttftP50, `affinity p50 ${aff.ttftP50} vs round robin ${rr.ttftP50}`);
});
