// Shared loaders for the tokenizer tests: the Llama-3 vocabulary (oracle llama3-vocab.gguf), a tiny
// model's tokenizer, and small byte-level vocabularies built from plain arrays.
import { readGGUF } from '../../src/gguf/reader.js';
import { BYTE_TO_CHAR } from '../../src/tokenizer/byte-level.js';
import { Tokenizer, type TokenizerSpec } from '../../src/tokenizer/tokenizer.js';
import { oracleArrayBuffer, oracleJson } from '../helpers/oracle.js';

let llama3: Promise<Tokenizer> | undefined;
/** The Llama-3 tokenizer of the oracle pack (loaded once per test file). */
export function llama3Tokenizer(): Promise<Tokenizer> {
  llama3 ??= readGGUF(oracleArrayBuffer('llama3-vocab.gguf')).then((f) => Tokenizer.fromGGUF(f));
  return llama3;
}

export interface TokenizerCase {
  text: string;
  ids_parse_special: number[];
  ids_no_parse_special: number[];
}
export function tokenizerCases(): { add_bos: boolean; cases: TokenizerCase[] } {
  return oracleJson('tokenizer-cases.json');
}

/** A byte-level vocabulary: the 256 byte tokens (id = byte value), then `extra` tokens in order. */
export function byteVocab(extra: string[] = []): string[] {
  return [...BYTE_TO_CHAR, ...extra];
}

/** A tokenizer over byteVocab(extra) with the given merges (Llama-3 pre-tokenizer unless spec.pre says otherwise). */
export function tinyTokenizer(extra: string[], merges: string[], spec: Partial<TokenizerSpec> = {}): Tokenizer {
  return new Tokenizer({ pre: 'llama-bpe', tokens: byteVocab(extra), merges, addBos: false, ...spec });
}
