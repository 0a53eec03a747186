// Node adapter: loads @mlc-ai/web-xgrammar for the grammar engine (src/generate/grammar.ts).
//
// The package is an ES module package whose lib/index.js is a UMD bundle (Emscripten output with
// the WebAssembly inlined): `import` fails on it in Node (the bundle calls `require`), so it is run
// here as the CommonJS module it is, inside a CommonJS-style wrapper function given exports, module,
// require and __filename (a Function, not node:vm, because the bundle also uses `import()`). Browsers load the same file with a <script> or a side-effect
// `import` and find the module at globalThis.xgrammar (see src/generate/grammar.ts).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { XGrammarModule } from '../generate/grammar.js';

let loaded: XGrammarModule | undefined;
let bundle: { file: string; source: string } | undefined;

/**
 * The XGrammar module (loaded once per thread). `fresh`: evaluate the bundle again for a module
 * of its own, whose WebAssembly instance is new (the grammar worker's way to replace an instance
 * that aborted); the shared one stays as it is.
 */
export function loadXGrammar(fresh = false): XGrammarModule {
  if (loaded && !fresh) return loaded;
  const require = createRequire(import.meta.url);
  const file = require.resolve('@mlc-ai/web-xgrammar');
  bundle ??= { file, source: `${readFileSync(file, 'utf8')}\n//# sourceURL=${file}` };
  const source = bundle.source;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const wrapper = new Function('exports', 'require', 'module', '__filename', '__dirname', source);
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  const m = mod.exports as unknown as XGrammarModule;
  if (!fresh) loaded = m;
  return m;
}
