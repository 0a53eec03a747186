// The browser app (dist/web/index.html): choose a GGUF (file picker, drag and drop, URL, or a
// cached download), load it into the engine, which runs in a worker (engine-worker.ts; its kernel
// threads are more Web Workers when the page is cross-origin isolated, else it runs one thread), and
// chat with it through the shared chat UI. The link ?model=URL&prompt=TEXT&n=N&temp=T loads and
// generates on open and publishes window.wfResult = {text, tokens, timings, ...} for scripts and
// tests. The engine comes from the library bundle (./wrinklefree.js), as it would for any web developer.
import { mountChat, type ChatBackend } from '../chat/ui.js';
import { ModelCache } from './cache.js';
import { EngineClient } from './engine-client.js';
import { explainLoadError, fromFile, fromUrl, type ModelBytes } from './loader.js';
import { parseParams } from './params.js';
import type { DeviceChoice } from '../device.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
type Win = typeof globalThis & { wfResult?: unknown };
const win = globalThis as Win;

const isolated = globalThis.crossOriginIsolated === true;
const cores = navigator.hardwareConcurrency || 1;
let current: EngineClient | undefined;
let loading = false;
let cache: ModelCache | undefined;

function showError(msg: string | undefined): void {
  const el = $('error');
  el.textContent = msg ? 'Error: ' + msg : '';
  el.hidden = !msg;
}

function status(msg: string): void {
  $('status').textContent = msg;
}

const mb = (n: number) => (n / 1e6).toFixed(n < 1e7 ? 2 : 0);

function progress(label: string, done: number, total: number | undefined): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = false;
  if (total) {
    bar.max = total;
    bar.value = done;
  } else {
    bar.removeAttribute('value');
  }
  const pct = total ? ` (${((100 * done) / total).toFixed(1)}%)` : '';
  $('progress-text').textContent = `${label}: ${mb(done)}${total ? ' / ' + mb(total) : ''} MB${pct}`;
}

function progressDone(): void {
  $('progress').hidden = true;
  $('progress-text').textContent = '';
}

// the chat talks to whichever model is loaded
const backend: ChatBackend = {
  info: async () => (current ? current.info() : { label: 'no model loaded' }),
  reply: (m, s, sig, on) => {
    if (!current) return Promise.reject(new Error('no model loaded: open a GGUF file or a URL first'));
    return current.reply(m, s, sig, on);
  },
  countTokens: (m) => (current ? current.countTokens(m) : Promise.resolve(0)),
};
const chat = mountChat($('chat'), backend);
chat.setReady(false);

function threadCount(): number {
  if (!isolated) return 1;
  const v = Number($<HTMLInputElement>('threads').value);
  return Number.isInteger(v) && v >= 1 ? v : cores;
}

/** Loads a model from `get` (which fetches or opens its bytes); returns it, or undefined on error. */
async function load(get: () => Promise<ModelBytes>, opts: { threads?: number; ctx?: number } = {}): Promise<{ engine: EngineClient; bytes: ModelBytes; loadMs: number } | undefined> {
  if (loading) return undefined;
  loading = true;
  showError(undefined);
  chat.setReady(false);
  const t0 = performance.now();
  // the working model and its conversation stay until the new model has loaded: a bad URL or file
  // changes nothing but the error line
  const before = $('status').textContent ?? '';
  try {
    const bytes = await get();
    status(`reading ${bytes.name} (${mb(bytes.blob.size)} MB, ${bytes.from === 'cache' ? 'from the cache' : bytes.from === 'network' ? 'downloaded' : 'local file'})…`);
    const threads = opts.threads ?? threadCount();
    const device = $<HTMLSelectElement>('device').value as DeviceChoice;
    const engine = await EngineClient.load(bytes.blob, bytes.name, { threads, ctx: opts.ctx, device }, (done, total) => progress('placing weights', done, total));
    if (current) {
      chat.clear();
      current.dispose();
    }
    current = engine;
    const { kernels, threads: used } = engine.details;
    const loadMs = performance.now() - t0;
    const how = bytes.from === 'cache' ? 'from the cache, no download' : bytes.notCached ? `downloaded, not cached: ${bytes.notCached}` : bytes.from;
    const runs = engine.details.device === 'webgpu' ? engine.details.deviceNote
      : `${kernels} kernels on ${used} thread${used === 1 ? '' : 's'} (${engine.details.deviceNote})`;
    status(`${bytes.name}: loaded in ${(loadMs / 1000).toFixed(1)} s (${how}), ${runs}`);
    await chat.refresh();
    chat.setReady(true);
    return { engine, bytes, loadMs };
  } catch (e) {
    showError(explainLoadError(e));
    status(current ? before : 'no model loaded');
    chat.setReady(current !== undefined);
    return undefined;
  } finally {
    progressDone();
    loading = false;
    void renderCache();
  }
}

