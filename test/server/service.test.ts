// GenerationService without HTTP, on a tiny real model: prompts, context checks, prefix reuse per
// slot, concurrent generations on two slots giving the same tokens as one at a time, abort and
// shutdown freeing the slots.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { GenerationService } from '../../src/server/service.js';
import { ApiError } from '../../src/server/errors.js';
import type { GenerationParams } from '../../src/server/requests.js';
import { encodeChat } from '../../src/tokenizer/chat-template.js';
import { tinyModel, greedyParams } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const params = (over: Partial<GenerationParams> = {}): GenerationParams => greedyParams(8, over);

test('chat prompts use the chat template; a prompt that fills the context is refused', () => {
  // the slots share one KV pool of -c positions: one sequence may take all of it
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 64, slots: 2 });
  assert.equal(svc.slotContext, 64);
  const messages = [{ role: 'user', content: 'hello there' }];
  assert.deepEqual(svc.chatPrompt({ messages }), encodeChat(lm.tokenizer, messages));
  assert.throws(
    () => svc.chatPrompt({ messages: [{ role: 'user', content: 'x'.repeat(100) }] }),
    (e: unknown) => e instanceof ApiError && e.status === 400 && e.code === 'context_length_exceeded' && e.param === 'messages',
  );
  assert.throws(
    () => svc.completionPrompt({ kind: 'completion', prompt: Array(64).fill(65), ...params() }),
    (e: unknown) => e instanceof ApiError && e.code === 'context_length_exceeded' && e.param === 'prompt',
  );
  assert.equal(svc.completionPrompt({ kind: 'completion', prompt: Array(63).fill(65), ...params() }).length, 63);
  assert.throws(() => new GenerationService(lm, { modelId: 'm', ctxSize: 4, slots: 4 }), /too small/);
  assert.throws(() => new GenerationService(lm, { modelId: 'm', chatTemplate: '{% for %}' }), /chat template/);
});

test('two slots generating at once give the same tokens as one request at a time', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 256, slots: 2 });
  const a = svc.chatPrompt({ messages: [{ role: 'user', content: 'first question' }] });
  const b = svc.chatPrompt({ messages: [{ role: 'user', content: 'another, longer question here' }] });
  const p = params({ maxTokens: 12 });
  const [ra, rb] = await Promise.all([svc.complete(a, p), svc.complete(b, p)]);
  assert.notEqual(ra.slot, rb.slot);
  assert.equal(ra.result.tokens.length, 12);
  assert.equal(rb.result.tokens.length, 12);
  // alone, on a fresh service (empty caches)
  const solo = new GenerationService(lm, { modelId: 'm', ctxSize: 256, slots: 1 });
  const sa = await solo.complete(a, p);
  const sb = await solo.complete(b, p);
  assert.deepEqual(ra.result.tokens, sa.result.tokens);
  assert.deepEqual(rb.result.tokens, sb.result.tokens);
  assert.equal(ra.result.text, sa.result.text);
  assert.deepEqual(svc.stats(), { slots: 2, idle: 2, busy: 0, queued: 0, started: 2 });
});

test('a repeated prompt goes back to its slot and reuses the cached prefix', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 256, slots: 2 });
  const a = svc.chatPrompt({ messages: [{ role: 'user', content: 'cache me' }] });
  const b = svc.chatPrompt({ messages: [{ role: 'system', content: 'other' }, { role: 'user', content: 'something else' }] });
  const r1 = await svc.complete(a, params());
  const r2 = await svc.complete(b, params());
  assert.notEqual(r1.slot, r2.slot, 'the idle slot with no shared prefix is the least recently used one');
  const r3 = await svc.complete(a, params());
  assert.equal(r3.slot, r1.slot);
  assert.equal(r3.cachedTokens, a.length - 1, 'all of the prompt but its last token came from the cache');
  assert.deepEqual(r3.result.tokens, r1.result.tokens);
});

test('a long prompt (over 512 tokens) is reused from the cache in full', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 1024, slots: 1 });
  const prompt = Array.from({ length: 600 }, (_, i) => 65 + (i % 26));
  const r1 = await svc.complete(prompt, params({ maxTokens: 1 }));
  assert.equal(r1.cachedTokens, 0);
  const r2 = await svc.complete([...prompt.slice(0, 580), 66, 67], params({ maxTokens: 1 }));
  assert.equal(r2.cachedTokens, 580);
});

