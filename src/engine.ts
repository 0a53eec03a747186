// The library surface: load a model (weights + tokenizer + kernels) from a GGUF, then tokenize,
// evaluate and generate. Runs in Node and in browsers (no Node imports; file access comes in as a
// ByteSource, see src/node/ for paths).
import { readGGUF } from './gguf/reader.js';
import { toByteSource, type ByteSource } from './gguf/source.js';
import type { Kernels } from './kernels/api.js';
import { createKernels, type KernelOptions } from './kernels/index.js';
import { BitNetModel, type SequenceOptions } from './model/model.js';
import type { FfnActivation } from './model/config.js';
import type { LoadProgress } from './model/weights.js';
import { Tokenizer } from './tokenizer/tokenizer.js';

export interface LoadOptions {
  /** worker threads for the kernels (default: all cores; 1 = no workers) */
  threads?: number;
  /** kernel path: 'relaxed' | 'simd' | 'reference' (default: the fastest the runtime has) */
  kernelPath?: KernelOptions['path'];
  /** an existing kernels instance to use instead of creating one (its owner disposes it) */
  kernels?: Kernels;
  /** force the FFN activation of a `bitnet` file */
  ffnAct?: FfnActivation;
  onProgress?: (p: LoadProgress) => void;
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
    const source = toByteSource(input);
    const file = await readGGUF(source);
    // the tokenizer first: a file without one fails fast, before the weights are read
    const tokenizer = Tokenizer.fromGGUF(file);
    const kernels = opts.kernels ?? (await createKernels({ threads: opts.threads, path: opts.kernelPath }));
    try {
      const model = await BitNetModel.fromFile(file, { kernels, ffnAct: opts.ffnAct, onProgress: opts.onProgress });
      return new LoadedModel(model, tokenizer, kernels, !opts.kernels);
    } catch (e) {
      if (!opts.kernels) kernels.dispose();
      throw e;
    }
  }

  get config() {
    return this.model.config;
  }

  createSequence(opts?: SequenceOptions) {
    return this.model.createSequence(opts);
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
