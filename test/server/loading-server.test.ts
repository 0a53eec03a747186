// While the model loads, wf_server holds its port: /health 503 "loading" (not ready), /livez 200
// (alive), everything else 503 with Retry-After; a port in use fails at once; close() frees the
// port for the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { listenWhileLoading } from '../../src/server/loading-server.js';
import { freePort } from '../deploy/podman.js';

test('the loading placeholder: readiness 503, liveness 200, API 503 with Retry-After; then the port is free again', async () => {
  const port = await freePort();
  const holding = await listenWhileLoading('127.0.0.1', port);
  const url = `http://127.0.0.1:${port}`;
  try {
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: 'loading' });
    const live = await fetch(`${url}/livez`);
    assert.equal(live.status, 200);
    assert.equal((await live.json()).loading, true);
    const api = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(api.status, 503);
    assert.equal(api.headers.get('retry-after'), '5');
    assert.equal((await api.json()).error.code, 'model_loading');
    await assert.rejects(listenWhileLoading('127.0.0.1', port), /port \d+ on 127\.0\.0\.1 is already in use/);
  } finally {
    await holding.close();
  }
  // the real server can take the port over
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((r) => s.close(() => r()));
});
