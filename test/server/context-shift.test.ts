// --context-shift on the server (service.ts, generate.ts, model/kv-shift.ts): a generation that fills
// its slot's context drops half of what follows n_keep and goes on; the slot's cache is then reusable
// only up to n_keep; /completion reports truncated: true.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { GenerationService } from '../../src/server/service.js';
import type { GenerationParams } from '../../src/server/requests.js';
import { contextShiftFrom } from '../../src/cli/llama-flags.js';
import { parseArgs } from '../../src/cli/args.js';
import { SERVER_OPTIONS } from '../../src/cli/wf_server.js';
import { postJson, startTestServer, tinyModel, greedyParams } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const params = (over: Partial<GenerationParams> = {}): GenerationParams => greedyParams(100, over);
const PROMPT = [261, ...Array.from({ length: 30 }, (_, i) => 65 + (i % 26))];

test('a full context is shifted and generation goes on to max_tokens; the same tokens as without it up to the shift', async () => {
  const plain = new GenerationService(lm, { modelId: 'm', ctxSize: 64, slots: 1 });
  const shifting = new GenerationService(lm, { modelId: 'm', ctxSize: 64, slots: 1, contextShift: true });
  try {
    const stopped = await plain.complete(PROMPT, params());
    assert.equal(stopped.result.detail.type, 'context');
    assert.equal(PROMPT.length + stopped.result.tokens.length, 64);

    const r = await shifting.complete(PROMPT, params({ nKeep: 4 }));
    assert.equal(r.result.tokens.length, 100);
    assert.equal(r.result.finishReason, 'length');
    assert.ok((r.result.contextShifts ?? 0) >= 3, `shifts: ${r.result.contextShifts}`);
    assert.deepEqual(r.result.tokens.slice(0, stopped.result.tokens.length), stopped.result.tokens, 'identical until the context is full');
    // only BOS + n_keep positions of the slot's cache are what reading them again gives: nothing more is reused
    assert.ok(shifting.snapshot().slots[0]!.n_cached <= 5, `cached ${shifting.snapshot().slots[0]!.n_cached}`);
    const again = await shifting.complete(PROMPT, params({ maxTokens: 2 }));
    assert.ok(again.cachedTokens <= 5, `reused ${again.cachedTokens}`);
  } finally {
    await plain.close();
    await shifting.close();
  }
});

test('/completion: truncated, n_keep and n_discard in generation_settings; bad values are a 400', async () => {
  const srv = await startTestServer(lm, { ctxSize: 64, slots: 1, contextShift: true });
  try {
    const r = await postJson(`${srv.url}/completion`, { prompt: PROMPT, n_predict: 80, temperature: 0, logit_bias: [[262, false], [263, false]], n_keep: 2, n_discard: 8 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.tokens_predicted, 80);
    assert.equal(r.json.truncated, true);
    assert.equal(r.json.stop_type, 'limit');
    assert.equal(r.json.generation_settings.n_keep, 2);
    assert.equal(r.json.generation_settings.n_discard, 8);
    const short = await postJson(`${srv.url}/completion`, { prompt: PROMPT, n_predict: 4, temperature: 0, logit_bias: [[262, false], [263, false]] });
    assert.equal(short.json.truncated, false);
    for (const [k, v] of [['n_keep', -2], ['n_keep', 1.5], ['n_discard', -1], ['n_discard', 'x']] as const) {
      const bad = await postJson(`${srv.url}/completion`, { prompt: PROMPT, n_predict: 1, [k]: v });
      assert.equal(bad.status, 400, `${k} ${v}`);
      assert.equal(bad.json.error.param, k);
    }
  } finally {
    await srv.close();
  }
});

test('--context-shift: off by default; not with --device webgpu', () => {
  const of = (argv: string[]) => contextShiftFrom(parseArgs(argv, SERVER_OPTIONS).options);
  assert.equal(of([]), false);
  assert.equal(of(['--context-shift']), true);
  assert.equal(of(['--no-context-shift']), false);
  assert.throws(() => of(['--context-shift', '--no-context-shift']), /not both/);
  assert.throws(() => of(['--context-shift', '--device', 'webgpu']), /not available with --device webgpu/);
});
