// What an orchestrator reads from a replica: /livez (liveness: 200 while draining, when /health,
// the readiness probe, says 503) and the vLLM metric names behind --metrics-vllm, equal to ours.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { parseExposition } from '../../src/server/metrics.js';
import { VLLM_ALIASES } from '../../src/server/fleet-signals.js';
import type { GenerationService } from '../../src/server/service.js';
import { NO_EOG, startTestServer, tinyModel, waitFor, type TestServer } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every step waits `ms`, so a generation stays in flight. */
function slowDown(service: GenerationService, ms: number): void {
  const runner = service.runner;
  const submit = runner.submit.bind(runner);
  runner.submit = async (slot, tokens, pos0) => {
    await sleep(ms);
    return submit(slot, tokens, pos0);
  };
}

const clientOf = (srv: TestServer, apiKey = 'sk-test') => new OpenAI({ baseURL: srv.base, apiKey, maxRetries: 0, timeout: 20000 });

async function samples(srv: TestServer, headers: Record<string, string> = {}) {
  const res = await fetch(`${srv.url}/metrics`, { headers });
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}

test('/livez answers 200 without an API key, and stays 200 while draining when /health turns 503', async () => {
  const srv = await startTestServer(lm, { ctxSize: 512, slots: 1 }, { apiKey: 'secret' });
  slowDown(srv.service, 10);
  const live = await fetch(`${srv.url}/livez`);
  assert.equal(live.status, 200);
  assert.deepEqual(await live.json(), { status: 'alive', draining: false });
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  // the API itself still wants the key
  assert.equal((await fetch(`${srv.base}/models`)).status, 401);

  const stream = await clientOf(srv, 'secret').completions.create({ model: 'tiny-test', prompt: 'abc', max_tokens: 30, temperature: 0, logit_bias: NO_EOG, stream: true });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  const drained = srv.server.drain(20000);
  assert.equal((await fetch(`${srv.url}/health`)).status, 503);
  const during = await fetch(`${srv.url}/livez`);
  assert.equal(during.status, 200);
  assert.deepEqual(await during.json(), { status: 'alive', draining: true });
  // /livez is monitoring: it never counts as a request in flight (the drain would wait for it)
  assert.equal(srv.server.requestsInFlight, 1);
  for (let r = await it.next(); !r.done; r = await it.next());
  assert.deepEqual(await drained, { cutOff: 0 });
  assert.ok(!srv.logs.some((l) => l.includes('/livez')), 'probes are not logged per request');
});

test('--metrics-vllm: vLLM\'s names carry the same values as ours, with model_name; off by default', async () => {
  const plain = await startTestServer(lm, { ctxSize: 512, slots: 1 });
  try {
    const names = new Set((await samples(plain)).samples.map((s) => s.name));
    for (const n of ['wf_requests_queued', 'wf_requests_processing', 'wf_kv_cache_usage_ratio']) assert.ok(names.has(n), n);
    for (const n of Object.values(VLLM_ALIASES)) assert.ok(!names.has(n), `${n} without the flag`);
  } finally {
    await plain.close();
  }

  const srv = await startTestServer(lm, { ctxSize: 512, slots: 1, maxQueue: 4 }, { metricsVllm: true });
  slowDown(srv.service, 15);
  const client = clientOf(srv);
  try {
    const stream = await client.chat.completions.create({
      model: 'tiny-test', messages: [{ role: 'user', content: 'go' }], max_tokens: 40, temperature: 0, logit_bias: NO_EOG, stream: true,
    });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    const queued = client.completions.create({ model: 'tiny-test', prompt: 'x', max_tokens: 2, temperature: 0 });
    let m = await samples(srv);
    await waitFor(async () => {
      m = await samples(srv);
      return m.samples.some((s) => s.name === 'wf_requests_queued' && s.value === 1);
    }, 5000, 'a queued request');
    const v = (name: string) => {
      const s = m.samples.find((x) => x.name === name);
      assert.ok(s, name);
      return s;
    };
    assert.equal(v(VLLM_ALIASES.waiting).value, 1);
    assert.equal(v(VLLM_ALIASES.running).value, v('wf_requests_processing').value);
    assert.equal(v(VLLM_ALIASES.running).value, 1);
    assert.ok(v('wf_kv_cache_usage_ratio').value > 0);
    assert.equal(v(VLLM_ALIASES.kvUsage).value, v('wf_kv_cache_usage_ratio').value);
    for (const n of Object.values(VLLM_ALIASES)) {
      assert.equal(m.types.get(n), 'gauge');
      assert.equal(v(n).labels.model_name, 'tiny-test');
    }
    for (let r = await it.next(); !r.done; r = await it.next());
    await queued;
    const idle = await samples(srv);
    assert.equal(idle.samples.find((s) => s.name === VLLM_ALIASES.waiting)!.value, 0);
    assert.equal(idle.samples.find((s) => s.name === VLLM_ALIASES.running)!.value, 0);
  } finally {
    await srv.close();
  }
});