test('aborting a running generation frees its slot; a waiting one then runs', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 256, slots: 1 });
  const prompt = svc.chatPrompt({ messages: [{ role: 'user', content: 'long answer please' }] });
  const ac = new AbortController();
  const h = await svc.start(prompt, params({ maxTokens: 200 }), ac.signal);
  const queued = svc.complete(prompt, params({ maxTokens: 3 }));
  let n = 0;
  let info;
  for (;;) {
    const r = await h.events.next();
    if (r.done) {
      info = r.value;
      break;
    }
    if (r.value.type === 'token' && ++n === 3) ac.abort();
  }
  await h.dispose();
  assert.equal(info.result.finishReason, 'abort');
  assert.ok(info.result.tokens.length < 10, `generated ${info.result.tokens.length} tokens after the abort`);
  const q = await queued;
  assert.equal(q.result.tokens.length, 3);
  assert.equal(svc.stats().busy, 0);
});

test('a handle disposed before it is read frees the slot', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 256, slots: 1 });
  const prompt = svc.chatPrompt({ messages: [{ role: 'user', content: 'x' }] });
  const h = await svc.start(prompt, params());
  assert.equal(svc.stats().busy, 1);
  await h.dispose();
  assert.equal(svc.stats().busy, 0);
  assert.equal((await svc.complete(prompt, params({ maxTokens: 2 }))).result.tokens.length, 2);
});

test('close() aborts running generations, refuses queued and new ones with 503', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 256, slots: 1 });
  const prompt = svc.chatPrompt({ messages: [{ role: 'user', content: 'x' }] });
  const running = svc.complete(prompt, params({ maxTokens: 200 }));
  const queued = svc.complete(prompt, params()).then(() => null, (e: unknown) => e);
  await new Promise((r) => setImmediate(r));
  await svc.close();
  assert.equal((await running).result.finishReason, 'abort');
  const e = await queued;
  assert.ok(e instanceof ApiError && e.status === 503, String(e));
  await assert.rejects(svc.start(prompt, params()), (e: unknown) => e instanceof ApiError && e.status === 503);
});

test('batching does not change results: eight requests at once, arriving apart, give the tokens each gets alone', async () => {
  // a small row budget, so prompts are cut into chunks that share steps with the others' decode rows
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 1024, slots: 8, batchSize: 12 });
  const prompts = Array.from({ length: 8 }, (_, i) =>
    svc.chatPrompt({ messages: [{ role: 'user', content: `question number ${i}: ${'why '.repeat(i * 3)}?` }] }),
  );
  const p = params({ maxTokens: 10 });
  const afterSteps = async (n: number) => {
    while (svc.runner.steps < n) await new Promise((r) => setImmediate(r));
  };
  const runs = prompts.map(async (prompt, i) => {
    await afterSteps(i * 2); // join while the others run
    return svc.complete(prompt, p);
  });
  const together = await Promise.all(runs);
  assert.ok(svc.runner.steps < together.length * 10, `batched: ${svc.runner.steps} steps for ${together.length} x 10 tokens`);
  assert.equal(new Set(together.map((r) => r.slot)).size, 8, 'eight slots at once');
  const solo = new GenerationService(lm, { modelId: 'm', ctxSize: 1024, slots: 1 });
  for (const [i, prompt] of prompts.entries()) {
    const alone = await solo.complete(prompt, p);
    assert.deepEqual(together[i]!.result.tokens, alone.result.tokens, `request ${i}`);
  }
});

