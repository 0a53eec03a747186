// Sleep mode (--sleep-idle-seconds; src/server/sleep.ts): the model is released after a while without
// work, read-only routes answer without waking it, the next request that needs it reloads it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedModel } from '../../src/engine.js';
import { GenerationService, ModelAsleepError } from '../../src/server/service.js';
import { modelReloader } from '../../src/node/model-reload.js';
import { sleepSecondsFrom } from '../../src/cli/llama-flags.js';
import { parseArgs } from '../../src/cli/args.js';
import { SERVER_OPTIONS } from '../../src/cli/wf_server.js';
import { NO_EOG, postJson, startTestServer, tinyModel, tinyModelBytes, waitFor, type TestServer } from './helpers.js';
import { finished, listeningUrl, spawnCli } from './spawn.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full garbage collection (the flag is set at run time: the test runner's node has no --expose-gc). */
const collect = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

let lm: LoadedModel;
before(async () => {
  lm = await tinyModel();
});

const get = async (url: string) => {
  const r = await fetch(url);
  const text = await r.text();
  return { status: r.status, text, json: () => JSON.parse(text) };
};
const isSleeping = async (srv: TestServer) => (await get(`${srv.url}/props`)).json().is_sleeping as boolean;
const GREEDY = { prompt: 'abc', max_tokens: 6, temperature: 0, logit_bias: NO_EOG };

test('service: release() frees the model and its caches, restore() runs on a reload; not while a generation runs', async () => {
  const svc = new GenerationService(await tinyModel(), { modelId: 't', ctxSize: 128, slots: 2 });
  try {
    const params = { sampler: { temperature: 0, logitBias: { 262: -100, 263: -100 } }, maxTokens: 5, stop: [], ignoreEos: false, stream: false, includeUsage: false };
    const before = await svc.complete(svc.tokenize('hello', true), params);
    const steps = svc.steps;
    assert.ok(steps > 0);
    assert.ok(svc.snapshot().slots.some((s) => s.n_cached > 0), 'the slot keeps its cache for reuse');

    // a running generation holds the model
    const h = await svc.start(svc.tokenize('hi', true), params);
    assert.equal(svc.release(), false);
    await h.dispose();

    assert.equal(svc.release(), true);
    assert.equal(svc.released, true);
    assert.throws(() => svc.model, ModelAsleepError);
    await assert.rejects(svc.start([1, 2], params), ModelAsleepError);
    // what monitoring reads still answers: idle, empty slots; counters kept
    assert.deepEqual(svc.snapshot().slots.map((s) => [s.busy, s.n_cached]), [[false, 0], [false, 0]]);
    assert.equal(svc.stats().busy, 0);
    assert.equal(svc.info().n_ctx, 128);
    assert.equal(svc.steps, steps);

    svc.restore(await tinyModel());
    assert.equal(svc.released, false);
    const after = await svc.complete(svc.tokenize('hello', true), params);
    assert.deepEqual(after.result.tokens, before.result.tokens, 'the reloaded model generates what the first did');
    assert.equal(after.cachedTokens, 0, 'no cache survives a sleep');
    assert.ok(svc.steps > steps, 'forward passes keep counting across a sleep');
    // another model's shape is refused
    assert.equal(svc.release(), true);
    assert.throws(() => svc.restore(lm.config.nLayers === 1 ? lmOther : lm), /differs from the one the server started with/);
    assert.equal(svc.released, true);
  } finally {
    await svc.close();
  }
});
test('service: nothing holds the released model (its memory can go), with requests, a sleep and a wake behind it', async () => {
  let first: LoadedModel | undefined = await tinyModel();
  const ref = new WeakRef(first);
  const srv = await startTestServer(first, { ctxSize: 128, slots: 2, cacheIdleSlots: true }, { sleep: { idleMs: 200, reload: () => tinyModel() }, llama: { embeddings: { pooling: 'mean' } } });
  first = undefined;
  try {
    assert.equal((await postJson(`${srv.url}/v1/completions`, GREEDY)).status, 200);
    assert.equal((await postJson(`${srv.url}/v1/embeddings`, { input: 'abc' })).status, 200);
    await waitFor(() => isSleeping(srv), 5000, 'sleep');
    for (let i = 0; i < 20 && ref.deref(); i++) {
      await new Promise((r) => setTimeout(r, 50));
      collect();
    }
    assert.equal(ref.deref(), undefined, 'the first model is still reachable after the server released it');
    assert.equal((await postJson(`${srv.url}/v1/completions`, GREEDY)).status, 200);
  } finally {
    await srv.close();
  }
});

