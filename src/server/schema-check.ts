// A JSON Schema's `type` keywords, checked before the schema goes to the grammar compiler: XGrammar
// quietly treats an unknown type (`"type": 123`, `"type": "hiccup"`) as "anything", which would
// accept a request whose schema constrains nothing. llama-server refuses such schemas; so does this.
import { invalidParam } from './errors.js';

const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

const DATA = new Set(['const', 'enum', 'default', 'examples', 'required']);
const MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);

/** Throws a 400 naming `param` and the path of the first `type` that is not a JSON Schema type. */
export function checkSchemaTypes(schema: unknown, param: string, path = ''): void {
  if (Array.isArray(schema)) {
    schema.forEach((s, i) => checkSchemaTypes(s, param, `${path}/${i}`));
    return;
  }
  if (typeof schema !== 'object' || schema === null) return;
  const o = schema as Record<string, unknown>;
  if ('type' in o) {
    const t = o.type;
    const ok = typeof t === 'string' ? TYPES.has(t) : Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === 'string' && TYPES.has(x));
    if (!ok) {
      throw invalidParam(param, `'${param}' has "type": ${JSON.stringify(t)} at '${path || '/'}': a JSON Schema type is one of ${[...TYPES].join(', ')} (or a list of them)`);
    }
  }
  for (const [k, v] of Object.entries(o)) {
    // values under these keys are data or names, not schemas
    if (DATA.has(k) || typeof v !== 'object' || v === null) continue;
    if (MAPS.has(k) && !Array.isArray(v)) {
      // name -> schema: a property may be called "type"
      for (const [name, sub] of Object.entries(v)) checkSchemaTypes(sub, param, `${path}/${k}/${name}`);
    } else checkSchemaTypes(v, param, `${path}/${k}`);
  }
}
