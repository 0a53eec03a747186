// The static server behind `wf web`: the browser app (dist/web/) at /, a folder of models at
// /models/, with the headers that make the page cross-origin isolated (COOP/COEP: shared memory,
// so the kernels can run on Web Workers). Files are streamed from disk (models of many GB), HEAD
// and single byte ranges are answered, and nothing outside the mounted folders is reachable: only regular files whose real path (symlinks
// followed) is inside the folder's real path are served.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WebServerOptions {
  port?: number;
  host?: string;
  /** folder served at /models/ */
  models?: string;
  /** send COOP/COEP (default true); false serves the one-thread page */
  isolate?: boolean;
  /** the app's folder (default: dist/web beside this module) */
  app?: string;
  /** more folders by URL prefix, e.g. {'/wllama/': dir} (benchmarks) */
  mounts?: Record<string, string>;
  /** handlers for exact paths, tried before the folders (model-listing.ts: /models.json, /models/) */
  routes?: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>>;
}

export interface WebServer {
  url: string;
  /** GET requests answered per path (tests: was the model downloaded again?) */
  hits: Map<string, number>;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
};

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function defaultAppDir(): string {
  return fileURLToPath(new URL('../../web/', import.meta.url));
}

/** The file under `dir` that `rel` (already URL-decoded) names, or undefined if it would leave it. */
function inside(dir: string, rel: string): string | undefined {
  const base = resolve(dir);
  const file = resolve(base, '.' + sep + rel);
  return file === base || file.startsWith(base + sep) ? file : undefined;
}

/**
 * The real path of `file` when it is inside the real path of `dir`, else undefined: a symlink in a served
 * folder that leads out of it (DIR/etc -> /etc) serves nothing.
 */
async function realInside(dir: string, file: string): Promise<string | undefined> {
  try {
    const [base, real] = await Promise.all([realpath(dir), realpath(file)]);
    return real === base || real.startsWith(base + sep) ? real : undefined;
  } catch {
    return undefined;
  }
}

async function sendFile(req: IncomingMessage, res: ServerResponse, dir: string, path: string, headers: Record<string, string>): Promise<boolean> {
  const file = await realInside(dir, path);
  if (file === undefined) return false;
  let st;
  try {
    st = await stat(file);
  } catch {
    return false;
  }
  if (!st.isFile()) return false;
  const h: Record<string, string | number> = {
    ...headers,
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-cache',
  };
  let start = 0;
  let end = st.size - 1;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (range && (range[1] || range[2])) {
    if (range[1]) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
    } else {
      start = Math.max(0, st.size - Number(range[2]));
    }
    if (start > end) {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${st.size}` });
      res.end();
      return true;
    }
    h['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
  }
  h['Content-Length'] = end - start + 1;
  res.writeHead(range && (range[1] || range[2]) ? 206 : 200, h);
  if (req.method === 'HEAD' || st.size === 0) {
    res.end();
    return true;
  }
  const stream = createReadStream(file, { start, end });
  stream.on('error', () => res.destroy());
  stream.pipe(res);
  return true;
}

export function startWebServer(opts: WebServerOptions = {}): Promise<WebServer> {
  const headers: Record<string, string> = opts.isolate === false ? {} : { ...ISOLATION_HEADERS };
  const mounts: [string, string][] = Object.entries(opts.mounts ?? {});
  if (opts.models) mounts.push(['/models/', opts.models]);
  mounts.push(['/', opts.app ?? defaultAppDir()]);
  const hits = new Map<string, number>();
  const server = createServer(async (req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' });
        res.end();
        return;
      }
      let path = new URL(req.url ?? '/', 'http://x').pathname;
      try {
        path = decodeURIComponent(path);
      } catch {
        res.writeHead(400);
        res.end('bad path');
        return;
      }
      if (path === '/') path = '/index.html';
      if (req.method === 'GET') hits.set(path, (hits.get(path) ?? 0) + 1);
      const route = opts.routes?.[path];
      if (route) return await route(req, res);
      for (const [prefix, dir] of mounts) {
        if (!path.startsWith(prefix)) continue;
        const file = inside(dir, path.slice(prefix.length));
        if (file && (await sendFile(req, res, dir, file, headers))) return;
        break;
      }
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`not found: ${path}\n`);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(String((e as Error).message));
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
      resolvePromise({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
        hits,
        close: () => new Promise<void>((r) => {
          server.closeAllConnections?.();
          server.close(() => r());
        }),
      });
    });
  });
}

