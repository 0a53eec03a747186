// UTF-8 encoding of JS strings into caller-owned arrays (no TextEncoder call per short string).
// Lone surrogates become U+FFFD, as TextEncoder does. Each UTF-16 code unit needs at most 3 bytes.

/** Writes the UTF-8 bytes of text[start, end) into out from index `at`; returns the index after the last byte. */
export function writeUtf8(text: string, out: Uint8Array | Int32Array, at: number, start = 0, end = text.length): number {
  let w = at;
  for (let i = start; i < end; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x80) {
      out[w++] = cp;
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < end) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x800) {
      out[w++] = 0xc0 | (cp >> 6);
      out[w++] = 0x80 | (cp & 63);
    } else if (cp < 0x10000) {
      out[w++] = 0xe0 | (cp >> 12);
      out[w++] = 0x80 | ((cp >> 6) & 63);
      out[w++] = 0x80 | (cp & 63);
    } else {
      out[w++] = 0xf0 | (cp >> 18);
      out[w++] = 0x80 | ((cp >> 12) & 63);
      out[w++] = 0x80 | ((cp >> 6) & 63);
      out[w++] = 0x80 | (cp & 63);
    }
  }
  return w;
}
