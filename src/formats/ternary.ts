// Ternary x one scale, seen from float tensors (F32 / F16 / BF16 files that store t * alpha).
//
// ternarizeExact does not ternarize latent weights (that is convert/'s job, with mean |W|); it only
// recognises a tensor that already IS {-alpha, 0, +alpha} exactly and refuses anything else,
// naming the first value that does not fit.

import { FormatError, fmt, type TernaryTensor } from './common.js';
import { f32ToF16 } from './half.js';

/**
 * Codes and scale of a float tensor whose every value is exactly 0 (or -0), +alpha or -alpha.
 * alpha is |first nonzero value|; an all-zero tensor gives scale 0.
 */
export function ternarizeExact(values: Float32Array): TernaryTensor {
  const n = values.length;
  const codes = new Int8Array(n);
  let first = 0;
  while (first < n && values[first] === 0) first++;
  if (first === n) {
    // all zero (NaN would have stopped the scan: NaN !== 0)
    return { codes, scale: 0 };
  }
  const alpha = Math.abs(values[first]!);
  if (!Number.isFinite(alpha)) {
    throw new FormatError(`tensor is not ternary x one scale: element ${first} is ${values[first]}`);
  }
  // Compare bit patterns, without branches: |v| must have alpha's bits or be 0 (NaN is neither).
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const a = bits[first]! & 0x7fffffff;
  let bad = 0;
  for (let i = first; i < n; i++) {
    const w = bits[i]!;
    const m = w & 0x7fffffff;
    const isAlpha = ((m ^ a) - 1) >>> 31; // 1 iff m === a (both < 2^31)
    const isZero = (m - 1) >>> 31; // 1 iff m === 0
    bad |= (isAlpha | isZero) ^ 1;
    codes[i] = isAlpha * (1 - 2 * (w >>> 31));
  }
  if (bad !== 0) {
    let i = first;
    while ((bits[i]! & 0x7fffffff) === a || (bits[i]! & 0x7fffffff) === 0) i++;
    throw new FormatError(
      `tensor is not ternary x one scale: element ${i} is ${fmt(values[i]!)}, but element ${first} set the scale to ${alpha} ` +
        `(allowed values: 0, ${alpha}, ${-alpha})`,
    );
  }
  return { codes, scale: alpha };
}

/**
 * Checks the per-block scales of a block-scaled ternary format (TQ1_0 / TQ2_0) against one common
 * scale: blocks whose codes are all zero may carry any d; every other block's d must be equal.
 * `d[b]` is block b's scale, `nonzero[b]` whether block b has a nonzero code. Returns the common scale
 * (0 when every block is zero).
 */
export function commonBlockScale(format: string, d: Float32Array, nonzero: Uint8Array): number {
  let ref = -1;
  for (let b = 0; b < d.length; b++) {
    if (!nonzero[b]) continue;
    if (ref < 0) {
      ref = b;
      if (!Number.isFinite(d[b]!)) {
        throw new FormatError(`${format} tensor is not ternary x one scale: block ${b} has d=${d[b]}`);
      }
      continue;
    }
    if (d[b] !== d[ref]) {
      throw new FormatError(
        `${format} tensor is not ternary x one scale: block ${b} has d=${fmt(d[b]!)} while others have ${fmt(d[ref]!)} (first at block ${ref})`,
      );
    }
  }
  return ref < 0 ? 0 : d[ref]!;
}

/** f16 bits of a per-tensor scale written into every block's d; refuses scales f16 turns into Inf or 0. */
export function f16BlockScale(format: string, scale: number): number {
  const h = f32ToF16(scale);
  if ((h & 0x7c00) === 0x7c00) throw new FormatError(`${format}: scale ${scale} does not fit in the f16 block scale (max 65504)`);
  if ((h & 0x7fff) === 0 && scale !== 0) throw new FormatError(`${format}: scale ${scale} rounds to 0 in the f16 block scale`);
  return h;
}
