// A token's piece as people read it, the same in `POST /tokenize` (with_pieces) and
// `wf tokenize --pieces`, as llama-server shows it: the text of its bytes when they are whole
// UTF-8, else the bytes themselves (a token may hold part of a character).
import type { Tokenizer } from './tokenizer.js';

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function displayPiece(tokenizer: Tokenizer, id: number): string | number[] {
  const bytes = tokenizer.tokenToPiece(id);
  try {
    return strict.decode(bytes);
  } catch {
    return Array.from(bytes);
  }
}
