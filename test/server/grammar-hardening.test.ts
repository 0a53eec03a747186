// Issue #18, findings 2-4 (finding 1, the flood of malformed grammars, is grammar-flood.test.ts): hostile grammars and JSON schemas cannot hang, poison, bloat or stall
// the server. The grammar engine runs in worker threads (src/node/grammar-workers.ts) with a time
// budget, a size limit and a memory bound; a fault inside XGrammar retires the instance that saw
// it. Against the demo model, through HTTP.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { DEMO_MODEL_FILE } from '../../src/node/demo-model.js';
import { loadModelFile } from '../../src/node/model-file.js';
import { workerGrammarHosts } from '../../src/node/grammar-workers.js';
import { gbnfDepth, jsonDepth } from '../../src/generate/grammar-host.js';
import { parseExposition } from '../../src/server/metrics.js';
import { testKernels } from '../helpers/kernels.js';
import { enumSchema, healthProbe } from '../helpers/grammar-cases.js';
import { postJson, startTestServer, waitFor } from './helpers.js';

const lm = await loadModelFile(DEMO_MODEL_FILE, { kernels: await testKernels() });
/** the budget of the server the slow-grammar tests use (("x"{0,1000}){0,1000} takes 4-14 s here) */
const TIMEOUT_MS = 2000;
const MEMORY = 18 * 2 ** 20;
const srv = await startTestServer(
  lm,
  { ctxSize: 1024, slots: 2, maxQueue: 0, grammars: workerGrammarHosts({ timeoutMs: 20000, maxTextBytes: 256 * 1024, memoryBytes: MEMORY }) },
);
const fast = await startTestServer(lm, { ctxSize: 512, slots: 1, grammars: workerGrammarHosts({ timeoutMs: TIMEOUT_MS }) });
after(async () => {
  await srv.close();
  await fast.close();
  lm.dispose();
});

const SCHEMA = { type: 'object', properties: { word: { type: 'string', maxLength: 6 }, n: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['word', 'n'], additionalProperties: false };

async function metric(name: string, server = srv): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const s = parseExposition(text).samples.find((x) => x.name === name);
  assert.ok(s, `${name} is in /metrics`);
  return s.value;
}

/** A valid json_schema request: 200 and JSON that validates. */
async function validJson(seed = 1, server = srv): Promise<void> {
  const r = await postJson(`${server.base}/completions`, { prompt: 'And God said', json_schema: SCHEMA, max_tokens: 60, seed, temperature: 0.8 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const text = r.json.choices[0].text as string;
  assert.ok(new Ajv().validate(SCHEMA, JSON.parse(text)), text);
}

test('finding 2: grammars that poisoned the engine (deep brackets, self $ref, unknown types, undefined rules, repeated errors) leave the next request a clean instance', async () => {
  const before = await metric('wf_grammar_restarts_total');
  const poison: Record<string, unknown>[] = [
    { grammar: `root ::= ${'('.repeat(200)}"x"${')'.repeat(200)}` },
    { json_schema: { $ref: '#' } },
    { json_schema: { type: 'objekt' } },
    { grammar: 'root ::= undefined' },
    ...Array.from({ length: 5 }, () => ({ grammar: 'root ::= "a" ]] (' })),
  ];
  for (const p of poison) {
    const r = await postJson(`${srv.base}/completions`, { prompt: 'x', max_tokens: 8, ...p });
    assert.ok(r.status === 400 || r.status === 200, `${JSON.stringify(p).slice(0, 60)}: ${r.status} ${JSON.stringify(r.json)}`);
    if (r.status === 400) assert.ok(['grammar', 'json_schema'].includes(r.json.error.param), JSON.stringify(r.json));
    const ok = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: 'root ::= ("yes" | "no") "."', max_tokens: 8 });
    assert.equal(ok.status, 200, `after ${JSON.stringify(p).slice(0, 60)}: ${JSON.stringify(ok.json)}`);
    assert.match(ok.json.choices[0].text, /^(yes|no)\.$/);
  }
  assert.ok((await metric('wf_grammar_restarts_total')) > before, 'the faulted instances were replaced');
  await validJson(2);
});

test('nesting is limited (--grammar-max-depth) below where XGrammar\'s stack overflows unnoticed: a 400 naming the limit', async () => {
  assert.equal(gbnfDepth('root ::= ("(" [(] ((x)) # ((((\n)'), 3);
  assert.equal(jsonDepth({ a: [{ b: 1 }], c: {} }), 3);
  const deep = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: `root ::= ${'('.repeat(160)}"x"${')'.repeat(160)}`, max_tokens: 3 });
  assert.equal(deep.status, 400);
  assert.equal(deep.json.error.code, 'grammar_limit_exceeded');
  assert.match(deep.json.error.message, /nests parentheses 160 levels deep, over the limit of 64 \(--grammar-max-depth\)/);
  let schema: unknown = { type: 'string' };
  for (let i = 0; i < 70; i++) schema = { type: 'array', items: schema };
  const r = await postJson(`${srv.base}/completions`, { prompt: 'x', json_schema: schema, max_tokens: 3 });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /over the limit of 64 \(--grammar-max-depth\)/);
  // 60 levels compile, and leave the engine sound
  const ok = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: `root ::= ${'('.repeat(60)}"x"${')'.repeat(60)}`, max_tokens: 3 });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  await validJson(5);
});

