// Node adapter: open a GGUF by path, for the CLI and the server.
import { stat } from 'node:fs/promises';
import { readGGUF, type GGUFFile } from '../gguf/reader.js';
import { loadModel, type LoadedModel, type LoadOptions } from '../engine.js';
import { FileSource } from './file-source.js';
import { nodeKernelPlatform } from './threads.js';
import { openNodeGpu } from './webgpu.js';

async function openSource(path: string): Promise<FileSource> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new Error(`model file not found: ${path}`);
  }
  if (!st.isFile()) throw new Error(`not a file: ${path}`);
  return FileSource.open(path);
}

/** Reads only the header (metadata, tensor table) of a GGUF file. */
export async function openGGUF(path: string): Promise<{ file: GGUFFile; close: () => Promise<void> }> {
  const src = await openSource(path);
  try {
    return { file: await readGGUF(src), close: () => src.close() };
  } catch (e) {
    await src.close();
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Loads a model (weights, tokenizer, kernels on the Node platform) from a GGUF file on disk. */
export async function loadModelFile(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  opts = { platform: nodeKernelPlatform(), ...opts };
  // --device webgpu: open Dawn's first adapter here, the Node side (the engine takes the device)
  if (opts.device === 'webgpu' && !opts.gpu) opts.gpu = await openNodeGpu();
  const src = await openSource(path);
  try {
    // the embedding table is read by range on every token, so the file stays open with the model
    const lm = await loadModel(src, opts);
    lm.onDispose(() => src.close());
    return lm;
  } catch (e) {
    await src.close();
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
