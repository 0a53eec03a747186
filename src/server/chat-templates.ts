// --chat-template: a file with a Jinja template, one of a few built-in names, or Jinja source given
// literally. Shared by `wf_server`/`wf serve` and `wf chat`.
import { readFileSync, statSync } from 'node:fs';
import { BITNET_2B4T_TEMPLATE } from '../tokenizer/chat-template.js';

/** Well-known prompt formats, written as Jinja (the variables are those of chat-template.ts). */
export const NAMED_TEMPLATES: Record<string, string> = {
  bitnet: BITNET_2B4T_TEMPLATE,
  chatml:
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  llama3:
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + '<|eot_id|>' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  // Cohere's Command R, as llama.cpp's built-in `command-r` writes it (roles SYSTEM, USER, CHATBOT; contents trimmed)
  'command-r':
    "{% for message in messages %}{% set role = {'system': 'SYSTEM', 'user': 'USER', 'assistant': 'CHATBOT'}[message['role']] %}" +
    "{% if role %}{{ '<|START_OF_TURN_TOKEN|><|' + role + '_TOKEN|>' + (message['content'] | trim) + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}",
};

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * The Jinja source the --chat-template argument stands for: a file, a name, or else the text itself
 * as Jinja source (a plain string is a template that renders itself, as llama-server and HF's Jinja
 * take it). A missing file (a path-like argument that is no file) is a clear Error.
 */
export function resolveChatTemplate(arg: string): string {
  if (isFile(arg)) {
    const text = readFileSync(arg, 'utf8');
    if (text.trim() === '') throw new Error(`chat template file ${arg} is empty`);
    return text;
  }
  const named = NAMED_TEMPLATES[arg.trim().toLowerCase()];
  if (named) return named;
  // one word or a path is a name or a file mistyped, not a template that prints that word
  const word = /^[\w.-]+$/.test(arg);
  if (arg.includes('{{') || arg.includes('{%') || (!word && !/^\S*\//.test(arg))) return arg;
  throw new Error(
    `--chat-template '${arg.length > 60 ? arg.slice(0, 60) + '...' : arg}' is ${word ? 'not a known name' : 'not a file'} ` +
      `(give a file, a name: ${Object.keys(NAMED_TEMPLATES).join(', ')}, or Jinja source)`,
  );
}
