// Writes a synthetic model to a GGUF file for the benchmarks: streamed chunk by chunk (a 2B4T-shaped
// file is over a gigabyte), into a temporary name renamed at the end, so an interrupted run never
// leaves a truncated file under the name the next run would reuse.
import { createWriteStream, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BITNET_2B4T_SHAPE, byteLevelTokenizer, syntheticModelChunks, type SyntheticModelSpec } from '../src/model/synthetic.js';

export async function writeSyntheticModelFile(path: string, spec: SyntheticModelSpec): Promise<void> {
  const t0 = performance.now();
  const tmp = `${path}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  for (const chunk of syntheticModelChunks(spec)) if (!out.write(chunk)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  renameSync(tmp, path);
  console.log(`wrote ${path} (${(statSync(path).size / 1e6).toFixed(0)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

export interface ShapeFileOptions {
  layers?: number;
  type: SyntheticModelSpec['weightType'];
  arch?: SyntheticModelSpec['arch'];
  embed?: SyntheticModelSpec['embedType'];
}

/**
 * The path of a 2B4T-shaped synthetic model (byte-level 128256-token vocabulary, seed 1) in
 * $TMPDIR/wf-bench, written once and shared by every benchmark that asks for the same variant.
 */
export async function ensure2B4TShapeFile(o: ShapeFileOptions): Promise<string> {
  const layers = o.layers ?? BITNET_2B4T_SHAPE.nLayers;
  const dir = join(tmpdir(), 'wf-bench');
  mkdirSync(dir, { recursive: true });
  const variant = (o.arch === 'bitnet' ? '-bitnet' : '') + (o.embed === undefined || o.embed === 'f16' ? '' : `-emb-${o.embed}`);
  const path = join(dir, `bitnet-2b4t-shape-${layers}L-${o.type}${variant}.gguf`);
  if (existsSync(path)) return path;
  const spec: SyntheticModelSpec = {
    ...BITNET_2B4T_SHAPE, nLayers: layers, weightType: o.type, tokenizer: byteLevelTokenizer(128256), name: 'synthetic 2B4T-shaped', seed: 1,
    ...(o.arch ? { arch: o.arch } : {}), ...(o.embed ? { embedType: o.embed } : {}),
  };
  await writeSyntheticModelFile(path, spec);
  return path;
}
