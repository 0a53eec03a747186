// The shared chat UI (wf_server's page, dist/web/chat.html) in Chromium against a scripted
// stand-in for the server, so each defect can be staged exactly: a reply that streams until it is
// cut, a context of a known size, requests recorded as sent.
//   - Clear during a streaming reply must not leak the cut-off reply into the next conversation;
//   - long unbroken text stays inside its bubble at phone width;
//   - Enter while an IME composition is open does not send;
//   - once the context is full, old turns are dropped so new messages still get replies.
// Needs `npm run build` (dist/web/chat.html) and Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { defaultAppDir } from '../../src/cli/web-server.js';
import { firstTurnToKeep, replyReserve } from '../../src/web/chat/fit.js';
import { launchChromium, NO_BROWSER } from '../helpers/browser.js';

const CTX = 100; // the stand-in's context, in its tokens (4 characters each)
interface Msg {
  role: string;
  content: string;
}
const tokensOf = (messages: Msg[]) => messages.reduce((a, m) => a + Math.ceil(m.content.length / 4) + 2, 0);

function standIn(html: string) {
  const requests: { messages: Msg[]; max_tokens?: number }[] = [];
  let slow = false;
  const sse = (res: ServerResponse, obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(html);
    } else if (req.url === '/v1/models') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ data: [{ id: 'stand-in', meta: { n_ctx_slot: CTX, kernels: 'none', threads: 1 } }] }));
    } else if (req.url === '/v1/chat/completions') {
      let body = '';
      for await (const c of req) body += c;
      const r = JSON.parse(body);
      requests.push(r);
      const n = tokensOf(r.messages);
      if (n >= CTX) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `prompt has ${n} tokens, context ${CTX}`, code: 'context_length_exceeded' } }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const chunk = (content: string, finish: string | null = null) => sse(res, { choices: [{ index: 0, delta: { content }, finish_reason: finish }] });
      if (slow) {
        // streams until the page hangs up
        for (let i = 0; i < 400 && !res.destroyed; i++) {
          chunk('part ');
          await new Promise((ok) => setTimeout(ok, 25));
        }
        res.end();
        return;
      }
      // a long question gets a long unbroken answer (the overflow test), others a short one
      const long = r.messages.at(-1).content.length > 250;
      chunk(long ? 'y'.repeat(150) : 'ok ');
      chunk(long ? 'y'.repeat(150) : 'fine', 'stop');
      sse(res, { choices: [], usage: { prompt_tokens: n, completion_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } }, timings: { predicted_per_second: 10 } });
      res.end('data: [DONE]\n\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return {
    requests,
    setSlow: (on: boolean) => (slow = on),
    start: () => new Promise<string>((ok) => server.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(server.address() as { port: number }).port}/`))),
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

async function sendAndWait(page: Page, text: string, statsBefore: number): Promise<void> {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#log .stats, #log .error').length > n, statsBefore, { timeout: 10_000 });
}

test('fit: drops whole exchanges from the front, keeps the newest user turn', () => {
  const turns = [
    { role: 'user' as const, content: 'a', tokens: 40 },
    { role: 'assistant' as const, content: 'b', tokens: 40 },
    { role: 'user' as const, content: 'c', tokens: 40 },
    { role: 'assistant' as const, content: 'd', tokens: 40 },
    { role: 'user' as const, content: 'e', tokens: 40 },
  ];
  assert.equal(firstTurnToKeep(turns, 1000, 100), 0);
  assert.equal(firstTurnToKeep(turns, 200, 50), 2); // 200 > 150: drop a+b, 120 fits
  assert.equal(firstTurnToKeep(turns, 100, 50), 4); // only the newest user turn is left
  assert.equal(firstTurnToKeep(turns, 10, 5), 4); // even when it alone does not fit
  assert.equal(replyReserve(100, 256), 50);
  assert.equal(replyReserve(100, 10), 10);
  assert.equal(replyReserve(100, undefined), 50);
});

test('chat UI defects, in Chromium against a stand-in server', async (t) => {
  const browser = await launchChromium();
  if (!browser) return t.skip(NO_BROWSER);
  const fake = standIn(readFileSync(join(defaultAppDir(), 'chat.html'), 'utf8'));
  const url = await fake.start();
  try {
    await t.test('Clear during a streaming reply starts a clean conversation', async () => {
      const page = await browser.newPage();
      await page.goto(url);
      fake.setSlow(true);
      await page.fill('#input', 'first question');
      await page.click('#send');
      await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('part part'));
      await page.click('#clear');
      fake.setSlow(false);
      await page.waitForTimeout(200); // the cut stream ends in the page after Clear
      assert.equal(await page.textContent('#log'), '', 'nothing of the old reply shows after Clear');
      await sendAndWait(page, 'second question', 0);
      const last = fake.requests.at(-1)!;
      assert.deepEqual(last.messages, [{ role: 'user', content: 'second question' }], 'the new conversation holds only its own turn');
      assert.doesNotMatch((await page.textContent('#log')) ?? '', /part|stopped/);
      await page.close();
    });

    await t.test('long unbroken text stays inside its bubble at phone width', async () => {
      const page = await browser.newPage({ viewport: { width: 360, height: 640 } });
      await page.goto(url);
      await sendAndWait(page, 'x'.repeat(300), 0);
      const fits = await page.evaluate(() => {
        const w = window.innerWidth;
        const out: string[] = [];
        for (const el of Array.from(document.querySelectorAll<HTMLElement>('.msg, .stats'))) {
          const r = el.getBoundingClientRect();
          if (r.left < -0.5 || r.right > w + 0.5 || el.scrollWidth > el.clientWidth + 1) out.push(`${el.className}: left ${r.left}, right ${r.right}, scroll ${el.scrollWidth} > ${el.clientWidth}`);
        }
        if (document.documentElement.scrollWidth > w) out.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${w}`);
        return out;
      });
      assert.deepEqual(fits, []);
      await page.close();
    });

    await t.test('Enter during IME composition does not send', async () => {
      const page = await browser.newPage();
      await page.goto(url);
      const before = fake.requests.length;
      await page.fill('#input', 'にほん');
      await page.dispatchEvent('#input', 'keydown', { key: 'Enter', code: 'Enter', isComposing: true, bubbles: true, cancelable: true });
      await page.dispatchEvent('#input', 'keydown', { key: 'Enter', code: 'Enter', keyCode: 229, bubbles: true, cancelable: true });
      await page.waitForTimeout(300);
      assert.equal(fake.requests.length, before, 'no request while composing');
      assert.equal(await page.inputValue('#input'), 'にほん', 'the text stays in the box');
      await page.press('#input', 'Enter'); // composition over: Enter sends
      await page.waitForFunction(() => document.querySelectorAll('#log .stats').length > 0);
      assert.equal(fake.requests.length, before + 1);
      await page.close();
    });

    await t.test('a full context drops the oldest turns instead of failing', async () => {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(() => document.querySelector('#model')?.textContent?.includes('ctx 100'));
      await page.click('summary');
      await page.fill('#maxTokens', '10');
      const before = fake.requests.length;
      for (let i = 0; i < 8; i++) await sendAndWait(page, `message ${i} ` + 'words '.repeat(20), i);
      const log = (await page.textContent('#log')) ?? '';
      assert.doesNotMatch(log, /Error/, 'every message got a reply');
      assert.equal(await page.locator('#log .stats').count(), 8);
      assert.match(log, /older turns? left out to fit the context/);
      const sent = fake.requests.slice(before);
      for (const r of sent) assert.ok(tokensOf(r.messages) + 10 <= CTX, `a request leaves room for the reply (${tokensOf(r.messages)} tokens)`);
      assert.match(sent.at(-1)!.messages.at(-1)!.content, /^message 7 /);
      assert.ok(sent.at(-1)!.messages.length < 15, 'old turns were left out');
      await page.close();
    });
  } finally {
    await browser.close();
    await fake.close();
  }
});
