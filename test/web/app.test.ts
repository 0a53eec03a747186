// The browser app (dist/web/, served by `wf web`'s server) in Chromium: a link loads a model from
// a URL and greedy-decodes the tokens Node decodes; a second load in the same browser profile comes
// from the OPFS cache (the server sees no second download); the isolated page runs Web Workers and
// the plain one runs one thread with the note saying why; a file that is not a GGUF gives the
// on-page error. Needs `npm run build` and Chromium (skipped, saying so, without one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { loadModel } from '../../src/engine.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { defaultAppDir, startWebServer } from '../../src/cli/web-server.js';
import { launchChromium, NO_BROWSER } from '../helpers/browser.js';

const PROMPT = 'Hello from the app';
const N = 8;

interface WfResult {
  text?: string;
  tokens?: number[];
  timings?: { tokensPerSecond: number } | null;
  source?: string;
  threads?: number;
  isolated?: boolean;
  error?: string;
}

async function result(page: Page): Promise<WfResult> {
  const h = await page.waitForFunction(() => (window as unknown as { wfResult?: unknown }).wfResult, null, { timeout: 90_000 });
  return (await h.jsonValue()) as WfResult;
}

/** A copy of a GGUF with one tensor's type id changed in its header (its data left as it is). */
function withTensorType(gguf: Uint8Array, tensor: string, type: number): Uint8Array {
  const out = gguf.slice();
  const name = new TextEncoder().encode(tensor);
  const at = Buffer.from(out.buffer, out.byteOffset, out.length).indexOf(Buffer.from(name));
  assert.ok(at > 0, `no tensor ${tensor}`);
  const dv = new DataView(out.buffer, out.byteOffset);
  const nDims = dv.getUint32(at + name.length, true);
  dv.setUint32(at + name.length + 4 + 8 * nDims, type, true);
  return out;
}

const link = (file: string, extra = '') => `?model=${encodeURIComponent('/models/' + file)}&prompt=${encodeURIComponent(PROMPT)}&n=${N}&temp=0${extra}`;

