// wf_server as a process: benchmark mode (table and JSON) on a tiny model file, `wf serve`, serving
// the demo model until SIGTERM with a clean exit, draining on SIGTERM (in time and cut off), API keys
// from WF_API_KEY and --api-key-file, the -c warning. In-process: runBenchmark() and flag errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBenchmark, formatBenchmark } from '../../src/server/benchmark.js';
import { contextWarning, serverMain } from '../../src/cli/wf_server.js';
import { finished, listeningUrl, spawnCli } from './spawn.js';
import { tinyModel, tinyModelBytes } from './helpers.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { demoWords, wordsOf } from '../helpers/demo.js';

const dir = mkdtempSync(join(tmpdir(), 'wf-server-cli-'));
const modelPath = join(dir, 'tiny.gguf');
writeFileSync(modelPath, tinyModelBytes());
// random weights with 1024 positions: a stream that lasts long enough to be cut off (the trained demo's context is 256)
const longModelPath = join(dir, 'random-1024.gguf');
writeFileSync(longModelPath, buildSyntheticModel(DEMO_MODEL_SPEC));
after(() => rmSync(dir, { recursive: true, force: true }));

test('runBenchmark measures ppN and tgN per iteration', async () => {
  const lm = await tinyModel();
  try {
    const r = await runBenchmark(lm, { iterations: 2, promptTokens: 40, genTokens: 6 });
    assert.deepEqual(r.tests.map((t) => t.test), ['pp40', 'tg6']);
    assert.equal(r.model, 'tiny-test');
    assert.equal(r.model_type, 'I2_S');
    assert.ok(r.n_params > 0 && r.size_bytes > 0);
    for (const t of r.tests) {
      assert.equal(t.samples_ts.length, 2);
      assert.equal(t.samples_ns.length, 2);
      assert.ok(t.samples_ts.every((x) => x > 0 && Number.isFinite(x)));
      const mean = (t.samples_ts[0]! + t.samples_ts[1]!) / 2;
      assert.ok(Math.abs(t.avg_ts - mean) < 1e-9);
      assert.ok(Math.abs(t.stddev_ts - Math.abs(t.samples_ts[0]! - t.samples_ts[1]!) / Math.SQRT2) < 1e-9);
      // tokens/s and nanoseconds describe the same runs
      const n = t.n_prompt + t.n_gen;
      assert.ok(Math.abs(t.samples_ts[0]! - (n * 1e9) / t.samples_ns[0]!) / t.samples_ts[0]! < 1e-3);
    }
    const table = formatBenchmark(r);
    assert.match(table, /^\| model +\| +size \| +params \| backend/);
    assert.match(table, /\| +pp40 \| +[\d.]+ ± [\d.]+ \|/);
    assert.match(table, /\| +tg6 \| +[\d.]+ ± [\d.]+ \|/);
    await assert.rejects(runBenchmark(lm, { iterations: 0 }), /iterations/);
  } finally {
    lm.dispose();
  }
});

test('wf_server --benchmark --benchmark-iterations 1 prints pp512 and tg128 rows', async () => {
  const r = await finished(spawnCli('wf_server', ['-m', modelPath, '-t', '1', '--benchmark', '--benchmark-iterations', '1']));
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split('\n');
  assert.equal(rows.length, 4, r.stdout);
  assert.match(rows[2]!, /tiny-test I2_S .*\| +pp512 \| +[\d.]+ ± 0\.00 \|$/);
  assert.match(rows[3]!, /\| +tg128 \| +[\d.]+ ± 0\.00 \|$/);
});

test('wf_server --benchmark-json prints llama-bench style JSON', async () => {
  const r = await finished(
    spawnCli('wf_server', ['-m', modelPath, '-t', '1', '--benchmark-json', '--benchmark-iterations', '1', '--benchmark-pp', '32', '--benchmark-tg', '4']),
  );
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.iterations, 1);
  assert.deepEqual(j.tests.map((t: any) => [t.test, t.n_prompt, t.n_gen, t.samples_ts.length]), [['pp32', 32, 0, 1], ['tg4', 0, 4, 1]]);
  assert.ok(j.tests.every((t: any) => t.avg_ts > 0 && t.stddev_ts === 0));
});

test('wf serve is the same command', async () => {
  const r = await finished(
    spawnCli('wf', ['serve', '-m', modelPath, '-t', '1', '--benchmark-json', '--benchmark-iterations', '1', '--benchmark-pp', '8', '--benchmark-tg', '2']),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).tests.map((t: any) => t.test), ['pp8', 'tg2']);
  assert.match(r.stderr, /^wf serve: benchmark of tiny\.gguf/m);
});

