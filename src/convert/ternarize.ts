// THE ternarization of the converter: every ternary output (I2_S, TQ2_0, TQ1_0, F16, F32) is packed
// from the codes and the one scale this module returns, so all outtypes hold identical weights.
//
// Latent (bf16/f16/f32) weights, per TENSOR, exactly as transformers' BitNet `WeightQuant` (online
// AutoBitLinear) and llama.cpp's BitnetModel.weight_quant compute it in float32:
//   beta = max(mean(|W|), 1e-5)        the mean is summed in float64 here and rounded once to f32 (torch
//                                      reduces in f32; the two may differ in the last f32 ulp of beta)
//   s    = f32(1 / beta)               (both references multiply by the inverse: W * s)
//   T    = clamp(round(f32(W * s)), -1, 1), round = torch.round = round half to EVEN
// Because of the clamp only |W*s| vs 0.5 matters: T = +1 if W*s > 0.5, -1 if W*s < -0.5, else 0
// (an exact tie W*s = +-0.5 rounds to even, i.e. 0). The BitNet b1.58 paper writes the same rule as
// RoundClip(W / (beta + eps)); the implementations above clamp beta instead of adding eps, and we follow
// the implementations.
//   alpha = beta (the dequantized weight is T * beta; HF divides by s, which equals beta to within an ulp).
//
// Pre-packed checkpoints (quantization_config.quant_method "bitnet", transformers' BitLinear): uint8
// [M/4, K] where W[i*(M/4) + r, k] = ((P[r, k] >> 2i) & 3) - 1, i = 0..3 (four stacked row blocks), plus a
// scalar weight_scale that transformers DIVIDES by (y = T.q / (s_act * weight_scale)): alpha = 1/weight_scale.
// (AutoBitLinear in "offline" mode instead MULTIPLIES by weight_scale: alpha = weight_scale; see hf-config.ts.)
// Code 3 is not ternary and is refused.
//
// The scale is then rounded ONCE to f16 (round to nearest even): TQ1_0 and TQ2_0 can only store an f16
// block scale, I2_S stores f32, F16/F32 store T * alpha as floats. Using the f16-rounded alpha for every
// outtype makes them all hold exactly the same ternary values AND scale. The price: alpha moves by at most
// 2^-11 relative (e.g. 1/weight_scale of a pre-packed checkpoint is generally not an f16 value, so it does
// change slightly), which is far below the ternary quantization error itself.

import { f16ToF32, f32ToF16 } from '../formats/half.js';
import { ConvertError } from './errors.js';

const fround = Math.fround;
const EPS_F32 = fround(1e-5);

export interface TernaryResult {
  /** -1 / 0 / +1, row-major like the HF tensor [M, K] */
  codes: Int8Array;
  /** the per-tensor scale, already rounded to an f16-representable value */
  scale: number;
}

/** Rounds a per-tensor scale to the nearest f16 value (ties to even); refuses what f16 cannot hold. */
export function roundScaleToF16(alpha: number, tensor: string): number {
  if (!Number.isFinite(alpha)) throw new ConvertError(`tensor '${tensor}': its scale is ${alpha}`);
  const h = f32ToF16(alpha);
  const r = f16ToF32(h);
  if (!Number.isFinite(r)) throw new ConvertError(`tensor '${tensor}': scale ${alpha} is too large for the f16 block scale of TQ1_0/TQ2_0 (max 65504)`);
  if (r === 0 && alpha !== 0) throw new ConvertError(`tensor '${tensor}': scale ${alpha} rounds to 0 in f16`);
  return r;
}

/** beta = max(f32(mean |W|), 1e-5); throws naming the tensor when W holds NaN or infinity. */
export function absMean(values: Float32Array, tensor: string): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.abs(values[i]!);
  if (!Number.isFinite(sum)) {
    const bad = values.findIndex((v) => !Number.isFinite(v));
    throw new ConvertError(`tensor '${tensor}': element ${bad} is ${values[bad]}; cannot ternarize non-finite weights`);
  }
  const beta = fround(values.length > 0 ? sum / values.length : 0);
  return beta > EPS_F32 ? beta : EPS_F32;
}

/** Ternary codes of latent weights with s = f32(1/beta), into `out` (same length as values). */
export function ternaryCodes(values: Float32Array, beta: number, out: Int8Array): void {
  const s = fround(1 / beta);
  for (let i = 0; i < values.length; i++) {
    const v = fround(values[i]! * s);
    out[i] = v > 0.5 ? 1 : v < -0.5 ? -1 : 0;
  }
}

/** |value| of every 16-bit pattern of a dtype (BF16 / F16), as float64: the summing table of ternarize16. */
const absTables = new Map<string, Float64Array>();
function absTable(dtype: 'BF16' | 'F16'): Float64Array {
  let t = absTables.get(dtype);
  if (!t) {
    t = new Float64Array(65536);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    for (let v = 0; v < 65536; v++) {
      if (dtype === 'BF16') {
        u32[0] = v << 16;
        t[v] = Math.abs(f32[0]!);
      } else {
        t[v] = Math.abs(f16ToF32(v));
      }
    }
    absTables.set(dtype, t);
  }
  return t;
}