test('an abort during a long prompt frees the slot at once; the prompt stops being read', async () => {
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 1024, slots: 2, batchSize: 8 });
  const other = svc.complete(svc.chatPrompt({ messages: [{ role: 'user', content: 'keep going' }] }), params({ maxTokens: 150 }));
  const long = Array.from({ length: 600 }, (_, i) => 65 + (i % 26));
  const ac = new AbortController();
  const h = await svc.start(long, params(), ac.signal);
  const first = h.events.next();
  const step0 = svc.runner.steps;
  while (svc.runner.steps < step0 + 3) await new Promise((r) => setImmediate(r)); // its prompt is being read
  assert.equal(svc.stats().busy, 2);
  ac.abort();
  const r = await first;
  assert.equal(r.done ? r.value.result.finishReason : r.value.type === 'done' && r.value.result.finishReason, 'abort');
  await h.dispose();
  assert.equal(svc.stats().busy, 1, 'the aborted slot is free while the other still runs');
  const o = await other;
  assert.equal(o.result.tokens.length, 150);
  // the slot's cache kept what was read before the abort, and no more
  const aborted = svc.slotStates()[h.slot]!;
  assert.ok(!aborted.busy && aborted.cachedTokens < 590, `cached ${aborted.cachedTokens}`);
});

test('a sequence whose KV range has a neighbour on its right grows when the pool has room in total (ranges move; results unchanged)', async () => {
  // 632 positions, 2 slots. A (no max_tokens) reserves its prompt + 256 -> 272 positions at the front;
  // B (max_tokens 330) takes the next 336; 24 stay free, at the back. A reaches 272 positions while B
  // still runs: it needs 16 more, there are 24 in all, but none next to it. B must move right.
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 632, slots: 2 });
  const promptA = [65, 66, 67, 68];
  const promptB = [70, 71, 72, 73];
  const firstTokens = async (s: GenerationService, prompt: number[], over: Partial<GenerationParams>, n: number) => {
    const h = await s.start(prompt, params(over));
    const out: number[] = [];
    try {
      for (;;) {
        const r = await h.events.next();
        if (r.done) break;
        if (r.value.type === 'token') out.push(r.value.token);
        if (out.length === n) break;
      }
    } finally {
      await h.dispose();
    }
    return out;
  };
  const a = firstTokens(svc, promptA, { maxTokens: undefined }, 280);
  const b = firstTokens(svc, promptB, { maxTokens: 330 }, 330);
  const [ta, tb] = await Promise.all([a, b]);
  assert.equal(ta.length, 280, 'A grew past its first reservation while B held the positions after it');
  assert.equal(tb.length, 330);
  // B's keys/values were moved while it generated: its tokens must be those it gets alone
  const solo = new GenerationService(lm, { modelId: 'm', ctxSize: 632, slots: 1 });
  assert.deepEqual(tb, await firstTokens(solo, promptB, { maxTokens: 330 }, 330), 'B as alone');
  assert.deepEqual(ta, await firstTokens(solo, promptA, { maxTokens: undefined }, 280), 'A as alone');
});

test('a prompt read next to a generating stream goes in passes of --stream-batch-size rows; read alone, of --batch-size', async () => {
  // every forward pass's row count, from a forward wrapped when the service makes it
  const rows: number[] = [];
  const model = lm.model as { createForward: typeof lm.model.createForward };
  const make = model.createForward;
  model.createForward = (...a) => {
    const f = make.apply(lm.model, a);
    const run = f.run.bind(f);
    f.run = (b, caches) => {
      rows.push(b.n);
      return run(b, caches);
    };
    return f;
  };
  try {
    const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 1024, slots: 2, batchSize: 32, streamBatchSize: 8 });
    const long = (k: number) => Array.from({ length: 100 }, (_, i) => 65 + ((i * k) % 26));
    await svc.complete(long(1), params({ maxTokens: 1 }));
    assert.deepEqual(rows, [32, 32, 32, 4], 'alone: passes of 32 rows');
    rows.length = 0;
    const other = svc.complete([70, 71, 72], params({ maxTokens: 80 }));
    while (svc.stats().busy < 1 || rows.length < 3) await new Promise((r) => setImmediate(r)); // the stream is generating
    const mark = rows.length;
    await svc.complete(long(7), params({ maxTokens: 1 }));
    const during = rows.slice(mark);
    assert.ok(during.length >= 100 / 7, `passes while the stream ran: ${during.join(' ')}`);
    assert.ok(during.every((n) => n <= 8), `at most 8 rows a pass while a stream generates: ${during.join(' ')}`);
    assert.ok(during.includes(8), 'the stream budget is used');
    assert.equal((await other).result.tokens.length, 80);
  } finally {
    model.createForward = make;
  }
});
