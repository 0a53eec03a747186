// --cache-idle-slots (scheduler.ts): when a request starts, the other idle slots' caches move to the
// prompt cache (parked entries; rows change owner, nothing is copied) and the slots are cleared; a
// request whose prompt continues one takes it back the same way. On a tiny real model: the moves
// are logged as llama-server logs them, reused tokens are counted, and greedy answers equal those
// from an empty cache (rows handed over are the rows that were computed).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { GenerationService, type RunInfo } from '../../src/server/service.js';
import type { GenerationParams } from '../../src/server/requests.js';
import { KVAllocator } from '../../src/model/kv-cache.js';
import { cacheIdleSlotsFrom } from '../../src/cli/llama-flags.js';
import { parseArgs } from '../../src/cli/args.js';
import { SERVER_OPTIONS } from '../../src/cli/wf_server.js';
import { tinyModel, greedyParams } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const params = (over: Partial<GenerationParams> = {}): GenerationParams => greedyParams(4, over);
const LONG = [1, ...Array.from({ length: 40 }, (_, i) => 65 + (i % 26))];
const FOX = [1, ...Array.from({ length: 12 }, (_, i) => 97 + (i % 26))];

async function fromScratch(prompt: readonly number[]): Promise<RunInfo> {
  const solo = new GenerationService(lm, { modelId: 'm', ctxSize: 512, slots: 1 });
  try {
    return await solo.complete(prompt, params());
  } finally {
    await solo.close();
  }
}

test('KVAllocator.swap exchanges two ranges (or gives one away) without moving rows', () => {
  const a = new KVAllocator(64);
  a.resize(1, 16);
  a.setUsed(1, 10);
  a.resize(2, 8);
  const r1 = a.range(1)!;
  a.swap(1, 3); // 3 had none
  assert.equal(a.range(1), undefined);
  assert.deepEqual(a.range(3), r1);
  assert.equal(a.free, 64 - 24);
  const r2 = a.range(2)!;
  a.swap(3, 2);
  assert.deepEqual(a.range(2), r1);
  assert.deepEqual(a.range(3), r2);
});

test("idle slots' caches move to the prompt cache when a request starts, and come back without a copy", async () => {
  const lines: string[] = [];
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 512, slots: 2, cacheIdleSlots: true, log: (l) => lines.push(l) });
  try {
    const first = await svc.complete(LONG, params());
    assert.equal(first.cachedTokens, 0);
    assert.equal(lines.length, 0, 'no other slot held anything');

    await svc.complete(FOX, params());
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^slot 0: idle, its 44 cached tokens move to the prompt cache \(entry \d+, no copy\) .*\[__TEST_TAG_CACHE_IDLE_SLOT__\]$/);
    const slots = svc.snapshot().slots;
    assert.equal(slots[0]!.n_cached, 0, 'the idle slot is cleared');
    assert.equal(svc.scheduler.entries().filter((e) => e.parked).length, 1);

    lines.length = 0;
    const again = await svc.complete(LONG, params());
    assert.equal(again.cachedTokens, LONG.length - 1, 'all of the prompt but its last token came from the prompt cache');
    assert.deepEqual(again.result.tokens, first.result.tokens);
    assert.ok(lines.some((l) => /^slot \d: updating prompt cache: 41 tokens of the prompt restored from entry \d+ \(handed over, no copy\)$/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^slot \d: idle, its \d+ cached tokens move to the prompt cache/.test(l)), 'the fox slot went to the prompt cache in turn');

    // the conversation's next turn stays on the slot that holds it: nothing else to clear
    lines.length = 0;
    const next = [...LONG, ...again.result.tokens, 48, 49, 50];
    const r = await svc.complete(next, params());
    assert.deepEqual(lines, []);
    assert.ok(r.cachedTokens >= LONG.length, `cached ${r.cachedTokens}`);
    assert.deepEqual(r.result.tokens, (await fromScratch(next)).result.tokens);
  } finally {
    await svc.close();
  }
});

test('without it (the service default, --no-cache-idle-slots) idle slots keep their caches and nothing is logged', async () => {
  const lines: string[] = [];
  const svc = new GenerationService(lm, { modelId: 'm', ctxSize: 512, slots: 2, log: (l) => lines.push(l) });
  try {
    await svc.complete(LONG, params());
    await svc.complete(FOX, params());
    assert.ok(svc.snapshot().slots[0]!.n_cached > 0, 'slot 0 keeps its cache');
    assert.deepEqual(lines, []);
  } finally {
    await svc.close();
  }
});

test('--cache-idle-slots is on by default in wf_server; --no-cache-idle-slots turns it off', () => {
  const of = (argv: string[]) => cacheIdleSlotsFrom(parseArgs(argv, SERVER_OPTIONS).options);
  assert.equal(of([]), true);
  assert.equal(of(['--cache-idle-slots']), true);
  assert.equal(of(['--no-cache-idle-slots']), false);
  assert.throws(() => of(['--cache-idle-slots', '--no-cache-idle-slots']), /not both/);
});
