// One job per output tensor: where its data comes from, what GGUF type/dims it gets, and how its
// bytes are produced. All shape / dtype / block-size checks happen when the jobs are built, before a
// byte of output is written; encoding then streams: ternary tensors one tensor at a time (the absmean
// needs the whole tensor; the largest 2B4T projection is 17.7M elements), embeddings in row chunks.

import { GGMLType } from '../gguf/types.js';
import { getFormat, getTernaryFormat } from '../formats/index.js';
import type { CheckpointTensor } from './checkpoint.js';
import { bf16ToF16Bits, decodeFloats, isFloatDType, u16View } from './dtype.js';
import { ConvertError } from './errors.js';
import type { WeightForm } from './hf-config.js';
import type { PlannedTensor } from './tensor-map.js';
import { exactTernaryCodes, roundScaleToF16, scalarOf, ternarize16, ternarizeLatent, unpackPrepacked, type TernaryResult } from './ternarize.js';

export const OUT_TYPES = ['i2_s', 'tq2_0', 'tq1_0', 'f16', 'f32'] as const;
export type OutType = (typeof OUT_TYPES)[number];
export const EMBED_TYPES = ['f16', 'q8_0', 'f32'] as const;
export type EmbedType = (typeof EMBED_TYPES)[number];

export const OUT_GGML_TYPE: Record<OutType, number> = {
  i2_s: GGMLType.I2_S, tq2_0: GGMLType.TQ2_0, tq1_0: GGMLType.TQ1_0, f16: GGMLType.F16, f32: GGMLType.F32,
};
export const EMBED_GGML_TYPE: Record<EmbedType, number> = { f16: GGMLType.F16, q8_0: GGMLType.Q8_0, f32: GGMLType.F32 };

/** general.file_type: llama.cpp's LLAMA_FTYPE (MOSTLY_TQ1_0 36, MOSTLY_TQ2_0 37, F16 1, ALL_F32 0); bitnet.cpp's I2_S is 40. */
export const FILE_TYPE: Record<OutType, number> = { i2_s: 40, tq2_0: 37, tq1_0: 36, f16: 1, f32: 0 };

/** Row-length requirement of each ternary outtype (elements). */
const ROW_MULTIPLE: Record<OutType, number> = { i2_s: 128, tq2_0: 256, tq1_0: 256, f16: 1, f32: 1 };

/** Elements per chunk when streaming row-wise tensors (embeddings): ~16 MB of f32. */
const CHUNK_ELEMENTS = 1 << 22;

export interface TensorJob {
  plan: PlannedTensor;
  src: CheckpointTensor;
  scale?: CheckpointTensor;
  /** ggml type id and dims (dims[0] = row length) */
  type: number;
  dims: number[];
  /** bytes read from the checkpoint for this tensor */
  sourceBytes: number;
}

