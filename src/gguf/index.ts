export * from './types.js';
export * from './meta.js';
export * from './source.js';
export * from './reader.js';
export * from './writer.js';
