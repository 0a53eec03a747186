// /cors-proxy (cors-proxy.ts, --ui-mcp-proxy): off by default (403), forwards only the headers a
// page names explicitly, bounded in time and size, clear errors for bad targets. Every target is
// a local server on 127.0.0.1 started here.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, tinyModel } from './helpers.js';
import { corsProxyFrom } from '../../src/cli/llama-flags.js';
import { parseArgs } from '../../src/cli/args.js';
import { SERVER_OPTIONS } from '../../src/cli/wf_server.js';

const KEY = 'proxy-test-key';
const lm = await tinyModel();

/** What the target saw of the last request. */
let upstreamClosed = false;
let seen: { method?: string; url?: string; headers: IncomingHttpHeaders; body: string } = { headers: {}, body: '' };
const target: Server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    seen = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
    if (req.url === '/hang') return; // never answers
    if (req.url === '/big') return res.end('x'.repeat(5000));
    if (req.url === '/slowstream') {
      // a long stream (an MCP server's SSE): ends only when the proxy hangs up
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: 1\n\n');
      const timer = setInterval(() => res.write('data: more\n\n'), 20);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed = true;
      });
      return;
    }
    if (req.url === '/reset') {
      // the target dies mid-answer
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 30);
      return;
    }
    if (req.url === '/bigstream') {
      // no Content-Length: chunks until past the bound
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('y'.repeat(600));
      setTimeout(() => res.end('y'.repeat(600)), 50);
      return;
    }
    if (req.url === '/moved') {
      res.writeHead(302, { Location: '/data?after=redirect' });
      return res.end();
    }
    if (req.url === '/loop') {
      res.writeHead(302, { Location: '/loop' });
      return res.end();
    }
    if (req.method === 'POST' && req.url === '/empty') {
      res.writeHead(204);
      return res.end();
    }
    res.writeHead(201, {
      'Content-Type': 'application/json',
      'Set-Cookie': 'sid=target; Path=/',
      'Access-Control-Allow-Origin': 'https://evil.example',
      'X-Target': 'yes',
    });
    res.end(JSON.stringify({ ok: true, path: req.url }));
  });
});
await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
const T = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
after(() => {
  target.closeAllConnections();
  target.close();
});

const on = await startTestServer(lm, {}, { apiKey: KEY, llama: { corsProxy: { timeoutMs: 1000, maxBytes: 1000 } } });
const off = await startTestServer(lm);
after(() => Promise.all([on.close(), off.close()]));

const auth = { Authorization: `Bearer ${KEY}` };
const via = (url: string) => `${on.url}/cors-proxy?url=${encodeURIComponent(url)}`;

test('off by default: GET and POST /cors-proxy answer 403 feature_disabled, naming the flag', async () => {
  for (const method of ['GET', 'POST']) {
    const r = await fetch(`${off.url}/cors-proxy?url=${encodeURIComponent(T)}`, { method, body: method === 'POST' ? '{}' : undefined });
    assert.equal(r.status, 403);
    const b = (await r.json()) as any;
    assert.equal(b.error.type, 'feature_disabled');
    assert.match(b.error.message, /--ui-mcp-proxy/);
  }
  assert.equal(seen.url, undefined, 'the target was never called');
  const props = (await (await fetch(`${off.url}/props`)).json()) as any;
  assert.equal(props.cors_proxy_enabled, false);
});

test('only x-llama-server-proxy-header-* headers go out; the answer comes back without the target\'s cookies and CORS', async () => {
  const r = await fetch(via(`${T}/data?q=1`), {
    headers: {
      ...auth,
      'Proxy-Authorization': 'Basic secret',
      'X-Api-Key': KEY,
      Cookie: 'session=secret',
      'x-llama-server-proxy-header-accept': 'application/json',
      'x-llama-server-proxy-header-authorization': 'Bearer explicit',
      'x-llama-server-proxy-header-host': 'elsewhere.example',
      Origin: 'http://localhost:5173',
    },
  });
  assert.equal(r.status, 201);
  assert.deepEqual(await r.json(), { ok: true, path: '/data?q=1' });
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('x-target'), 'yes');
  assert.equal(r.headers.get('set-cookie'), null);
  // this server's CORS answer, not the target's
  assert.equal(r.headers.get('access-control-allow-origin'), 'http://localhost:5173');
  assert.equal(seen.method, 'GET');
  assert.equal(seen.headers.accept, 'application/json');
  assert.equal(seen.headers.authorization, 'Bearer explicit');
  assert.equal(seen.headers.host, T.slice('http://'.length));
  for (const h of ['proxy-authorization', 'x-api-key', 'cookie', 'origin']) assert.equal(seen.headers[h], undefined, h);
  assert.ok(!Object.keys(seen.headers).some((h) => h.startsWith('x-llama-server')));
  const props = (await (await fetch(`${on.url}/props`, { headers: auth })).json()) as any;
  assert.equal(props.cors_proxy_enabled, true);
});

