// WrinkleFree's public API (browser-safe: no Node-only imports here; see src/node/ for file paths).
export { loadModel, LoadedModel, Session, type LoadOptions, type ModelInput, type SessionGenerateOptions } from './engine.js';
export { readGGUF, type GGUFFile, type GGUFTensor } from './gguf/reader.js';
export { serializeGGUF, buildGGUFHeader } from './gguf/writer.js';
export { ArrayBufferSource, BlobSource, type ByteSource } from './gguf/source.js';
export { createKernels, type KernelOptions } from './kernels/index.js';
export type { Kernels } from './kernels/api.js';
export { BitNetModel } from './model/model.js';
export { createGpuContext, GpuError, type GpuContext } from './gpu/context.js';
// a page's device: WebGPU when the browser has an adapter, else the CPU (src/web/device.ts)
export { chooseWebDevice, parseDeviceChoice, type ChosenDevice, type DeviceChoice } from './web/device.js';
export { computePerplexity, type PerplexityOptions, type PerplexityResult } from './model/perplexity.js';
export type { LmHeadPrecision } from './model/lm-head.js';
export type { ModelConfig } from './model/config.js';
export { Tokenizer } from './tokenizer/tokenizer.js';
export type { I2SLayout } from './formats/index.js';
export { renderChat, encodeChat, type ChatMessage } from './tokenizer/chat-template.js';
export { generate, type GenerateOptions, type GenerationEvent, type GenerationResult } from './generate/generate.js';
export type { SamplerOptions } from './generate/sampler.js';
export {
  GrammarEngine,
  GrammarError,
  CompiledConstraint,
  grammarVocabulary,
  xgrammarFromGlobal,
  type GrammarSpec,
  type XGrammarModule,
} from './generate/grammar.js';
export type { TokenConstraint } from './generate/constraint.js';
export {
  InProcessGrammarHost,
  GrammarLimitError,
  DEFAULT_GRAMMAR_LIMITS,
  type GrammarHost,
  type GrammarHostFactory,
  type GrammarLimits,
  type HostedConstraint,
} from './generate/grammar-host.js';
export { buildSyntheticModel, DEMO_MODEL_SPEC } from './model/synthetic.js';
