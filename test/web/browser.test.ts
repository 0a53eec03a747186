// The engine core in a real browser (Debian's Chromium driven by playwright-core): the built
// modules are served as they are (ESM, an import map for @huggingface/jinja), a page builds the demo
// model, loads it and decodes greedily. Both browser paths must give Node's tokens: a plain page
// (no cross-origin isolation: unshared memory, one thread) and an isolated one (shared memory,
// Web Workers). Needs `npm run build` and /usr/bin/chromium (.ci/run installs it); without a
// browser the test is skipped with a message saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/engine.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { launchChromium, NO_BROWSER, REPO_ROOT, serveTestPage } from '../helpers/browser.js';
const root = REPO_ROOT;
const PROMPT = [263, 72, 105, 32, 116];

function page(threads: number): string {
  return `<!doctype html><script type="importmap">{"imports":{"@huggingface/jinja":"/node_modules/@huggingface/jinja/dist/index.js"}}</script>
<script type="module">
import { loadModel, buildSyntheticModel, DEMO_MODEL_SPEC } from '/dist/src/index.js';
try {
  const lm = await loadModel(buildSyntheticModel(DEMO_MODEL_SPEC), { threads: ${threads} });
  const r = await lm.createSession({ ctxSize: 64 }).complete(${JSON.stringify(PROMPT)}, { maxTokens: 8, sampler: { temperature: 0 } });
  window.result = { tokens: r.tokens, kernels: lm.kernels.name, threads: lm.kernels.threads, isolated: self.crossOriginIsolated };
  lm.dispose();
} catch (e) { window.result = { error: String(e && e.stack || e) }; }
</script>`;
}

test('the engine runs in Chromium and decodes the same tokens as in Node', async (t) => {
  assert.ok(existsSync(join(root, 'dist/src/index.js')), 'dist is not built: run `npm run build` first');
  const browser = await launchChromium();
  if (!browser) return t.skip(NO_BROWSER);
  const lm = await loadModel(buildSyntheticModel(DEMO_MODEL_SPEC), { threads: 1 });
  const expected = (await lm.createSession({ ctxSize: 64 }).complete(PROMPT, { maxTokens: 8, sampler: { temperature: 0 } })).tokens;
  lm.dispose();
  try {
    for (const [isolated, threads] of [[false, 1], [true, 2]] as const) {
      const { server, url } = await serveTestPage(page(threads), isolated);
      try {
        const p = await browser.newPage();
        await p.goto(url);
        const handle = await p.waitForFunction(() => (window as unknown as { result?: unknown }).result, null, { timeout: 60_000 });
        const r = (await handle.jsonValue()) as { tokens?: number[]; threads?: number; isolated?: boolean; error?: string };
        assert.equal(r.error, undefined, `page error: ${r.error}`);
        assert.equal(r.isolated, isolated);
        assert.equal(r.threads, threads, isolated ? 'an isolated page runs the worker pool' : 'a plain page runs on its own thread');
        assert.deepEqual(r.tokens, expected);
        await p.close();
      } finally {
        server.close();
      }
    }
  } finally {
    await browser.close();
  }
});
