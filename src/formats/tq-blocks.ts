// What TQ1_0 and TQ2_0 share: 256-element blocks of 2-bit-or-less codes c = t + 1 followed by an
// f16 d. The two formats differ only in how a block's codes are laid out (packBlockCodes) and
// where d sits; the block loops (ggml's quantize_row_tq*_ref and our per-tensor packTernary) are here.
import { checkFinite, checkTernaryInput } from './common.js';
import { f32ToF16, writeF16Bits } from './half.js';
import { roundHalfAway } from './rounding.js';
import { f16BlockScale } from './ternary.js';

export const QK_K = 256;
const fround = Math.fround;

export interface TqLayout {
  name: string;
  blockBytes: number;
  /** byte offset of the f16 d inside a block */
  dOffset: number;
  /** writes the 256 codes c[x0 + j] + bias (in 0..2) of one block at out[o..] */
  packBlockCodes(out: Uint8Array, o: number, c: Uint8Array | Int8Array, x0: number, bias: number): void;
}

/** ggml's reference quantizer: per block d = max|x|, c = round_half_away(x / d) + 1. */
export function packTqValues(f: TqLayout, values: Float32Array, out: Uint8Array): Uint8Array {
  checkFinite(f.name, values);
  const codes = new Uint8Array(QK_K);
  for (let b = 0, o = 0; b < values.length / QK_K; b++, o += f.blockBytes) {
    const x0 = b * QK_K;
    let amax = 0;
    for (let j = 0; j < QK_K; j++) amax = Math.max(amax, Math.abs(values[x0 + j]!));
    const d = fround(amax);
    const id = d !== 0 ? fround(1 / d) : 0;
    for (let j = 0; j < QK_K; j++) codes[j] = roundHalfAway(fround(values[x0 + j]! * id)) + 1;
    f.packBlockCodes(out, o, codes, 0, 0);
    writeF16Bits(out, o + f.dOffset, f32ToF16(d));
  }
  return out;
}

/** Codes t with one per-tensor scale: d = f16(scale) in every block that has a nonzero code, 0 elsewhere. */
export function packTqTernary(f: TqLayout, codes: Int8Array, scale: number, out: Uint8Array): Uint8Array {
  checkTernaryInput(f.name, codes, scale);
  const dBits = f16BlockScale(f.name, scale);
  for (let b = 0, o = 0; b < codes.length / QK_K; b++, o += f.blockBytes) {
    const x0 = b * QK_K;
    let nz = 0;
    for (let j = 0; j < QK_K; j++) nz |= codes[x0 + j]!;
    f.packBlockCodes(out, o, codes, x0, 1);
    writeF16Bits(out, o + f.dOffset, nz !== 0 ? dBits : 0);
  }
  return out;
}
