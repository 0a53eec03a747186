// Debian's Chromium driven by playwright-core, for the browser tests. Returns undefined when no
// browser is installed (the caller skips, saying so); .ci/run installs one.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env.WF_CHROMIUM ?? '/usr/bin/chromium';

/** `gpu`: flags that give the page a GPU (WEBGPU_SWIFTSHADER) instead of --disable-gpu */
export async function launchChromium(gpu?: readonly string[]): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) return undefined;
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    // no background traffic: this machine's network is closed
    args: ['--no-sandbox', ...(gpu ?? ['--disable-gpu']), '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** WebGPU on SwiftShader (the CPU Vulkan driver Debian's Chromium ships): navigator.gpu with an adapter on localhost. */
export const WEBGPU_SWIFTSHADER = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader'];

export const NO_BROWSER = `no browser at ${CHROMIUM} (apt-get install chromium, or set WF_CHROMIUM)`;

/** The repository's root folder (the tests run from src/ through tsx or compiled from dist/). */
export const REPO_ROOT = fileURLToPath(new URL('../../' + (import.meta.url.includes('/dist/') ? '../' : ''), import.meta.url));

/**
 * Serves `html` at / and the repository read-only under /dist/ and /node_modules/ on a free
 * loopback port, with the COOP/COEP headers when `isolated` (so the page may share memory).
 */
export function serveTestPage(html: string, isolated = false): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = { '.js': 'text/javascript', '.map': 'application/json' };
  const headers: Record<string, string> = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html', ...headers });
      res.end(html);
      return;
    }
    const file = normalize(join(REPO_ROOT, path));
    if (!file.startsWith(REPO_ROOT) || !/^\/(dist|node_modules)\//.test(path)) {
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
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/` });
    }),
  );
}