test('browser app: URL load, OPFS cache, both thread paths, the chat, and a bad file', async (t) => {
  assert.ok(existsSync(join(defaultAppDir(), 'app.js')), 'dist/web is not built: run `npm run build` first');
  const browser: Browser | undefined = await launchChromium();
  if (!browser) return t.skip(NO_BROWSER);
  const dir = mkdtempSync(join(tmpdir(), 'wf-web-'));
  const model = buildSyntheticModel(DEMO_MODEL_SPEC);
  writeFileSync(join(dir, 'demo.gguf'), model);
  writeFileSync(join(dir, 'bad.gguf'), '<!doctype html><p>this is a web page, not a model</p>');
  writeFileSync(join(dir, 'iq1.gguf'), withTensorType(model, 'blk.0.attn_q.weight', 19)); // IQ1_S: not a type WrinkleFree runs
  const lm = await loadModel(model, { threads: 1 });
  const expected = (await lm.createSession().complete(PROMPT, { maxTokens: N, sampler: { temperature: 0 } })).tokens;
  lm.dispose();
  const isolatedSrv = await startWebServer({ port: 0, models: dir });
  const plainSrv = await startWebServer({ port: 0, models: dir, isolate: false });
  try {
    await t.test('isolated: download, then the cache', async () => {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      await page.goto(isolatedSrv.url + link('demo.gguf', '&threads=2'));
      const first = await result(page);
      assert.equal(first.error, undefined, `page error: ${first.error}`);
      assert.equal(first.isolated, true);
      assert.equal(first.threads, 2, 'an isolated page runs the kernels on Web Workers');
      assert.equal(first.source, 'network');
      assert.deepEqual(first.tokens, expected);
      assert.ok(first.timings && first.timings.tokensPerSecond > 0);
      assert.equal(isolatedSrv.hits.get('/models/demo.gguf'), 1);
      assert.match((await page.textContent('#cache-list')) ?? '', /demo\.gguf/, 'the cache lists the download');

      // the chat UI on the engine in the page
      await page.click('#chat summary');
      await page.fill('#maxTokens', '4');
      await page.fill('#input', 'hi there');
      await page.click('#send');
      await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('finish:'), null, { timeout: 30_000 });
      assert.match((await page.textContent('#log')) ?? '', /4 tokens at [\d.]+ tok\/s · finish: length/);

      await page.reload();
      const second = await result(page);
      assert.equal(second.error, undefined, `page error: ${second.error}`);
      assert.equal(second.source, 'cache');
      assert.deepEqual(second.tokens, expected);
      assert.equal(isolatedSrv.hits.get('/models/demo.gguf'), 1, 'the second load must not download the model again');

      // clearing the cache empties the list and the next load downloads again
      await page.click('#cache-panel summary');
      await page.click('#cache-clear');
      await page.waitForFunction(() => document.querySelector('#cache-list')?.textContent === 'empty');
      await ctx.close();
    });

    await t.test('not isolated: one thread, with the note', async () => {
      const page = await (await browser.newContext()).newPage();
      await page.goto(plainSrv.url + link('demo.gguf', '&threads=2'));
      const r = await result(page);
      assert.equal(r.error, undefined, `page error: ${r.error}`);
      assert.equal(r.isolated, false);
      assert.equal(r.threads, 1);
      assert.deepEqual(r.tokens, expected);
      assert.ok(await page.isVisible('#threads-note'), 'the page says why it runs one thread');

      // the file picker: the File itself is the model's bytes
      await page.setInputFiles('#file', join(dir, 'demo.gguf'));
      await page.waitForFunction(() => /demo\.gguf: loaded .*\(file\)/.test(document.querySelector('#status')?.textContent ?? ''), null, { timeout: 60_000 });
      assert.match((await page.textContent('#model')) ?? '', /demo\.gguf · ctx \d+ · wasm-\w+ x1/);
      // drag and drop: a dropped file that is not a GGUF gives the error; the working model stays loaded
      const dt = await page.evaluateHandle(() => {
        const d = new DataTransfer();
        d.items.add(new File(['PK\u0003\u0004 a zip, not a model'], 'dropped.gguf'));
        return d;
      });
      await page.dispatchEvent('body', 'drop', { dataTransfer: dt });
      await page.waitForFunction(() => !(document.querySelector('#error') as HTMLElement).hidden);
      assert.match((await page.textContent('#error')) ?? '', /dropped\.gguf is not a GGUF file \(it starts with "PK\.\."/);
      assert.ok(!(await page.isDisabled('#send')), 'the model loaded before still answers after a failed load');
      assert.match((await page.textContent('#model')) ?? '', /demo\.gguf · ctx \d+/);
      assert.match((await page.textContent('#status')) ?? '', /demo\.gguf: loaded/);
      await page.context().close();
    });

    await t.test('no OPFS (not a secure context): the download stays in a Blob', async () => {
      const ctx = await browser.newContext();
      // an http origin other than localhost is not a secure context: no OPFS, no shared memory
      await ctx.route('http://wf-app.test/**', async (route) => {
        const res = await route.fetch({ url: route.request().url().replace('http://wf-app.test/', plainSrv.url) });
        await route.fulfill({ response: res });
      });
      const page = await ctx.newPage();
      await page.goto('http://wf-app.test/' + link('demo.gguf'));
      const r = await result(page);
      assert.equal(r.error, undefined, `page error: ${r.error}`);
      assert.equal(r.source, 'network');
      assert.deepEqual(r.tokens, expected);
      assert.match((await page.textContent('#cache-list')) ?? '', /needs a secure context/);
      await ctx.close();
    });

    await t.test('the chat leaves out old turns when the context is full', async () => {
      const page = await (await browser.newContext()).newPage();
      await page.goto(plainSrv.url + '?model=/models/demo.gguf&ctx=96');
      const r = await result(page);
      assert.equal(r.error, undefined, `page error: ${r.error}`);
      await page.click('#chat summary');
      await page.fill('#maxTokens', '8');
      for (let i = 0; i < 5; i++) {
        await page.fill('#input', `turn ${i}: a message of some thirty characters`);
        await page.press('#input', 'Enter');
        await page.waitForFunction((n) => document.querySelectorAll('#log .stats, #log .error').length > n, i, { timeout: 30_000 });
      }
      assert.equal(await page.locator('#log .error').count(), 0, (await page.textContent('#log')) ?? '');
      assert.match((await page.textContent('#log')) ?? '', /older turns? left out to fit the context/);
      await page.context().close();
    });

    await t.test('a file that is not a GGUF: an error on the page', async () => {
      const page = await (await browser.newContext()).newPage();
      await page.goto(isolatedSrv.url + link('bad.gguf'));
      const r = await result(page);
      assert.match(r.error ?? '', /not a GGUF file/);
      assert.ok(await page.isVisible('#error'));
      assert.match((await page.textContent('#error')) ?? '', /bad\.gguf is not a GGUF file/);
      // a tensor type the engine does not run
      await page.goto(isolatedSrv.url + link('iq1.gguf'));
      const u = await result(page);
      assert.match(u.error ?? '', /blk\.0\.attn_q\.weight.*type/);
      assert.ok(await page.isVisible('#error'));
      // a missing file too
      await page.goto(isolatedSrv.url + link('missing.gguf'));
      const m = await result(page);
      assert.match(m.error ?? '', /HTTP 404/);
      assert.ok(await page.isVisible('#error'));
      await page.context().close();
    });
  } finally {
    await browser.close();
    await isolatedSrv.close();
    await plainSrv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
