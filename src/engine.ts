// The library surface: load a model (weights + tokenizer + kernels) from a GGUF, then tokenize,
// evaluate and generate. Runs in Node and in browsers (no Node imports; file access comes in as a
// ByteSource, see src/node/ for paths).
import { readGGUF } from './gguf/reader.js';
import { toByteSource, type ByteSource } from './gguf/source.js';
import type { Kernels } from './kernels/api.js';
import { createKernels, type KernelOptions, type KernelPlatform } from './kernels/index.js';
import { BitNetModel, type SequenceOptions } from './model/model.js';
import type { FfnActivation } from './model/config.js';
import type { LmHeadPrecision } from './model/lm-head.js';
import type { I2SLayout } from './formats/index.js';
import type { LoadProgress } from './model/weights.js';
import { Tokenizer } from './tokenizer/tokenizer.js';
import { encodeChat, type ChatMessage, type ChatTemplateOptions } from './tokenizer/chat-template.js';
import { generate, type GenerateOptions, type GenerationEvent, type GenerationResult } from './generate/generate.js';
import { CachedSequence } from './model/cached-sequence.js';
import { computePerplexity, type PerplexityOptions, type PerplexityResult } from './model/perplexity.js';
import { GpuError, type GpuContext } from './gpu/context.js';
import { createReferenceKernels } from './kernels/reference.js';

export interface LoadOptions {
  /** worker threads for the kernels (default: all cores; 1 = no workers) */
  threads?: number;
  /** kernel path: 'relaxed' | 'simd' | 'reference' (default: the fastest the runtime has) */
  kernelPath?: KernelOptions['path'];
  /** an existing kernels instance to use instead of creating one (its owner disposes it) */
  kernels?: Kernels;
  /** output head precision: 'int8' (int8 rows and activations, fastest) or 'f16' (the file's own rows, float activations) */
  lmHead?: LmHeadPrecision;
  /** the runtime's adapter for the kernels (Node: nodeKernelPlatform() from src/node/threads.ts; default: the browser's) */
  platform?: KernelPlatform;
  /** force the FFN activation of a `bitnet` file */
  ffnAct?: FfnActivation;
  /** byte layout of I2_S tensors: 'x86' (default, the official 2B4T file), 'arm' or 'x86-interleaved' */
  i2sLayout?: I2SLayout;
  onProgress?: (p: LoadProgress) => void;
  /** 'cpu' (default) or 'webgpu': the latter needs `gpu` (the entry point opens it: node/webgpu.ts, or the page's navigator.gpu) */
  device?: 'cpu' | 'webgpu';
  /** run on this WebGPU device (made by gpu/context.ts createGpuContext) instead of the CPU kernels */
  gpu?: GpuContext;
}

export type ModelInput = ByteSource | ArrayBuffer | Uint8Array | Blob;

export class LoadedModel {
  private constructor(
    readonly model: BitNetModel,
    readonly tokenizer: Tokenizer,
    readonly kernels: Kernels,
    private readonly ownsKernels: boolean,
  ) {}

  static async load(input: ModelInput, opts: LoadOptions = {}): Promise<LoadedModel> {
    if (opts.device === 'webgpu' && !opts.gpu) throw new GpuError('device webgpu: no WebGPU device was handed in (LoadOptions.gpu)');
    if (opts.device === 'cpu') opts = { ...opts, gpu: undefined };
    const source = toByteSource(input);
    const file = await readGGUF(source);
    // the tokenizer first: a file without one fails fast, before the weights are read
    const tokenizer = Tokenizer.fromGGUF(file);
    // on a GPU the CPU kernels hold nothing: the plain reference stands in (no worker threads)
    const kernels = opts.kernels ?? (opts.gpu ? createReferenceKernels()
      : await createKernels({ threads: opts.threads, path: opts.kernelPath, platform: opts.platform }));
    try {
      const model = await BitNetModel.fromFile(file, { kernels, ffnAct: opts.ffnAct, onProgress: opts.onProgress, i2sLayout: opts.i2sLayout, lmHead: opts.lmHead, gpu: opts.gpu });
      return new LoadedModel(model, tokenizer, kernels, !opts.kernels);
    } catch (e) {
      if (!opts.kernels) kernels.dispose();
      throw e;
    }
  }

