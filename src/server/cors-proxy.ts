// llama-server's CORS proxy for its web UI's MCP client: GET or POST /cors-proxy?url=TARGET sends
// the request on to TARGET from the server and streams the answer back, so a page can talk to an
// MCP server that sends no CORS headers. It lets whoever can call this server make it fetch any
// URL it can reach (server-side request forgery), so:
//   - it is off unless started with --ui-mcp-proxy; off, /cors-proxy answers 403 (feature_disabled),
//     as llama-server does;
//   - behind --api-key it needs the key like every API route, and the key is never sent on;
//   - only headers the page names explicitly go out: `x-llama-server-proxy-header-NAME: value`
//     becomes `NAME: value`; the caller's own Authorization, Cookie, x-api-key... stay here
//     (hop-by-hop ones, Host and Content-Length are set by the proxy itself);
//   - the target must be http or https with a host and no credentials in it; redirects are
//     followed (at most MAX_REDIRECTS, to http or https only);
//   - bounded: --cors-proxy-timeout seconds to connect or between two pieces of the answer
//     (504 before the answer began), --cors-proxy-max-mb of answer body (a 502 when the answer's
//     Content-Length says more; a streamed answer that grows past it has its connection cut, so
//     the client sees a broken answer, never a silently shortened one);
//   - the answer's CORS headers are this server's (the target's are dropped), and a Set-Cookie of
//     the target is dropped: it would land on this server's origin.
// A target that cannot be reached is a 502 naming it and the reason.
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ApiError, invalidParam, missingParam } from './errors.js';
import { readBody, type Ctx, type Handler, type Method } from './http.js';

export interface CorsProxyOptions {
  /** ms the target may take to connect or between two pieces of its answer (default 600 s, as llama-server) */
  timeoutMs?: number;
  /** most bytes of one answer's body (default 64 MiB) */
  maxBytes?: number;
}

export const DEFAULT_PROXY_TIMEOUT_S = 600;
export const DEFAULT_PROXY_MAX_MB = 64;
const MAX_REDIRECTS = 5;
/** the prefix of the request headers that are sent on, without it */
export const PROXY_HEADER_PREFIX = 'x-llama-server-proxy-header-';

/** Headers the proxy sets or that describe one hop, never copied from the caller. */
const OWN_REQUEST_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection', 'accept-encoding']);
/** Answer headers not passed back: one hop's, this server's CORS, and cookies for another site. */
const DROPPED_ANSWER_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'server', 'set-cookie', 'set-cookie2', 'trailer', 'upgrade']);

