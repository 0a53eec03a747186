// The prefix cache over the shared KV pool (scheduler.ts, step-runner.ts, service.ts), on a tiny
// real model: a prefix cached by any slot (idle, running, or a parked finished conversation) seeds
// a new sequence by copying rows; concurrent prompts sharing a prefix read it once; eviction under
// pool pressure never touches a running sequence; and every greedy answer equals evaluating the
// same tokens from an empty cache.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { GenerationService, type RunInfo } from '../../src/server/service.js';
import type { GenerationParams } from '../../src/server/requests.js';
import { commonPrefix } from '../../src/server/scheduler.js';
import { tinyModel, greedyParams } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const params = (over: Partial<GenerationParams> = {}): GenerationParams => greedyParams(8, over);

const SYSTEM = 'You answer in short sentences. Tool instructions would go here and be this long, shared by every user.';
const chat = (svc: GenerationService, ...turns: string[]) =>
  svc.chatPrompt({ messages: [{ role: 'system', content: SYSTEM }, ...turns.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content }))] });

/** The same tokens on a fresh one-slot service (nothing cached). */
async function fromScratch(prompt: readonly number[], p: GenerationParams): Promise<RunInfo> {
  const solo = new GenerationService(lm, { modelId: 'm', ctxSize: 512, slots: 1 });
  try {
    const r = await solo.complete(prompt, p);
    assert.equal(r.cachedTokens, 0);
    return r;
  } finally {
    await solo.close();
  }
}

test("an idle slot's prefix seeds another slot by copy: cached tokens, the source keeps its cache, same greedy tokens", async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 512, slots: 2 });
  const a = chat(svc, 'first user asks this');
  const b = chat(svc, 'second user asks that');
  const shared = commonPrefix(a, b);
  assert.ok(shared > 50, 'the system prompt is shared');
  const ra = await svc.complete(a, params());
  assert.equal(ra.cachedTokens, 0);
  const rb = await svc.complete(b, params());
  assert.notEqual(rb.slot, ra.slot, "the second user does not take the first one's slot");
  assert.equal(rb.cachedTokens, shared, 'the system prompt is copied, not read');
  assert.deepEqual(rb.result.tokens, (await fromScratch(b, params())).result.tokens);
  // the first conversation is still whole in its slot: its next turn reads only what is new
  const a2 = [...a, ...ra.result.tokens.slice(0, -1)];
  const ra2 = await svc.complete([...a2, 70, 71, 72], params());
  assert.equal(ra2.slot, ra.slot);
  assert.equal(ra2.cachedTokens, a2.length);
  await svc.close();
});

test('prompts sharing a prefix at the same moment read it once (the later one waits for it and copies it)', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 1024, slots: 3, batchSize: 16 });
  const prompts = [chat(svc, 'one'), chat(svc, 'two two'), chat(svc, 'three three three')];
  const rs = await Promise.all(prompts.map((p) => svc.complete(p, params())));
  const read = rs.reduce((sum, r, i) => sum + prompts[i]!.length - r.cachedTokens, 0);
  // each reads only what no earlier one shares with it
  const fresh = prompts.reduce((sum, p, i) => sum + p.length - Math.max(0, ...prompts.slice(0, i).map((q) => commonPrefix(p, q))), 0);
  assert.ok(commonPrefix(prompts[0]!, prompts[1]!) > 50);
  assert.equal(read, fresh, 'the shared prefix is read by one of them only');
  for (const [i, r] of rs.entries()) assert.deepEqual(r.result.tokens, (await fromScratch(prompts[i]!, params())).result.tokens);
  await svc.close();
});

test("a finished conversation is parked when its slot goes to another one, and seeds that conversation's next turn", async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 512, slots: 1 });
  const a = [1, ...Array.from({ length: 40 }, (_, i) => 65 + (i % 26))];
  const b = [1, ...Array.from({ length: 30 }, (_, i) => 97 + (i % 26))];
  const ra = await svc.complete(a, params());
  await svc.complete(b, params()); // the one slot goes to b: a's cache is parked
  const parked = svc.scheduler.entries().filter((e) => e.parked);
  assert.equal(parked.length, 1);
  assert.equal(parked[0]!.tokens.length, a.length + ra.result.tokens.length - 1);
  const next = [...a, ...ra.result.tokens, 48, 49];
  const r = await svc.complete(next, params());
  assert.equal(r.cachedTokens, a.length + ra.result.tokens.length - 1);
  assert.deepEqual(r.result.tokens, (await fromScratch(next, params())).result.tokens);
  await svc.close();
});

test('under pool pressure, parked caches are given up least recently used first and a running sequence is never touched', async () => {
  // 256 positions: a long generation runs (96 reserved) while six other conversations come and go on
  // the other slot; each one's cache is parked when the next takes the slot, the oldest parked go first
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 256, slots: 2 });
  const long = [1, ...Array.from({ length: 20 }, (_, i) => 40 + i)];
  const running = svc.complete(long, params({ maxTokens: 60 }));
  const convs: number[][] = [];
  let mostParked = 0;
  for (let i = 0; i < 6; i++) {
    const p = [1, ...Array.from({ length: 25 }, (_, j) => 66 + ((i * 7 + j) % 50))];
    const r = await svc.complete(p, params({ maxTokens: 6 }));
    assert.deepEqual(r.result.tokens, (await fromScratch(p, params({ maxTokens: 6 }))).result.tokens);
    convs.push([...p, ...r.result.tokens.slice(0, -1)]);
    mostParked = Math.max(mostParked, svc.scheduler.entries().filter((e) => e.parked).length);
    const { used, total } = svc.snapshot().kv;
    assert.ok(used <= total);
  }
  const held = (c: number[]) => svc.scheduler.entries().some((e) => commonPrefix(e.tokens, c) === c.length);
  assert.ok(mostParked >= 3, `conversations were parked (at most ${mostParked} at once)`);
  assert.equal(held(convs[0]!), false, 'the least recently used conversation was given up');
  for (const c of convs.slice(3)) assert.ok(held(c), 'the recent ones are kept');
  const rl = await running;
  assert.deepEqual(rl.result.tokens, (await fromScratch(long, params({ maxTokens: 60 }))).result.tokens, 'the running sequence is intact');
  // a parked conversation's next turn starts from it
  const next = [...convs[4]!, 50, 51];
  const r = await svc.complete(next, params());
  assert.equal(r.cachedTokens, convs[4]!.length);
  assert.deepEqual(r.result.tokens, (await fromScratch(next, params())).result.tokens);
  await svc.close();
});
