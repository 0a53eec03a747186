// Writes a copy of a BitNet GGUF that native llama-server loads: arch renamed to mainline's
// `bitnet` (every `{arch}.` key with it) and the chat template removed, so llama-server falls back
// to its own default template as it would for a file without one. Used by
// bench/llama-server-suite.py to run llama.cpp's server tests on the same weights as wf_server.
//   node dist/bench/llama-server-model.js IN.gguf OUT.gguf
import { readFileSync, writeFileSync } from 'node:fs';
import { readGGUF, serializeGGUF, metaString, type GGUFMetaValue } from '../src/gguf/index.js';

async function main(): Promise<void> {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) throw new Error('usage: llama-server-model IN.gguf OUT.gguf');
  const bytes = new Uint8Array(readFileSync(input));
  const f = await readGGUF(bytes);
  const arch = f.architecture;
  if (!arch) throw new Error(`${input} has no general.architecture`);
  const meta: [string, GGUFMetaValue][] = [];
  for (const [k, v] of f.metadata) {
    if (k === 'tokenizer.chat_template') continue;
    if (k === 'general.architecture') meta.push([k, metaString('bitnet')]);
    else if (k.startsWith(arch + '.')) meta.push(['bitnet.' + k.slice(arch.length + 1), v]);
    else meta.push([k, v]);
  }
  const tensors = await Promise.all(f.tensors.map(async (t) => ({ name: t.name, type: t.type, dims: t.dims, data: await t.read() })));
  writeFileSync(output, serializeGGUF({ version: f.version === 2 ? 2 : 3, metadata: meta, tensors }));
  process.stderr.write(`${output}: arch ${arch} -> bitnet, chat template removed, ${tensors.length} tensors\n`);
}

main().catch((e) => {
  process.stderr.write(`llama-server-model: ${(e as Error).message}\n`);
  process.exit(1);
});
