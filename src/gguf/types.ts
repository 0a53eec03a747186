// GGUF container types: value type ids, ggml tensor type ids, and the block geometry of
// each tensor type. Facts from ggml's docs/gguf.md and ggml.h (plus the bitnet.cpp fork for 36-39).

/** Metadata value type ids, as stored in the file. */
export const GGUFValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6,
  BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GGUFValueType = (typeof GGUFValueType)[keyof typeof GGUFValueType];

/** ggml tensor type ids this project knows. 36-39 are bitnet.cpp's only in bitnet-arch files. */
export const GGMLType = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30,
  TQ1_0: 34, TQ2_0: 35,
  /** bitnet.cpp fork: 2-bit ternary, 128-element interleaved blocks + one f32 scale per tensor. */
  I2_S: 36,
  /** bitnet.cpp fork lookup-table layouts (not supported for reading data). */
  TL1: 38, TL2: 39,
} as const;
export type GGMLType = number;

/** Architectures whose files use the bitnet.cpp meaning of type ids 36-39. */
export const BITNET_ARCHS = new Set(['bitnet', 'bitnet-b1.58', 'bitnet-25']);

export interface TypeGeometry {
  name: string;
  /** elements per block */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
}

/** Block geometry of the types whose byte size this project can compute (ggml's type_traits). */
const GEOMETRY: Record<number, TypeGeometry> = {
  0: { name: 'F32', blockSize: 1, typeSize: 4 },
  1: { name: 'F16', blockSize: 1, typeSize: 2 },
  2: { name: 'Q4_0', blockSize: 32, typeSize: 18 },
  3: { name: 'Q4_1', blockSize: 32, typeSize: 20 },
  6: { name: 'Q5_0', blockSize: 32, typeSize: 22 },
  7: { name: 'Q5_1', blockSize: 32, typeSize: 24 },
  8: { name: 'Q8_0', blockSize: 32, typeSize: 34 },
  9: { name: 'Q8_1', blockSize: 32, typeSize: 36 },
  10: { name: 'Q2_K', blockSize: 256, typeSize: 84 },
  11: { name: 'Q3_K', blockSize: 256, typeSize: 110 },
  12: { name: 'Q4_K', blockSize: 256, typeSize: 144 },
  13: { name: 'Q5_K', blockSize: 256, typeSize: 176 },
  14: { name: 'Q6_K', blockSize: 256, typeSize: 210 },
  15: { name: 'Q8_K', blockSize: 256, typeSize: 292 },
  24: { name: 'I8', blockSize: 1, typeSize: 1 },
  25: { name: 'I16', blockSize: 1, typeSize: 2 },
  26: { name: 'I32', blockSize: 1, typeSize: 4 },
  27: { name: 'I64', blockSize: 1, typeSize: 8 },
  28: { name: 'F64', blockSize: 1, typeSize: 8 },
  30: { name: 'BF16', blockSize: 1, typeSize: 2 },
  34: { name: 'TQ1_0', blockSize: 256, typeSize: 54 },
  35: { name: 'TQ2_0', blockSize: 256, typeSize: 66 },
};

/** I2_S: n/4 packed bytes, then the f32 scale, padded: n/4 + 32 bytes per tensor. K % 128 == 0. */
export const I2S_BLOCK = 128;
export const I2S_TAIL_BYTES = 32;

export class GGUFError extends Error {
  override name = 'GGUFError';
}

/** Human name of a type id for messages, in the context of an architecture. */
export function typeName(type: number, arch?: string): string {
  if (type >= 36 && type <= 39 && arch !== undefined && BITNET_ARCHS.has(arch)) {
    return ({ 36: 'I2_S', 37: 'I8_S', 38: 'TL1', 39: 'TL2' } as Record<number, string>)[type];
  }
  return GEOMETRY[type]?.name ?? `type ${type}`;
}

/**
 * Byte size of a tensor of the given type and ggml dims (dims[0] = row length).
 * Throws a GGUFError naming the tensor when the type is unknown, collides with the
 * bitnet.cpp ids outside a bitnet file, or the row length does not fit the block size.
 */
export function tensorByteSize(type: number, dims: readonly number[], arch: string | undefined, tensorName: string): number {
  const n = dims.reduce((a, b) => a * b, 1);
  const rowLen = dims[0] ?? 1;
  if (type >= 36 && type <= 39) {
    if (arch === undefined || !BITNET_ARCHS.has(arch)) {
      throw new GGUFError(
        `tensor '${tensorName}' has type id ${type}, which only the bitnet.cpp fork defines (I2_S/TL1/TL2) and only in bitnet-architecture files; ` +
          `this file's architecture is '${arch ?? '(none)'}', where id ${type} is ${type === 39 ? "mainline ggml's MXFP4" : 'a removed or unknown mainline type'} and is not supported`,
      );
    }
    if (type !== GGMLType.I2_S) {
      throw new GGUFError(`tensor '${tensorName}' uses bitnet.cpp type ${typeName(type, arch)} (${type}), which is not supported; requantize to I2_S, TQ2_0 or TQ1_0`);
    }
    if (rowLen % I2S_BLOCK !== 0) {
      throw new GGUFError(`tensor '${tensorName}' is I2_S with row length ${rowLen}, which is not a multiple of ${I2S_BLOCK}`);
    }
    return n / 4 + I2S_TAIL_BYTES;
  }
  const g = GEOMETRY[type];
  if (!g) throw new GGUFError(`tensor '${tensorName}' has unknown ggml type id ${type}`);
  if (rowLen % g.blockSize !== 0) {
    throw new GGUFError(`tensor '${tensorName}' is ${g.name} with row length ${rowLen}, which is not a multiple of its block size ${g.blockSize}`);
  }
  return (n / g.blockSize) * g.typeSize;
}

export function typeGeometry(type: number): TypeGeometry | undefined {
  return GEOMETRY[type];
}
