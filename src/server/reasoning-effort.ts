// How much a request asks the model to think, as llama-server reads it: OpenAI's `reasoning_effort`
// (/v1/responses' `reasoning.effort` becomes it) goes to the chat template as `reasoning_effort`
// (gpt-oss's and others' templates read it), and "none" turns thinking off (enable_thinking false,
// an open <think> closed). `chat_template_kwargs.enable_thinking` must be a boolean: the string
// "false" would be true to the template.
import { invalidParam, invalidType } from './errors.js';

type Vars = Record<string, unknown>;

/** The template variables of a chat body (`vars`: its chat_template_kwargs) with its reasoning_effort applied. */
export function withReasoningEffort(body: Vars, vars: Vars | undefined): Vars | undefined {
  if (vars && vars.enable_thinking !== undefined && typeof vars.enable_thinking !== 'boolean') {
    throw invalidType('chat_template_kwargs.enable_thinking', 'a boolean', vars.enable_thinking);
  }
  const effort = body.reasoning_effort;
  if (effort === undefined || effort === null) return vars;
  if (typeof effort !== 'string') throw invalidType('reasoning_effort', 'a string', effort);
  if (effort === '') throw invalidParam('reasoning_effort', "'reasoning_effort' must not be empty (none, minimal, low, medium, high, ...)");
  if (effort === 'none') {
    const { reasoning_effort: _, ...rest } = vars ?? {};
    return { ...rest, enable_thinking: false };
  }
  return { ...vars, reasoning_effort: effort };
}