/** The value of every 16-bit pattern of a dtype, as f32. */
const valueTables = new Map<string, Float32Array>();
function allValues(dtype: 'BF16' | 'F16'): Float32Array {
  let all = valueTables.get(dtype);
  if (!all) {
    all = new Float32Array(65536);
    const bits = new Uint32Array(all.buffer);
    if (dtype === 'BF16') for (let v = 0; v < 65536; v++) bits[v] = v << 16;
    else for (let v = 0; v < 65536; v++) all[v] = f16ToF32(v);
    valueTables.set(dtype, all);
  }
  return all;
}

/**
 * The same ternarization for 16-bit latent weights, straight from their bit patterns: the sum of |W|
 * runs in the same order through a table of |value|, and because a 16-bit weight has only 65536 possible
 * values, the code of each is computed once (with exactly the float path's rule) and looked up.
 * Results are identical to ternarizeLatent on the decoded values; it is just several times faster.
 */
export function ternarize16(bits: Uint16Array, dtype: 'BF16' | 'F16', tensor: string): TernaryResult {
  const abs = absTable(dtype);
  let sum = 0;
  for (let i = 0; i < bits.length; i++) sum += abs[bits[i]!]!;
  if (!Number.isFinite(sum)) {
    const bad = bits.findIndex((b) => !Number.isFinite(abs[b]!));
    throw new ConvertError(`tensor '${tensor}': element ${bad} is ${abs[bits[bad]!]! === Infinity ? 'infinite' : 'NaN'}; cannot ternarize non-finite weights`);
  }
  let beta = fround(bits.length > 0 ? sum / bits.length : 0);
  if (!(beta > EPS_F32)) beta = EPS_F32;
  // code of every bit pattern: apply ternaryCodes' rule to all 65536 decoded patterns
  const table = new Int8Array(65536);
  ternaryCodes(allValues(dtype), beta, table);
  const codes = new Int8Array(bits.length);
  for (let i = 0; i < bits.length; i++) codes[i] = table[bits[i]!]!;
  return { codes, scale: roundScaleToF16(beta, tensor) };
}

/** Absmean ternarization of a latent weight tensor (see the top of this file). */
export function ternarizeLatent(values: Float32Array, tensor: string): TernaryResult {
  const beta = absMean(values, tensor);
  const codes = new Int8Array(values.length);
  ternaryCodes(values, beta, codes);
  return { codes, scale: roundScaleToF16(beta, tensor) };
}

/**
 * Unpacks a transformers BitLinear weight: packed uint8 [rows, K] (rows = M/4) -> codes [M, K] with
 * W[i*rows + r, k] = ((P[r,k] >> 2i) & 3) - 1. A code 3 is refused, naming the tensor and the element.
 */
export function unpackPrepacked(packed: Uint8Array, rows: number, k: number, tensor: string): Int8Array {
  if (packed.length !== rows * k) {
    throw new ConvertError(`tensor '${tensor}': ${packed.length} packed bytes do not make [${rows}, ${k}]`);
  }
  const block = rows * k;
  const codes = new Int8Array(4 * block);
  let bad = 0;
  for (let j = 0; j < block; j++) {
    const p = packed[j]!;
    bad |= p & (p >> 1) & 0x55;
    codes[j] = (p & 3) - 1;
    codes[block + j] = ((p >> 2) & 3) - 1;
    codes[2 * block + j] = ((p >> 4) & 3) - 1;
    codes[3 * block + j] = (p >> 6) - 1;
  }
  if (bad !== 0) {
    const e = codes.indexOf(2);
    const row = Math.floor(e / k);
    throw new ConvertError(
      `tensor '${tensor}' is not ternary: packed element [${row}, ${e % k}] (byte [${row % rows}, ${e % k}], bits ${2 * Math.floor(row / rows)}-${2 * Math.floor(row / rows) + 1}) ` +
        `has code 3, which is not one of the ternary codes 0, 1, 2 (-1, 0, +1)`,
    );
  }
  return codes;
}

/** Codes of a float tensor that already holds exactly -1, 0, +1 (AutoBitLinear offline, unpacked). */
export function exactTernaryCodes(values: Float32Array, tensor: string): Int8Array {
  const codes = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === 1) codes[i] = 1;
    else if (v === -1) codes[i] = -1;
    else if (v !== 0) throw new ConvertError(`tensor '${tensor}' should hold ternary values -1/0/+1 (offline BitNet weights) but element ${i} is ${v}`);
  }
  return codes;
}

/** The scalar value of a weight_scale tensor (must hold exactly one finite, nonzero value). */
export function scalarOf(values: Float32Array, tensor: string): number {
  if (values.length !== 1) throw new ConvertError(`tensor '${tensor}' should be a single scalar, but it has ${values.length} elements`);
  const v = values[0]!;
  if (!Number.isFinite(v) || v === 0) throw new ConvertError(`tensor '${tensor}' is ${v}; a weight scale must be finite and nonzero`);
  return v;
}
