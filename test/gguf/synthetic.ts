// Synthetic GGUF content for tests: metadata holding every value type (edge values included)
// and a few small tensors of several types with deterministic bytes.
import {
  GGMLType, GGUFValueType as V, type GGUFMetaValue, type GGUFTensorWithData,
  metaArray, metaBool, metaF32, metaF64, metaI16, metaI32, metaI64, metaI8, metaString, metaU16, metaU32, metaU64, metaU8,
} from '../../src/gguf/index.js';

/** Every scalar type, every array item type, nested and empty arrays, bigints above 2^53. */
export function allTypesMetadata(extra: [string, GGUFMetaValue][] = []): [string, GGUFMetaValue][] {
  const U64_MAX = 2n ** 64n - 1n;
  return [
    ['general.architecture', metaString('synthetic')],
    ['t.u8', metaU8(255)], ['t.u8.zero', metaU8(0)],
    ['t.i8', metaI8(-128)], ['t.i8.max', metaI8(127)],
    ['t.u16', metaU16(65535)], ['t.i16', metaI16(-32768)],
    ['t.u32', metaU32(4294967295)], ['t.i32', metaI32(-2147483648)],
    ['t.f32', metaF32(Math.fround(0.1))], ['t.f32.neg0', metaF32(-0)], ['t.f32.inf', metaF32(-Infinity)],
    ['t.f64', metaF64(Math.PI)], ['t.f64.tiny', metaF64(5e-324)],
    ['t.bool.true', metaBool(true)], ['t.bool.false', metaBool(false)],
    ['t.str', metaString('plain ascii')],
    ['t.str.empty', metaString('')],
    ['t.str.utf8', metaString('héllo wörld — 日本語 🎉 \u0000 \uFEFFbom')],
    ['t.str.bom', metaString('\uFEFF')],
    ['t.u64.small', metaU64(42n)],
    ['t.u64.max', metaU64(U64_MAX)],
    ['t.u64.2^53+1', metaU64(2n ** 53n + 1n)],
    ['t.i64.min', metaI64(-(2n ** 63n))],
    ['t.i64.neg', metaI64(-5n)],
    ['t.arr.u8', metaArray(V.UINT8, [0, 1, 254, 255])],
    ['t.arr.i8', metaArray(V.INT8, [-128, -1, 0, 127])],
    ['t.arr.u16', metaArray(V.UINT16, [0, 65535])],
    ['t.arr.i16', metaArray(V.INT16, [-32768, 32767])],
    ['t.arr.u32', metaArray(V.UINT32, [0, 1, 4294967295])],
    ['t.arr.i32', metaArray(V.INT32, [-2147483648, 2147483647, -1])],
    ['t.arr.f32', metaArray(V.FLOAT32, [1.5, -2.25, Math.fround(1e-20), Infinity])],
    ['t.arr.f64', metaArray(V.FLOAT64, [Math.E, -1e300, 0])],
    ['t.arr.bool', metaArray(V.BOOL, [true, false, true])],
    ['t.arr.str', metaArray(V.STRING, ['', 'a', 'ünïcödé', '🦙🦙', '\uFEFFlead bom'])],
    ['t.arr.u64', metaArray(V.UINT64, [0n, 2n ** 53n + 1n, U64_MAX])],
    ['t.arr.i64', metaArray(V.INT64, [-(2n ** 63n), -1n, 2n ** 63n - 1n])],
    ['t.arr.empty.u8', metaArray(V.UINT8, [])],
    ['t.arr.empty.str', metaArray(V.STRING, [])],
    ['t.arr.empty.f64', metaArray(V.FLOAT64, [])],
    ['t.arr.empty.arr', metaArray(V.ARRAY, [])],
    ['t.arr.nested.u32', metaArray(V.ARRAY, [metaArray(V.UINT32, [1, 2]), metaArray(V.UINT32, []), metaArray(V.UINT32, [3])])],
    ['t.arr.nested.mixed', metaArray(V.ARRAY, [metaArray(V.STRING, ['x', '']), metaArray(V.INT64, [-7n]), metaArray(V.BOOL, [])])],
    ['t.arr.nested.3', metaArray(V.ARRAY, [metaArray(V.ARRAY, [metaArray(V.INT8, [-1, 1]), metaArray(V.STRING, ['deep'])]), metaArray(V.ARRAY, [])])],
    ...extra,
  ];
}

/** Deterministic bytes (xorshift) for tensor data. */
export function pseudoBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A few tensors of several types (byte sizes from the block geometry: F32 4/elt, F16 2/elt, Q8_0 34 per 32, TQ2_0 66 per 256, ...). */
export function syntheticTensors(): GGUFTensorWithData[] {
  const specs: { name: string; type: number; dims: number[]; bytes: number }[] = [
    { name: 'a.f32', type: GGMLType.F32, dims: [5, 3], bytes: 5 * 3 * 4 },
    { name: 'b.f16', type: GGMLType.F16, dims: [7], bytes: 14 },
    { name: 'c.q8_0', type: GGMLType.Q8_0, dims: [64, 2], bytes: 4 * 34 },
    { name: 'd.tq2_0', type: GGMLType.TQ2_0, dims: [256, 3], bytes: 3 * 66 },
    { name: 'e.tq1_0', type: GGMLType.TQ1_0, dims: [512, 1, 2], bytes: 4 * 54 },
    { name: 'f.i32', type: GGMLType.I32, dims: [3, 2, 2, 2], bytes: 24 * 4 },
    { name: 'g.bf16', type: GGMLType.BF16, dims: [1], bytes: 2 },
    { name: 'h.q6_k', type: GGMLType.Q6_K, dims: [256], bytes: 210 },
  ];
  return specs.map((s, i) => ({ name: s.name, type: s.type, dims: s.dims, data: pseudoBytes(s.bytes, 1000 + i) }));
}
