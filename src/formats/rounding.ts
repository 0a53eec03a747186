// Rounding to integers the way the C references do it.
//
// roundHalfEven: ties go to the even integer. This is ggml's nearest_int (the 1.5*2^23 magic-number
//   trick, used by bitnet.cpp's per-token int8 activation quantizer), torch.round and numpy's round.
//   JavaScript's Math.round is NOT this (it sends ties toward +Infinity).
// roundHalfAway: ties go away from zero. This is C's roundf / lroundf, used by ggml's reference
//   quantizers quantize_row_q8_0_ref (roundf) and quantize_row_tq{1,2}_0_ref (lroundf).
// Both are exact for every double (x - trunc(x) is computed without rounding).

export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +Infinity
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function roundHalfAway(x: number): number {
  const t = Math.trunc(x);
  const frac = x - t;
  if (frac >= 0.5) return t + 1;
  if (frac <= -0.5) return t - 1;
  return t;
}