/** The target URL of a /cors-proxy request, checked; a 400 naming the problem otherwise. */
export function proxyTarget(raw: string | null): URL {
  if (raw === null || raw === '') throw missingParam('url');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalidParam('url', `'url' is not a valid URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidParam('url', `'url' must be http or https, got ${u.protocol.slice(0, -1)}`);
  if (u.hostname === '') throw invalidParam('url', "'url' has no host");
  if (u.username !== '' || u.password !== '') throw invalidParam('url', "'url' must not carry credentials (user:password@): send them as an explicit proxy header");
  return u;
}

/** The headers sent on: only x-llama-server-proxy-header-NAME ones, as NAME. */
export function forwardedHeaders(headers: IncomingMessage['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [key, value] of Object.entries(headers)) {
    const k = key.toLowerCase();
    if (!k.startsWith(PROXY_HEADER_PREFIX) || value === undefined) continue;
    const name = k.slice(PROXY_HEADER_PREFIX.length);
    if (name === '' || OWN_REQUEST_HEADERS.has(name)) continue;
    out[name] = value;
  }
  return out;
}

interface Answer {
  res: IncomingMessage;
  url: URL;
}

/** One request to `url`, following redirects; resolves with the answer's head. */
function send(url: URL, method: string, headers: OutgoingHttpHeaders, body: Buffer | undefined, timeoutMs: number, signal: AbortSignal, hops = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const h: OutgoingHttpHeaders = { ...headers };
    if (body && body.length > 0) h['content-length'] = body.length;
    const req = request(url, { method, headers: h, signal });
    req.setTimeout(timeoutMs, () => req.destroy(new ApiError(504, `the proxy target ${url.origin} did not answer within ${timeoutMs / 1000} s`, 'server_error', null, 'proxy_timeout')));
    req.on('error', (e) => reject(e));
    req.on('response', (res) => {
      const status = res.statusCode ?? 502;
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location) {
        res.resume();
        if (hops >= MAX_REDIRECTS) return reject(new ApiError(502, `the proxy target redirected more than ${MAX_REDIRECTS} times`, 'server_error', null, 'proxy_error'));
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return reject(new ApiError(502, `the proxy target redirected to an invalid URL`, 'server_error', null, 'proxy_error'));
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return reject(new ApiError(502, `the proxy target redirected to a ${next.protocol.slice(0, -1)} URL (http or https only)`, 'server_error', null, 'proxy_error'));
        }
        // 303 (and 301/302 after a POST, as browsers do) go on as a GET without the body
        const keep = status === 307 || status === 308 || method === 'GET';
        send(next, keep ? method : 'GET', headers, keep ? body : undefined, timeoutMs, signal, hops + 1).then(resolve, reject);
        return;
      }
      // the answer's body may take long between pieces too
      res.setTimeout?.(timeoutMs, () => res.destroy(new Error(`the proxy target sent nothing for ${timeoutMs / 1000} s`)));
      resolve({ res, url });
    });
    req.end(body && body.length > 0 ? body : undefined);
  });
}

/** Streams a proxied request's answer to ctx.res (status, headers, body within maxBytes). */
async function proxy(ctx: Ctx, method: 'GET' | 'POST', opts: Required<CorsProxyOptions>, maxBody: number): Promise<void> {
  const target = proxyTarget(new URL(ctx.req.url ?? '/', 'http://localhost').searchParams.get('url'));
  const body = method === 'POST' ? await readBody(ctx.req, maxBody) : undefined;
  let answer: Answer;
  try {
    answer = await send(target, method, forwardedHeaders(ctx.req.headers), body, opts.timeoutMs, ctx.signal);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    if (ctx.signal.aborted) return; // the client left
    const err = e as NodeJS.ErrnoException;
    throw new ApiError(502, `cannot reach the proxy target ${target.origin}: ${err.code ?? err.message}`, 'server_error', null, 'proxy_error');
  }
  const { res } = ctx;
  const up = answer.res;
  const length = Number(up.headers['content-length']);
  if (Number.isFinite(length) && length > opts.maxBytes) {
    up.destroy();
    throw new ApiError(502, `the proxy target's answer has ${length} bytes, over the proxy's bound of ${opts.maxBytes} (--cors-proxy-max-mb)`, 'server_error', null, 'proxy_answer_too_large');
  }
  ctx.note = ` | -> ${answer.url.origin} ${up.statusCode}`;
  for (const [k, v] of Object.entries(up.headers)) {
    const key = k.toLowerCase();
    if (v === undefined || DROPPED_ANSWER_HEADERS.has(key) || key.startsWith('access-control-')) continue;
    res.setHeader(k, v);
  }
  res.writeHead(up.statusCode ?? 502);
  let bytes = 0;
  await new Promise<void>((resolve) => {
    let ended = false;
    const cut = () => {
      if (ended) return;
      ended = true;
      up.destroy();
      res.destroy();
      resolve();
    };
    up.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > opts.maxBytes) return cut();
      if (!res.write(chunk)) {
        up.pause();
        res.once('drain', () => up.resume());
      }
    });
    up.on('end', () => {
      if (ended) return;
      ended = true;
      res.end();
      resolve();
    });
    up.on('error', cut);
    // the target's connection went away without an end (a reset): the answer is broken, say so by cutting ours
    up.on('close', () => {
      if (!up.complete) cut();
    });
    res.on('close', () => {
      if (!res.writableFinished) cut();
    });
  });
  if (bytes > opts.maxBytes) ctx.note += ` | cut after ${opts.maxBytes} bytes (--cors-proxy-max-mb)`;
}

/**
 * GET and POST /cors-proxy: the proxy with `opts`, or (undefined) llama-server's 403 for a server
 * started without --ui-mcp-proxy.
 */
export function registerCorsProxy(route: (paths: string[], method: Method, h: Handler) => void, maxBody: number, opts: CorsProxyOptions | undefined): void {
  if (!opts) {
    const off: Handler = () => {
      throw new ApiError(403, 'the CORS proxy is turned off on this server (start it with --ui-mcp-proxy)', 'feature_disabled', null, 'feature_disabled');
    };
    route(['/cors-proxy'], 'GET', off);
    route(['/cors-proxy'], 'POST', off);
    return;
  }
  const o: Required<CorsProxyOptions> = {
    timeoutMs: opts.timeoutMs ?? DEFAULT_PROXY_TIMEOUT_S * 1000,
    maxBytes: opts.maxBytes ?? DEFAULT_PROXY_MAX_MB * 2 ** 20,
  };
  route(['/cors-proxy'], 'GET', (c) => proxy(c, 'GET', o, maxBody));
  route(['/cors-proxy'], 'POST', (c) => proxy(c, 'POST', o, maxBody));
}
