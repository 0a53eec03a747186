// The shared KV pool over HTTP: a request that finds the pool full waits in the queue; with the
// queue full it is refused with 503 and Retry-After; an abort gives the room back at once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { NO_EOG, postJson, startTestServer, tinyModel, waitFor } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

test('pool full: queued while the queue has room, then 503 with Retry-After; an abort frees the room', async () => {
  // 64 positions for 2 slots; the first request reserves its prompt + max_tokens: all of them
  const srv = await startTestServer(lm, { ctxSize: 64, slots: 2, maxQueue: 1 });
  try {
    const greedy = { temperature: 0, logit_bias: NO_EOG };
    const ac = new AbortController();
    const res = await fetch(`${srv.base}/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: [65, 66, 67, 68], max_tokens: 58, stream: true, ...greedy }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // it runs
    assert.equal(srv.service.stats().busy, 1);
    // a slot is idle, but the pool is not: this one waits in the queue ...
    const queued = postJson(`${srv.base}/completions`, { prompt: [70, 71], max_tokens: 4, ...greedy });
    await waitFor(() => srv.service.stats().queued === 1, 5000, 'the request to queue');
    // ... and with the queue full, the next is refused
    const r = await postJson(`${srv.base}/completions`, { prompt: [72], max_tokens: 4, ...greedy });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'server_busy');
    assert.equal(r.headers.get('retry-after'), '1');
    // the client of the first goes away: its room goes to the queued request
    ac.abort();
    await reader.cancel().catch(() => undefined);
    const q = await queued;
    assert.equal(q.status, 200);
    assert.equal(q.json.usage.completion_tokens, 4);
    await waitFor(() => srv.service.stats().busy === 0, 5000, 'the slots to be free');
  } finally {
    await srv.close();
  }
});
