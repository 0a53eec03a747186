// wf download against a local HTTP server: a cut connection is resumed with Range (in the same run,
// or by the next run from FILE.part), a server without Range support restarts from zero, a file
// changed on the server is not spliced onto old bytes (If-Range), and a wrong checksum leaves no file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { download, DownloadError } from '../../src/node/download.js';
import { finished, spawnCli } from '../server/spawn.js';

const dir = mkdtempSync(join(tmpdir(), 'wf-download-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Served {
  url: string;
  /** the Range header of each request ('' when none) */
  ranges: string[];
  /** cut the next N responses after this many bytes of body */
  cutAfter: { bytes: number; times: number };
  body: Buffer;
  etag: string;
  rangeSupport: boolean;
  close(): Promise<void>;
}

async function serve(body: Buffer): Promise<Served> {
  const s: Partial<Served> = { ranges: [], cutAfter: { bytes: 0, times: 0 }, body, etag: '"v1"', rangeSupport: true };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const st = s as Served;
    if (req.url !== '/model.gguf') {
      res.writeHead(404);
      res.end('not found');
      return;
    }
    const range = req.headers.range ?? '';
    st.ranges.push(range);
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(range);
    const ifRange = req.headers['if-range'];
    const rangeOk = st.rangeSupport && m && (ifRange === undefined || ifRange === st.etag);
    if (rangeOk) {
      start = Number(m![1]);
      if (start >= st.body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${st.body.length}` });
        res.end();
        return;
      }
      res.writeHead(206, { 'Content-Length': st.body.length - start, 'Content-Range': `bytes ${start}-${st.body.length - 1}/${st.body.length}`, ETag: st.etag });
    } else {
      res.writeHead(200, { 'Content-Length': st.body.length, ETag: st.etag, ...(st.rangeSupport ? { 'Accept-Ranges': 'bytes' } : {}) });
    }
    const rest = st.body.subarray(start);
    if (st.cutAfter.times > 0) {
      st.cutAfter.times--;
      // end (FIN), not destroy (RST): a reset can discard bytes the client has not read yet, so the
      // resume offset would depend on timing
      res.write(rest.subarray(0, st.cutAfter.bytes), () => res.socket?.end());
      return;
    }
    res.end(rest);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
  s.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return s as Served;
}

const payload = randomBytes(300_000);

test('a cut connection is resumed with Range within the run; the file appears whole and checked', async () => {
  const srv = await serve(payload);
  try {
    srv.cutAfter = { bytes: 100_000, times: 2 };
    const out = join(dir, 'a.gguf');
    const r = await download({ url: srv.url, out, sha256: sha(payload), retries: 3, retryDelayMs: 10 });
    assert.deepEqual(readFileSync(out), payload);
    assert.equal(r.sha256, sha(payload));
    assert.equal(r.retries, 2);
    // each resume starts past the last one and at most one cut's bytes later (bytes still in flight
    // when the connection ended may be fetched again; none may be skipped)
    assert.equal(srv.ranges.length, 3);
    assert.equal(srv.ranges[0], '');
    const offsets = srv.ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r)?.[1]));
    assert.ok(offsets[0]! > 0 && offsets[0]! <= 100_000 && offsets[1]! > offsets[0]! && offsets[1]! <= offsets[0]! + 100_000, srv.ranges.join(' '));
    assert.ok(!existsSync(`${out}.part`) && !existsSync(`${out}.part.json`));
  } finally {
    await srv.close();
  }
});

test('a run that gives up leaves only FILE.part; the next run resumes from it', async () => {
  const srv = await serve(payload);
  try {
    srv.cutAfter = { bytes: 120_000, times: 1 };
    const out = join(dir, 'b.gguf');
    await assert.rejects(download({ url: srv.url, out, retries: 0 }), (e: Error) => e instanceof DownloadError && /cut off.*run the same command again/.test(e.message));
    assert.ok(!existsSync(out), 'no complete-looking file after a cut');
    assert.equal(readFileSync(`${out}.part`).length, 120_000);
    const r = await download({ url: srv.url, out, sha256: sha(payload), retries: 0 });
    assert.equal(r.resumedFrom, 120_000);
    assert.deepEqual(readFileSync(out), payload);
    assert.deepEqual(srv.ranges, ['', 'bytes=120000-']);
  } finally {
    await srv.close();
  }
});

test('a server without Range support, or whose file changed (If-Range), restarts from zero', async () => {
  const srv = await serve(payload);
  try {
    srv.rangeSupport = false;
    srv.cutAfter = { bytes: 50_000, times: 1 };
    const out = join(dir, 'c.gguf');
    await download({ url: srv.url, out, sha256: sha(payload), retries: 1, retryDelayMs: 10 });
    assert.deepEqual(readFileSync(out), payload);

    // the file changes between two runs: the old bytes must not be kept
    srv.rangeSupport = true;
    srv.cutAfter = { bytes: 70_000, times: 1 };
    const out2 = join(dir, 'd.gguf');
    await assert.rejects(download({ url: srv.url, out: out2, retries: 0 }));
    const changed = randomBytes(200_000);
    srv.body = changed;
    srv.etag = '"v2"';
    await download({ url: srv.url, out: out2, sha256: sha(changed), retries: 0 });
    assert.deepEqual(readFileSync(out2), changed);
  } finally {
    await srv.close();
  }
});

test('wf download: a wrong checksum exits 1 and leaves no file; a right one prints it, progress on stderr', async () => {
  const srv = await serve(payload);
  try {
    const out = join(dir, 'e.gguf');
    const wrong = 'ab'.repeat(32);
    const bad = await finished(spawnCli('wf', ['download', srv.url, '-o', out, '--sha256', wrong]));
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(`checksum mismatch.*expected sha256 ${wrong}, got ${sha(payload)}`));
    assert.ok(!existsSync(out) && !existsSync(`${out}.part`), 'nothing left that looks like the file');

    const good = await finished(spawnCli('wf', ['download', srv.url, '-o', out, '--sha256', sha(payload).toUpperCase()]));
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, new RegExp(`300000 bytes, sha256 ${sha(payload)} \\(matches\\)`));
    assert.match(good.stderr, /wf download: 0\.3 MiB of 0\.3 MiB \(100\.0%\).*done/);
    assert.deepEqual(readFileSync(out), payload);
    // again with the file in place (an init container restarted on a kept volume): nothing fetched
    const before = srv.ranges.length;
    const again = await finished(spawnCli('wf', ['download', srv.url, '-o', out, '--sha256', sha(payload)]));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already there with sha256/);
    assert.equal(srv.ranges.length, before);

    const usage = await finished(spawnCli('wf', ['download', srv.url, '-o', out, '--sha256', 'xyz']));
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /--sha256 must be 64 hexadecimal digits/);
    const noOut = await finished(spawnCli('wf', ['download', srv.url]));
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /missing -o FILE/);
    // an HTTP error is reported, nothing written
    const f = join(dir, 'f.gguf');
    const missing = await finished(spawnCli('wf', ['download', srv.url.replace('model.gguf', 'nope.gguf'), '-o', f]));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /answered 404/);
    assert.ok(!existsSync(f) && !existsSync(`${f}.part`));
  } finally {
    await srv.close();
  }
});
