// Small seedable pseudo-random generator for sampling: xoshiro128** (Blackman & Vigna), 32-bit
// state words, seeded through splitmix32 so that nearby seeds give unrelated streams.
//
// Why not Math.random: sampling must be reproducible (same seed + same logits = same tokens) in
// Node and in browsers alike. Why this one: four uint32 words of state, only 32-bit integer
// operations (Math.imul, shifts), period 2^128 - 1, passes BigCrush; plenty for drawing tokens.
//
// Seeds are numbers: any safe integer (negative included); both 32-bit halves go into the state.

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** One splitmix32 step from `x`; returns [next state, output]. */
function splitmix32(x: number): [number, number] {
  const s = (x + 0x9e3779b9) | 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [s, z >>> 0];
}

/** A seed drawn from the platform's crypto source (Node 20 and browsers), else Math.random. */
export function randomSeed(): number {
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (c?.getRandomValues) {
    const a = c.getRandomValues(new Uint32Array(1));
    return a[0]!;
  }
  return Math.floor(Math.random() * TWO_POW_32);
}

export class Xoshiro128 {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new Error(`seed must be a safe integer, got ${seed}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    // Mix both halves into the splitmix stream; the state can never be all zero because
    // splitmix32 outputs of consecutive states are not all zero.
    let st = lo ^ Math.imul(hi, 0x27d4eb2d);
    let out: number;
    [st, out] = splitmix32(st ^ hi);
    this.s0 = out | 0;
    [st, out] = splitmix32(st);
    this.s1 = out | 0;
    [st, out] = splitmix32(st);
    this.s2 = out | 0;
    [, out] = splitmix32(st);
    this.s3 = out | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator with the given raw state words (for tests against the reference vectors). */
  static fromState(s0: number, s1: number, s2: number, s3: number): Xoshiro128 {
    const g = new Xoshiro128(0);
    g.s0 = s0 | 0;
    g.s1 = s1 | 0;
    g.s2 = s2 | 0;
    g.s3 = s3 | 0;
    return g;
  }

  /** Next uint32 (xoshiro128**). */
  nextU32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const a = this.nextU32() >>> 5; // 27 bits
    const b = this.nextU32() >>> 6; // 26 bits
    return (a * 67108864 + b) / TWO_POW_53;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