const shapeStr = (s: number[]) => `[${s.join(', ')}]`;
const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Builds and checks the job of a planned tensor. */
export function buildJob(
  plan: PlannedTensor,
  src: CheckpointTensor,
  scale: CheckpointTensor | undefined,
  form: WeightForm,
  outtype: OutType,
  embedType: EmbedType,
): TensorJob {
  const { info } = src;
  const where = `tensor '${plan.hf}' (${plan.gguf})`;
  const dims = [...plan.shape].reverse();
  if (plan.role !== 'ternary') {
    if (!isFloatDType(info.dtype)) throw new ConvertError(`${where} has dtype ${info.dtype}; expected BF16, F16 or F32`);
    if (!same(info.shape, plan.shape)) {
      throw new ConvertError(`${where} has shape ${shapeStr(info.shape)}, but config.json implies ${shapeStr(plan.shape)}`);
    }
    const type = plan.role === 'norm' ? GGMLType.F32 : EMBED_GGML_TYPE[embedType];
    const block = getFormat(type).blockSize;
    if (dims[0]! % block !== 0) {
      throw new ConvertError(`${where} has rows of ${dims[0]} elements, which ${embedType.toUpperCase()} (blocks of ${block}) cannot hold; choose another --embed-type`);
    }
    return { plan, src, type, dims, sourceBytes: info.byteLength };
  }
  const [m, k] = plan.shape as [number, number];
  if (info.dtype === 'U8') {
    if (form === 'latent') {
      throw new ConvertError(`${where} is uint8 (pre-packed ternary?), but config.json has no quantization_config saying the weights are pre-quantized`);
    }
    if (m % 4 !== 0 || !same(info.shape, [m / 4, k])) {
      throw new ConvertError(`${where} has packed shape ${shapeStr(info.shape)}, but config.json implies [${m}, ${k}], packed as ${shapeStr([m / 4, k])}`);
    }
  } else if (isFloatDType(info.dtype)) {
    if (form === 'packed-divide') {
      throw new ConvertError(`${where} is ${info.dtype}, but quantization_config (transformers BitLinear) says the weights are packed uint8`);
    }
    if (!same(info.shape, plan.shape)) {
      throw new ConvertError(`${where} has shape ${shapeStr(info.shape)}, but config.json implies ${shapeStr(plan.shape)}`);
    }
  } else {
    throw new ConvertError(`${where} has dtype ${info.dtype}; expected BF16/F16/F32 latent weights or U8 packed ternary weights`);
  }
  if (scale) {
    if (!isFloatDType(scale.info.dtype) || scale.info.nElements !== 1) {
      throw new ConvertError(`tensor '${plan.scaleName}' must be a single BF16/F16/F32 value, but it is ${scale.info.dtype} ${shapeStr(scale.info.shape)}`);
    }
  }
  const mult = ROW_MULTIPLE[outtype];
  if (k % mult !== 0) {
    throw new ConvertError(
      `${where} has shape ${shapeStr(plan.shape)}: its rows of ${k} elements are not a multiple of ${mult}, which ${outtype.toUpperCase()} requires; ` +
        (outtype === 'i2_s' ? 'use --outtype tq2_0/f16' : 'use --outtype i2_s (rows % 128) or f16'),
    );
  }
  return { plan, src, scale, type: OUT_GGML_TYPE[outtype], dims, sourceBytes: info.byteLength + (scale?.info.byteLength ?? 0) };
}


/** Source bytes of a ternary job, read ahead while the previous tensor is being encoded. */
export interface Prefetched {
  src: Promise<Uint8Array>;
  scale?: Promise<Uint8Array>;
}

/** Starts reading a ternary job's source (float jobs stream in chunks instead and return undefined). */
export function prefetch(job: TensorJob): Prefetched | undefined {
  if (job.plan.role !== 'ternary') return undefined;
  const quiet = <T>(p: Promise<T>) => {
    p.catch(() => {}); // a failure is reported when the job is encoded, not as an unhandled rejection
    return p;
  };
  return {
    src: quiet(job.src.file.read(job.src.info)),
    scale: job.scale ? quiet(job.scale.file.read(job.scale.info)) : undefined,
  };
}

/** The ternary codes and the (f16-rounded) scale of a ternary job, from whichever form the checkpoint holds. */
export async function ternaryOf(job: TensorJob, form: WeightForm, fetched = prefetch(job)!): Promise<TernaryResult> {
  const { plan, src } = job;
  const [, k] = plan.shape as [number, number];
  if (src.info.dtype === 'U8' || form !== 'latent') {
    if (!job.scale) throw new ConvertError(`tensor '${plan.hf}' needs its weight_scale`);
    const ws = scalarOf(decodeFloats(await fetched.scale!, job.scale.info.dtype), plan.scaleName!);
    const bytes = await fetched.src;
    const codes =
      src.info.dtype === 'U8'
        ? unpackPrepacked(bytes, src.info.shape[0]!, k, plan.hf)
        : exactTernaryCodes(decodeFloats(bytes, src.info.dtype), plan.hf);
    // packed-divide: transformers' BitLinear divides by weight_scale -> alpha = 1/weight_scale (in f32).
    // offline-multiply: AutoBitLinear multiplies -> alpha = weight_scale. Either way alpha is then rounded
    // to f16 (usually changing 1/weight_scale slightly: the price of identical outtypes, see ternarize.ts).
    const alpha = form === 'packed-divide' ? Math.fround(1 / ws) : ws;
    return { codes, scale: roundScaleToF16(alpha, plan.hf) };
  }
  const bytes = await fetched.src;
  if (src.info.dtype === 'BF16' || src.info.dtype === 'F16') return ternarize16(u16View(bytes), src.info.dtype, plan.hf);
  return ternarizeLatent(decodeFloats(bytes, src.info.dtype), plan.hf);
}

