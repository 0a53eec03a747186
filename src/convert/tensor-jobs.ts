// One job per output tensor: where its data comes from, what GGUF type/dims it gets, and how its
// bytes are produced. All shape / dtype / block-size checks happen when the jobs are built, before a
// byte of output is written; encoding then streams: ternary tensors one tensor at a time (the absmean
// needs the whole tensor; the largest 2B4T projection is 17.7M elements), embeddings in row chunks.

import { GGMLType } from '../gguf/types.js';
import { getFormat, getTernaryFormat } from '../formats/index.js';
import type { CheckpointTensor } from './checkpoint.js';
import { decodeFloats, isFloatDType } from './dtype.js';
import { ConvertError } from './errors.js';
import type { WeightForm } from './hf-config.js';
import type { PlannedTensor } from './tensor-map.js';
import { exactTernaryCodes, roundScaleToF16, scalarOf, ternarizeLatent, unpackPrepacked, type TernaryResult } from './ternarize.js';

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

async function readFloats(t: CheckpointTensor, start?: number, count?: number, out?: Float32Array): Promise<Float32Array> {
  const bytes = await t.file.read(t.info, start, count);
  return decodeFloats(bytes, t.info.dtype, out);
}

/** The ternary codes and the (f16-rounded) scale of a ternary job, from whichever form the checkpoint holds. */
export async function ternaryOf(job: TensorJob, form: WeightForm): Promise<TernaryResult> {
  const { plan, src } = job;
  const [, k] = plan.shape as [number, number];
  if (src.info.dtype === 'U8' || form !== 'latent') {
    if (!job.scale) throw new ConvertError(`tensor '${plan.hf}' needs its weight_scale`);
    const ws = scalarOf(await readFloats(job.scale), plan.scaleName!);
    const codes =
      src.info.dtype === 'U8'
        ? unpackPrepacked(await src.file.read(src.info), src.info.shape[0]!, k, plan.hf)
        : exactTernaryCodes(await readFloats(src), plan.hf);
    // packed-divide: transformers' BitLinear divides by weight_scale -> alpha = 1/weight_scale (in f32).
    // offline-multiply: AutoBitLinear multiplies -> alpha = weight_scale. Either way alpha is then rounded
    // to f16 (usually changing 1/weight_scale slightly: the price of identical outtypes, see ternarize.ts).
    const alpha = form === 'packed-divide' ? Math.fround(1 / ws) : ws;
    return { codes, scale: roundScaleToF16(alpha, plan.hf) };
  }
  return ternarizeLatent(await readFloats(src), plan.hf);
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
  const n = job.src.info.nElements;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowLength));
  let buf: Float32Array | undefined;
  for (let start = 0; start < n; start += rowsPerChunk * rowLength) {
    const count = Math.min(rowsPerChunk * rowLength, n - start);
    if (!buf || buf.length !== count) buf = new Float32Array(count);
    yield { start, count, values: await readFloats(job.src, start, count, buf) };
  }
}

/** Produces the job's bytes in order (ternary: one piece; float tensors: row chunks). */
export async function* encodeJob(job: TensorJob, form: WeightForm): AsyncGenerator<Uint8Array> {
  if (job.plan.role === 'ternary') {
    yield packTernaryResult(job, await ternaryOf(job, form));
    return;
  }
  const fmt = getFormat(job.type);
  for await (const c of floatChunks(job)) yield fmt.pack!(c.values, job.dims[0]!);
}

