// Compiles the WebAssembly kernels (src/kernels/wasm/*.ts, AssemblyScript) at build time.
// Placeholder until the kernels land: nothing to compile yet.
console.log('build-wasm: no kernel sources yet');
