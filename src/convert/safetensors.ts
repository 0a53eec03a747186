// safetensors reader, by byte range: the checkpoint is streamed, never loaded whole.
//
// Layout (huggingface/safetensors):
//   bytes 0..7        N, the header length, u64 little-endian
//   bytes 8..8+N-1    UTF-8 JSON object: { "<tensor name>": { "dtype": "BF16", "shape": [d0, d1, ...],
//                     "data_offsets": [begin, end] }, ..., "__metadata__": { string: string } (optional) };
//                     may be padded with trailing spaces
//   bytes 8+N..       the data section; a tensor's bytes are [8+N+begin, 8+N+end), row-major, little-endian
// Everything is validated before any tensor is read: the header fits in the file, the JSON parses,
// each entry has a known dtype, integer shape and offsets, end - begin == product(shape) * dtype size,
// offsets lie inside the data section, and no two tensors overlap. Errors name the file and tensor.
// This module only needs a ByteSource (browser-safe); opening files on disk is checkpoint.ts's job.

import type { ByteSource } from '../gguf/source.js';

export type SafetensorsDType = 'BF16' | 'F16' | 'F32' | 'U8' | 'I8';

export const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = { BF16: 2, F16: 2, F32: 4, U8: 1, I8: 1 };

/** dtypes other safetensors files use, named in the error so the user knows what was found. */
const OTHER_DTYPES = new Set(['BOOL', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F64']);

/** The official library refuses headers above 100 MB; so do we (a lying length could ask for gigabytes). */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  nElements: number;
  /** absolute byte offset of the tensor's data in the file */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
  /** absolute offset of the data section */
  dataOffset: number;
}

/** Parses and validates a header. `label` names the file in messages; `fileSize` bounds the offsets. */
export function parseSafetensorsHeader(headerJson: Uint8Array, dataOffset: number, fileSize: number, label: string): SafetensorsHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerJson));
  } catch (e) {
    throw new SafetensorsError(`${label}: the safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SafetensorsError(`${label}: the safetensors header is not a JSON object`);
  }
  const dataSize = fileSize - dataOffset;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, label);
      continue;
    }
    tensors.set(name, parseEntry(name, entry, dataOffset, dataSize, label));
  }
  // No two tensors may share bytes.
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      throw new SafetensorsError(
        `${label}: tensors '${prev.name}' and '${cur.name}' overlap in the data section ` +
          `(data_offsets [${prev.offset - dataOffset}, ${prev.offset - dataOffset + prev.byteLength}] and ` +
          `[${cur.offset - dataOffset}, ${cur.offset - dataOffset + cur.byteLength}])`,
      );
    }
  }
  return { tensors, metadata, dataOffset };
}

function parseMetadata(entry: unknown, label: string): Record<string, string> {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new SafetensorsError(`${label}: __metadata__ must be an object of strings`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new SafetensorsError(`${label}: __metadata__ value '${k}' is not a string`);
    out[k] = v;
  }
  return out;
}

function parseEntry(name: string, entry: unknown, dataOffset: number, dataSize: number, label: string): SafetensorsTensorInfo {
  const where = `${label}: tensor '${name}'`;
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new SafetensorsError(`${where}: header entry is not an object`);
  }
  const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string') throw new SafetensorsError(`${where}: missing dtype`);
  if (!(dtype in DTYPE_SIZE)) {
    const known = OTHER_DTYPES.has(dtype) ? 'a safetensors dtype this converter does not handle' : 'an unknown dtype';
    throw new SafetensorsError(`${where} has dtype ${dtype}, ${known}; supported: BF16, F16, F32, U8, I8`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    throw new SafetensorsError(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const nElements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = nElements * DTYPE_SIZE[dtype as SafetensorsDType];
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} [${shape.join(', ')}] needs ${expected}`,
    );
  }
  if (end > dataSize) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] reach past the end of the data section (${dataSize} bytes; the file is truncated or the header lies)`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape: shape as number[], nElements, offset: dataOffset + begin, byteLength: expected };
}

/** One open safetensors file: validated header + range reads of tensor data. */
export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    readonly label: string,
    readonly header: SafetensorsHeader,
  ) {}

  static async open(source: ByteSource, label: string): Promise<SafetensorsFile> {
    if (source.size < 8) {
      throw new SafetensorsError(`${label}: ${source.size} bytes is too short for a safetensors file (needs an 8-byte header length)`);
    }
    const lenBytes = await source.read(0, 8);
    const n = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(`${label}: header length ${n} is larger than the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
    }
    const headerLen = Number(n);
    if (8 + headerLen > source.size) {
      throw new SafetensorsError(
        `${label}: header length ${headerLen} reaches past the end of the file (${source.size} bytes; truncated or not a safetensors file)`,
      );
    }
    const json = await source.read(8, headerLen);
    return new SafetensorsFile(source, label, parseSafetensorsHeader(json, 8 + headerLen, source.size, label));
  }

  get tensors(): Map<string, SafetensorsTensorInfo> {
    return this.header.tensors;
  }

  /** Bytes of a tensor, or of elements [start, start+count) of it. */
  async read(info: SafetensorsTensorInfo, start = 0, count = info.nElements): Promise<Uint8Array> {
    if (start < 0 || count < 0 || start + count > info.nElements) {
      throw new SafetensorsError(`${this.label}: tensor '${info.name}': elements [${start}, ${start + count}) are out of range`);
    }
    const size = DTYPE_SIZE[info.dtype];
    return this.source.read(info.offset + start * size, count * size);
  }
}
