// Writes a synthetic model to a GGUF file for the benchmarks: streamed chunk by chunk (a 2B4T-shaped
// file is over a gigabyte), into a temporary name renamed at the end, so an interrupted run never
// leaves a truncated file under the name the next run would reuse.
import { createWriteStream, renameSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { syntheticModelChunks, type SyntheticModelSpec } from '../src/model/synthetic.js';

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
