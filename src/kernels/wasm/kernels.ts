// Entry of the WebAssembly kernels (AssemblyScript). Built twice by scripts/build-wasm.mjs:
// relaxed SIMD and plain SIMD128. Memory is imported (env.memory, shared when threads are used);
// the module has no heap and no data segments, so every worker can instantiate it on the same memory.
// All buffers are planned by the JavaScript side (src/kernels/memory.ts) and passed as byte offsets.
export { quantize, quantizeWide, quantizeWeightRow, rmsnorm, memsum } from './norm';
export { ternR4, packR4, interleaveActs } from './ternary-r4';
export { ternLut, lutTables, packLut } from './ternary-lut';
export { int8Mm, int8Row, interleaveWide } from './int8';
export { floatMmF16, floatMmF32 } from './float-matmul';
export { attnRows, attnRowsF16, attnMerge, attnBatch } from './attention';
export { relu2Gate, siluGate, addTo, rope } from './elementwise';
