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
};

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The Jinja source the --chat-template argument stands for; throws a clear Error when it is none of the accepted forms. */
export function resolveChatTemplate(arg: string): string {
  if (isFile(arg)) {
    const text = readFileSync(arg, 'utf8');
    if (text.trim() === '') throw new Error(`chat template file ${arg} is empty`);
    return text;
  }
  const named = NAMED_TEMPLATES[arg.trim().toLowerCase()];
  if (named) return named;
  if (arg.includes('{{') || arg.includes('{%')) return arg;
  throw new Error(
    `--chat-template '${arg.length > 60 ? arg.slice(0, 60) + '...' : arg}' is not a file, a known name (${Object.keys(NAMED_TEMPLATES).join(', ')}) or Jinja source`,
  );
}
