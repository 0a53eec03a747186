// Typed GGUF metadata values. A value keeps its on-disk type so that read -> write is byte-exact.
import { GGUFValueType } from './types.js';

export type GGUFScalar = number | bigint | boolean | string;

export interface GGUFMetaValue {
  /** a GGUFValueType id */
  type: number;
  /** scalar, or an array of scalars / nested GGUFMetaValue arrays for ARRAY */
  value: GGUFScalar | GGUFScalar[] | GGUFMetaValue[];
  /** element type, for ARRAY */
  itemType?: number;
}

export const metaU8 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.UINT8, value: v });
export const metaI8 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.INT8, value: v });
export const metaU16 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.UINT16, value: v });
export const metaI16 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.INT16, value: v });
export const metaU32 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.UINT32, value: v });
export const metaI32 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.INT32, value: v });
export const metaU64 = (v: bigint | number): GGUFMetaValue => ({ type: GGUFValueType.UINT64, value: BigInt(v) });
export const metaI64 = (v: bigint | number): GGUFMetaValue => ({ type: GGUFValueType.INT64, value: BigInt(v) });
export const metaF32 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.FLOAT32, value: v });
export const metaF64 = (v: number): GGUFMetaValue => ({ type: GGUFValueType.FLOAT64, value: v });
export const metaBool = (v: boolean): GGUFMetaValue => ({ type: GGUFValueType.BOOL, value: v });
export const metaString = (v: string): GGUFMetaValue => ({ type: GGUFValueType.STRING, value: v });
export const metaArray = (itemType: number, values: GGUFScalar[] | GGUFMetaValue[]): GGUFMetaValue => ({
  type: GGUFValueType.ARRAY,
  itemType,
  value: values,
});

/** The plain JS value of a metadata entry: 64-bit ints become numbers when they fit exactly. */
export function plainValue(v: GGUFMetaValue): unknown {
  if (v.type === GGUFValueType.ARRAY) {
    if (v.itemType === GGUFValueType.ARRAY) return (v.value as GGUFMetaValue[]).map(plainValue);
    if (v.itemType === GGUFValueType.UINT64 || v.itemType === GGUFValueType.INT64) {
      return (v.value as bigint[]).map(bigToPlain);
    }
    return v.value;
  }
  if (typeof v.value === 'bigint') return bigToPlain(v.value);
  return v.value;
}

function bigToPlain(b: bigint): number | bigint {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(b) : b;
}
