// The Host check (host-check.ts): on a loopback bind, a request whose Host header is not a loopback name
// gets 403 (DNS rebinding); --allowed-hosts widens it; other binds have no check but a warning without a key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { exposureWarning, hostOfHeader, HostCheck, isLoopbackName } from '../../src/server/host-check.js';
import { startTestServer, tinyModel } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

/** GET with a Host header of our choosing (fetch does not let a caller set Host). */
function getWithHost(url: string, host: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers: host === undefined ? {} : { Host: host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('loopback names and Host header parsing', () => {
  for (const h of ['localhost', 'LOCALHOST.', 'app.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopbackName(h), h);
  for (const h of ['0.0.0.0', '10.0.0.1', 'localhost.evil.com', '127.0.0.1.evil.com', 'evil.com', '::']) assert.ok(!isLoopbackName(h), h);
  assert.equal(hostOfHeader('localhost:8080'), 'localhost');
  assert.equal(hostOfHeader('[::1]:8080'), '::1');
  assert.equal(hostOfHeader('Evil.COM'), 'evil.com');
  assert.equal(hostOfHeader('a:b:c'), undefined);
  assert.equal(hostOfHeader('[::1'), undefined);
});

test('HostCheck: active only on a loopback bind; --allowed-hosts names, domains and *', () => {
  const c = new HostCheck('127.0.0.1', ['my.box', '.corp.example']);
  assert.ok(c.active);
  assert.ok(c.allows('localhost:30000') && c.allows('127.0.0.1:30000') && c.allows('[::1]:1') && c.allows(undefined));
  assert.ok(c.allows('my.box:30000') && c.allows('a.corp.example') && c.allows('corp.example'));
  assert.ok(!c.allows('evil.com:30000') && !c.allows('my.box.evil.com') && !c.allows('xcorp.example'));
  assert.ok(!new HostCheck('0.0.0.0').active);
  assert.ok(!new HostCheck('::1', ['*']).active);
});

test('a loopback server answers 403 to a foreign Host header, 200 to loopback ones', async () => {
  const s = await startTestServer(lm);
  try {
    const bad = await getWithHost(`${s.url}/v1/models`, 'attacker.example:30000');
    assert.equal(bad.status, 403);
    const err = JSON.parse(bad.body).error;
    assert.equal(err.code, 'host_not_allowed');
    assert.match(err.message, /attacker\.example.*--allowed-hosts/);
    assert.equal((await getWithHost(`${s.url}/health`, 'attacker.example')).status, 403);
    assert.equal((await getWithHost(`${s.url}/v1/models`, 'localhost:1234')).status, 200);
    assert.equal((await getWithHost(`${s.url}/v1/models`, undefined)).status, 200); // Node sends 127.0.0.1:port
  } finally {
    await s.close();
  }
});

test('allowedHosts widens the check', async () => {
  const s = await startTestServer(lm, {}, { allowedHosts: ['my.box'] });
  try {
    assert.equal((await getWithHost(`${s.url}/v1/models`, 'my.box:8080')).status, 200);
    assert.equal((await getWithHost(`${s.url}/v1/models`, 'other.box')).status, 403);
  } finally {
    await s.close();
  }
});

test('a warning when the bind is not loopback and there is no key', () => {
  assert.match(exposureWarning('0.0.0.0', false)!, /without an API key/);
  assert.equal(exposureWarning('0.0.0.0', true), undefined);
  assert.equal(exposureWarning('127.0.0.1', false), undefined);
});
