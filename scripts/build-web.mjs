// Builds the browser side with esbuild (after tsc, which has type-checked the same sources):
//   dist/web/wrinklefree.js   the library bundle (src/web/lib.ts): the engine as one ES module, wasm inside
//   dist/web/web-worker.js    the kernel worker that bundle starts (src/kernels/web-worker.ts), kept beside it
//   dist/web/app.js           the browser app (src/web/app/main.ts), importing ./wrinklefree.js
//   dist/web/engine-worker.js the app's engine worker (src/web/app/engine-worker.ts), importing ./wrinklefree.js
//   dist/web/index.html       the app's page (src/web/app/index.html)
//   dist/web/chat.html        wf_server's chat page: src/web/chat.html with src/web/chat/server-page.ts inlined
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/web');
mkdirSync(out, { recursive: true });

const common = { bundle: true, format: 'esm', platform: 'browser', target: 'es2022', sourcemap: true, logLevel: 'warning', legalComments: 'none' };

// the app imports the engine from src/index.ts; in the bundle that import is the library file beside it
const engineAsLibrary = {
  name: 'engine-as-library',
  setup(b) {
    b.onResolve({ filter: /\/index\.js$/ }, (args) => {
      const resolved = join(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
      if (resolved === join(root, 'src/index.ts')) return { path: './wrinklefree.js', external: true };
      return undefined;
    });
  },
};

await Promise.all([
  build({ ...common, entryPoints: { wrinklefree: join(root, 'src/web/lib.ts'), 'web-worker': join(root, 'src/kernels/web-worker.ts') }, outdir: out }),
  build({ ...common, entryPoints: { app: join(root, 'src/web/app/main.ts'), 'engine-worker': join(root, 'src/web/app/engine-worker.ts') }, outdir: out, plugins: [engineAsLibrary] }),
]);
copyFileSync(join(root, 'src/web/app/index.html'), join(out, 'index.html'));

const page = await build({ ...common, sourcemap: false, minify: true, write: false, entryPoints: [join(root, 'src/web/chat/server-page.ts')] });
const script = page.outputFiles[0].text.replace(/<\/script/gi, '<\\/script');
const shell = readFileSync(join(root, 'src/web/chat.html'), 'utf8');
if (!shell.includes('/*WF_CHAT_SCRIPT*/')) throw new Error('build-web: src/web/chat.html lost its /*WF_CHAT_SCRIPT*/ marker');
writeFileSync(join(out, 'chat.html'), shell.replace('/*WF_CHAT_SCRIPT*/', () => script));
console.log('build-web: dist/web/{wrinklefree.js, web-worker.js, app.js, engine-worker.js, index.html, chat.html}');
