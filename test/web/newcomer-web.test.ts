// The web pages as a newcomer meets them, in Chromium (needs `npm run build`; skipped without a browser):
//   - `wf web` lists the built-in demo and DIR's .gguf files on the page (and at /models/, once a 404):
//     the demo loads in one click;
//   - a load that fails (a file that is not a GGUF) keeps the working model and its conversation;
//   - the chat page asks for no favicon (it was a 404 on every visit);
//   - a reply stopped before its first token leaves no empty bubble.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { defaultAppDir, startWebServer } from '../../src/cli/web-server.js';
import { modelRoutes } from '../../src/cli/model-listing.js';
import { DEMO_MODEL_FILE } from '../../src/node/demo-model.js';
import { launchChromium, NO_BROWSER } from '../helpers/browser.js';

test('wf web: the model list (demo one click away), and a failed load keeps the model and the conversation', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wf-web-list-'));
  writeFileSync(join(dir, 'small.gguf'), buildSyntheticModel(DEMO_MODEL_SPEC));
  writeFileSync(join(dir, 'bad.gguf'), '<!doctype html><p>a web page, not a model</p>');
  writeFileSync(join(dir, 'notes.txt'), 'not listed');
  const srv = await startWebServer({ port: 0, models: dir, ...modelRoutes(dir, DEMO_MODEL_FILE) });
  try {
    // without a browser: /models.json and the /models/ page list the demo first, then DIR's .gguf files
    const list = (await (await fetch(srv.url + 'models.json')).json()) as { models: { name: string; url: string; demo: boolean }[] };
    assert.deepEqual(list.models.map((m) => [m.name, m.url, m.demo]), [
      ['wrinklefree-demo.gguf', '/demo/wrinklefree-demo.gguf', true],
      ['bad.gguf', '/models/bad.gguf', false],
      ['small.gguf', '/models/small.gguf', false],
    ]);
    const page = await fetch(srv.url + 'models/');
    assert.equal(page.status, 200);
    assert.match(await page.text(), /href="\/\?model=%2Fmodels%2Fsmall\.gguf">small\.gguf<\/a>/);
    const demo = await fetch(srv.url + 'demo/wrinklefree-demo.gguf', { method: 'HEAD' });
    assert.equal(demo.status, 200);
    assert.equal(Number(demo.headers.get('content-length')), readFileSync(DEMO_MODEL_FILE).length);

    const browser = await launchChromium();
    if (!browser) return t.skip(NO_BROWSER);
    try {
      const p = await (await browser.newContext()).newPage();
      await p.goto(srv.url);
      await p.waitForFunction(() => document.querySelectorAll('#server-model-list button').length === 3, null, { timeout: 30_000 });
      const first = p.locator('#server-model-list button').first();
      assert.match((await first.textContent()) ?? '', /^Load the demo model \(1\.\d+ MB\)$/);
      await first.click();
      await p.waitForFunction(() => /wrinklefree-demo\.gguf: loaded/.test(document.querySelector('#status')?.textContent ?? ''), null, { timeout: 60_000 });
      await p.click('#chat summary');
      await p.fill('#maxTokens', '4');
      await p.fill('#input', 'In the beginning');
      await p.click('#send');
      await p.waitForFunction(() => document.querySelectorAll('#log .stats').length === 1, null, { timeout: 30_000 });

      // a bad file from the list: the error shows, the demo and the conversation stay
      await p.click('#server-model-list button[data-url="/models/bad.gguf"]');
      await p.waitForFunction(() => !(document.querySelector('#error') as HTMLElement).hidden, null, { timeout: 30_000 });
      assert.match((await p.textContent('#error')) ?? '', /bad\.gguf is not a GGUF file/);
      assert.match((await p.textContent('#status')) ?? '', /wrinklefree-demo\.gguf: loaded/);
      assert.match((await p.textContent('#log')) ?? '', /In the beginning/);
      assert.ok(!(await p.isDisabled('#send')));
      await p.fill('#input', 'And then');
      await p.click('#send');
      await p.waitForFunction(() => document.querySelectorAll('#log .stats').length === 2, null, { timeout: 30_000 });
      assert.doesNotMatch((await p.textContent('#log')) ?? '', /Error/);
    } finally {
      await browser.close();
    }
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chat page: no favicon request; a reply stopped before its first token leaves no empty bubble', async (t) => {
  const browser = await launchChromium();
  if (!browser) return t.skip(NO_BROWSER);
  const html = readFileSync(join(defaultAppDir(), 'chat.html'), 'utf8');
  const paths: string[] = [];
  let asked = 0;
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    paths.push(req.url ?? '');
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(html);
    } else if (req.url === '/v1/models') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ data: [{ id: 'stand-in', meta: { n_ctx_slot: 256, kernels: 'none', threads: 1 } }] }));
    } else if (req.url === '/v1/chat/completions') {
      for await (const _ of req) void _;
      asked++;
      // the prompt is being read: nothing is written until the page hangs up
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.flushHeaders();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const url = await new Promise<string>((ok) => server.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(server.address() as { port: number }).port}/`)));
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => document.querySelector('#model')?.textContent?.includes('stand-in'));
    await page.fill('#input', 'hello');
    await page.click('#send');
    await page.waitForFunction(() => !(document.querySelector('#stop') as HTMLButtonElement).disabled);
    while (asked === 0) await new Promise((r) => setTimeout(r, 10));
    await page.click('#stop');
    await page.waitForFunction(() => document.querySelectorAll('#log .stats').length === 1, null, { timeout: 10_000 });
    assert.match((await page.textContent('#log .stats')) ?? '', /stopped/);
    assert.equal(await page.locator('#log .msg.assistant').count(), 0, 'an empty reply bubble stayed');
    assert.equal(await page.locator('#log .msg.user').count(), 1);
    await page.waitForTimeout(200);
    assert.ok(!paths.includes('/favicon.ico'), `the page asked for /favicon.ico: ${paths.join(' ')}`);
    await page.close();
  } finally {
    await browser.close();
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
});
