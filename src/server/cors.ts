// Which web pages may call the API (CORS), and the headers that say so.
//
// Default (no --cors-origins): any origin, as llama-server: a request's Origin is echoed back with
// Access-Control-Allow-Credentials, and a request without one gets `*`. With --cors-origins LIST
// (comma-separated) only those origins get CORS headers; `localhost` stands for any port of
// http(s)://localhost, 127.0.0.1 and [::1]; `*` for any origin. A preflight (OPTIONS) is answered
// 200 with the methods served and the request headers it asks for (llama-server answers `*`, which
// browsers do not apply to Authorization, so the openai JS SDK's key header would be refused).

/** null: any origin. */
export type CorsOrigins = readonly string[] | null;

/** Parses --cors-origins: a comma-separated list; `*` alone means any origin (null). */
export function parseCorsOrigins(arg: string): CorsOrigins {
  const list = arg.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new Error('--cors-origins is empty');
  if (list.includes('*')) return null;
  for (const o of list) {
    if (o !== 'localhost' && !/^https?:\/\/[^/\s]+$/.test(o)) {
      throw new Error(`--cors-origins entry '${o}' is not an origin (scheme://host[:port]), 'localhost' or '*'`);
    }
  }
  return list.map((o) => (o === 'localhost' ? o : o.toLowerCase()));
}

const LOCAL = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

export function originAllowed(origin: string, allowed: CorsOrigins): boolean {
  if (allowed === null) return true;
  const o = origin.toLowerCase();
  return allowed.some((a) => (a === 'localhost' ? LOCAL.test(o) : a === o));
}

/** The CORS headers of any response to a request with this Origin header (none when it is not allowed). */
export function corsHeaders(origin: string | undefined, allowed: CorsOrigins): Record<string, string> {
  if (origin === undefined || origin === '') return allowed === null ? { 'Access-Control-Allow-Origin': '*' } : {};
  if (!originAllowed(origin, allowed)) return {};
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' };
}

/** The extra headers of a preflight's answer: methods, and the request headers it asks for. */
export function preflightHeaders(askedHeaders: string | string[] | undefined): Record<string, string> {
  const list = (Array.isArray(askedHeaders) ? askedHeaders.join(',') : askedHeaders ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(h));
  const allow = new Set(['Authorization', 'Content-Type', ...list]);
  return {
    'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': [...allow].join(', '),
    'Access-Control-Max-Age': '86400',
    Vary: 'Origin, Access-Control-Request-Headers',
  };
}
