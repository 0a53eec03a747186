// Streaming detokenization: feed generated token ids one at a time, get back only complete text.
//
// A byte-level BPE token can end in the middle of a UTF-8 character (an emoji is 4 bytes and is often
// split over 2-4 tokens), so decoding token by token would print U+FFFD halves. This keeps the bytes of
// an unfinished character until the token that completes it arrives. TextDecoder's streaming mode does
// exactly that bookkeeping: it holds back an incomplete trailing sequence and turns a sequence that can
// no longer become valid into U+FFFD at once, so invalid bytes are never held forever. ignoreBOM keeps
// a U+FEFF at the start of the stream as text, as decode() does.

import type { Tokenizer } from './tokenizer.js';

export interface StreamDecoderOptions {
  /** Leave control tokens (BOS, EOS, <|eot_id|>, ...) out of the text. Default false. */
  skipSpecial?: boolean;
}

export class StreamDecoder {
  private decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private readonly skipSpecial: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    options: StreamDecoderOptions = {},
  ) {
    this.skipSpecial = options.skipSpecial ?? false;
  }

  /** Adds one token; returns the text completed by it (often '', never half a character). */
  push(id: number): string {
    if (this.skipSpecial && this.tokenizer.isControl(id)) return '';
    return this.decoder.decode(this.tokenizer.tokenToPiece(id), { stream: true });
  }

  /** Adds several tokens; returns the text they complete. */
  pushAll(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) s += this.push(ids[i]);
    return s;
  }

  /** Ends the stream: returns what is left (an unfinished character becomes U+FFFD) and resets. */
  flush(): string {
    const rest = this.decoder.decode();
    this.decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    return rest;
  }

  /** Drops any held bytes and starts a new stream. */
  reset(): void {
    this.decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  }
}
