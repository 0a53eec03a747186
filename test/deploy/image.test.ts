// The server image, for real (podman; skipped with a message where podman, runc or mmdebstrap are
// missing): deploy/build-image.sh builds it from the checkout with its own Debian base and the node
// line the script pins (an LTS one); it runs as a non-root user on a read-only root filesystem,
// limited to 1 CPU (so 1 thread, said on the start line); it answers /health, /livez, a chat
// completion and /metrics; arguments after the image name replace the default ones (a model mounted
// read-only at /models); and `podman stop` (SIGTERM to node as PID 1) drains: the stream in flight
// ends with [DONE], the exit code is 0.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExposition } from '../../src/server/metrics.js';
import { tinyModelBytes } from '../server/helpers.js';
import { ROOT, buildImage, containerSkipReason, freePort, podman, waitReady } from './podman.js';

const skip = containerSkipReason();
if (skip) console.log(`# skipped: ${skip}`);
const TAG = `localhost/wrinklefree:test-${process.pid}`;
const names: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'wf-image-'));

before(async () => {
  if (skip) return;
  const built = await buildImage(TAG);
  assert.equal(built.code, 0, `build-image.sh failed:\n${built.stderr.slice(-4000)}`);
  console.log(`# ${built.stderr.trim().split('\n').pop()}`);
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (skip) return;
  for (const n of names) await podman(['rm', '-f', '-t', '0', n]);
  await podman(['rmi', '-f', TAG]);
});

/** Starts a container (host network, loopback port) and resolves when /health answers. */
async function start(extra: string[], args: string[]): Promise<{ name: string; url: string; readySeconds: number }> {
  const name = `wf-test-${process.pid}-${names.length}`;
  names.push(name);
  const port = await freePort();
  const t0 = performance.now();
  const r = await podman(['run', '-d', '--name', name, '--network', 'host', '--read-only', ...extra, TAG, ...args.map((a) => a.replace('PORT', String(port)))]);
  assert.equal(r.code, 0, r.stderr);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(`${url}/health`, 60000);
  } catch (e) {
    const logs = await podman(['logs', name]);
    throw new Error(`${(e as Error).message}\n${logs.stdout}${logs.stderr}`);
  }
  return { name, url, readySeconds: (performance.now() - t0) / 1000 };
}

const logsOf = async (name: string) => {
  const r = await podman(['logs', name]);
  return r.stdout + r.stderr;
};

test('the image: non-root, read-only, --cpus 1 runs 1 thread, and answers /health, /livez, chat and /metrics', { skip: skip ?? false }, async () => {
  const inspect = JSON.parse((await podman(['image', 'inspect', TAG])).stdout)[0];
  assert.equal(inspect.Config.User, '10001:10001');
  assert.deepEqual(inspect.Config.Entrypoint, ['node', '/app/bin/wf_server.js']);
  assert.deepEqual(inspect.Config.Cmd, ['--host', '0.0.0.0', '--port', '30000']);

  const c = await start(['--cpus', '1'], ['--host', '127.0.0.1', '--port', 'PORT', '-np', '2']);
  console.log(`# start to ready (demo model, 1 CPU): ${c.readySeconds.toFixed(2)} s`);
  const logs = await logsOf(c.name);
  assert.match(logs, /wf_server: 1 thread\(s\), from CPU quota 1 CPUs, cgroup v[12] /);
  assert.match(logs, /wasm-\w+ x1/);

  // the base's node is the line build-image.sh pins (an LTS one: Node 20's support ended in April 2026)
  const pinned = /NODE_VERSION=\$\{WF_IMAGE_NODE_VERSION:-(\d+)\}/.exec(readFileSync(join(ROOT, 'deploy', 'build-image.sh'), 'utf8'));
  assert.ok(pinned, 'build-image.sh no longer says which node line it pins');
  const nodeLine = await podman(['exec', c.name, 'node', '-p', "process.versions.node.split('.')[0] + ' ' + (process.release.lts ?? 'not-lts')"]);
  assert.match(nodeLine.stdout.trim(), new RegExp(`^${process.env.WF_IMAGE_NODE_VERSION ?? pinned[1]} [A-Z][a-z]+$`), `node in the image: ${nodeLine.stdout}${nodeLine.stderr}`);

  const whoami = await podman(['exec', c.name, 'node', '-e', "try { require('fs').writeFileSync('/app/x', '1'); console.log('wrote') } catch (e) { console.log(process.getuid(), e.code) }"]);
  assert.equal(whoami.stdout.trim(), '10001 EROFS');

  assert.equal((await fetch(`${c.url}/livez`)).status, 200);
  const health = await (await fetch(`${c.url}/health`)).json();
  assert.equal(health.status, 'ok');
  const chat = await fetch(`${c.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0 }),
  });
  assert.equal(chat.status, 200);
  const body = await chat.json();
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.usage.completion_tokens, 8);
  assert.ok(body.choices[0].message.content.length > 0);
  const m = parseExposition(await (await fetch(`${c.url}/metrics`)).text());
  assert.equal(m.samples.find((s) => s.name === 'wf_tokens_predicted_total')!.value, 8);
  assert.ok(m.samples.some((s) => s.name === 'wf_kv_cache_usage_ratio'));
});

test('the image: a model mounted at /models; podman stop drains the stream in flight and exits 0', { skip: skip ?? false }, async () => {
  const models = join(dir, 'models');
  rmSync(models, { recursive: true, force: true });
  mkdirSync(models);
  writeFileSync(join(models, 'tiny.gguf'), tinyModelBytes({ contextLength: 4096 }));
  const c = await start(['-v', `${models}:/models:ro`], ['--model-path', '/models/tiny.gguf', '--host', '127.0.0.1', '--port', 'PORT', '-np', '1', '-c', '4096', '--drain-timeout', '60']);
  const models_ = await (await fetch(`${c.url}/v1/models`)).json();
  assert.equal(models_.data[0].id, 'tiny.gguf');

  const res = await fetch(`${c.url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: 'abc', max_tokens: 3000, temperature: 0, ignore_eos: true, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  let text = '';
  text += new TextDecoder().decode((await reader.read()).value);
  const stopping = podman(['stop', '-t', '60', c.name], 90000);
  // readiness turns 503 while the stream still runs; liveness stays 200
  let sawDraining = false;
  for (let i = 0; i < 100 && !sawDraining; i++) {
    try {
      sawDraining = (await fetch(`${c.url}/health`)).status === 503;
      if (sawDraining) assert.equal((await fetch(`${c.url}/livez`)).status, 200);
    } catch {
      break;
    }
    if (!sawDraining) await new Promise((r) => setTimeout(r, 20));
  }
  const dec = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  assert.ok(sawDraining, '/health never said 503 during the drain');
  assert.match(text, /"finish_reason":"length"/);
  assert.ok(text.trimEnd().endsWith('data: [DONE]'), text.slice(-300));
  const stop = await stopping;
  assert.equal(stop.code, 0, stop.stderr);
  const exit = (await podman(['inspect', c.name, '--format', '{{.State.ExitCode}}'])).stdout.trim();
  assert.equal(exit, '0');
  const logs = await logsOf(c.name);
  assert.match(logs, /SIGTERM: shutting down: new requests get 503; 1 request\(s\) in flight/);
  assert.match(logs, /wf_server: stopped/);
});
