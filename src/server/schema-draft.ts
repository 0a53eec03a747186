// JSON Schema spellings of drafts before 2020-12 that the grammar compiler (XGrammar, which follows
// 2020-12) refuses, rewritten to their 2020-12 form before compiling, so a schema llama-server
// accepts is accepted here too:
//   - `items: [A, B]` (a tuple, drafts 4 to 2019-09) is `prefixItems: [A, B]`; its
//     `additionalItems` (a schema or a boolean) becomes `items`. Without `additionalItems` the tuple
//     is exact (`items: false`), as llama.cpp's schema converter reads it: draft 4 would allow any
//     further items, which a grammar would have to spell out as "any JSON", never what was meant.
// Everything else is left as it is (copied where a subschema changed, the caller's object untouched).

/** keys whose values are data or names, not subschemas */
const DATA = new Set(['const', 'enum', 'default', 'examples', 'required']);
/** keys whose values map names to subschemas */
const MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);

export function modernSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(modernSchema);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (DATA.has(k) || typeof v !== 'object' || v === null) out[k] = v;
    else if (MAPS.has(k) && !Array.isArray(v)) out[k] = Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, modernSchema(sub)]));
    else out[k] = modernSchema(v);
  }
  if (Array.isArray(out.items) && out.prefixItems === undefined) {
    out.prefixItems = out.items;
    out.items = out.additionalItems ?? false;
    delete out.additionalItems;
  }
  return out;
}
