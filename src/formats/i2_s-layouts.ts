// The other byte layouts bitnet.cpp writes under the same I2_S type id (36). Nothing in a file tells
// them apart (same size: n/4 packed bytes, then the f32 scale and padding, n/4 + 32 bytes in all),
// so the reader must be told which one it has (`--i2s-layout`). Codes c = t + 1 as in i2_s.ts.
//
//   x86              (default; the official 2B4T file) i2_s.ts: blocks of 128 consecutive elements in
//                    32 bytes, byte j holding elements j, j+32, j+64, j+96 at bit shifts 6, 4, 2, 0.
//   arm              ARM NEON builds (QK_I2_S = 64): blocks of 64 consecutive elements in 16 bytes,
//                    byte j (0..15) holding elements j, j+16, j+32, j+48 at bit shifts 6, 4, 2, 0.
//   x86-interleaved  x86 builds without ACT_PARALLEL: rows in groups of four (row count a multiple of
//                    4); byte g*K + k holds column k of rows 4g, 4g+1, 4g+2, 4g+3 at shifts 6, 4, 2, 0.
// Facts from bitnet.cpp's quantize_i2_s (src/ggml-bitnet-mad.cpp), all three branches.

import { checkByteLength, checkShape, checkTernaryInput, FormatError, type TernaryTensor } from './common.js';
import { byteSize, i2_sFormat } from './i2_s.js';

export type I2SLayout = 'x86' | 'arm' | 'x86-interleaved';
export const I2S_LAYOUTS: readonly I2SLayout[] = ['x86', 'arm', 'x86-interleaved'];
export const DEFAULT_I2S_LAYOUT: I2SLayout = 'x86';

/** What a user sees next to a broken-looking I2_S file: the option and the layouts it takes. */
export const I2S_LAYOUT_HINT =
  'I2_S files from ARM builds of bitnet.cpp (--i2s-layout arm) or x86 builds without ACT_PARALLEL ' +
  '(--i2s-layout x86-interleaved) hold the same bytes in another order; the default is x86';

export function checkI2SLayout(name: string): I2SLayout {
  if ((I2S_LAYOUTS as readonly string[]).includes(name)) return name as I2SLayout;
  throw new FormatError(`unknown I2_S layout '${name}'; known: ${I2S_LAYOUTS.join(', ')}`);
}

const ARM_BLOCK = 64;
const ARM_GROUP = 16;

/** Byte index and bit shift of element e in a layout (x86 included, for the tests and as documentation). */
export function i2sPosition(layout: I2SLayout, e: number, rowLength: number): { byte: number; shift: number } {
  switch (layout) {
    case 'x86': {
      const j = e % 128;
      return { byte: (e - j) / 4 + (j % 32), shift: 6 - 2 * Math.floor(j / 32) };
    }
    case 'arm': {
      const j = e % ARM_BLOCK;
      return { byte: (e - j) / 4 + (j % ARM_GROUP), shift: 6 - 2 * Math.floor(j / ARM_GROUP) };
    }
    case 'x86-interleaved': {
      const row = Math.floor(e / rowLength);
      const col = e % rowLength;
      return { byte: (row >> 2) * rowLength + col, shift: 6 - 2 * (row & 3) };
    }
  }
}

function checkLayoutShape(layout: I2SLayout, nElements: number, rowLength: number): void {
  byteSize(nElements, rowLength); // the I2_S shape rules (rows a multiple of 128)
  if (layout === 'arm') checkShape('I2_S (arm)', ARM_BLOCK, nElements, rowLength);
  if (layout === 'x86-interleaved' && (nElements / rowLength) % 4 !== 0) {
    throw new FormatError(`I2_S (x86-interleaved): ${nElements / rowLength} rows is not a multiple of 4 (rows are packed four to a byte)`);
  }
}

/** Packs ternary codes with one scale in the given layout (n/4 + 32 bytes, padding zero). */
export function packI2S(codes: Int8Array, scale: number, rowLength: number, layout: I2SLayout): Uint8Array {
  if (layout === 'x86') return i2_sFormat.packTernary(codes, scale, rowLength);
  const n = codes.length;
  checkLayoutShape(layout, n, rowLength);
  checkTernaryInput('I2_S', codes, scale);
  const out = new Uint8Array(byteSize(n, rowLength));
  for (let e = 0; e < n; e++) {
    const { byte, shift } = i2sPosition(layout, e, rowLength);
    out[byte]! |= (codes[e]! + 1) << shift;
  }
  new DataView(out.buffer, out.byteOffset, out.byteLength).setFloat32(n / 4, scale, true);
  return out;
}

/** Codes and scale of an I2_S tensor stored in the given layout; refuses the non-ternary code 3. */
export function unpackI2STernary(bytes: Uint8Array, nElements: number, rowLength: number, layout: I2SLayout): TernaryTensor {
  if (layout === 'x86') return i2_sFormat.unpackTernary(bytes, nElements, rowLength);
  checkLayoutShape(layout, nElements, rowLength);
  checkByteLength('I2_S', bytes, byteSize(nElements, rowLength), nElements);
  const scale = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat32(nElements / 4, true);
  if (!Number.isFinite(scale)) throw new FormatError(`I2_S: the tensor scale is ${scale}`);
  const codes = new Int8Array(nElements);
  if (layout === 'arm') unpackArm(bytes, nElements, codes);
  else unpackInterleaved(bytes, nElements, rowLength, codes);
  const bad = codes.indexOf(2);
  if (bad >= 0) {
    throw new FormatError(`I2_S (${layout}): element ${bad} has code 3, which is not a ternary code`);
  }
  return { codes, scale };
}

function unpackArm(bytes: Uint8Array, n: number, codes: Int8Array): void {
  for (let k = 0; k < n / ARM_BLOCK; k++) {
    const y = k * ARM_BLOCK;
    const o = k * ARM_GROUP;
    for (let j = 0; j < ARM_GROUP; j++) {
      const v = bytes[o + j]!;
      codes[y + j] = (v >> 6) - 1;
      codes[y + j + 16] = ((v >> 4) & 3) - 1;
      codes[y + j + 32] = ((v >> 2) & 3) - 1;
      codes[y + j + 48] = (v & 3) - 1;
    }
  }
}

function unpackInterleaved(bytes: Uint8Array, n: number, k: number, codes: Int8Array): void {
  const groups = n / k / 4;
  for (let g = 0; g < groups; g++) {
    const src = g * k;
    const r0 = 4 * g * k;
    for (let c = 0; c < k; c++) {
      const v = bytes[src + c]!;
      codes[r0 + c] = (v >> 6) - 1;
      codes[r0 + k + c] = ((v >> 4) & 3) - 1;
      codes[r0 + 2 * k + c] = ((v >> 2) & 3) - 1;
      codes[r0 + 3 * k + c] = (v & 3) - 1;
    }
  }
}
