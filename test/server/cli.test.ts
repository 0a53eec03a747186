// wf_server as a process: benchmark mode (table and JSON) on a tiny model file, `wf serve`, serving
// the demo model until SIGTERM with a clean exit. In-process: runBenchmark() and flag errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBenchmark, formatBenchmark } from '../../src/server/benchmark.js';
import { serverMain } from '../../src/server/cli.js';
import { finished, spawnCli } from './spawn.js';
import { tinyModel, tinyModelBytes } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'wf-server-cli-'));
const modelPath = join(dir, 'tiny.gguf');
writeFileSync(modelPath, tinyModelBytes());
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
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no 'listening' line: ${err}`)), 30000);
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (http:\/\/\S+) /.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  try {
    const models = (await (await fetch(`${url}/v1/models`)).json()) as any;
    assert.equal(models.data[0].id, 'wrinklefree-demo');
    assert.equal(models.data[0].meta.demo, true);
    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 0 }),
    });
    assert.equal(chat.status, 200);
  } finally {
    child.kill('SIGTERM');
  }
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /demo model \(random weights/);
  assert.match(r.stderr, /warning: the model file has no chat template/);
  assert.match(r.stderr, /I2_S weights read in the x86 layout \(.*--i2s-layout arm/, 'the demo model is I2_S');
  assert.match(r.stderr, /chat template: bitnet-2b4t \(the file has no tokenizer\.chat_template/);
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
  const missing = await run(['-m', join(dir, 'nope.gguf'), '--benchmark']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /model file not found/);
  const tmpl = await run(['-m', modelPath, '--chat-template', 'no-such-template']);
  assert.equal(tmpl.code, 1);
  assert.match(tmpl.err, /--chat-template 'no-such-template' is not a file, a known name/);
});
