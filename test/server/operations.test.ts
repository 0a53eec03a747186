// Operations, in-process: /metrics (Prometheus text) and its counters, /slots, CORS preflights as
// the openai SDK needs them, and draining (new requests refused, requests in flight finish or are
// cut off at the deadline). The tiny model is slowed down where a request must stay in flight.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Exposition, Histogram, parseExposition } from '../../src/server/metrics.js';
import type { GenerationService } from '../../src/server/service.js';
import { NO_EOG, postJson, startTestServer, tinyModel, waitFor, type TestServer } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every step request of every slot waits `ms` before it reaches the step runner, so a generation stays in flight. */
function slowDown(service: GenerationService, ms: number): void {
  const runner = service.runner;
  const submit = runner.submit.bind(runner);
  runner.submit = async (slot, tokens, pos0) => {
    await sleep(ms);
    return submit(slot, tokens, pos0);
  };
}

const clientOf = (srv: TestServer) => new OpenAI({ baseURL: srv.base, apiKey: 'sk-test', maxRetries: 0, timeout: 20000 });

async function scrape(srv: TestServer) {
  const res = await fetch(`${srv.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const parsed = parseExposition(await res.text());
  const value = (name: string, labels: Record<string, string> = {}) => {
    const s = parsed.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    assert.ok(s, `no sample ${name} ${JSON.stringify(labels)}`);
    return s.value;
  };
  return { ...parsed, value };
}

test('Exposition: HELP and TYPE before samples, cumulative buckets ending at +Inf, escapes, newline at the end', () => {
  const h = new Histogram([0.1, 1]);
  for (const v of [0.05, 0.1, 0.5, 3]) h.observe(v);
  const text = new Exposition()
    .counter('x_total', 'a "counter"\nwith \\ and a newline', 7)
    .gauge('y', 'a gauge', 0.25)
    .labelledCounter('z_total', 'by label', [{ labels: { reason: 'a"b' }, value: 2 }])
    .histogram('lat_seconds', 'latency', h)
    .text();
  assert.ok(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 3), ['# HELP x_total a "counter"\\nwith \\\\ and a newline', '# TYPE x_total counter', 'x_total 7']);
  assert.ok(lines.includes('z_total{reason="a\\"b"} 2'));
  assert.deepEqual(lines.slice(-5), [
    'lat_seconds_bucket{le="0.1"} 2',
    'lat_seconds_bucket{le="1"} 3',
    'lat_seconds_bucket{le="+Inf"} 4',
    'lat_seconds_sum 3.65',
    'lat_seconds_count 4',
  ]);
  const parsed = parseExposition(text);
  assert.equal(parsed.types.get('lat_seconds'), 'histogram');
  assert.equal(parsed.samples.find((s) => s.name === 'z_total')!.labels.reason, 'a"b');
  assert.throws(() => new Exposition().counter('requests', 'no suffix', 1), /_total/);
  assert.throws(() => new Exposition().gauge('a', 'x', 1).gauge('a', 'x', 2), /twice/);
  assert.throws(() => new Histogram([1, 1]), /increasing/);
  assert.throws(() => parseExposition('x 1'), /newline/);
});

test('/metrics: the wf_ families are declared, and counters and histograms move after a request', async () => {
  const srv = await startTestServer(lm, { ctxSize: 512, slots: 2 });
  try {
    const before = await scrape(srv);
    const want: [string, string][] = [
      ['wf_prompt_tokens_total', 'counter'],
      ['wf_tokens_predicted_total', 'counter'],
      ['wf_requests_processing', 'gauge'],
      ['wf_requests_queued', 'gauge'],
      ['wf_kv_cache_usage_ratio', 'gauge'],
      ['wf_time_to_first_token_seconds', 'histogram'],
      ['wf_time_between_tokens_seconds', 'histogram'],
      ['process_resident_memory_bytes', 'gauge'],
    ];
    for (const [name, type] of want) assert.equal(before.types.get(name), type, name);
    assert.equal(before.value('wf_tokens_predicted_total'), 0);
    assert.equal(before.value('wf_kv_cache_usage_ratio'), 0);
    assert.ok(before.value('process_resident_memory_bytes') > 1e6);

    const r = await clientOf(srv).completions.create({ model: 'tiny-test', prompt: 'hello there', max_tokens: 6, temperature: 0, logit_bias: NO_EOG });
    const after1 = await scrape(srv);
    assert.equal(after1.value('wf_tokens_predicted_total'), 6);
    assert.equal(after1.value('wf_prompt_tokens_total'), r.usage!.prompt_tokens - r.usage!.prompt_tokens_details!.cached_tokens!);
    assert.equal(after1.value('wf_requests_finished_total', { reason: 'length' }), 1);
    assert.equal(after1.value('wf_time_to_first_token_seconds_count'), 1);
    assert.equal(after1.value('wf_time_between_tokens_seconds_count'), 5);
    assert.equal(after1.value('wf_time_between_tokens_seconds_bucket', { le: '+Inf' }), 5);
    assert.ok(after1.value('wf_time_to_first_token_seconds_sum') > 0);
    assert.equal(after1.value('wf_requests_processing'), 0);
    // the slot's cache holds prompt + output (the last output token is not evaluated)
    const held = r.usage!.prompt_tokens + 6 - 1;
    assert.equal(after1.value('wf_kv_cache_tokens'), held);
    assert.ok(Math.abs(after1.value('wf_kv_cache_usage_ratio') - held / 512) < 1e-9);
  } finally {
    await srv.close();
  }
});

test('/metrics and /slots while a stream runs: processing 1, queued 1, the slot busy with its settings', async () => {
  const srv = await startTestServer(lm, { ctxSize: 512, slots: 1, maxQueue: 4 });
  slowDown(srv.service, 15);
  const client = clientOf(srv);
  try {
    const stream = await client.chat.completions.create({
      model: 'tiny-test', messages: [{ role: 'user', content: 'go' }], max_tokens: 40, temperature: 0, logit_bias: NO_EOG, stream: true, seed: 5,
    });
    const it = stream[Symbol.asyncIterator]();
    await it.next(); // the role chunk
    await it.next(); // a first token
    const queued = client.completions.create({ model: 'tiny-test', prompt: 'x', max_tokens: 2, temperature: 0 });
    await waitFor(async () => (await scrape(srv)).value('wf_requests_queued') === 1, 5000, 'a queued request');
    const m = await scrape(srv);
    assert.equal(m.value('wf_requests_processing'), 1);

    const res = await fetch(`${srv.url}/slots`);
    assert.equal(res.status, 200);
    const slots = (await res.json()) as any[];
    assert.equal(slots.length, 1);
    const s = slots[0];
    assert.equal(s.id, 0);
    assert.equal(s.n_ctx, 512);
    assert.equal(s.is_processing, true);
    assert.equal(s.speculative, false);
    assert.equal(typeof s.id_task, 'number');
    assert.equal(s.params.max_tokens, 40);
    assert.equal(s.params.n_predict, 40);
    assert.equal(s.params.temperature, 0);
    assert.equal(s.params.seed, 5);
    assert.equal(s.params.stream, true);
    assert.equal(s.next_token[0].has_next_token, true);
    assert.ok(s.next_token[0].n_decoded >= 1 && s.next_token[0].n_decoded < 40, String(s.next_token[0].n_decoded));
    assert.equal(s.next_token[0].n_remain, 40 - s.next_token[0].n_decoded);
    // llama-server's fail_on_no_slot: 503 when every slot is busy
    assert.equal((await fetch(`${srv.url}/slots?fail_on_no_slot=1`)).status, 503);

    let n = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) n++;
    assert.ok(n > 0);
    await queued;
    const done = (await (await fetch(`${srv.url}/slots`)).json()) as any[];
    assert.equal(done[0].is_processing, false);
    assert.equal(done[0].next_token[0].has_next_token, false);
    // no budget left over from the finished task (llama-server: -1 and 0)
    assert.equal(done[0].next_token[0].n_remain, -1);
    assert.equal(done[0].next_token[0].n_decoded, 0);
    assert.equal(done[0].params.max_tokens, 2); // the last request served there
    assert.equal((await fetch(`${srv.url}/slots?fail_on_no_slot=1`)).status, 200);
    const m2 = await scrape(srv);
    assert.equal(m2.value('wf_requests_processing'), 0);
    assert.equal(m2.value('wf_requests_queued'), 0);
  } finally {
    await srv.close();
  }
});

test('/slots before any request, and turned off (501, as llama-server with --no-slots)', async () => {
  const open = await startTestServer(lm, { ctxSize: 64, slots: 2 });
  try {
    // before any request: idle slots with no settings to show (llama-server shows params only once a slot served a task)
    const idle = (await (await fetch(`${open.url}/slots`)).json()) as any[];
    const n = open.service.info().n_ctx_slot;
    assert.deepEqual(idle.map((s) => [s.id, s.is_processing, s.id_task, s.n_ctx]), [[0, false, -1, n], [1, false, -1, n]]);
    assert.equal('params' in idle[0], false);
    assert.deepEqual(idle[0].next_token[0], { has_next_token: false, has_new_line: false, n_remain: -1, n_decoded: 0 });
  } finally {
    await open.close();
  }
  const srv = await startTestServer(lm, { ctxSize: 64 }, { slots: false });
  try {
    const r = await fetch(`${srv.url}/slots`);
    assert.equal(r.status, 501);
    assert.match(((await r.json()) as any).error.message, /turned off/);
  } finally {
    await srv.close();
  }
});

test('CORS: a preflight allows every header the openai SDK sends (X-Stainless-* included)', async () => {
  const srv = await startTestServer(lm, { ctxSize: 64 }, { apiKey: 'k' });
  try {
    // the headers the official client really sends on a chat request
    let sent: string[] = [];
    const spy = new OpenAI({
      baseURL: srv.base,
      apiKey: 'k',
      maxRetries: 0,
      fetch: async (url: any, init: any) => {
        sent = [];
        new Headers(init?.headers).forEach((_, k) => sent.push(k));
        return fetch(url, init);
      },
    });
    await spy.chat.completions.create({ model: 'tiny-test', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
    assert.ok(sent.some((h) => h.startsWith('x-stainless-')), `no X-Stainless header among ${sent.join(', ')}`);
    const asked = sent.filter((h) => h !== 'content-length' && h !== 'user-agent');
    const res = await fetch(`${srv.base}/chat/completions`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://elsewhere.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': asked.join(',') },
    });
    assert.equal(res.status, 200);
    // any origin by default: the page's origin is echoed, as llama-server does
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://elsewhere.example');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
    const allowed = new Set((res.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim().toLowerCase()));
    for (const h of asked) assert.ok(allowed.has(h), `preflight does not allow '${h}' (allowed: ${[...allowed].join(', ')})`);
    // a preflight needs no API key, and a header name that is not a token is not echoed
    const odd = await fetch(`${srv.base}/chat/completions`, { method: 'OPTIONS', headers: { 'Access-Control-Request-Headers': 'x-ok, bad header' } });
    assert.equal(odd.status, 200);
    assert.equal(odd.headers.get('access-control-allow-origin'), '*', 'no Origin: *');
    assert.equal(odd.headers.get('access-control-allow-headers'), 'Authorization, Content-Type, x-ok');
  } finally {
    await srv.close();
  }
});

test('drain: a new request gets 503, the stream in flight runs to its end, then the server is closed', async () => {
  const srv = await startTestServer(lm, { ctxSize: 512, slots: 1 });
  slowDown(srv.service, 10);
  const client = clientOf(srv);
  const stream = await client.completions.create({ model: 'tiny-test', prompt: 'abc', max_tokens: 30, temperature: 0, logit_bias: NO_EOG, stream: true });
  const it = stream[Symbol.asyncIterator]();
  let text = (await it.next()).value.choices[0].text as string;
  const drained = srv.server.drain(20000);
  assert.equal(srv.server.isDraining, true);
  const refused = await postJson(`${srv.base}/completions`, { prompt: 'x', max_tokens: 1 });
  assert.equal(refused.status, 503);
  assert.equal(refused.json.error.code, 'server_shutting_down');
  assert.equal((await fetch(`${srv.url}/health`)).status, 503);
  let finish: string | null = null;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    text += r.value.choices[0]?.text ?? '';
    finish = r.value.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'length');
  assert.ok(text.length > 0);
  assert.deepEqual(await drained, { cutOff: 0 });
  await assert.rejects(fetch(`${srv.url}/health`));
});

test('drain: past the timeout the stream gets an error event and no [DONE]; a whole request gets 503', async () => {
  // two requests of 800 tokens each must both fit the shared KV pool to run at once
  const srv = await startTestServer(lm, { ctxSize: 2048, slots: 2 });
  slowDown(srv.service, 10);
  const body = { prompt: 'abc', max_tokens: 800, temperature: 0, logit_bias: NO_EOG };
  const streamRes = await fetch(`${srv.base}/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  assert.equal(streamRes.status, 200);
  const whole = postJson(`${srv.base}/completions`, body);
  await waitFor(() => srv.service.stats().busy === 2, 5000, 'two running requests');
  await sleep(50);
  const r = await srv.server.drain(100);
  assert.equal(r.cutOff, 2);
  const text = await streamRes.text();
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.ok(events.length >= 2);
  assert.ok(!events.includes('[DONE]'), 'a cut-off stream must not end with [DONE]');
  const last = JSON.parse(events[events.length - 1]!);
  assert.equal(last.error.code, 'server_shutting_down');
  const w = await whole;
  assert.equal(w.status, 503);
  assert.match(w.json.error.message, /shutting down/);
});
