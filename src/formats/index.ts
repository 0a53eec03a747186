// Registry of the weight formats by ggml type id, and the two questions the loader asks of a tensor:
// "give me f32" (dequantize) and "give me ternary codes x one scale" (ternaryFromTensor).
//
// Type id 36 means bitnet.cpp's I2_S here; the GGUF layer (tensorByteSize) refuses ids 36-39 outside
// bitnet-architecture files, so a tensor that reaches this registry with id 36 is I2_S.

import { FormatError, type TernaryFormat, type TernaryTensor, type WeightFormat } from './common.js';
import { bf16Format } from './bf16.js';
import { f16Format } from './f16.js';
import { f32Format } from './f32.js';
import { i2_sFormat } from './i2_s.js';
import { DEFAULT_I2S_LAYOUT, unpackI2STernary, type I2SLayout } from './i2_s-layouts.js';
import { q6_kFormat } from './q6_k.js';
import { q8_0Format } from './q8_0.js';
import { ternarizeExact } from './ternary.js';
import { tq1_0Format } from './tq1_0.js';
import { tq2_0Format } from './tq2_0.js';

export { FormatError, type TernaryFormat, type TernaryTensor, type WeightFormat } from './common.js';
export { ternarizeExact } from './ternary.js';
export {
  checkI2SLayout, packI2S, unpackI2STernary, I2S_LAYOUTS, DEFAULT_I2S_LAYOUT, I2S_LAYOUT_HINT, type I2SLayout,
} from './i2_s-layouts.js';
export { roundHalfEven, roundHalfAway } from './rounding.js';
export { f32ToF16, f16ToF32, f32ToBf16, bf16ToF32 } from './half.js';
export { bf16Format, f16Format, f32Format, i2_sFormat, q6_kFormat, q8_0Format, tq1_0Format, tq2_0Format };

const FORMATS: ReadonlyMap<number, WeightFormat> = new Map<number, WeightFormat>(
  [f32Format, f16Format, bf16Format, q8_0Format, q6_kFormat, tq1_0Format, tq2_0Format, i2_sFormat].map((f) => [f.type, f]),
);
const TERNARY: ReadonlyMap<number, TernaryFormat> = new Map<number, TernaryFormat>(
  [tq1_0Format, tq2_0Format, i2_sFormat].map((f) => [f.type, f]),
);
const FLOAT_TYPES = new Set([f32Format.type, f16Format.type, bf16Format.type]);

function supportedNames(): string {
  return [...FORMATS.values()].map((f) => `${f.name} (${f.type})`).join(', ');
}

/** The format module of a ggml type id; throws a FormatError for types this project cannot decode. */
export function getFormat(type: number): WeightFormat {
  const f = FORMATS.get(type);
  if (!f) throw new FormatError(`no weight format for ggml type id ${type}; supported: ${supportedNames()}`);
  return f;
}

/** The ternary format of a type id (TQ1_0, TQ2_0, I2_S), or undefined. */
export function getTernaryFormat(type: number): TernaryFormat | undefined {
  return TERNARY.get(type);
}

/** Decodes a tensor of any supported type to f32 (as ggml's to_float). */
export function dequantize(type: number, bytes: Uint8Array, nElements: number, rowLength: number): Float32Array {
  return getFormat(type).unpack(bytes, nElements, rowLength);
}

/**
 * Ternary codes and the one per-tensor scale of a tensor: TQ1_0 / TQ2_0 / I2_S via unpackTernary (I2_S
 * in `i2sLayout`, default x86), F32 / F16 / BF16 holding exactly {-alpha, 0, +alpha} via ternarizeExact.
 * Anything else (or a float tensor that is not exactly ternary) is refused with a FormatError.
 */
export function ternaryFromTensor(
  type: number, bytes: Uint8Array, nElements: number, rowLength: number, i2sLayout: I2SLayout = DEFAULT_I2S_LAYOUT,
): TernaryTensor {
  if (type === i2_sFormat.type) return unpackI2STernary(bytes, nElements, rowLength, i2sLayout);
  const t = TERNARY.get(type);
  if (t) return t.unpackTernary(bytes, nElements, rowLength);
  if (FLOAT_TYPES.has(type)) return ternarizeExact(getFormat(type).unpack(bytes, nElements, rowLength));
  const name = FORMATS.get(type)?.name ?? `type id ${type}`;
  throw new FormatError(
    `${name} tensors cannot be read as ternary weights; ternary weights must be TQ1_0, TQ2_0, I2_S, or F32/F16/BF16 holding exactly {-alpha, 0, +alpha}`,
  );
}
