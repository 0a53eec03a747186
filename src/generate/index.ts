// Sampling and the generation loop (browser-safe; no Node APIs).
export * from './rng.js';
export * from './penalties.js';
export * from './sampler.js';
export * from './stop.js';
export * from './generate.js';
export * from './constraint.js';
