// A tool's JSON Schema written as a short signature for the system prompt, TypeScript-like:
//
//   get_weather(city: string, unit: "C" | "F", days?: integer) - Current weather in a city
//
// The prompt only tells the model what the tools are; the grammar (tool-calls.ts) enforces the
// schema exactly. Printing the schema as JSON took about 2.5 times the tokens: two small tools
// were 368 tokens (now 150) on the demo's 2048-token vocabulary, more than its whole 256-token context.
// Property descriptions follow their property as a comment; schema features with no short
// form (patterns, bounds, $ref) are left to the grammar.
import type { ToolDef } from './tool-calls.js';

type Schema = Record<string, unknown>;
const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deeper than this, a schema is written as `object`. */
const MAX_DEPTH = 4;

/** The schema's type, written short: `string`, `"a" | "b"`, `integer[]`, `{x: number, y?: string}`. */
export function schemaType(s: unknown, depth = 0): string {
  if (s === true || s === undefined) return 'any';
  if (!isObject(s)) return 'never';
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  for (const k of ['anyOf', 'oneOf']) {
    const list = s[k];
    if (Array.isArray(list)) return list.map((x) => schemaType(x, depth + 1)).join(' | ');
  }
  const t = s.type;
  if (Array.isArray(t)) return t.map((x) => schemaType({ ...s, type: x }, depth)).join(' | ');
  if (t === 'array') {
    const item = schemaType(s.items, depth + 1);
    return item.includes(' ') && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
  }
  if (t === 'object' || isObject(s.properties)) {
    if (depth >= MAX_DEPTH || !isObject(s.properties)) return 'object';
    return `{${fields(s, depth + 1)}}`;
  }
  return typeof t === 'string' ? t : 'any';
}

/** `name: type` for each property (`name?:` when not required), with descriptions as comments. */
function fields(s: Schema, depth: number): string {
  const props = isObject(s.properties) ? s.properties : {};
  const required = new Set(Array.isArray(s.required) ? s.required : []);
  return Object.entries(props)
    .map(([k, v]) => {
      const desc = isObject(v) && typeof v.description === 'string' ? ` /* ${v.description} */` : '';
      return `${k}${required.has(k) ? '' : '?'}: ${schemaType(v, depth)}${desc}`;
    })
    .join(', ');
}

/** One line per tool: `name(arguments) - description`. */
export function toolSignature(t: ToolDef): string {
  const p = t.parameters;
  const args = isObject(p.properties) ? fields(p, 1) : p.type === 'object' || p.type === undefined ? '' : `arguments: ${schemaType(p)}`;
  return `${t.name}(${args})${t.description ? ` - ${t.description}` : ''}`;
}