test('the API key guards the proxy like every API route', async () => {
  seen = { headers: {}, body: '' };
  const r = await fetch(via(`${T}/data`));
  assert.equal(r.status, 401);
  assert.equal(seen.url, undefined);
});

test('POST sends the body on; a 204 comes back empty; redirects are followed, a loop is a 502', async () => {
  const r = await fetch(via(`${T}/empty`), { method: 'POST', headers: { ...auth, 'x-llama-server-proxy-header-content-type': 'application/json' }, body: '{"jsonrpc":"2.0"}' });
  assert.equal(r.status, 204);
  assert.equal(await r.text(), '');
  assert.equal(seen.body, '{"jsonrpc":"2.0"}');
  assert.equal(seen.headers['content-type'], 'application/json');
  const m = await fetch(via(`${T}/moved`), { headers: auth });
  assert.equal(m.status, 201);
  assert.deepEqual(await m.json(), { ok: true, path: '/data?after=redirect' });
  const loop = await fetch(via(`${T}/loop`), { headers: auth });
  assert.equal(loop.status, 502);
  assert.match(((await loop.json()) as any).error.message, /redirected more than/);
});

test('bad targets are 400s naming url; an unreachable one is a 502, a silent one a 504', async () => {
  for (const [url, why] of [
    ['', /url/],
    ['not a url', /not a valid URL/],
    ['ftp://127.0.0.1/x', /http or https/],
    [`http://user:pw@127.0.0.1/`, /credentials/],
    ['file:///etc/passwd', /http or https/],
  ] as const) {
    const r = await fetch(`${on.url}/cors-proxy?url=${encodeURIComponent(url)}`, { headers: auth });
    assert.equal(r.status, 400, url);
    const b = (await r.json()) as any;
    assert.equal(b.error.param, 'url');
    assert.match(b.error.message, why);
  }
  // a port nobody listens on: take one and give it back
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const closed = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const r = await fetch(via(`http://127.0.0.1:${closed}/`), { headers: auth });
  assert.equal(r.status, 502);
  assert.match(((await r.json()) as any).error.message, new RegExp(`127\\.0\\.0\\.1:${closed}.*ECONNREFUSED`));
  const t0 = performance.now();
  const h = await fetch(via(`${T}/hang`), { headers: auth });
  assert.equal(h.status, 504);
  assert.ok(performance.now() - t0 < 5000);
});

test('an answer over the size bound: a 502 when its length says so, else cut (a broken answer, not a short one)', async () => {
  const big = await fetch(via(`${T}/big`), { headers: auth });
  assert.equal(big.status, 502);
  assert.match(((await big.json()) as any).error.message, /5000 bytes.*--cors-proxy-max-mb/);
  const r = await fetch(via(`${T}/bigstream`), { headers: auth });
  assert.equal(r.status, 200);
  await assert.rejects(r.text());
  // the server is fine afterwards
  const ok = await fetch(via(`${T}/data`), { headers: auth });
  assert.equal(ok.status, 201);
  await ok.arrayBuffer();
});

test('flags: --ui-mcp-proxy (or --webui-mcp-proxy) with its bounds; the bounds alone or bad values are refused', () => {
  const opts = (argv: string[]) => corsProxyFrom(parseArgs(argv, SERVER_OPTIONS).options);
  assert.equal(opts([]), undefined);
  assert.equal(opts(['--no-ui-mcp-proxy']), undefined);
  assert.deepEqual(opts(['--ui-mcp-proxy']), { timeoutMs: 600_000, maxBytes: 64 * 2 ** 20 });
  assert.deepEqual(opts(['--webui-mcp-proxy', '--cors-proxy-timeout', '5', '--cors-proxy-max-mb', '1']), { timeoutMs: 5000, maxBytes: 2 ** 20 });
  assert.throws(() => opts(['--cors-proxy-timeout', '5']), /need --ui-mcp-proxy/);
  assert.throws(() => opts(['--ui-mcp-proxy', '--cors-proxy-timeout', '0']), /cors-proxy-timeout/);
  assert.throws(() => opts(['--ui-mcp-proxy', '--no-ui-mcp-proxy']), /not both/);
});

test('a client that leaves mid-stream ends the upstream request too; a body over the server\'s limit is a 413', async () => {
  const ac = new AbortController();
  const r = await fetch(via(`${T}/slowstream`), { headers: auth, signal: ac.signal });
  assert.equal(r.status, 200);
  const reader = r.body!.getReader();
  assert.match(new TextDecoder().decode((await reader.read()).value), /data: 1/);
  ac.abort();
  for (let i = 0; i < 100 && !upstreamClosed; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(upstreamClosed, 'the upstream connection was closed');
  // a target that dies mid-answer: the client's answer is broken too, not a short one that looks whole
  const reset = await fetch(via(`${T}/reset`), { headers: auth });
  assert.equal(reset.status, 200);
  await assert.rejects(reset.text());
  const big = await fetch(via(`${T}/empty`), { method: 'POST', headers: auth, body: 'x'.repeat(9 << 20) });
  assert.equal(big.status, 413);
});
