// The GPT-2 "byte-level" alphabet used by byte-level BPE vocabularies (GGUF tokenizer.ggml.model = gpt2).
//
// Every byte 0..255 is written as one printable code point so that vocab entries and merges are plain
// text: the printable bytes '!'..'~' (33..126), '¡'..'¬' (161..172) and '®'..'ÿ' (174..255) stand for
// themselves; the remaining 68 bytes (controls, space, 127..160, 173) take the code points 256, 257, ...
// in increasing byte order. So a space (0x20) is 'Ġ' (U+0120) and a newline (0x0A) is 'Ċ' (U+010A).

/** BYTE_TO_CHAR_CODE[b] = the code point that stands for byte b. */
export const BYTE_TO_CHAR_CODE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = printable ? b : next++;
  }
  return table;
})();

/** Largest code point of the alphabet (323). */
const MAX_CODE = 256 + 67;

/** CHAR_CODE_TO_BYTE[c] = the byte that code point c stands for, or -1 when c is not in the alphabet. */
export const CHAR_CODE_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(MAX_CODE + 1).fill(-1);
  for (let b = 0; b < 256; b++) table[BYTE_TO_CHAR_CODE[b]] = b;
  return table;
})();

/** The one-character string standing for each byte. */
export const BYTE_TO_CHAR: readonly string[] = Array.from(BYTE_TO_CHAR_CODE, (c) => String.fromCharCode(c));

/**
 * Appends the raw bytes a byte-level token text stands for to `out` (a plain number array, grown in place).
 * A character outside the alphabet (not expected in a well-formed vocabulary) is kept as its own UTF-8
 * bytes, so nothing is silently dropped. Returns the number of bytes written.
 */
export function byteLevelToBytes(text: string, out: number[]): number {
  const start = out.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const b = c <= MAX_CODE ? CHAR_CODE_TO_BYTE[c] : -1;
    if (b >= 0) {
      out.push(b);
      continue;
    }
    // Not an alphabet character: keep its UTF-8 encoding (surrogate pairs joined).
    let cp = c;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    pushUtf8(cp, out);
  }
  return out.length - start;
}

/** Appends the UTF-8 encoding of one code point (lone surrogates become U+FFFD, as TextEncoder does). */
export function pushUtf8(cp: number, out: number[]): void {
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
}
