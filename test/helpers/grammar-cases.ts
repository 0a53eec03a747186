// Hostile grammars and JSON schemas, seeded: the classes of issue #18 (findings 1-4) and random
// mutations of valid ones. Shared by test/server/grammar-fuzz.test.ts (short) and
// bench/fuzz-grammar.ts (long). Each case is a request body fragment for /v1/completions.
import { mulberry32 } from './random.js';

/** A seeded integer source. */
class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** uniform in 0..n-1 */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export interface GrammarCase {
  /** the class it belongs to (reported per class) */
  kind: string;
  /** `grammar` (GBNF) or `json_schema` of a /v1/completions body */
  body: { grammar: string } | { json_schema: unknown };
}

/** Malformed GBNF classes. */
export const GRAMMAR_KINDS = ['dangling-alternative', 'nested-brackets', 'repeated-syntax-error', 'undefined-rule', 'mutated'] as const;
/** Malformed or hostile JSON schema classes. */
export const SCHEMA_KINDS = ['self-ref', 'unknown-type', 'ref-loop', 'deep-nesting', 'mutated-schema'] as const;

const VALID_GBNF = 'root ::= "{" ws pair ("," ws pair)* ws "}"\npair ::= key ":" ws value\nkey ::= "\\"" [a-z]+ "\\""\nvalue ::= [0-9]+ | "true" | "false"\nws ::= [ ]?';
const VALID_SCHEMA = JSON.stringify({
  type: 'object',
  properties: { name: { type: 'string', maxLength: 8 }, n: { type: 'integer' }, tags: { type: 'array', items: { enum: ['a', 'b'] } } },
  required: ['name', 'n'],
});

/** Deletes, duplicates or inserts a few characters (seeded). */
function mutate(rng: Rng, text: string, alphabet: string): string {
  let s = text;
  const edits = 1 + rng.int(4);
  for (let i = 0; i < edits; i++) {
    const at = rng.int(s.length + 1);
    const op = rng.int(3);
    if (op === 0) s = s.slice(0, at) + s.slice(at + 1 + rng.int(3));
    else if (op === 1) s = s.slice(0, at) + s.slice(at, at + 1 + rng.int(6)) + s.slice(at);
    else s = s.slice(0, at) + alphabet[rng.int(alphabet.length)]! + s.slice(at);
  }
  return s;
}

export function grammarCase(kind: (typeof GRAMMAR_KINDS)[number], n: number, rng: Rng): GrammarCase {
  switch (kind) {
    case 'dangling-alternative':
      return { kind, body: { grammar: `root ::= "a${n}" |` } };
    case 'nested-brackets': {
      // around the depth limit (64) and far past it
      const depth = 20 + rng.int(280);
      return { kind, body: { grammar: `root ::= ${'('.repeat(depth)}"x"${')'.repeat(depth)}` } };
    }
    case 'repeated-syntax-error':
      return { kind, body: { grammar: 'root ::= "a" ]] (' } };
    case 'undefined-rule':
      return { kind, body: { grammar: `root ::= "x" rule${n}` } };
    case 'mutated':
      return { kind, body: { grammar: mutate(rng, VALID_GBNF, '()[]|*+?":=\\ab\n') } };
  }
}

export function schemaCase(kind: (typeof SCHEMA_KINDS)[number], n: number, rng: Rng): GrammarCase {
  switch (kind) {
    case 'self-ref':
      return { kind, body: { json_schema: { $ref: '#' } } };
    case 'unknown-type':
      return { kind, body: { json_schema: { type: `objekt${n}` } } };
    case 'ref-loop':
      return { kind, body: { json_schema: { $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } } } } };
    case 'deep-nesting': {
      let s: unknown = { type: 'string' };
      const depth = 10 + rng.int(250);
      for (let i = 0; i < depth; i++) s = { type: 'array', items: s };
      return { kind, body: { json_schema: s } };
    }
    case 'mutated-schema': {
      const text = mutate(rng, VALID_SCHEMA, '{}[]",:0a');
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        v = text; // a schema given as (broken) JSON text
      }
      return { kind, body: { json_schema: v } };
    }
  }
}

/** `count` cases of each grammar class and `schemas` of each schema class, interleaved (seeded). */
export function fuzzCases(seed: number, count: number, schemas: number): GrammarCase[] {
  const rng = new Rng(seed);
  const out: GrammarCase[] = [];
  for (let n = 0; n < Math.max(count, schemas); n++) {
    if (n < count) for (const k of GRAMMAR_KINDS) out.push(grammarCase(k, n, rng));
    if (n < schemas) for (const k of SCHEMA_KINDS) out.push(schemaCase(k, n, rng));
  }
  return out;
}

/** A JSON schema of `n` distinct strings (the leak repro of finding 3). */
export function enumSchema(tag: string, n: number): unknown {
  return { enum: Array.from({ length: n }, (_, i) => `${tag}-${i}`) };
}

/**
 * Polls GET /health every `everyMs` while running and records the slowest answer (a missed answer
 * counts as its full wait). stop() resolves with the worst wait in milliseconds.
 */
export function healthProbe(url: string, everyMs = 100): { stop(): Promise<number>; worst(): number } {
  let worst = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
      } catch {
        // a timeout or refused connection: its wait counts below
      }
      worst = Math.max(worst, performance.now() - t0);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    worst: () => worst,
    stop: async () => {
      running = false;
      await loop;
      return worst;
    },
  };
}