let lmOther: LoadedModel;
before(async () => {
  lmOther = await tinyModel({ nLayers: 2 });
});

test('HTTP: asleep after the idle time; /props, /health, /models, /slots, /metrics answer without waking it; /tokenize wakes it', async () => {
  let reloads = 0;
  const srv = await startTestServer(lm, { ctxSize: 128, slots: 2 }, {
    // 1 s: long enough that a loaded machine does not put it back to sleep between a wake and the next check
    sleep: { idleMs: 1000, reload: async () => (reloads++, tinyModel()) },
  });
  try {
    const first = await postJson(`${srv.url}/v1/completions`, GREEDY);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.equal(await isSleeping(srv), false);
    // polling read-only routes is not work: the server still goes to sleep
    await waitFor(async () => {
      await get(`${srv.url}/metrics`);
      return isSleeping(srv);
    }, 5000, 'sleep');
    assert.equal(srv.server.sleep!.sleeps, 1);
    assert.equal((await get(`${srv.url}/health`)).status, 200);
    const models = (await get(`${srv.url}/v1/models`)).json();
    assert.equal(models.data[0].id, 'tiny-test');
    const slots = (await get(`${srv.url}/slots`)).json();
    assert.deepEqual(slots.map((s: any) => [s.is_processing, s.n_cached]), [[false, 0], [false, 0]]);
    assert.equal((await get(`${srv.url}/metrics`)).status, 200);
    assert.equal(await isSleeping(srv), true);
    assert.equal(reloads, 0);

    const tok = await postJson(`${srv.url}/tokenize`, { content: 'abc' });
    assert.equal(tok.status, 200);
    assert.equal(await isSleeping(srv), false);
    assert.equal(reloads, 1);
    const again = await postJson(`${srv.url}/v1/completions`, GREEDY);
    assert.equal(again.status, 200);
    assert.equal(again.json.choices[0].text, first.json.choices[0].text, 'the same model answers after waking');
  } finally {
    await srv.close();
  }
});

test('HTTP: /metrics while asleep is the last scrape when nothing ran after it; throughput gauges are per scrape window', async () => {
  const srv = await startTestServer(lm, { ctxSize: 128, slots: 1 }, { sleep: { idleMs: 300, reload: () => tinyModel() } });
  const rate = (text: string) => Number(/^llamacpp:predicted_tokens_seconds (\S+)$/m.exec(text)?.[1] ?? NaN);
  try {
    assert.equal((await postJson(`${srv.url}/completion`, { prompt: 'abc', n_predict: 8, temperature: 0, logit_bias: [[262, false], [263, false]] })).status, 200);
    const first = (await get(`${srv.url}/metrics`)).text;
    assert.ok(rate(first) > 0, 'the first scrape reports the generation');
    const awake = (await get(`${srv.url}/metrics`)).text;
    assert.equal(rate(awake), 0, 'nothing ran in the window since the last scrape');
    await waitFor(() => isSleeping(srv), 5000, 'sleep');
    assert.equal((await get(`${srv.url}/metrics`)).text, awake);
  } finally {
    await srv.close();
  }
  // no scrape before sleeping: the first one asleep reports the last generation, the next an empty window
  const srv2 = await startTestServer(lm, { ctxSize: 128, slots: 1 }, { sleep: { idleMs: 300, reload: () => tinyModel() } });
  try {
    assert.equal((await postJson(`${srv2.url}/completion`, { prompt: 'abc', n_predict: 8, temperature: 0, logit_bias: [[262, false], [263, false]] })).status, 200);
    await waitFor(() => isSleeping(srv2), 5000, 'sleep');
    assert.ok(rate((await get(`${srv2.url}/metrics`)).text) > 0);
    assert.equal(rate((await get(`${srv2.url}/metrics`)).text), 0);
    assert.equal((await postJson(`${srv2.url}/tokenize`, { content: 'x' })).status, 200);
    assert.equal(await isSleeping(srv2), false);
    assert.equal(rate((await get(`${srv2.url}/metrics`)).text), 0, 'waking does not report the window again');
  } finally {
    await srv2.close();
  }
});

