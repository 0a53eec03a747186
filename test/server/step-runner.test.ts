// The step runner on a tiny real model: each slot gets its logits in a buffer of its own, reused
// from step to step (no fresh buffer per token), holding what a fresh run computes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { KVCache } from '../../src/model/kv-cache.js';
import { StepRunner, type RunnerSlot } from '../../src/server/step-runner.js';
import { tinyModel } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

function runner(): { run: StepRunner; slot: (id: number) => RunnerSlot } {
  const pool = lm.model.createKVPool(64);
  const run = new StepRunner(lm.model.createForward(8, 2, 64), { budget: 8, vocabSize: lm.config.vocabSize, grow: () => false });
  const slot = (id: number): RunnerSlot => {
    const kv = new KVCache(pool);
    assert.ok(kv.reserve(32, 0));
    return { id, kv, cached: [] };
  };
  return { run, slot };
}

test("a slot's logits come in its own buffer, reused from token to token, with what a fresh run computes", async () => {
  const { run, slot } = runner();
  const s0 = slot(0);
  const s1 = slot(1);
  const [a0, a1] = await Promise.all([run.submit(s0, [65, 66, 67], 0), run.submit(s1, [70, 71], 0)]);
  assert.notEqual(a0, a1, 'two slots, two buffers');
  const first = a0.slice();
  const b0 = await run.submit(s0, [68], 3);
  assert.equal(b0, a0, 'the same buffer for the next token');
  assert.notDeepEqual(b0, first);
  // what a sequence alone gets for the same tokens
  const fresh = runner();
  const alone = await fresh.run.submit(fresh.slot(0), [65, 66, 67, 68], 0);
  assert.deepEqual(b0, alone);
});