test('wf_server serves the demo model and exits cleanly on SIGTERM', async () => {
  const child = spawnCli('wf_server', ['--port', '0', '-t', '1', '--quiet']);
  const done = finished(child);
  const url = await listeningUrl(child);
  try {
    const models = (await (await fetch(`${url}/v1/models`)).json()) as any;
    assert.equal(models.data[0].id, 'wrinklefree-demo');
    assert.equal(models.data[0].meta.demo, true);
    // the demo is a trained model: its reply is English words (most of them in the corpus word list)
    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Say something wise.' }], max_tokens: 48, temperature: 0 }),
    });
    assert.equal(chat.status, 200);
    const reply = ((await chat.json()) as any).choices[0].message.content as string;
    const words = wordsOf(reply);
    const dict = demoWords();
    const known = words.filter((w) => dict.has(w));
    assert.ok(words.length >= 8, `too few words in the demo's reply: ${JSON.stringify(reply)}`);
    assert.ok(known.length >= 0.8 * words.length, `only ${known.length} of ${words.length} words are dictionary words: ${JSON.stringify(reply)}`);
  } finally {
    child.kill('SIGTERM');
  }
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /built-in demo model, a 2\.3-million-parameter BitNet b1\.58 .* King James Bible/);
  // the demo file carries the 2B4T chat template (no warning, no fallback) and is TQ1_0 (no I2_S layout line)
  assert.match(r.stderr, /chat template: file \(the file's tokenizer\.chat_template/);
  assert.doesNotMatch(r.stderr, /warning:/);
  assert.doesNotMatch(r.stderr, /I2_S weights read/);
  assert.match(r.stderr, /SIGTERM: shutting down/);
  assert.match(r.stderr, /stopped/);
});

