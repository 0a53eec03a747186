// Context shift: a sequence whose cache is full drops `discard` positions after its first `keep`
// and goes on (llama.cpp's --context-shift). The rows after the dropped span move down by
// `discard` positions, and their keys, stored already rotated by RoPE at their old positions, are
// rotated back by `discard` (rotations compose: R(p - d) k = R(-d) R(p) k), so attention sees them
// at their new positions. Values carry no position and only move.
//
// Rows kept this way are not what reading the kept tokens again would give (they attended to the
// dropped ones): callers must not reuse them as a cached prefix beyond `keep`.
import { f16ToF32, f32ToF16 } from '../formats/half.js';
import type { KVCache } from './kv-cache.js';

/** The RoPE the keys were rotated with: NEOX pairs (i, i + half), frequency theta^(-2i / (2 half)). */
export interface RopeSpec {
  half: number;
  theta: number;
}

/**
 * Drops positions [keep, keep + discard) of the first `n` positions of `kv` (a CPU pool's cache):
 * rows [keep + discard, n) move to [keep, n - discard), keys re-rotated. Returns the positions held after.
 */
export function shiftKV(kv: KVCache, keep: number, discard: number, n: number, rope: RopeSpec): number {
  const p = kv.pool;
  if (p.k.length === 0) throw new Error('context shift needs the KV cache in CPU memory');
  if (!(Number.isInteger(keep) && Number.isInteger(discard) && keep >= 0 && discard >= 0 && keep + discard <= n && n <= kv.capacity)) {
    throw new Error(`context shift: keep ${keep}, discard ${discard} of ${n} positions (capacity ${kv.capacity})`);
  }
  if (discard === 0) return n;
  const hd = p.headDim;
  const { half } = rope;
  // the rotation by -discard, per pair
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    const angle = -discard * Math.pow(rope.theta, (-2 * i) / (2 * half));
    cos[i] = Math.cos(angle);
    sin[i] = Math.sin(angle);
  }
  const f16 = p.type === 'f16';
  const start = kv.start;
  const moved = n - keep - discard;
  for (let l = 0; l < p.nLayers; l++) {
    for (const [arr, isKey] of [[p.k[l]!, true], [p.v[l]!, false]] as const) {
      for (let g = 0; g < p.nKVHeads; g++) {
        const base = (g * p.size + start) * hd;
        arr.copyWithin(base + keep * hd, base + (keep + discard) * hd, base + n * hd);
        if (!isKey) continue;
        for (let r = 0; r < moved; r++) {
          const o = base + (keep + r) * hd;
          for (let i = 0; i < half; i++) {
            const a = f16 ? f16ToF32(arr[o + i]!) : arr[o + i]!;
            const b = f16 ? f16ToF32(arr[o + i + half]!) : arr[o + i + half]!;
            const x = a * cos[i]! - b * sin[i]!;
            const y = a * sin[i]! + b * cos[i]!;
            arr[o + i] = f16 ? f32ToF16(x) : x;
            arr[o + i + half] = f16 ? f32ToF16(y) : y;
          }
        }
      }
    }
  }
  p.allocator.setUsed(kv.id, n - discard);
  return n - discard;
}
