// Continuing the assistant's last message instead of starting a new one (llama-server's assistant
// prefill, vLLM's and transformers' continue_final_message): when the conversation ends with an
// assistant message, the prompt is the conversation before it with the generation prompt, followed
// by that message's text, and the model writes on from there.
//
//   continue_final_message: true      continue it (add_generation_prompt must then be false)
//   continue_final_message: false     never (an assistant message at the end is a finished turn)
//   absent                            continue it when the last message is the assistant's (llama-server)
// Two assistant messages at the end are refused: which one would be continued is unclear.
// A continued message given as text parts is written with the parts joined by a blank line, as
// llama.cpp writes a continued message (other messages' parts are joined by one newline, as there).
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { invalidParam, invalidType } from './errors.js';

export interface Continuation {
  /** the messages the template renders */
  messages: ChatMessage[];
  /** text written after the rendered prompt (the assistant message being continued); '' = none */
  prefill: string;
  /** the template's add_generation_prompt */
  addGenerationPrompt: boolean;
}

export function continuation(b: Record<string, unknown>, messages: ChatMessage[]): Continuation {
  const flag = (k: string): boolean | undefined => {
    const v = b[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw invalidType(k, 'a boolean', v);
    return v;
  };
  const agp = flag('add_generation_prompt');
  const cont = flag('continue_final_message');
  if (cont === true && agp === true) {
    throw invalidParam('continue_final_message', "'continue_final_message' and 'add_generation_prompt' cannot both be true");
  }
  const n = messages.length;
  const last = messages[n - 1];
  if (n >= 2 && last?.role === 'assistant' && messages[n - 2]!.role === 'assistant') {
    throw invalidParam('messages', 'the conversation ends with two assistant messages: at most one may end it (the one to continue)');
  }
  const endsWithAssistant = last?.role === 'assistant' && !last.tool_calls;
  if (cont === true && !endsWithAssistant) {
    throw invalidParam('continue_final_message', "'continue_final_message' needs the last message to be the assistant's");
  }
  if (endsWithAssistant && cont !== false && agp !== true) {
    const raw = Array.isArray(b.messages) ? (b.messages[n - 1] as { content?: unknown } | undefined) : undefined;
    return { messages: messages.slice(0, -1), prefill: prefillText(raw?.content, last.content), addGenerationPrompt: true };
  }
  return { messages, prefill: '', addGenerationPrompt: agp ?? true };
}

/** The continued message's text: its text parts joined by a blank line (parts already checked by requests.ts). */
function prefillText(raw: unknown, parsed: string): string {
  if (!Array.isArray(raw)) return parsed;
  return raw.filter((p): p is { type: 'text'; text: string } => typeof p === 'object' && p !== null && p.type === 'text' && typeof p.text === 'string').map((p) => p.text).join('\n\n');
}