test('wf_server flag errors exit 2 with a message; a missing model file or bad template exits 1', async () => {
  const run = async (argv: string[]) => {
    const lines: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      return { code: await serverMain(argv), err: lines.join('\n') };
    } finally {
      console.error = orig;
    }
  };
  const bad = await run(['--port', 'eighty']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--port/);
  const range = await run(['--port', '70000']);
  assert.equal(range.code, 2);
  assert.match(range.err, /--port must be 0\.\.65535/);
  const unknown = await run(['--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown option '--frobnicate'/);
  const slots = await run(['-np', '0']);
  assert.equal(slots.code, 2);
  assert.match(slots.err, /--parallel must be an integer >= 1/);
  const stream = await run(['-b', '32', '--stream-batch-size', '48']);
  assert.equal(stream.code, 2);
  assert.match(stream.err, /--stream-batch-size 48 exceeds --batch-size 32/);
  const streamZero = await run(['--stream-batch-size', '0']);
  assert.equal(streamZero.code, 2);
  assert.match(streamZero.err, /--stream-batch-size must be an integer >= 1/);
  const missing = await run(['-m', join(dir, 'nope.gguf'), '--benchmark']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /model file not found/);
  const tmpl = await run(['-m', modelPath, '--chat-template', 'no-such-template']);
  assert.equal(tmpl.code, 1);
  assert.match(tmpl.err, /--chat-template 'no-such-template' is not a known name/);
});

/** Starts wf_server on a free port and waits for its 'listening' line. */
async function serve(argv: string[], env: Record<string, string> = {}) {
  const child = spawnCli('wf_server', ['--port', '0', '-t', '1', ...argv], env);
  const done = finished(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = await listeningUrl(child);
  const stderrSoFar = () => err;
  const waitLog = async (re: RegExp, ms = 20000) => {
    const end = Date.now() + ms;
    while (!re.test(err)) {
      if (Date.now() > end) throw new Error(`no log line ${re}: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, url, done, stderr: stderrSoFar, waitLog };
}

test('SIGTERM drains: the stream in flight finishes, a new request is refused, exit 0', async () => {
  const s = await serve(['--drain-timeout', '120', '--quiet']);
  try {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const stream = await client.completions.create({ model: 'm', prompt: 'once upon', max_tokens: 120, temperature: 0, ignore_eos: true, stream: true } as any);
    const it = (stream as any)[Symbol.asyncIterator]();
    const first = await it.next();
    let text = first.value.choices[0].text as string;
    s.child.kill('SIGTERM');
    await s.waitLog(/SIGTERM: shutting down: new requests get 503; 1 request\(s\) in flight/);
    const refused = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 1 }) });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as any).error.code, 'server_shutting_down');
    let finish = null;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      text += r.value.choices[0]?.text ?? '';
      finish = r.value.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'length');
  } finally {
    if (!/SIGTERM: shutting down/.test(s.stderr())) s.child.kill('SIGTERM');
  }
  const r = await s.done;
  assert.equal(r.code, 0, s.stderr());
  assert.match(s.stderr(), /stopped/);
  assert.doesNotMatch(s.stderr(), /drain timeout/);
});

test('SIGINT (like SIGTERM) with a tiny --drain-timeout: the stream gets an error event, exit 0', async () => {
  const s = await serve(['-m', longModelPath, '-c', '1024', '--drain-timeout', '0.2', '--quiet']);
  const res = await fetch(`${s.url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt: 'once upon', max_tokens: 1000, temperature: 0, ignore_eos: true, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  let text = new TextDecoder().decode((await reader.read()).value);
  s.child.kill('SIGINT');
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.ok(!events.includes('[DONE]'), 'a cut-off stream must not end with [DONE]');
  assert.equal(JSON.parse(events[events.length - 1]!).error.code, 'server_shutting_down');
  const r = await s.done;
  assert.equal(r.code, 0, s.stderr());
  assert.match(s.stderr(), /SIGINT: shutting down/);
  assert.match(s.stderr(), /drain timeout: 1 request\(s\) still running were ended with an error/);
});

test('WF_API_KEY sets the key; -c past the trained context warns at start', async () => {
  // the tiny model was trained (so its metadata says) for 1024 positions
  const s = await serve(['-m', modelPath, '-c', '2048', '--quiet'], { WF_API_KEY: 'from-env' });
  try {
    assert.match(s.stderr(), /warning: --ctx-size 2048 lets a sequence hold 2048 tokens, more than the model's trained context \(1024 tokens\)/);
    assert.match(s.stderr(), /API key required \(from WF_API_KEY\)/);
    const denied = await fetch(`${s.url}/v1/models`);
    assert.equal(denied.status, 401);
    const ok = await new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'from-env', maxRetries: 0 }).models.list();
    assert.equal(ok.data[0]!.id, 'tiny.gguf');
  } finally {
    s.child.kill('SIGTERM');
  }
  assert.equal((await s.done).code, 0);
});

test('--api-key-file: keys one per line, comments skipped; no warning when -c fits', async () => {
  const file = join(dir, 'keys.txt');
  writeFileSync(file, '# rotated weekly\n\nfirst-key\n  second-key  \n');
  const s = await serve(['-m', modelPath, '-c', '1024', '--api-key-file', file, '--quiet'], { WF_API_KEY: 'ignored-when-a-file-is-given' });
  try {
    assert.doesNotMatch(s.stderr(), /warning: --ctx-size/);
    assert.match(s.stderr(), /API key required \(from --api-key-file \(2 keys\)\)/);
    for (const key of ['first-key', 'second-key']) {
      const r = await new OpenAI({ baseURL: `${s.url}/v1`, apiKey: key, maxRetries: 0 }).completions.create({ model: 'm', prompt: 'x', max_tokens: 1 });
      assert.equal(r.object, 'text_completion');
    }
    for (const key of ['ignored-when-a-file-is-given', '# rotated weekly', 'first-key second-key']) {
      const r = await fetch(`${s.url}/v1/models`, { headers: { Authorization: `Bearer ${key}` } });
      assert.equal(r.status, 401, key);
    }
  } finally {
    s.child.kill('SIGTERM');
  }
  assert.equal((await s.done).code, 0);
});

test('contextWarning: only when one sequence can grow past the trained context', () => {
  assert.equal(contextWarning(4096, 4096, 4096), null);
  assert.equal(contextWarning(8192, 2048, 4096), null); // 4 slots of 2048
  assert.match(contextWarning(8192, 8192, 4096)!, /--ctx-size 8192 lets a sequence hold 8192 tokens, more than the model's trained context \(4096 tokens\)/);
});

test('API key errors: unreadable or empty file, both flags, empty WF_API_KEY', async () => {
  const run = async (argv: string[]) => {
    const lines: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      return { code: await serverMain(['-m', modelPath, ...argv]), err: lines.join('\n') };
    } finally {
      console.error = orig;
    }
  };
  const missing = await run(['--api-key-file', join(dir, 'no-such-keys')]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /cannot read --api-key-file '.*no-such-keys': no such file/);
  const isDir = await run(['--api-key-file', dir]);
  assert.equal(isDir.code, 2);
  assert.match(isDir.err, /cannot read --api-key-file .*: it is a directory/);
  const empty = join(dir, 'empty-keys');
  writeFileSync(empty, '# nothing here\n\n   \n');
  const none = await run(['--api-key-file', empty]);
  assert.equal(none.code, 2);
  assert.match(none.err, /--api-key-file '.*empty-keys' holds no key/);
  const both = await run(['--api-key', 'a', '--api-key-file', empty]);
  assert.equal(both.code, 2);
  assert.match(both.err, /give --api-key or --api-key-file, not both/);
  process.env.WF_API_KEY = ' ';
  try {
    const blank = await run([]);
    assert.equal(blank.code, 2);
    assert.match(blank.err, /WF_API_KEY is set but empty/);
  } finally {
    delete process.env.WF_API_KEY;
  }
  const drain = await run(['--drain-timeout', '-1']);
  assert.equal(drain.code, 2);
  assert.match(drain.err, /--drain-timeout must be 0\.\.86400 seconds/);
});
