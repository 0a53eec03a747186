// Chat prompts: messages -> prompt text -> token ids.
//
// The template is, in order of preference: an explicit override, the GGUF's tokenizer.chat_template,
// else the BitNet b1.58 2B4T format (SPEC.md §1):
//   <|begin_of_text|>System: {sys}<|eot_id|>User: {msg}<|eot_id|>Assistant: {reply}<|eot_id|>...Assistant: 
// One exception: the official 2B4T GGUF carries a placeholder written by Microsoft's converter
// ("Human: ...\n\nBITNETAssistant: " + eos), which is not the format the model was trained on (it drops
// system messages and puts <|end_of_text|> before the reply). It is recognised and replaced by the
// trained format. chatTemplateFor says which template is used and why.
// Templates are Jinja, rendered by @huggingface/jinja with the variables Hugging Face passes:
// messages, bos_token, eos_token, add_generation_prompt (plus eot_token, the end-of-turn token's text).
//
// Double BOS: most templates write bos_token themselves. encodeChat therefore adds the tokenizer's BOS
// only when the rendered text does not already start with the BOS string.

import { Template } from '@huggingface/jinja';
import type { Tokenizer } from './tokenizer.js';
import { jinja2Compatible } from './jinja-compat.js';

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
 * The BitNet b1.58 2B4T chat format: the template of the Hugging Face checkpoint's tokenizer_config.json
 * (SPEC.md §1), kept as HF writes it so it renders the same: BOS before the first message, roles
 * system/user/assistant as "System: ", "User: ", "Assistant: ", contents untrimmed, each turn closed by
 * <|eot_id|>; other roles render nothing.
 */
export const BITNET_2B4T_TEMPLATE =
  "{%- for message in messages %}{%- if loop.first %}{{ bos_token }}{%- endif %}" +
  "{%- if message['role'] == 'system' %}{{ 'System: ' + message['content'] + '<|eot_id|>' }}" +
  "{%- elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '<|eot_id|>' }}" +
  "{%- elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '<|eot_id|>' }}" +
  "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ 'Assistant: ' }}{%- endif %}";

/**
 * The placeholder template of the official 2B4T GGUF ("Human: ... BITNETAssistant: " + eos). Its marker
 * string appears in no real template, so matching on it survives small differences in the rest.
 */
export function isBitnetPlaceholderTemplate(source: string): boolean {
  return source.includes('BITNETAssistant');
}

export type ChatTemplateOrigin = 'override' | 'file' | 'bitnet-2b4t';

export interface ChatTemplateChoice {
  source: string;
  origin: ChatTemplateOrigin;
  /** why this template, in words (for inspect, the server's start line and wf chat) */
  reason: string;
  /** set when a built-in is used because the file has none: the user should know */
  warning?: string;
}

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (t === undefined) {
    try {
      t = new Template(jinja2Compatible(source));
    } catch (e) {
      throw new Error(`chat template does not parse: ${(e as Error).message ?? String(e)}`);
    }
    if (compiled.size >= 16) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/** Which template a tokenizer would use, where it came from and why. */
export function chatTemplateFor(tokenizer: Tokenizer, override?: string): ChatTemplateChoice {
  return chooseChatTemplate(tokenizer.chatTemplate, override);
}

/** The same choice from the file's tokenizer.chat_template alone (wf inspect, which builds no tokenizer). */
export function chooseChatTemplate(file: string | undefined, override?: string): ChatTemplateChoice {
  if (override !== undefined) return { source: override, origin: 'override', reason: 'given explicitly (--chat-template)' };
  if (file !== undefined && file.trim() !== '') {
    if (isBitnetPlaceholderTemplate(file)) {
      return {
        source: BITNET_2B4T_TEMPLATE,
        origin: 'bitnet-2b4t',
        reason:
          "the file's template is the placeholder of Microsoft's converter (Human: ... BITNETAssistant:), " +
          'not the trained format: using the BitNet b1.58 2B4T template instead',
      };
    }
    return { source: file, origin: 'file', reason: "the file's tokenizer.chat_template" };
  }
  return {
    source: BITNET_2B4T_TEMPLATE,
    origin: 'bitnet-2b4t',
    reason: 'the file has no tokenizer.chat_template: using the built-in BitNet b1.58 2B4T template',
    warning:
      'the model file has no chat template; using the built-in BitNet b1.58 2B4T format ' +
      '(System:/User:/Assistant: turns closed by <|eot_id|>). Give --chat-template if the model was trained on another.',
  };
}

/** One line naming the template in use and why (CLI and server messages). */
export function describeChatTemplate(choice: ChatTemplateChoice): string {
  return `${choice.origin} (${choice.reason})`;
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
