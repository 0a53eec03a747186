// Google Cloud Vertex AI's custom-container protocol, as llama-server speaks it when the environment
// says AIP_MODE=PREDICTION: POST AIP_PREDICT_ROUTE (default /predict) with {instances: [...]}, each
// instance a request body whose "@requestFormat" names the route in camelCase ("chatCompletions" is
// /v1/chat/completions, "completion" /completion, "applyTemplate" /apply-template); the answer is
// {predictions: [the route's answers, in order]}. AIP_HTTP_PORT sets the port (src/cli/wf_server.ts).
// Each instance is served by the server itself over loopback, so it goes through the same checks,
// slots and limits as any request; a streamed instance is refused.
import { ApiError, invalidParam, invalidType, missingParam } from './errors.js';
import { type Ctx, readJson, sendJson } from './http.js';
import type { LlamaRouteHost } from './llama-routes.js';
import { asObject } from './requests.js';

/** The POST routes an instance may name. */
const ROUTES = [
  '/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/messages', '/v1/messages/count_tokens',
  '/completion', '/infill', '/embedding', '/tokenize', '/detokenize', '/apply-template', '/chat/completions/input_tokens',
];

/** llama-server's camelCase alias of a route: "/v1/chat/completions" -> "chatCompletions". */
export function vertexAlias(path: string): string {
  const p = path.replace(/^\/v1(?=\/)/, '').replace(/^\//, '');
  return p.replace(/[/_-]+(.)/g, (_m, c: string) => c.toUpperCase());
}

const BY_ALIAS = new Map<string, string>();
for (const r of ROUTES) if (!BY_ALIAS.has(vertexAlias(r))) BY_ALIAS.set(vertexAlias(r), r);

export function vertexEnabled(env: NodeJS.ProcessEnv): boolean {
  return env.AIP_MODE === 'PREDICTION';
}

export function registerVertexRoute(host: LlamaRouteHost, env: NodeJS.ProcessEnv): void {
  if (!vertexEnabled(env)) return;
  const path = env.AIP_PREDICT_ROUTE || '/predict';
  host.route([path], 'POST', async (c: Ctx) => {
    const b = asObject(await readJson(c, host.maxBody));
    if (b.instances === undefined) throw missingParam('instances');
    if (!Array.isArray(b.instances)) throw invalidType('instances', 'a list of request bodies', b.instances);
    const self = `http://${c.req.socket.localFamily === 'IPv6' ? `[${c.req.socket.localAddress}]` : c.req.socket.localAddress}:${c.req.socket.localPort}`;
    const auth = c.req.headers.authorization;
    const key = c.req.headers['x-api-key'];
    const predictions = await Promise.all(
      b.instances.map(async (inst, i) => {
        const p = `instances[${i}]`;
        if (typeof inst !== 'object' || inst === null || Array.isArray(inst)) throw invalidType(p, 'a request body object', inst);
        const { ['@requestFormat']: fmt, ...body } = inst as Record<string, unknown>;
        const route = typeof fmt === 'string' ? BY_ALIAS.get(fmt) : undefined;
        if (!route) throw invalidParam(`${p}.@requestFormat`, `'${p}.@requestFormat' must name a route: ${[...BY_ALIAS.keys()].join(', ')}`);
        if (body.stream === true) throw invalidParam(`${p}.stream`, 'the predict route does not stream');
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (typeof auth === 'string') headers.Authorization = auth;
        if (typeof key === 'string') headers['x-api-key'] = key;
        const res = await fetch(self + route, { method: 'POST', headers, body: JSON.stringify(body), signal: c.signal });
        const text = await res.text();
        let json: unknown = text;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON: passed on as text
        }
        if (!res.ok) {
          const msg = (json as { error?: { message?: string } })?.error?.message ?? text;
          throw new ApiError(res.status, `${p}: ${msg}`, res.status >= 500 ? 'server_error' : 'invalid_request_error', `${p}`);
        }
        return json;
      }),
    );
    sendJson(c.res, 200, { predictions });
  });
}
