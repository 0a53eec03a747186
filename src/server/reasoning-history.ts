// Earlier reasoning in a conversation (an assistant message's `reasoning_content`, which
// /v1/messages thinking blocks also become) under the name the chat template reads. Most templates
// that show it read `reasoning_content` (Qwen 3, DeepSeek, GLM, Kimi); some read `message.thinking`
// (gpt-oss, LFM2.5, Cohere's): for those it is given as `thinking` too, as llama.cpp does for them.
import type { ChatMessage } from '../tokenizer/chat-template.js';

/** the template reads a message's `.thinking` */
const READS_THINKING = /\b(message|msg|m)\.thinking\b/;

/** `messages` with `thinking` set from `reasoning_content` when the template reads `thinking` (else as they are). */
export function reasoningForTemplate(messages: ChatMessage[], templateSource: string): ChatMessage[] {
  if (!READS_THINKING.test(templateSource)) return messages;
  if (!messages.some((m) => typeof m.reasoning_content === 'string' && m.thinking === undefined)) return messages;
  return messages.map((m) => (typeof m.reasoning_content === 'string' && m.thinking === undefined ? { ...m, thinking: m.reasoning_content } : m));
}
