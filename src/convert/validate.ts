// --validate: re-reads the written GGUF and checks it against the checkpoint, tensor by tensor.
//   metadata   every key written is read back with the same value
//   tensors    same names, order, types and dims as planned
//   ternary    decoded with src/formats (unpackTernary / ternarizeExact: the readers, not our packer)
//              -> codes and scale must equal a fresh ternarization of the checkpoint tensor
//   others     bytes must equal a fresh encoding of the checkpoint tensor, and F32/F16 values must
//              equal the source values (rounded to f16 for F16)
// One tensor at a time, like the conversion itself.

import { readGGUF } from '../gguf/reader.js';
import type { GGUFMetaValue } from '../gguf/meta.js';
import { plainValue } from '../gguf/meta.js';
import { GGMLType } from '../gguf/types.js';
import { FileSource } from '../node/file-source.js';
import { dequantize, f16ToF32, f32ToF16, getFormat, ternaryFromTensor } from '../formats/index.js';
import { ConvertError } from './errors.js';
import type { WeightForm } from './hf-config.js';
import { floatChunks, ternaryOf, type TensorJob } from './tensor-jobs.js';

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.fround(a) === Math.fround(b);
  return a === b;
}

export async function validateOutput(
  path: string,
  jobs: TensorJob[],
  form: WeightForm,
  metadata: [string, GGUFMetaValue][],
  progress?: (index: number, tensor: string, bytesRead: number) => void,
): Promise<void> {
  const src = await FileSource.open(path);
  const fail = (msg: string): never => {
    throw new ConvertError(`--validate: ${msg}`);
  };
  try {
    const file = await readGGUF(src);
    for (const [key, v] of metadata) {
      const got = file.get(key);
      if (!sameValue(got, plainValue(v))) fail(`metadata '${key}' reads back as ${JSON.stringify(got)?.slice(0, 100)}`);
    }
    if (file.tensors.length !== jobs.length) fail(`the file has ${file.tensors.length} tensors, expected ${jobs.length}`);
    let read = 0;
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]!;
      const t = file.tensors[i]!;
      const name = job.plan.gguf;
      if (t.name !== name || t.type !== job.type || t.dims.join() !== job.dims.join()) {
        fail(`tensor ${i} is ${t.name} type ${t.type} [${t.dims}], expected ${name} type ${job.type} [${job.dims}]`);
      }
      const rowLength = job.dims[0]!;
      if (job.plan.role === 'ternary') {
        const bytes = await t.read();
        const want = await ternaryOf(job, form);
        const got = ternaryFromTensor(t.type, bytes, t.nElements, rowLength);
        let nonzero = false;
        for (let j = 0; j < want.codes.length; j++) {
          if (got.codes[j] !== want.codes[j]) fail(`${name}: element ${j} reads back as ${got.codes[j]}, the checkpoint gives ${want.codes[j]}`);
          nonzero ||= want.codes[j] !== 0;
        }
        if (nonzero && got.scale !== want.scale) fail(`${name}: scale reads back as ${got.scale}, expected ${want.scale}`);
      } else {
        // row chunks: the output range of each chunk must equal a fresh encoding of the same source rows
        const fmt = getFormat(job.type);
        const f16 = job.type === GGMLType.F16;
        for await (const c of floatChunks(job)) {
          const expectBytes = fmt.pack!(c.values, rowLength);
          const bytes = await src.read(t.offset + fmt.byteSize(c.start, rowLength), expectBytes.length);
          for (let j = 0; j < bytes.length; j++) {
            if (bytes[j] !== expectBytes[j]) fail(`${name}: byte ${fmt.byteSize(c.start, rowLength) + j} differs from a fresh encoding of the checkpoint tensor`);
          }
          if (job.type === GGMLType.F32 || f16) {
            const values = dequantize(t.type, bytes, c.count, rowLength);
            for (let j = 0; j < c.count; j++) {
              const x = c.values[j]!;
              const expect = f16 ? f16ToF32(f32ToF16(x)) : x;
              if (!Object.is(values[j], expect) && !(Number.isNaN(values[j]) && Number.isNaN(expect))) {
                fail(`${name}: element ${c.start + j} reads back as ${values[j]}, the checkpoint holds ${x}`);
              }
            }
          }
        }
      }
      read += job.sourceBytes;
      progress?.(i + 1, name, read);
    }
  } finally {
    await src.close();
  }
}
