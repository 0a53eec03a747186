// Seeded fuzz cases for the hardening harness (issue 18): chat templates, GGUF headers and HTTP requests.
// Shared by the short form in `npm test` (test/server/hardening-fuzz.test.ts) and the long form
// (bench/fuzz.ts). Each generator is a pure function of a random source, so a seed and a case number
// reproduce a case. What each case must do is checked by the caller: templates render or fail with our
// own errors within their budget; GGUF headers parse or fail with a GGUFError quickly; HTTP requests get
// an answer below 500, and /health keeps answering.
import { request } from 'node:http';
import { Raw } from '../gguf/raw.js';
import { GGMLType, GGUFError, GGUFValueType as V, readGGUF } from '../../src/gguf/index.js';
import { encodeChat, ChatTemplateError } from '../../src/tokenizer/chat-template.js';
import { TemplateBudgetError } from '../../src/tokenizer/template-budget.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';

export type Rnd = () => number;
const int = (r: Rnd, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rnd, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** Strings that have broken parsers and templates elsewhere. */
const NASTY = [
  '', ' ', '<|eot_id|>', '<|begin_of_text|>', '<|start_header_id|>system<|end_header_id|>', '{{ 7*7 }}', '{% for %}',
  '\u0000', '\uFDD0', '\uFFFD', '\uD800', '😀'.repeat(50), 'a'.repeat(10_000), '\n'.repeat(1000), '"}\'', 'null',
  '</s>', '[INST]', '<|im_end|>', '%s%n', '\\u0000',
];

// ---- templates

const LOOP_BODIES = [
  '{% for i in range(N) %}x{% endfor %}',
  '{% for i in range(N) %}{% for j in range(N) %}{% endfor %}{% endfor %}',
  "{% set ns = namespace(s='ab') %}{% for i in range(N) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
  '{% set ns = namespace(l=[0]) %}{% for i in range(N) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}',
  '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}',
  "{% for m in messages %}{% for c in range(m['content'] | length) %}{% for k in range(N) %}{% endfor %}{% endfor %}{% endfor %}",
  "{{ raise_exception('refused') }}",
  '{{ range(N) | join(",") | length }}',
  "{{ messages[0]['content'] * 3 }}",
  "{{ messages | tojson(indent=N) | length }}",
  '{% for %}',
  '{{ 1 / 0 }}',
  '{{ undefined_thing.attr.more }}',
  "{{ (messages[0]['content'] ~ '') | indent(N) | length }}",
];
const SIZES = ['0', '1', '10', '1000', '100000', '10**6', '10**12', '-5', '2**40'];

/** A template made of hostile pieces around the usual chat markup, and messages to render it with. */
export function templateCase(r: Rnd): { template: string; messages: { role: string; content: string }[] } {
  const parts = ["{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>{{ m['content'] }}<|eot_id|>{% endfor %}"];
  for (let i = 0, n = 1 + int(r, 3); i < n; i++) parts.splice(int(r, parts.length + 1), 0, pick(r, LOOP_BODIES).replaceAll('N', pick(r, SIZES)));
  const messages = Array.from({ length: 1 + int(r, 4) }, (_, i) => ({
    role: pick(r, ['system', 'user', 'assistant', 'tool']),
    content: r() < 0.2 ? 'y'.repeat(int(r, 200_000)) : pick(r, NASTY) + (i % 2 ? pick(r, NASTY) : ''),
  }));
  return { template: parts.join(''), messages };
}

// ---- GGUF headers

/** A crafted GGUF: counts, lengths and types at and past the limits, or random bytes after a valid prefix. */
export function ggufCase(r: Rnd): Uint8Array {
  const raw = new Raw();
  const kind = int(r, 8);
  const big = () => pick(r, [0n, 1n, 63n, 64n, 4097n, 1n << 22n, (1n << 22n) + 1n, 1n << 32n, 10n ** 8n, (1n << 64n) - 1n]);
  switch (kind) {
    case 0: // long or absurd tensor name length
      return raw.header(1, 0).u64(big()).bytes(new Uint8Array(int(r, 5000))).done();
    case 1: // huge array counts of each item type
      return raw.header(0, 1).str('tokenizer.ggml.tokens').u32(V.ARRAY).u32(int(r, 14)).u64(big()).bytes(new Uint8Array(int(r, 4096))).done();
    case 2: // absurd tensor / entry counts
      return raw.header(big(), big()).bytes(new Uint8Array(int(r, 4096))).done();
    case 3: { // a name just at or past the limit, with a plausible tensor
      const name = 'n'.repeat(60 + int(r, 8));
      return raw.header(1, 0).tensorInfo(name, [4], GGMLType.F32, 0).pad(32).bytes(new Uint8Array(16)).done();
    }
    case 4: // nested arrays
      raw.header(0, 1).str('deep');
      for (let i = 0, n = int(r, 12); i < n; i++) raw.u32(V.ARRAY).u32(V.ARRAY).u64(1);
      return raw.u32(V.STRING).str('x').done();
    case 5: { // a string value of random (often lying) length
      return raw.header(0, 1).str('general.name').u32(V.STRING).u64(big()).bytes(new Uint8Array(int(r, 10_000))).done();
    }
    case 6: { // dims that overflow, types out of range
      const dims = Array.from({ length: int(r, 6) }, () => big());
      return raw.header(1, 0).tensorInfo('w', dims, int(r, 50), big()).pad(32).bytes(new Uint8Array(64)).done();
    }
    default: { // random bytes after the magic
      const head = raw.header(int(r, 4), int(r, 4)).done();
      const tail = Uint8Array.from({ length: int(r, 512) }, () => int(r, 256));
      const out = new Uint8Array(head.length + tail.length);
      out.set(head);
      out.set(tail, head.length);
      return out;
    }
  }
}

// ---- HTTP requests

const NUMBERS = [0, -1, 1, 1e-300, 1e300, -1e300, 0.5, 2 ** 53, -(2 ** 31), 1.5, 100, 1e6];
const WEIRD = (r: Rnd): unknown => pick(r, [null, true, 'x', [], {}, [1, 2], { a: { b: { c: [] } } }, ...NUMBERS, pick(r, NASTY)]);
const FIELDS = [
  'temperature', 'top_p', 'top_k', 'min_p', 'max_tokens', 'n', 'seed', 'stop', 'logprobs', 'top_logprobs', 'repeat_penalty',
  'repeat_last_n', 'presence_penalty', 'frequency_penalty', 'logit_bias', 'stream', 'stream_options', 'tools', 'tool_choice',
  'response_format', 'grammar', 'json_schema', 'ignore_eos', 'n_predict', 'model', 'user',
];

export interface HttpCase {
  path: string;
  method: string;
  /** JSON text, or raw text that may not be JSON */
  body?: string;
  headers: Record<string, string>;
}

function deep(r: Rnd, depth: number): unknown {
  if (depth <= 0 || r() < 0.3) return WEIRD(r);
  return r() < 0.5 ? [deep(r, depth - 1)] : { k: deep(r, depth - 1) };
}

/** A request with hostile fields, bodies, headers and message contents. */
export function httpCase(r: Rnd, vocabSize: number): HttpCase {
  const path = pick(r, ['/v1/chat/completions', '/v1/chat/completions', '/v1/completions', '/tokenize', '/detokenize', '/v1/models', '/nope', '/health']);
  const headers: Record<string, string> = { 'Content-Type': r() < 0.9 ? 'application/json' : 'text/plain' };
  if (r() < 0.1) headers.Host = pick(r, ['evil.example', 'localhost.evil', '127.0.0.1.nip.io', '[::1]:1', 'localhost']);
  const kind = int(r, 10);
  let body: string | undefined;
  if (kind === 0) body = pick(r, ['', '{', 'null', '[]', '"x"', '{"a":', '\u0000'.repeat(100), '{}'.repeat(1000)]);
  else {
    const b: Record<string, unknown> = {};
    const content = r() < 0.1 ? 'z'.repeat(int(r, 2_000_000)) : pick(r, NASTY);
    if (path.includes('chat')) {
      b.messages = r() < 0.85
        ? Array.from({ length: 1 + int(r, 3) }, () => ({ role: r() < 0.9 ? pick(r, ['user', 'system', 'assistant']) : WEIRD(r), content: r() < 0.9 ? content : deep(r, 30) }))
        : WEIRD(r);
    } else if (path.includes('completions')) b.prompt = r() < 0.8 ? content : r() < 0.5 ? [int(r, vocabSize * 2) - 5] : WEIRD(r);
    else if (path === '/tokenize') b.content = r() < 0.8 ? content : WEIRD(r);
    else if (path === '/detokenize') b.tokens = r() < 0.5 ? [int(r, vocabSize * 2) - 5] : WEIRD(r);
    b.max_tokens = r() < 0.7 ? 1 + int(r, 3) : WEIRD(r);
    for (let i = 0, n = int(r, 4); i < n; i++) {
      const f = pick(r, FIELDS);
      if (f === 'logit_bias') {
        const bias: Record<string, unknown> = {};
        const all = r() < 0.3;
        for (let t = 0; t < (all ? vocabSize : 3); t++) bias[all ? String(t) : String(int(r, vocabSize * 2) - 2)] = all ? -100 : WEIRD(r);
        b.logit_bias = bias;
      } else b[f] = r() < 0.3 ? deep(r, 5) : WEIRD(r);
    }
    body = JSON.stringify(b);
  }
  return { path, method: path === '/v1/models' || path === '/health' ? 'GET' : pick(r, ['POST', 'POST', 'POST', 'PUT']), body, headers };
}

// ---- running the cases

/** Wall time a template may overrun its budget by (one evaluation step, a range() allocation, a busy machine: 2.4 s was seen at load average 20); a template without a working budget runs far longer. */
export const TEMPLATE_SLACK_MS = 5000;
/** A GGUF header verdict slower than this is a hang, not a speed figure. */
export const GGUF_HANG_MS = 5000;

export type Outcome = 'ok' | 'refused';

/** Renders a template case; our own errors are 'refused', anything else or a blown budget throws. */
export function runTemplateCase(tok: Tokenizer, c: ReturnType<typeof templateCase>, timeMs: number): { outcome: Outcome; ms: number } {
  const t0 = performance.now();
  let outcome: Outcome = 'ok';
  try {
    encodeChat(tok, c.messages, { template: c.template, timeMs });
  } catch (e) {
    if (!(e instanceof ChatTemplateError || e instanceof TemplateBudgetError)) throw new Error(`template case threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    outcome = 'refused';
  }
  const ms = performance.now() - t0;
  if (ms > timeMs + TEMPLATE_SLACK_MS) throw new Error(`template case took ${ms.toFixed(0)} ms for a ${timeMs} ms budget`);
  return { outcome, ms };
}

/** Reads a GGUF case; a GGUFError is 'refused', anything else or a slow verdict throws. */
export async function runGgufCase(bytes: Uint8Array): Promise<{ outcome: Outcome; ms: number }> {
  const t0 = performance.now();
  let outcome: Outcome = 'ok';
  try {
    await readGGUF(bytes);
  } catch (e) {
    if (!(e instanceof GGUFError)) throw new Error(`GGUF case threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    outcome = 'refused';
  }
  const ms = performance.now() - t0;
  if (ms > GGUF_HANG_MS) throw new Error(`GGUF case took ${ms.toFixed(0)} ms`);
  return { outcome, ms };
}

/** Sends one request (node:http, so Host can be set); resolves with the status and body. */
export function send(base: string, c: HttpCase, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(c.path, base);
    const req = request(u, { method: c.method, headers: c.headers, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${c.method} ${c.path} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(c.body);
  });
}

/** Polls /health every `everyMs` while running; stop() gives the worst wait and whether any poll failed. */
export function watchHealth(base: string, everyMs = 50): { stop(): Promise<{ worstMs: number; polls: number; failures: number }> } {
  let worst = 0;
  let polls = 0;
  let failures = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const r = await send(base, { path: '/health', method: 'GET', headers: {} }, 10_000);
        if (r.status !== 200) failures++;
      } catch {
        failures++;
      }
      worst = Math.max(worst, performance.now() - t0);
      polls++;
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { worstMs: worst, polls, failures };
    },
  };
}
