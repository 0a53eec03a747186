// The browser app on WebGPU: in headless Chromium with SwiftShader's WebGPU adapter the app runs the
// model on the GPU by default, says so, and decodes the tokens Node's CPU path decodes;
// ?device=cpu forces the CPU; a browser without a GPU (--disable-gpu) falls back to the CPU and
// says why, and ?device=webgpu there fails on the page naming what is missing. window.wfResult
// names the device. Needs `npm run build` and Chromium (skipped, saying so, without one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { loadModel } from '../../src/engine.js';
import { buildSyntheticModel, DEMO_MODEL_SPEC } from '../../src/model/synthetic.js';
import { defaultAppDir, startWebServer } from '../../src/cli/web-server.js';
import { launchChromium, NO_BROWSER, WEBGPU_SWIFTSHADER } from '../helpers/browser.js';

const PROMPT = 'Hello from the GPU';
const N = 8;

interface WfResult { tokens?: number[]; device?: string; deviceNote?: string; error?: string }

async function result(page: Page): Promise<WfResult> {
  const h = await page.waitForFunction(() => (window as unknown as { wfResult?: unknown }).wfResult, null, { timeout: 120_000 });
  return (await h.jsonValue()) as WfResult;
}

const link = (extra = '') => `?model=${encodeURIComponent('/models/demo.gguf')}&prompt=${encodeURIComponent(PROMPT)}&n=${N}&temp=0${extra}`;

test('browser app: WebGPU when the page has an adapter, the CPU when asked or when it has none, saying which', async (t) => {
  assert.ok(existsSync(join(defaultAppDir(), 'app.js')), 'dist/web is not built: run `npm run build` first');
  const gpuBrowser: Browser | undefined = await launchChromium(WEBGPU_SWIFTSHADER);
  if (!gpuBrowser) return t.skip(NO_BROWSER);
  const plainBrowser = (await launchChromium())!;
  const dir = mkdtempSync(join(tmpdir(), 'wf-webgpu-'));
  const model = buildSyntheticModel(DEMO_MODEL_SPEC);
  writeFileSync(join(dir, 'demo.gguf'), model);
  const lm = await loadModel(model, { threads: 1 });
  const expected = (await lm.createSession().complete(PROMPT, { maxTokens: N, sampler: { temperature: 0 } })).tokens;
  lm.dispose();
  const srv = await startWebServer({ port: 0, models: dir });
  try {
    await t.test('an adapter: WebGPU by default, the CPU with ?device=cpu', async (tt) => {
      const page = await (await gpuBrowser.newContext()).newPage();
      await page.goto(srv.url + link());
      const r = await result(page);
      if (r.device === 'cpu' && /WebGPU has no usable adapter|no WebGPU/.test(r.deviceNote ?? '')) return tt.skip(`Chromium gave no WebGPU adapter: ${r.deviceNote}`);
      assert.equal(r.error, undefined, `page error: ${r.error}`);
      assert.equal(r.device, 'webgpu');
      assert.match(r.deviceNote ?? '', /^WebGPU: \S/);
      assert.match((await page.textContent('#status')) ?? '', /WebGPU: /, 'the page says it runs on WebGPU');
      assert.deepEqual(r.tokens, expected, 'the GPU decodes the CPU\'s greedy tokens');
      const cpu = await (await gpuBrowser.newContext()).newPage();
      await cpu.goto(srv.url + link('&device=cpu'));
      const rc = await result(cpu);
      assert.equal(rc.error, undefined, `page error: ${rc.error}`);
      assert.equal(rc.device, 'cpu');
      assert.match(rc.deviceNote ?? '', /chosen/);
      assert.deepEqual(rc.tokens, expected);
    });
    await t.test('no GPU: the CPU, saying why; ?device=webgpu fails naming what is missing', async () => {
      const page = await (await plainBrowser.newContext()).newPage();
      await page.goto(srv.url + link());
      const r = await result(page);
      assert.equal(r.error, undefined, `page error: ${r.error}`);
      assert.equal(r.device, 'cpu');
      assert.match(r.deviceNote ?? '', /(no WebGPU in this browser|WebGPU has no usable adapter here).*running on the CPU/);
      assert.match((await page.textContent('#status')) ?? '', /running on the CPU/);
      assert.deepEqual(r.tokens, expected);
      const forced = await (await plainBrowser.newContext()).newPage();
      await forced.goto(srv.url + link('&device=webgpu'));
      const rf = await result(forced);
      assert.match(rf.error ?? '', /WebGPU|adapter/);
      const bad = await (await plainBrowser.newContext()).newPage();
      await bad.goto(srv.url + link('&device=tpu'));
      assert.match((await result(bad)).error ?? '', /device=tpu must be auto, cpu or webgpu/);
    });
  } finally {
    await srv.close();
    await gpuBrowser.close();
    await plainBrowser.close();
  }
});