  get config() {
    return this.model.config;
  }

  /** 'cpu' or 'webgpu' */
  get device(): 'cpu' | 'webgpu' {
    return this.model.device;
  }

  /** what runs the model: "webgpu: <adapter>", or the CPU kernels' path and threads ("wasm-relaxed x2") */
  get deviceName(): string {
    const g = this.model.gpu;
    return g ? `webgpu: ${g.adapterName}` : `${this.kernels.name} x${this.kernels.threads}`;
  }

  createSequence(opts?: SequenceOptions) {
    return this.model.createSequence(opts);
  }

  /**
   * A generation session: one KV cache that later prompts reuse (a chat keeps its earlier turns),
   * with generate() streaming events. Sessions share the model's weights.
   */
  createSession(opts: SequenceOptions = {}): Session {
    return new Session(this, new CachedSequence(this.model.createSequence(opts), this.tokenizer));
  }

  /**
   * Perplexity of a text, as llama-perplexity computes it (model/perplexity.ts): the text is
   * tokenized as plain text (special-token strings are not parsed) with BOS in front when the
   * model adds one, and each chunk starts with BOS in that case.
   */
  async perplexity(text: string, opts: Omit<PerplexityOptions, 'bos'> = {}): Promise<PerplexityResult & { textTokens: number }> {
    const addBos = this.tokenizer.addBosDefault;
    const tokens = this.tokenizer.encode(text, { addBos, addEos: false, parseSpecial: false });
    const r = await computePerplexity(this.model, tokens, { ...opts, bos: addBos ? this.tokenizer.bos : undefined });
    return { ...r, textTokens: tokens.length };
  }

  private readonly disposers: (() => unknown)[] = [];

  /** Registers cleanup to run on dispose() (e.g. closing the file the model reads from). */
  onDispose(fn: () => unknown): void {
    this.disposers.push(fn);
  }

  /** Ends the kernel workers (if this model created them) and runs the registered cleanups. */
  dispose(): void {
    if (this.ownsKernels) this.kernels.dispose();
    for (const fn of this.disposers.splice(0)) void fn();
  }
}

export async function loadModel(input: ModelInput, opts: LoadOptions = {}): Promise<LoadedModel> {
  return LoadedModel.load(input, opts);
}

export interface SessionGenerateOptions extends GenerateOptions {
  /** for text prompts: add BOS (default: the file's add_bos_token) */
  addBos?: boolean;
  /** keep generating past end-of-generation tokens */
  ignoreEos?: boolean;
}

/** A sequence with its cache, the unit the CLI and the server generate on. */
export class Session {
  constructor(readonly model: LoadedModel, readonly cache: CachedSequence) {}

  get contextLength(): number {
    return this.cache.contextLength;
  }

  /** Streams generation events for a text prompt (tokenized, special tokens parsed) or token ids. */
  generate(prompt: string | readonly number[], opts: SessionGenerateOptions = {}): AsyncGenerator<GenerationEvent, GenerationResult> {
    const tokens = typeof prompt === 'string' ? this.model.tokenizer.encode(prompt, { addBos: opts.addBos }) : prompt;
    this.cache.ignoreEndOfGeneration = !!opts.ignoreEos;
    return generate(this.cache, tokens, opts);
  }

  /** Streams the assistant's reply to a conversation rendered with the model's chat template. */
  chat(messages: readonly ChatMessage[], opts: SessionGenerateOptions & { template?: ChatTemplateOptions['template'] } = {}) {
    const tokens = encodeChat(this.model.tokenizer, messages, { template: opts.template, addGenerationPrompt: true });
    this.cache.ignoreEndOfGeneration = !!opts.ignoreEos;
    return generate(this.cache, tokens, opts);
  }

  /** Runs a whole generation and returns its result. */
  async complete(prompt: string | readonly number[], opts: SessionGenerateOptions = {}): Promise<GenerationResult> {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }
}
