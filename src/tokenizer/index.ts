// Tokenizer module: byte-level BPE and SentencePiece vocabularies from GGUF metadata, streaming detokenization, chat templates.
export { Tokenizer, TokenType } from './tokenizer.js';
export type { TokenizerSpec, EncodeOptions, DecodeOptions, TokenizerMetadata } from './tokenizer.js';
export { StreamDecoder } from './stream-decoder.js';
export type { StreamDecoderOptions } from './stream-decoder.js';
export { renderChat, encodeChat, encodePrompt, chatTemplateFor, describeChatTemplate, isBitnetPlaceholderTemplate, BITNET_2B4T_TEMPLATE } from './chat-template.js';
export type { ChatMessage, ChatTemplateOptions, EncodeChatOptions, ChatTemplateChoice } from './chat-template.js';
