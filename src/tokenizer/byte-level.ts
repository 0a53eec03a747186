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
export const MAX_CODE = 256 + 67;

/** CHAR_CODE_TO_BYTE[c] = the byte that code point c stands for, or -1 when c is not in the alphabet. */
export const CHAR_CODE_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(MAX_CODE + 1).fill(-1);
  for (let b = 0; b < 256; b++) table[BYTE_TO_CHAR_CODE[b]] = b;
  return table;
})();

/** The one-character string standing for each byte. */
export const BYTE_TO_CHAR: readonly string[] = Array.from(BYTE_TO_CHAR_CODE, (c) => String.fromCharCode(c));