test('HTTP: a reload that fails is a 503 naming why; the server stays up and the next request tries again', async () => {
  let fail = true;
  const srv = await startTestServer(lm, { ctxSize: 128, slots: 1 }, {
    sleep: {
      idleMs: 1000,
      reload: async () => {
        if (fail) throw new Error('the model file /models/x.gguf is gone; restart the server with a model file');
        return tinyModel();
      },
    },
  });
  try {
    await waitFor(() => isSleeping(srv), 5000, 'sleep');
    const r = await postJson(`${srv.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'model_reload_failed');
    assert.match(r.json.error.message, /could not reload its model: the model file \/models\/x\.gguf is gone/);
    assert.equal((await get(`${srv.url}/health`)).status, 200);
    assert.equal(await isSleeping(srv), true);
    fail = false;
    const ok = await postJson(`${srv.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(await isSleeping(srv), false);
  } finally {
    await srv.close();
  }
});

test('model-reload: the same file reloads; a changed or missing file is an error naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-sleep-'));
  try {
    const file = join(dir, 'm.gguf');
    writeFileSync(file, tinyModelBytes());
    const reload = await modelReloader(file, { threads: 1 });
    const again = await reload();
    assert.equal(again.config.vocabSize, lm.config.vocabSize);
    again.dispose();
    utimesSync(file, new Date(), new Date(Date.now() + 60_000));
    await assert.rejects(reload(), /the model file .*m\.gguf changed since the server started \(it was modified at/);
    rmSync(file);
    await assert.rejects(reload(), /the model file .*m\.gguf is gone/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--sleep-idle-seconds: N > 0 or -1 (never); refused with --device webgpu', () => {
  const of = (argv: string[]) => sleepSecondsFrom(parseArgs(argv, SERVER_OPTIONS).options);
  assert.equal(of([]), undefined);
  assert.equal(of(['--sleep-idle-seconds', '-1']), undefined);
  assert.equal(of(['--sleep-idle-seconds', '5']), 5);
  assert.throws(() => of(['--sleep-idle-seconds', '0']), /positive integer/);
  assert.throws(() => of(['--sleep-idle-seconds', '1.5']), /positive integer/);
  assert.throws(() => of(['--sleep-idle-seconds', '5', '--device', 'webgpu']), /not available with --device webgpu/);
});

test('wf_server --sleep-idle-seconds 1: sleeps, wakes on a request from the same file, and answers 503 naming the file once it is gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-sleep-cli-'));
  const file = join(dir, 'model.gguf');
  writeFileSync(file, tinyModelBytes());
  const child = spawnCli('wf_server', ['-m', file, '--port', '0', '--sleep-idle-seconds', '1', '-c', '128', '-np', '1', '--threads', '1', '-q']);
  const done = finished(child);
  try {
    const url = await listeningUrl(child);
    const props = async () => (await get(`${url}/props`)).json().is_sleeping as boolean;
    await waitFor(props, 10000, 'sleep');
    const r = await postJson(`${url}/v1/completions`, { prompt: 'abc', max_tokens: 2 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(await props(), false);
    await waitFor(props, 10000, 'sleep again');
    rmSync(file);
    const gone = await postJson(`${url}/v1/completions`, { prompt: 'abc', max_tokens: 2 });
    assert.equal(gone.status, 503);
    assert.match(gone.json.error.message, /the model file .*model\.gguf is gone/);
    assert.equal((await get(`${url}/health`)).status, 200, 'the server stays up');
  } finally {
    child.kill('SIGTERM');
    const r = await done;
    rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sleeping: no work for/);
    assert.match(r.stderr, /awake: the model was reloaded in \d+ ms/);
    assert.match(r.stderr, /waking failed: the model file/);
  }
});
