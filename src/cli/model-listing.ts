// What `wf web` tells the page about the models it serves: the built-in demo model (mounted at
// /demo/) and the .gguf files of --models DIR (at /models/), listed as JSON at /models.json for
// the app's "Models on this server" panel, and as a plain HTML page at /models/ for a person
// who opens that URL.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface ListedModel {
  name: string;
  /** the URL path the page loads it from */
  url: string;
  size: number;
  /** the built-in demo model */
  demo: boolean;
}

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** The demo model first, then DIR's .gguf files (sorted by name; folders and other files left out). */
export async function listModels(dir: string | undefined, demoFile: string | undefined): Promise<ListedModel[]> {
  const out: ListedModel[] = [];
  if (demoFile) {
    const st = await stat(demoFile).catch(() => undefined);
    if (st?.isFile()) out.push({ name: basename(demoFile), url: `/demo/${encodeURIComponent(basename(demoFile))}`, size: st.size, demo: true });
  }
  if (dir) {
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.toLowerCase().endsWith('.gguf')).sort();
    for (const name of names) {
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile()) out.push({ name, url: `/models/${encodeURIComponent(name)}`, size: st.size, demo: false });
    }
  }
  return out;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function listingHtml(models: ListedModel[]): string {
  const items = models
    .map((m) => {
      const open = `/?model=${encodeURIComponent(m.url)}`;
      return `<li><a href="${escapeHtml(open)}">${escapeHtml(m.name)}</a> (${(m.size / 1e6).toFixed(1)} MB${m.demo ? ', the built-in demo' : ''}) · <a href="${escapeHtml(m.url)}">download</a></li>`;
    })
    .join('\n');
  return `<!doctype html><meta charset="utf-8"><title>Models</title><h1>Models on this server</h1><ul>\n${items || '<li>none</li>'}\n</ul><p><a href="/">the app</a></p>\n`;
}

/**
 * The routes and mounts that serve the model list, for startWebServer: /models.json, /models/
 * (HTML), and the demo model's folder at /demo/.
 */
export function modelRoutes(dir: string | undefined, demoFile: string | undefined, headers: Record<string, string> = {}): { routes: Record<string, Route>; mounts: Record<string, string> } {
  const send = (res: ServerResponse, type: string, body: string, head: boolean) => {
    res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
    res.end(head ? undefined : body);
  };
  const routes: Record<string, Route> = {
    '/models.json': async (req, res) => send(res, 'application/json', JSON.stringify({ models: await listModels(dir, demoFile) }), req.method === 'HEAD'),
    '/models/': async (req, res) => send(res, 'text/html; charset=utf-8', listingHtml(await listModels(dir, demoFile)), req.method === 'HEAD'),
  };
  return { routes, mounts: demoFile ? { '/demo/': dirname(demoFile) } : {} };
}
