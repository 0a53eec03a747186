// A deterministic fake GenerationModel for the generation-loop tests: a small vocabulary of byte
// pieces, logits computed by a function of the whole sequence, and strict bookkeeping of the
// positions it is asked to evaluate (contiguous, inside the context) so the loop's use of the
// model is checked too.

import type { GenerationModel } from '../../src/generate/generate.js';

export type LogitsFn = (sequence: readonly number[], vocabSize: number) => Float32Array;

export interface FakeModelOptions {
  pieces: (string | Uint8Array)[];
  contextLength: number;
  logits: LogitsFn;
  eos?: number[];
  bosToken?: number;
}

export class FakeModel implements GenerationModel {
  readonly contextLength: number;
  readonly vocabSize: number;
  readonly bosToken?: number;
  readonly calls: { tokens: number[]; startPos: number }[] = [];
  sequence: number[] = [];
  resets = 0;
  /** Called after each evaluate (tests use it to abort mid-generation). */
  onEvaluate?: (call: { tokens: number[]; startPos: number }) => void;
  private readonly pieces: Uint8Array[];
  private readonly eos: Set<number>;
  private readonly fn: LogitsFn;

  constructor(o: FakeModelOptions) {
    const enc = new TextEncoder();
    this.pieces = o.pieces.map((p) => (typeof p === 'string' ? enc.encode(p) : p));
    this.vocabSize = this.pieces.length;
    this.contextLength = o.contextLength;
    this.eos = new Set(o.eos ?? []);
    this.fn = o.logits;
    if (o.bosToken !== undefined) this.bosToken = o.bosToken;
  }

  tokenBytes(id: number): Uint8Array {
    const p = this.pieces[id];
    if (!p) throw new Error(`fake model: no token ${id}`);
    return p;
  }

  isEndOfGeneration(id: number): boolean {
    return this.eos.has(id);
  }

  reset(): void {
    this.sequence = [];
    this.resets++;
  }

  async evaluate(tokens: readonly number[], startPos: number): Promise<Float32Array> {
    if (startPos !== this.sequence.length) {
      throw new Error(`fake model: evaluate at ${startPos} but ${this.sequence.length} positions are filled`);
    }
    if (tokens.length === 0) throw new Error('fake model: evaluate with no tokens');
    if (startPos + tokens.length > this.contextLength) {
      throw new Error(`fake model: positions up to ${startPos + tokens.length} exceed the context ${this.contextLength}`);
    }
    const call = { tokens: [...tokens], startPos };
    this.calls.push(call);
    this.sequence.push(...tokens);
    await Promise.resolve();
    this.onEvaluate?.(call);
    return this.fn(this.sequence, this.vocabSize);
  }
}

/** Logits that make `next(sequence)` the clear argmax (5 vs -5 elsewhere). */
export function scripted(next: (sequence: readonly number[]) => number): LogitsFn {
  return (seq, n) => {
    const l = new Float32Array(n).fill(-5);
    l[next(seq)] = 5;
    return l;
  };
}

/** Pseudo-random logits in [-3, 3) from an FNV-1a hash of the sequence and the token id. */
export function hashed(seq: readonly number[], n: number): Float32Array {
  let h = 0x811c9dc5;
  for (const t of seq) h = Math.imul(h ^ t, 0x01000193);
  const l = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x = Math.imul(h ^ (i * 0x9e3779b1), 0x01000193);
    x ^= x >>> 15;
    x = Math.imul(x, 0x2c1b3c6d);
    x ^= x >>> 12;
    l[i] = ((x >>> 0) / 4294967296) * 6 - 3;
  }
  return l;
}