const download = (url: string) => () => fromUrl(url, cache, (p) => progress('downloading', p.bytes, p.total));

async function renderCache(): Promise<void> {
  const list = $('cache-list');
  if (!cache) {
    list.textContent = 'No cache here: the Origin Private File System needs a secure context (https or localhost).';
    $<HTMLButtonElement>('cache-clear').disabled = true;
    return;
  }
  const models = await cache.list();
  list.textContent = models.length ? '' : 'empty';
  for (const m of models) {
    const li = document.createElement('li');
    li.textContent = `${m.url} · ${mb(m.size)} MB `;
    const use = document.createElement('button');
    use.textContent = 'load';
    use.className = 'secondary';
    use.onclick = () => void load(download(m.url));
    const del = document.createElement('button');
    del.textContent = 'delete';
    del.className = 'secondary';
    del.onclick = async () => {
      await cache!.remove(m.url);
      await renderCache();
    };
    li.append(use, ' ', del);
    list.appendChild(li);
  }
}

/** The models `wf web` serves (its /models.json: the built-in demo and DIR's .gguf files), one click each; hidden elsewhere. */
async function renderServerModels(): Promise<void> {
  let models: { name: string; url: string; size: number; demo: boolean }[];
  try {
    const res = await fetch('./models.json');
    if (!res.ok) return;
    models = ((await res.json()) as { models: typeof models }).models;
  } catch {
    return; // another static host: no list
  }
  const list = $('server-model-list');
  for (const m of models) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.dataset.url = m.url;
    b.textContent = m.demo ? `Load the demo model (${mb(m.size)} MB)` : `${m.name} (${mb(m.size)} MB)`;
    b.onclick = () => {
      $<HTMLInputElement>('url').value = m.url;
      void load(download(m.url));
    };
    list.appendChild(b);
  }
  $('server-models').hidden = models.length === 0;
}

async function main(): Promise<void> {
  const threadsInput = $<HTMLInputElement>('threads');
  threadsInput.value = String(isolated ? cores : 1);
  threadsInput.max = String(cores);
  if (!isolated) {
    threadsInput.disabled = true;
    $('threads-note').hidden = false;
  }
  cache = await ModelCache.open();
  await Promise.all([renderCache(), renderServerModels()]);
  $('cache-clear').onclick = async () => {
    await cache?.clear();
    await renderCache();
  };
  $<HTMLInputElement>('file').onchange = (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (f) void load(() => fromFile(f));
  };
  $('url-form').onsubmit = (ev) => {
    ev.preventDefault();
    const url = $<HTMLInputElement>('url').value.trim();
    if (url) void load(download(url));
  };
  document.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (ev) => {
    ev.preventDefault();
    document.body.classList.remove('dragging');
    const f = ev.dataTransfer?.files[0];
    if (f) void load(() => fromFile(f));
  });
  status('no model loaded');

  let params;
  try {
    params = parseParams(location.search);
  } catch (e) {
    showError((e as Error).message);
    win.wfResult = { error: (e as Error).message };
    return;
  }
  if (params.device) $<HTMLSelectElement>('device').value = params.device;
  if (!params.model) return;
  $<HTMLInputElement>('url').value = params.model;
  const loaded = await load(download(params.model), { threads: params.threads && isolated ? params.threads : undefined, ctx: params.ctx });
  if (!loaded) {
    win.wfResult = { error: $('error').textContent };
    return;
  }
  const d = loaded.engine.details;
  const base = { source: loaded.bytes.from, notCached: loaded.bytes.notCached, threads: d.threads, kernels: d.kernels, device: d.device, deviceNote: d.deviceNote, isolated, loadMs: loaded.loadMs };
  if (params.prompt === undefined) {
    win.wfResult = { ...base, text: '', tokens: [], timings: null };
    return;
  }
  try {
    const r = await loaded.engine.complete(params.prompt, params.n, params.temp);
    const out = $('result');
    out.hidden = false;
    out.textContent = params.prompt + r.text;
    status(`${$('status').textContent} · generated ${r.tokens.length} tokens at ${r.timings.tokensPerSecond.toFixed(2)} tok/s (prompt ${r.timings.promptTokensPerSecond.toFixed(2)} tok/s)`);
    win.wfResult = { ...base, text: r.text, tokens: r.tokens, timings: r.timings, finishReason: r.finishReason };
  } catch (e) {
    showError(explainLoadError(e));
    win.wfResult = { ...base, error: explainLoadError(e) };
  }
}

main().catch((e) => {
  showError(explainLoadError(e));
  win.wfResult = { error: explainLoadError(e) };
});
