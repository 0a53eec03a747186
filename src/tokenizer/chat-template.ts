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
// Budget: every render runs under template-budget.ts's limits (time, output size, range() length), so a
// template that loops for ever or allocates without end fails with a TemplateBudgetError instead of
// holding the thread or killing the process.
//
// Content is text: encodeChat escapes every string of the messages and variables (content, names, tool
// results, tool definitions) with tokenizer.escapeSpecials before rendering, then tokenizes with special
// tokens parsed and the escapes undone. So "<|eot_id|>" typed by a user is the plain characters, while
// the same string written by the template's own markup is the control token. For chats whose strings hold
// no special-token text the tokens are exactly those of rendering and tokenizing the plain text.
//
// Double BOS: most templates write bos_token themselves. encodeChat therefore adds the tokenizer's BOS
// only when the rendered text does not already start with the BOS string.

import { Template } from '@huggingface/jinja';
import { budgetFor, charsIn, DEFAULT_TEMPLATE_TIME_MS, renderWithBudget, TemplateBudgetError } from './template-budget.js';
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
  /** Wall-clock budget of one render in ms (template-budget.ts). Default DEFAULT_TEMPLATE_TIME_MS. */
  timeMs?: number;
}

export interface EncodeChatOptions extends ChatTemplateOptions {
  /** Add BOS unless the rendered text starts with it. Default: the tokenizer's add_bos_token. */
  addBos?: boolean;
  /** Refuse (PromptTooLongError) a text that certainly tokenizes to this many tokens or more, before tokenizing it. */
  maxTokens?: number;
  /** rewrites the rendered markup before tokenizing (e.g. closing an open thinking block) */
  markupAfter?: (rendered: string) => string;
  /** text the reply continues, after the rendered prompt, read as plain text like message contents */
  prefill?: string;
}

/** A prompt text too long for `maxTokens`, known from its length alone (it was not tokenized). */
export class PromptTooLongError extends Error {
  override name = 'PromptTooLongError';
  constructor(readonly atLeast: number) {
    super(`the prompt has at least ${atLeast} tokens`);
  }
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

/** A chat could not be turned into a prompt because of what it holds or what the template does with it. */
export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
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
      throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message ?? String(e)}`);
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

/** Renders messages to prompt text with the tokenizer's template (or options.template), under its budget. */
export function renderChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  return render(tokenizer, messages, options, false);
}

/** Deepest nesting of message fields the escaping walks (JSON from a request can be nested far deeper). */
const MAX_DEPTH = 100;

/** Every string inside a JSON-like value, escaped with tokenizer.escapeSpecials. */
function escapeStrings(tokenizer: Tokenizer, v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return tokenizer.escapeSpecials(v);
  if (v === null || typeof v !== 'object') return v;
  if (depth > MAX_DEPTH) throw new ChatTemplateError(`a message field is nested more than ${MAX_DEPTH} levels deep`);
  if (Array.isArray(v)) return v.map((x) => escapeStrings(tokenizer, x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = escapeStrings(tokenizer, x, depth + 1);
  return out;
}

function render(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: ChatTemplateOptions, escape: boolean): string {
  if (!Array.isArray(messages)) throw new ChatTemplateError('messages must be an array of {role, content}');
  for (const [i, m] of messages.entries()) {
    if (m === null || typeof m !== 'object' || typeof m.role !== 'string') {
      throw new ChatTemplateError(`message ${i} must be an object with a string role`);
    }
  }
  const { source } = chatTemplateFor(tokenizer, options.template);
  const template = compile(source);
  const data = { ...options.variables, messages };
  const budget = budgetFor(charsIn(data), options.timeMs ?? DEFAULT_TEMPLATE_TIME_MS);
  const vars = escape ? (escapeStrings(tokenizer, data) as Record<string, unknown>) : data;
  try {
    return renderWithBudget(template, {
      ...vars,
      bos_token: specialText(tokenizer, tokenizer.bos, ''),
      eos_token: specialText(tokenizer, tokenizer.eos, ''),
      eot_token: specialText(tokenizer, tokenizer.eot, '<|eot_id|>'),
      add_generation_prompt: options.addGenerationPrompt ?? true,
    }, budget);
  } catch (e) {
    if (e instanceof TemplateBudgetError) throw e;
    throw new ChatTemplateError(`chat template failed to render: ${(e as Error).message ?? String(e)}`);
  }
}

/**
 * Renders the template on a small conversation (system + user) to show, before any request, that it
 * parses and renders within its budget. Throws an Error that names the template's origin.
 */
export function probeChatTemplate(tokenizer: Tokenizer, override?: string, timeMs?: number, variables?: Record<string, unknown>): void {
  try {
    render(tokenizer, [{ role: 'system', content: 'test' }, { role: 'user', content: 'test' }], { template: override, timeMs, variables }, true);
  } catch (e) {
    const choice = chatTemplateFor(tokenizer, override);
    const hint = choice.origin === 'file' ? " (give --chat-template to use another, e.g. 'bitnet')" : '';
    throw new Error(`the chat template (${choice.origin}) cannot be used: ${(e as Error).message}${hint}`);
  }
}

/**
 * Renders and tokenizes a chat without a doubled BOS: the template's markup with special tokens parsed,
 * the strings of messages and variables as plain text (see the header).
 */
export function encodeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], options: EncodeChatOptions = {}): number[] {
  let text = render(tokenizer, messages, options, true);
  if (options.markupAfter) text = options.markupAfter(text);
  if (options.prefill) text += tokenizer.escapeSpecials(options.prefill);
  return encodeText(tokenizer, text, options.addBos, true, options.maxTokens);
}

/** Tokenizes rendered prompt text: BOS added (if wanted) only when the text does not start with the BOS string. */
export function encodePrompt(tokenizer: Tokenizer, text: string, addBos?: boolean, maxTokens?: number): number[] {
  return encodeText(tokenizer, text, addBos, false, maxTokens);
}

function encodeText(tokenizer: Tokenizer, text: string, addBos: boolean | undefined, unescape: boolean, maxTokens?: number): number[] {
  if (maxTokens !== undefined) {
    const atLeast = Math.ceil(text.length / tokenizer.maxTokenBytes);
    if (atLeast >= maxTokens) throw new PromptTooLongError(atLeast);
  }
  let bos = addBos ?? tokenizer.addBosDefault;
  if (bos && tokenizer.bos !== undefined && text.startsWith(tokenizer.tokenText(tokenizer.bos))) bos = false;
  return tokenizer.encode(text, { addBos: bos, parseSpecial: true, unescape });
}
