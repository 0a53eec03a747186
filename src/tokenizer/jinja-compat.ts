// Where @huggingface/jinja and Python's Jinja2 (what Hugging Face renders chat templates with)
// disagree on templates found in the wild, the template source is adjusted so it renders what
// Jinja2 renders.
//
// - select / reject / selectattr / rejectattr on a falsy value (none, undefined): Jinja2 yields
//   nothing (its select_or_reject loops only `if value`), @huggingface/jinja throws. Functionary
//   v3.1 does `tools | selectattr(...)` after `set tools = none`. Rewritten as `(X or []) | filter`.

const SELECT_ON_NAME = /(?<![|.\w]\s*)\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\s*\|\s*)(selectattr|rejectattr|select|reject)\b/g;

/** The template source with the adjustments above (unchanged when none applies). */
export function jinja2Compatible(source: string): string {
  return source.replace(SELECT_ON_NAME, (_m, name: string, bar: string, filter: string) => `(${name} or [])${bar}${filter}`);
}
