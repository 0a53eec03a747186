// wf web's static server: isolation headers (or none with isolate: false), byte ranges for models,
// nothing outside the mounted folders, GET and HEAD only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { startWebServer } from '../../src/cli/web-server.js';

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    // raw path: no client-side normalization of ../
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path: url.slice(url.indexOf('/', 8)), method, headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('wf web server: headers, ranges, confinement', async () => {
  const app = mkdtempSync(join(tmpdir(), 'wf-app-'));
  const models = mkdtempSync(join(tmpdir(), 'wf-models-'));
  writeFileSync(join(app, 'index.html'), '<!doctype html>app');
  writeFileSync(join(models, 'm.gguf'), 'GGUF0123456789');
  writeFileSync(join(tmpdir(), 'wf-secret.txt'), 'secret');
  const iso = await startWebServer({ port: 0, app, models });
  const plain = await startWebServer({ port: 0, app, models, isolate: false });
  try {
    const page = await get(iso.url);
    assert.equal(page.status, 200);
    assert.equal(page.body, '<!doctype html>app');
    assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal((await get(plain.url)).headers['cross-origin-embedder-policy'], undefined);

    const whole = await get(iso.url + 'models/m.gguf');
    assert.equal(whole.body, 'GGUF0123456789');
    assert.equal(whole.headers['content-length'], '14');
    const part = await get(iso.url + 'models/m.gguf', { Range: 'bytes=4-7' });
    assert.equal(part.status, 206);
    assert.equal(part.body, '0123');
    assert.equal(part.headers['content-range'], 'bytes 4-7/14');
    assert.equal((await get(iso.url + 'models/m.gguf', { Range: 'bytes=-3' })).body, '789');
    assert.equal((await get(iso.url + 'models/m.gguf', { Range: 'bytes=20-' })).status, 416);
    assert.equal(iso.hits.get('/models/m.gguf'), 4);

    for (const p of ['models/../../wf-secret.txt', 'models/%2e%2e/%2e%2e/wf-secret.txt', '..%2f..%2fwf-secret.txt', 'models/%2e%2e%2fwf-secret.txt']) {
      const r = await get(iso.url + p);
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(r.body, /secret$/);
    }
    assert.equal((await get(iso.url + 'models/', {}, 'GET')).status, 404, 'a folder is not a file');
    assert.equal((await get(iso.url, {}, 'POST')).status, 405);
    assert.equal((await get(iso.url + 'models/m.gguf', {}, 'HEAD')).headers['content-length'], '14');
  } finally {
    await iso.close();
    await plain.close();
    rmSync(app, { recursive: true, force: true });
    rmSync(models, { recursive: true, force: true });
    rmSync(join(tmpdir(), 'wf-secret.txt'), { force: true });
  }
});

test('wf web server: symlinks out of the models folder serve nothing; symlinks inside it still work', async () => {
  const outside = mkdtempSync(join(tmpdir(), 'wf-outside-'));
  const models = mkdtempSync(join(tmpdir(), 'wf-models-'));
  writeFileSync(join(outside, 'shadow'), 'secret');
  writeFileSync(join(models, 'real.gguf'), 'GGUF');
  symlinkSync(outside, join(models, 'etcdir'));
  symlinkSync(join(outside, 'shadow'), join(models, 'link.gguf'));
  symlinkSync(join(models, 'real.gguf'), join(models, 'alias.gguf'));
  const srv = await startWebServer({ port: 0, app: models, models });
  try {
    for (const p of ['models/etcdir/shadow', 'models/link.gguf']) {
      const r = await get(srv.url + p);
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(r.body, /secret/);
    }
    assert.equal((await get(srv.url + 'models/alias.gguf')).body, 'GGUF');
  } finally {
    await srv.close();
    rmSync(outside, { recursive: true, force: true });
    rmSync(models, { recursive: true, force: true });
  }
});
