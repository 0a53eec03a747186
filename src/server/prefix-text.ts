// Reuse across turns at the text level.
//
// A chat's next request sends the whole conversation again, and its rendering, tokenized from
// scratch, need not give the tokens the model read and wrote last turn: 2B4T's generation prompt
// ends with `Assistant: ` and the reply was generated after that lone space, while the re-rendered
// history merges the space into the reply's first word (" Hello"). Matching by tokens (as the
// scheduler does, and llama-server, vLLM and SGLang do) then loses everything after the previous
// prompt. Here the prompt is matched by its bytes instead: a cached sequence whose tokens spell a
// prefix of the prompt's text is kept as it is (prompt and reply tokens, exactly as they were read
// and generated), and only the text after it is tokenized. The model then reads that same token
// sequence as if from scratch: greedy answers are those of evaluating it from an empty cache.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { commonPrefix } from './scheduler.js';

/**
 * The prompt `tokens` (the prompt tokenized from scratch) rewritten to continue the cached sequence
 * among `cached` that spells the longest prefix of its text, when that reuses more tokens than
 * matching `tokens` themselves would; else `tokens` unchanged. The result always spells exactly the
 * same bytes as `tokens`.
 */
export function continueCachedText(tokenizer: Tokenizer, tokens: readonly number[], cached: Iterable<readonly number[]>): readonly number[] {
  const text = tokenizer.bytesOf(tokens);
  let byTokens = 0;
  let best: { seq: readonly number[]; k: number; bytes: number } | undefined;
  for (const seq of cached) {
    byTokens = Math.max(byTokens, commonPrefix(seq, tokens));
    // how many of seq's tokens spell a prefix of the text
    let k = 0;
    let at = 0;
    while (k < seq.length) {
      const piece = tokenizer.tokenToPiece(seq[k]!);
      if (at + piece.length > text.length || !samePrefix(text, at, piece)) break;
      at += piece.length;
      k++;
    }
    // the rest must start on a character boundary (not inside a multi-byte UTF-8 sequence)
    while (k > 0 && at < text.length && (text[at]! & 0xc0) === 0x80) at -= tokenizer.tokenToPiece(seq[--k]!).length;
    if (!best || k > best.k) best = { seq, k, bytes: at };
  }
  if (!best || best.k <= byTokens) return tokens;
  // After the reused bytes come the prompt's own tokens, not a re-tokenization of its text: a
  // message's "<|eot_id|>" was tokenized as plain text (chat-template.ts) and must stay so. Only the
  // token that straddles the boundary (2B4T's merged " Hello") is tokenized again, alone, as text.
  let j = 0;
  let at = 0;
  while (j < tokens.length && at + tokenizer.tokenToPiece(tokens[j]!).length <= best.bytes) at += tokenizer.tokenToPiece(tokens[j++]!).length;
  let out = best.seq.slice(0, best.k);
  if (at < best.bytes) {
    let end = at;
    // through the straddling token, then on to a character boundary
    do {
      if (tokenizer.isControl(tokens[j]!)) return tokens;
      end += tokenizer.tokenToPiece(tokens[j++]!).length;
    } while (j < tokens.length && end < text.length && (text[end]! & 0xc0) === 0x80);
    const part = new TextDecoder('utf-8').decode(text.subarray(best.bytes, end));
    out = out.concat(tokenizer.encode(part, { addBos: false, addEos: false, parseSpecial: false }));
  }
  out = out.concat(tokens.slice(j));
  // the same text, or nothing (a tokenizer that adds a space prefix, text that does not survive decoding)
  return sameBytes(tokenizer.bytesOf(out), text) ? out : tokens;
}

function samePrefix(text: Uint8Array, at: number, piece: Uint8Array): boolean {
  for (let i = 0; i < piece.length; i++) if (text[at + i] !== piece[i]) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && samePrefix(a, 0, b);
}