/** Packs a ternary result into the job's GGUF type. */
export function packTernaryResult(job: TensorJob, t: TernaryResult): Uint8Array {
  const rowLength = job.dims[0]!;
  const tf = getTernaryFormat(job.type);
  if (tf) return tf.packTernary(t.codes, t.scale, rowLength);
  const values = new Float32Array(t.codes.length);
  for (let i = 0; i < values.length; i++) values[i] = t.codes[i]! * t.scale;
  return getFormat(job.type).pack!(values, rowLength);
}

/** The source values of a non-ternary job in row chunks (`values` is reused between chunks). */
export async function* floatChunks(job: TensorJob): AsyncGenerator<{ start: number; count: number; values: Float32Array }> {
  const rowLength = job.dims[0]!;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowLength));
  let buf: Float32Array | undefined;
  for await (const c of chunkBytes(job, rowsPerChunk * rowLength)) {
    if (!buf || buf.length !== c.count) buf = new Float32Array(c.count);
    yield { start: c.start, count: c.count, values: decodeFloats(c.bytes, job.src.info.dtype, buf) };
  }
}

/** Source bytes of a job in chunks of `step` elements, the next chunk read while this one is used. */
async function* chunkBytes(job: TensorJob, step: number): AsyncGenerator<{ start: number; count: number; bytes: Uint8Array }> {
  const n = job.src.info.nElements;
  const read = (start: number) => {
    const p = job.src.file.read(job.src.info, start, Math.min(step, n - start));
    p.catch(() => {}); // reported when awaited
    return p;
  };
  let next = n > 0 ? read(0) : undefined;
  for (let start = 0; start < n; start += step) {
    const bytes = await next!;
    next = start + step < n ? read(start + step) : undefined;
    yield { start, count: Math.min(step, n - start), bytes };
  }
}

/** Produces the job's bytes in order (ternary: one piece; float tensors: row chunks). */
export async function* encodeJob(job: TensorJob, form: WeightForm, fetched?: Prefetched): AsyncGenerator<Uint8Array> {
  if (job.plan.role === 'ternary') {
    yield packTernaryResult(job, await ternaryOf(job, form, fetched));
    return;
  }
  const dtype = job.src.info.dtype;
  if (job.type === GGMLType.F16 && (dtype === 'BF16' || dtype === 'F16')) {
    // 16-bit -> F16 straight from the bit patterns (BF16 through a 65536-entry table built with the
    // same f32 -> f16 rounding as the F16 format's pack)
    yield* sixteenToF16(job);
    return;
  }
  const fmt = getFormat(job.type);
  for await (const c of floatChunks(job)) yield fmt.pack!(c.values, job.dims[0]!);
}

async function* sixteenToF16(job: TensorJob): AsyncGenerator<Uint8Array> {
  const rowLength = job.dims[0]!;
  const step = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowLength)) * rowLength;
  const table = job.src.info.dtype === 'BF16' ? bf16ToF16Bits() : undefined;
  for await (const { count, bytes } of chunkBytes(job, step)) {
    if (!table) {
      yield bytes;
      continue;
    }
    const src = u16View(bytes);
    const out = new Uint16Array(count);
    for (let i = 0; i < count; i++) out[i] = table[src[i]!]!;
    yield new Uint8Array(out.buffer);
  }
}

