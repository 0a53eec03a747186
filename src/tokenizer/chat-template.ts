// Chat prompts: messages -> prompt text -> token ids.
//
// The template is, in order of preference: an explicit override, the GGUF's tokenizer.chat_template,
// else the BitNet b1.58 2B4T format (SPEC.md §1):
//   <|begin_of_text|>System: {sys}<|eot_id|>User: {msg}<|eot_id|>Assistant: {reply}<|eot_id|>...Assistant: 
// Templates are Jinja, rendered by @huggingface/jinja with the variables Hugging Face passes:
// messages, bos_token, eos_token, add_generation_prompt (plus eot_token, the end-of-turn token's text).
//
// Double BOS: most templates write bos_token themselves. encodeChat therefore adds the tokenizer's BOS
// only when the rendered text does not already start with the BOS string.

import { Template } from '@huggingface/jinja';
import type { Tokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: string;
  content: string;
  /** Other fields (names, tool calls) are passed to the template as they are. */
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the assistant's turn opener so the model answers. Default true. */
  addGenerationPrompt?: boolean;
  /** Jinja source used instead of the file's template. */
  template?: string;
  /** Extra template variables (e.g. tools, date_string). */
  variables?: Record<string, unknown>;
}

export interface EncodeChatOptions extends ChatTemplateOptions {
  /** Add BOS unless the rendered text starts with it. Default: the tokenizer's add_bos_token. */
  addBos?: boolean;
}

/**
 * The BitNet b1.58 2B4T chat format as a Jinja template: role names capitalized, contents trimmed,
 * each turn closed by the end-of-turn token, BOS before the first turn.
 */
export const BITNET_2B4T_TEMPLATE =
  "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}" +
  "{{ message['role'] | capitalize }}: {{ message['content'] | trim }}{{ eot_token }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (t === undefined) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new Error(`chat template does not parse: ${(e as Error).message ?? String(e)}`);
    }
    if (compiled.size >= 16) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/** Which template a tokenizer would use, and where it came from. */
export function chatTemplateFor(tokenizer: Tokenizer, override?: string): { source: string; origin: 'override' | 'file' | 'bitnet-2b4t' } {
  if (override !== undefined) return { source: override, origin: 'override' };
  if (tokenizer.chatTemplate !== undefined && tokenizer.chatTemplate.trim() !== '') {
    return { source: tokenizer.chatTemplate, origin: 'file' };
  }
  return { source: BITNET_2B4T_TEMPLATE, origin: 'bitnet-2b4t' };
}

function specialText(tokenizer: Tokenizer, id: number | undefined, fallback: string): string {
  return id === undefined ? fallback : tokenizer.tokenText(id);
}

/** Renders messages to prompt text with the tokenizer's template (or options.template). */
export function renderChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  if (!Array.isArray(messages)) throw new TypeError('messages must be an array of {role, content}');
  for (const [i, m] of messages.entries()) {
    if (m === null || typeof m !== 'object' || typeof m.role !== 'string') {
      throw new TypeError(`message ${i} must be an object with a string role`);
    }
  }
  const { source } = chatTemplateFor(tokenizer, options.template);
  const template = compile(source);
  try {
    return template.render({
      ...options.variables,
      messages,
      bos_token: specialText(tokenizer, tokenizer.bos, ''),
      eos_token: specialText(tokenizer, tokenizer.eos, ''),
      eot_token: specialText(tokenizer, tokenizer.eot, '<|eot_id|>'),
      add_generation_prompt: options.addGenerationPrompt ?? true,
    });
  } catch (e) {
    throw new Error(`chat template failed to render: ${(e as Error).message ?? String(e)}`);
  }
}

/** Renders and tokenizes a chat, special tokens parsed, without a doubled BOS. */
export function encodeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: EncodeChatOptions = {}): number[] {
  const text = renderChat(tokenizer, messages, options);
  return encodePrompt(tokenizer, text, options.addBos);
}

/** Tokenizes rendered prompt text: BOS added (if wanted) only when the text does not start with the BOS string. */
export function encodePrompt(tokenizer: Tokenizer, text: string, addBos?: boolean): number[] {
  let bos = addBos ?? tokenizer.addBosDefault;
  if (bos && tokenizer.bos !== undefined && text.startsWith(tokenizer.tokenText(tokenizer.bos))) bos = false;
  return tokenizer.encode(text, { addBos: bos, parseSpecial: true });
}
