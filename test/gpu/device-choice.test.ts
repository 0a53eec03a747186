// Choosing the device from the command line and the server's behaviour on a lost device:
// --device / WF_DEVICE refused by name when wrong; --device webgpu without the optional package or
// without an adapter says what is missing; with an adapter, `wf run` gives the CPU's tokens and the
// benchmark names the adapter; a server whose GPU was lost answers 503 device_lost, /health and /livez 503
// (the step in flight at the loss fails with the reason: test/gpu/forward.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { oracleBytes } from '../helpers/oracle.js';
import { testGpu } from '../helpers/gpu.js';
import { nodeGPU, openNodeGpu } from '../../src/node/webgpu.js';
import { loadModel } from '../../src/engine.js';
import { postJson, startTestServer, tinyModelBytes } from '../server/helpers.js';

const root = fileURLToPath(new URL('../../' + (import.meta.url.includes('/dist/') ? '../' : ''), import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wf-device-'));
const model = join(dir, 'tiny-tq2_0.gguf');
writeFileSync(model, oracleBytes('bitnet-tiny-silu-tq2_0.gguf'));
const gpu = await testGpu();
const skip = typeof gpu === 'string' ? gpu : false;

function run(bin: string, args: string[], env: Record<string, string | undefined> = {}) {
  assert.ok(existsSync(join(root, 'dist/src/cli/wf.js')), 'dist is not built: run `npm run build` first');
  const r = spawnSync(process.execPath, [join(root, 'bin', bin), ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--device and WF_DEVICE: anything but cpu or webgpu is refused by name', () => {
  const a = run('wf.js', ['run', '-m', model, '-p', 'hi', '-n', '1', '--device', 'tpu']);
  assert.notEqual(a.code, 0);
  assert.match(a.err, /--device: device must be cpu or webgpu, got 'tpu'/);
  const b = run('wf.js', ['logits', '-m', model, '--tokens', '1,2'], { WF_DEVICE: 'gpu0' });
  assert.notEqual(b.code, 0);
  assert.match(b.err, /device must be cpu or webgpu, got 'gpu0' \(from WF_DEVICE\)/);
});

test('--device webgpu without the npm package webgpu says what to install', async () => {
  const missing = Object.assign(new Error("Cannot find package 'webgpu'"), { code: 'ERR_MODULE_NOT_FOUND' });
  await assert.rejects(nodeGPU(() => Promise.reject(missing)), /needs the optional package 'webgpu' \(Dawn for Node\): npm install webgpu/);
});

test('--device webgpu without an adapter names what is missing', { skip }, () => {
  const r = run('wf.js', ['run', '-m', model, '-p', 'hi', '-n', '1', '--device', 'webgpu'], { VK_ICD_FILENAMES: join(dir, 'no-such-icd.json') });
  assert.notEqual(r.code, 0);
  assert.match(r.err, /no WebGPU adapter: .*Vulkan driver and libvulkan1.*or use --device cpu/);
});

test('wf run --device webgpu gives the CPU\'s greedy tokens; the benchmark names the adapter', { skip }, () => {
  const args = ['run', '-m', model, '--tokens', '1,15,27,99', '-n', '24', '--temp', '0', '--ignore-eos', '--json', '-t', '1'];
  const cpu = run('wf.js', args);
  const webgpu = run('wf.js', [...args, '--device', 'webgpu']);
  assert.equal(cpu.code, 0, cpu.err);
  assert.equal(webgpu.code, 0, webgpu.err);
  assert.deepEqual(JSON.parse(webgpu.out).tokens, JSON.parse(cpu.out).tokens);
  const bench = run('wf_server.js', ['-m', model, '--benchmark-json', '--benchmark-pp', '8', '--benchmark-tg', '4', '--benchmark-iterations', '1'],
    { WF_DEVICE: 'webgpu' });
  assert.equal(bench.code, 0, bench.err);
  const report = JSON.parse(bench.out);
  assert.equal(report.backend, 'webgpu');
  assert.match(report.device, /^webgpu: \S/);
});

test('a server whose GPU was lost answers new requests 503 device_lost, and /health and /livez 503', { skip }, async () => {
  const own = await openNodeGpu(); // a device of its own, to destroy
  const lm = await loadModel(tinyModelBytes(), { gpu: own });
  const srv = await startTestServer(lm, { ctxSize: 128 });
  try {
    const ok = await postJson(`${srv.base}/completions`, { prompt: 'hello', max_tokens: 3, temperature: 0 });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    own.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const first = await postJson(`${srv.base}/completions`, { prompt: 'hello again', max_tokens: 3, temperature: 0 });
    assert.equal(first.status, 503, JSON.stringify(first.json));
    assert.equal(first.json.error.code, 'device_lost');
    assert.match(first.json.error.message, /GPU device was lost .*restart it \(or run it with --device cpu\)/);
    for (const probe of ['/health', '/livez']) {
      const res = await fetch(`${srv.url}${probe}`);
      assert.equal(res.status, 503, probe);
      assert.equal((await res.json()).status, 'device_lost', probe);
    }
  } finally {
    await srv.close();
  }
});
