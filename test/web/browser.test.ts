// The engine core in a real browser (Debian's Chromium driven by playwright-core): the built
// modules are served as they are (ESM, an import map for @huggingface/jinja), a page builds the demo
// model, loads it and decodes greedily. Both browser paths must give Node's tokens: a plain page
// (no cross-origin isolation: unshared memory, one thread) and an isolated one (shared memory,
// Web Workers). Needs `npm run build` and /usr/bin/chromium (.ci/run installs it); without a
// browser the test is skipped with a message saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/engine.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { launchChromium, NO_BROWSER } from '../helpers/browser.js';
const root = fileURLToPath(new URL('../../' + (import.meta.url.includes('/dist/') ? '../' : ''), import.meta.url));
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

/** Serves the repository read-only (dist/ and node_modules/), with COOP/COEP when isolated. */
function serve(isolated: boolean, threads: number): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = { '.js': 'text/javascript', '.map': 'application/json' };
  const headers: Record<string, string> = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html', ...headers });
      res.end(page(threads));
      return;
    }
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || !/^\/(dist|node_modules)\//.test(path)) {
      res.writeHead(404);
      res.end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', ...headers });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/` });
  }));
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
      const { server, url } = await serve(isolated, threads);
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
