// llama-server's stream telemetry (stream-telemetry.ts): return_progress sends prompt_progress
// chunks while a prompt is read step by step, timings_per_token puts timings on every chunk; on
// /completion, /v1/completions, /v1/chat/completions and /v1/responses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { postJson, startTestServer, tinyModel, NO_EOG } from './helpers.js';

const BATCH = 16;
const lm = await tinyModel({ contextLength: 2048 });
// one slot, 16 rows per step: a prompt of n tokens is read in ceil(n / 16) steps
const srv = await startTestServer(lm, { ctxSize: 1024, slots: 1, batchSize: BATCH });
after(() => srv.close());

/** The data of each SSE event of a streamed POST (the `event:` lines of /v1/responses dropped). */
async function events(path: string, body: unknown): Promise<any[]> {
  const res = await fetch(`${srv.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
  const out: any[] = [];
  for (const block of (await res.text()).split('\n\n')) {
    const line = block.split('\n').find((l) => l.startsWith('data: '));
    if (line && !line.includes('[DONE]')) out.push(JSON.parse(line.slice(6)));
  }
  return out;
}

/** Checks a stream's progress chunks: start at the cache, grow each step by at most BATCH, end at total. */
function checkProgress(progress: any[], total: number): void {
  assert.ok(progress.length >= 2, `progress chunks: ${progress.length}`);
  const first = progress[0];
  assert.equal(first.total, total);
  assert.equal(first.processed, first.cache);
  for (let i = 1; i < progress.length; i++) {
    const [a, b] = [progress[i - 1], progress[i]];
    assert.equal(b.total, a.total);
    assert.equal(b.cache, a.cache);
    assert.ok(b.processed > a.processed && b.processed - a.processed <= BATCH, `${a.processed} -> ${b.processed}`);
    assert.ok(b.time_ms >= a.time_ms);
  }
  assert.equal(progress.at(-1).processed, total);
  // one chunk as reading starts, then one per step
  assert.equal(progress.length, 1 + Math.ceil((total - first.cache) / BATCH));
}

test('/completion with return_progress: prompt_progress per step of the prompt, before the tokens; the cache counts on a repeat', async () => {
  const prompt = 'a long prompt that takes several steps to read, sixteen rows at a time';
  const body = { prompt, n_predict: 3, logit_bias: NO_EOG, stream: true, return_progress: true, cache_prompt: false };
  const ev = await events('/completion', body);
  const total = srv.service.tokenize(prompt, true).length;
  const withProgress = ev.filter((e) => e.prompt_progress);
  checkProgress(withProgress.map((e) => e.prompt_progress), total);
  assert.equal(withProgress[0].prompt_progress.cache, 0); // cache_prompt: false reads it all
  // progress chunks carry no text and come before every token
  const firstToken = ev.findIndex((e) => e.tokens?.length > 0);
  assert.ok(firstToken > ev.indexOf(withProgress.at(-1)));
  for (const e of withProgress) assert.deepEqual([e.content, e.tokens, e.stop], ['', [], false]);
  assert.ok(!ev.some((e) => e.timings && !e.stop), 'no timings on chunks without timings_per_token');

  // the same prompt again: most of it is in the slot's cache, read in one step
  const again = (await events('/completion', { ...body, cache_prompt: true })).filter((e) => e.prompt_progress).map((e) => e.prompt_progress);
  checkProgress(again, total);
  assert.ok(again[0].cache > 0 && again[0].cache < total, JSON.stringify(again[0]));
  assert.equal(again.length, 2);
});

test('timings_per_token: every chunk carries timings; the first progress chunk has nothing read yet', async () => {
  const ev = await events('/completion', { prompt: 'x'.repeat(40), n_predict: 4, logit_bias: NO_EOG, stream: true, return_progress: true, timings_per_token: true, cache_prompt: false });
  const progress = ev.filter((e) => e.prompt_progress);
  const first = progress[0].timings;
  assert.deepEqual([first.prompt_n, first.prompt_ms, first.predicted_n, first.predicted_ms], [0, 0, 0, 0]);
  let promptMs = 0;
  for (const e of progress) {
    for (const [k, v] of Object.entries(e.timings)) assert.ok(typeof v === 'number' && Number.isFinite(v) && v >= 0, `${k} = ${v}`);
    assert.ok(e.timings.prompt_ms >= promptMs);
    promptMs = e.timings.prompt_ms;
    assert.equal(e.timings.prompt_n, e.prompt_progress.processed - e.prompt_progress.cache);
  }
  assert.ok(promptMs > 0);
  const tokens = ev.filter((e) => e.tokens?.length > 0 && !e.stop);
  assert.deepEqual(tokens.map((e) => e.timings.predicted_n), [1, 2, 3, 4]);
  assert.equal(tokens[0].timings.prompt_n, 41);
  // the request's settings say so
  assert.equal(ev.at(-1).generation_settings.timings_per_token, true);
  // timings alone: no progress chunks
  const plain = await events('/completion', { prompt: 'y'.repeat(20), n_predict: 2, logit_bias: NO_EOG, stream: true, timings_per_token: true });
  assert.ok(!plain.some((e) => e.prompt_progress));
  assert.ok(plain.filter((e) => !e.stop).every((e) => e.timings?.predicted_n >= 1));
});

test('chat and text completions: progress chunks in their own chunk shapes', async () => {
  const content = 'tell me something long enough to need a few steps';
  const chat = await events('/v1/chat/completions', { messages: [{ role: 'user', content }], max_tokens: 2, logit_bias: NO_EOG, stream: true, return_progress: true, timings_per_token: true });
  const cp = chat.filter((e) => e.prompt_progress);
  assert.ok(cp.length >= 3, `${cp.length} progress chunks`);
  for (const e of cp) {
    assert.equal(e.object, 'chat.completion.chunk');
    assert.deepEqual(e.choices[0].delta, { role: 'assistant', content: null });
    assert.equal(e.choices[0].finish_reason, null);
  }
  checkProgress(cp.map((e) => e.prompt_progress), cp[0].prompt_progress.total);
  const content1 = chat.filter((e) => e.choices?.[0]?.delta?.content);
  assert.ok(content1.length > 0 && content1.every((e) => e.timings?.predicted_n >= 1));

  const text = await events('/v1/completions', { prompt: content, max_tokens: 2, logit_bias: NO_EOG, stream: true, return_progress: true });
  const tp = text.filter((e) => e.prompt_progress);
  assert.ok(tp.length >= 2);
  for (const e of tp) {
    assert.equal(e.object, 'text_completion');
    assert.equal(e.choices[0].text, '');
  }
  // OpenAI's shape is untouched without the llama.cpp fields
  const quiet = await events('/v1/chat/completions', { messages: [{ role: 'user', content }], max_tokens: 2, logit_bias: NO_EOG, stream: true });
  assert.ok(!quiet.some((e) => 'prompt_progress' in e || 'timings' in e));
});

test('/v1/responses: response.in_progress events with prompt_progress; timings on the deltas and at the end', async () => {
  const ev = await events('/v1/responses', { input: 'x'.repeat(50), max_output_tokens: 3, stream: true, return_progress: true, timings_per_token: true, store: false });
  const progress = ev.filter((e) => e.prompt_progress);
  assert.ok(progress.length >= 3);
  for (const e of progress) assert.equal(e.type, 'response.in_progress');
  checkProgress(progress.map((e) => e.prompt_progress), progress[0].prompt_progress.total);
  const deltas = ev.filter((e) => e.type === 'response.output_text.delta');
  assert.ok(deltas.length > 0 && deltas.every((e) => typeof e.timings?.prompt_per_second === 'number'));
  const end = ev.at(-1);
  assert.ok(['response.completed', 'response.incomplete'].includes(end.type), end.type);
  assert.equal(typeof end.timings.predicted_per_second, 'number');
  // the sequence numbers stay in order with the extra events
  assert.deepEqual(ev.map((e) => e.sequence_number), ev.map((_, i) => i));
});

test('return_progress and timings_per_token must be booleans', async () => {
  for (const key of ['return_progress', 'timings_per_token']) {
    const r = await postJson(`${srv.url}/completion`, { prompt: 'x', n_predict: 1, stream: true, [key]: 'yes' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, key);
    const c = await postJson(`${srv.base}/chat/completions`, { messages: [{ role: 'user', content: 'x' }], [key]: 1 });
    assert.equal(c.status, 400);
  }
});