test('finding 3: compiled grammars are bounded by bytes (--grammar-memory), not by entries; over --grammar-max-bytes is a 400 naming it', async () => {
  const restarts = await metric('wf_grammar_restarts_total');
  let most = 0;
  for (let i = 0; i < 3; i++) {
    const r = await postJson(`${srv.base}/completions`, { prompt: 'x', json_schema: enumSchema(`leak${i}`, 6000), max_tokens: 3 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    most = Math.max(most, await metric('wf_grammar_cache_bytes'));
  }
  // the active instance is retired once past the bound; a spare (set up, no grammars) waits beside it
  assert.ok((await metric('wf_grammar_restarts_total')) > restarts, 'an instance past --grammar-memory was replaced');
  assert.ok(most <= 2.5 * MEMORY, `grammar engine memory peaked at ${(most / 2 ** 20).toFixed(0)} MiB with a ${MEMORY / 2 ** 20} MiB bound`);
  const big = await postJson(`${srv.base}/completions`, { prompt: 'x', json_schema: enumSchema('big', 30000), max_tokens: 3 });
  assert.equal(big.status, 400);
  assert.equal(big.json.error.param, 'json_schema');
  assert.equal(big.json.error.code, 'grammar_limit_exceeded');
  assert.match(big.json.error.message, /over the limit of 262144 bytes \(--grammar-max-bytes\)/);
});

test('finding 4: a grammar that compiles for seconds is stopped by --grammar-timeout (a 400 naming it) while /health keeps answering', async () => {
  const probe = healthProbe(fast.url, 50);
  const t0 = performance.now();
  const r = await postJson(`${fast.base}/completions`, { prompt: 'x', grammar: 'root ::= ("x"{0,1000}){0,1000}', max_tokens: 3 });
  const ms = performance.now() - t0;
  const worst = await probe.stop();
  assert.equal(r.status, 400, JSON.stringify(r.json));
  assert.equal(r.json.error.code, 'grammar_limit_exceeded');
  assert.match(r.json.error.message, new RegExp(`longer than the limit of ${TIMEOUT_MS} ms \\(--grammar-timeout\\)`));
  assert.ok(ms < TIMEOUT_MS + 2000, `answered after ${ms.toFixed(0)} ms`);
  assert.ok(worst < 1000, `/health took ${worst.toFixed(0)} ms at worst during the compile`);
  assert.ok((await metric('wf_grammar_timeouts_total', fast)) >= 1);
  // the same text again is refused at once
  const again = await postJson(`${fast.base}/completions`, { prompt: 'x', grammar: 'root ::= ("x"{0,1000}){0,1000}', max_tokens: 3 });
  assert.equal(again.status, 400);
  assert.match(again.json.error.message, /--grammar-timeout\) before/);
  await validJson(3, fast);
});

test('finding 4: a client that leaves while its grammar compiles stops the compile at once', async () => {
  const restarts = await metric('wf_grammar_restarts_total', fast);
  await assert.rejects(
    fetch(`${fast.base}/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', grammar: 'root ::= ("y"{0,1000}){0,1000}', max_tokens: 3 }),
      signal: AbortSignal.timeout(300),
    }),
  );
  const t0 = performance.now();
  while ((await metric('wf_grammar_restarts_total', fast)) === restarts) {
    assert.ok(performance.now() - t0 < TIMEOUT_MS / 2, 'the compile was not stopped when its client left');
    await new Promise((r) => setTimeout(r, 50));
  }
  await validJson(4, fast);
});

test('finding 4: admission comes before the compile: with the slots busy and no queue, a grammar request is a 503 and compiles nothing', async () => {
  const long = (i: number) =>
    fetch(`${srv.base}/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: `In the beginning ${i}`, max_tokens: 400, ignore_eos: true, stream: true }),
    });
  const streams = [await long(1), await long(2)];
  const readers = streams.map((s) => s.body!.getReader());
  await Promise.all(readers.map((r) => r.read())); // both are generating
  const compiles = await metric('wf_grammar_compiles_total');
  const r = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: 'root ::= "never compiled"', max_tokens: 3 });
  assert.equal(r.status, 503, JSON.stringify(r.json));
  assert.equal(await metric('wf_grammar_compiles_total'), compiles);
  await Promise.all(readers.map((rd) => rd.cancel()));
  await waitFor(async () => (await (await fetch(`${srv.url}/health`)).json()).slots_idle === 2, 10000, 'the slots to be free');
});

test("a fault in another request's grammar leaves running constrained generations going", async () => {
  const res = await fetch(`${srv.base}/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    // the grammar cannot end within max_tokens, so the stream runs to its length whatever is sampled
    body: JSON.stringify({ prompt: 'And', grammar: 'root ::= [a-z ]{2000,}', max_tokens: 120, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read(); // it is generating
  const faults = await metric('wf_grammar_faults_total');
  const bad = await postJson(`${srv.base}/completions`, { prompt: 'x', grammar: 'root ::= "x" |', max_tokens: 3 });
  assert.equal(bad.status, 400);
  assert.ok((await metric('wf_grammar_faults_total')) > faults, 'the bad grammar faulted its instance');
  let text = '';
  let finish: string | null = null;
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i).replace(/^data: /, '');
      buf = buf.slice(i + 2);
      if (ev === '[DONE]') continue;
      const j = JSON.parse(ev);
      assert.ok(!j.error, JSON.stringify(j));
      text += j.choices[0].text;
      finish = j.choices[0].finish_reason ?? finish;
    }
  }
  assert.equal(finish, 'length');
  assert.match(text, /^[a-z ]+$/);
});
