// Entry of the library bundle for web pages (dist/web/wrinklefree.js, built by scripts/build-web.mjs):
// the engine's public API as one ES module. The kernels' WebAssembly is inside it (base64); the kernel
// worker is dist/web/web-worker.js beside it, found at run time through import.meta.url.
export * from '../index.js';
