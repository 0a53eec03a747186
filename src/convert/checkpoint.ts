// A Hugging Face checkpoint directory on disk (Node): its JSON files and its tensors, which live in
// model.safetensors or, sharded, in the files model.safetensors.index.json's weight_map names.
// Shard files are opened once and read by range; nothing is loaded whole.

import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FileSource } from '../node/file-source.js';
import { ConvertError } from './errors.js';
import { SafetensorsError, SafetensorsFile, type SafetensorsTensorInfo } from './safetensors.js';

export interface CheckpointTensor {
  info: SafetensorsTensorInfo;
  file: SafetensorsFile;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads and parses a JSON file; undefined when absent (unless required), a clear error when malformed. */
export async function readJsonFile(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      if (required) throw new ConvertError(`${path} not found`);
      return undefined;
    }
    throw new ConvertError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConvertError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export class Checkpoint {
  private constructor(
    readonly dir: string,
    readonly tensors: Map<string, CheckpointTensor>,
    private readonly files: FileSource[],
  ) {}

  static async open(dir: string): Promise<Checkpoint> {
    const indexPath = join(dir, 'model.safetensors.index.json');
    const singlePath = join(dir, 'model.safetensors');
    const files: FileSource[] = [];
    const tensors = new Map<string, CheckpointTensor>();
    try {
      if (await exists(indexPath)) {
        const index = (await readJsonFile(indexPath, true)) as { weight_map?: unknown };
        const map = index?.weight_map;
        if (map === null || typeof map !== 'object' || Array.isArray(map)) {
          throw new ConvertError(`${indexPath} has no weight_map object`);
        }
        const shards = new Map<string, SafetensorsFile>();
        for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
          if (typeof shard !== 'string' || shard === '' || basename(shard) !== shard || shard === '..' || shard === '.') {
            throw new ConvertError(`${indexPath}: weight_map entry for '${name}' must be a file name in the checkpoint directory, got ${JSON.stringify(shard)}`);
          }
          let file = shards.get(shard);
          if (!file) {
            const path = join(dir, shard);
            if (!(await exists(path))) throw new ConvertError(`${indexPath} lists shard ${shard} (for '${name}'), but ${path} does not exist`);
            const src = await FileSource.open(path);
            files.push(src);
            file = await SafetensorsFile.open(src, path);
            shards.set(shard, file);
          }
          const info = file.tensors.get(name);
          if (!info) throw new ConvertError(`${indexPath} says tensor '${name}' is in ${shard}, but that file has no such tensor`);
          tensors.set(name, { info, file });
        }
        // Tensors present in a shard but missing from the index would be silently dropped: refuse.
        for (const [shard, file] of shards) {
          for (const name of file.tensors.keys()) {
            const where = (map as Record<string, string>)[name];
            if (where === undefined) throw new ConvertError(`${join(dir, shard)} holds tensor '${name}', which ${indexPath}'s weight_map does not list`);
          }
        }
      } else if (await exists(singlePath)) {
        if (!(await stat(singlePath)).isFile()) throw new ConvertError(`${singlePath} is not a file (a directory?): expected the safetensors checkpoint`);
        const src = await FileSource.open(singlePath);
        files.push(src);
        const file = await SafetensorsFile.open(src, singlePath);
        for (const [name, info] of file.tensors) tensors.set(name, { info, file });
      } else {
        const bin = (await exists(join(dir, 'pytorch_model.bin'))) || (await exists(join(dir, 'pytorch_model.bin.index.json')));
        throw new ConvertError(
          `${dir} has neither model.safetensors nor model.safetensors.index.json` +
            (bin ? ' (PyTorch .bin checkpoints are not supported; save the model with safe_serialization=True)' : ''),
        );
      }
    } catch (e) {
      await Promise.all(files.map((f) => f.close()));
      if (e instanceof SafetensorsError) throw new ConvertError(e.message);
      throw e;
    }
    return new Checkpoint(dir, tensors, files);
  }

  get(name: string): CheckpointTensor | undefined {
    return this.tensors.get(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}
