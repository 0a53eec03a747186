// The server's chat page in a real browser: type a message, send it, and watch the streamed reply
// and its statistics arrive from /v1/chat/completions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/engine.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { startServer } from '../../src/server/start.js';
import { launchChromium, NO_BROWSER } from '../helpers/browser.js';

test('chat page: a message sent in Chromium gets a streamed reply with its statistics', async (t) => {
  const browser = await launchChromium();
  if (!browser) return t.skip(NO_BROWSER);
  const lm = await loadModel(buildSyntheticModel(DEMO_MODEL_SPEC), { threads: 1 });
  const srv = await startServer(lm, { id: 'wrinklefree-demo', demo: true, port: 0, quiet: true, ctxSize: 256 });
  try {
    const page = await browser.newPage();
    await page.goto(srv.url.replace(/\/?$/, '/'));
    await page.waitForFunction(() => !document.querySelector('#model')?.textContent?.includes('connecting'));
    assert.match((await page.textContent('#model')) ?? '', /wrinklefree-demo/);
    assert.ok(await page.isVisible('#demo'), 'the demo banner says what the demo model is');
    assert.match((await page.textContent('#demo')) ?? '', /BitNet b1.58 .* King James Bible/);
    await page.click('summary');
    await page.fill('#maxTokens', '6');
    // greedy, so the reply is the same every run (sampled, the demo model may end it at a stop token first)
    await page.fill('#temperature', '0');
    await page.fill('#input', 'Hello from the browser test');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('finish:'), null, { timeout: 30_000 });
    const log = (await page.textContent('#log')) ?? '';
    assert.match(log, /Hello from the browser test/);
    assert.match(log, /6 tokens at [\d.]+ tok\/s · finish: length/);
    await page.close();
  } finally {
    await browser.close();
    await srv.close();
  }
});
