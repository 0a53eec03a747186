// llama-server's flags for the reasoning in replies (src/server/reasoning-output.ts): which format
// returns it, and how many tokens the model may think.
import { CliError, type OptionSpec, type ParsedArgs } from './args.js';
import { REASONING_FORMATS, parseReasoningFormat, type ReasoningOutputOptions } from '../server/reasoning-output.js';

export const REASONING_OPTIONS: OptionSpec[] = [
  {
    name: 'reasoning-format',
    type: 'string',
    description:
      `${REASONING_FORMATS.join(' | ')}: where a reply's thinking (<think>...</think>) goes: none leaves it in content; ` +
      'deepseek and auto (the default) put it in reasoning_content (delta.reasoning_content when streaming, thinking blocks on /v1/messages, ' +
      'reasoning items on /v1/responses); deepseek-legacy fills reasoning_content and keeps the tags in content (streamed inline). A request may set reasoning_format',
  },
  {
    name: 'reasoning-budget',
    type: 'number',
    description: 'most tokens a reply may think: -1 unlimited (the default), 0 no thinking (the template renders with enable_thinking false), N: the end marker is forced after N thinking tokens. A request may set reasoning_budget_tokens',
  },
  {
    name: 'reasoning-budget-message',
    type: 'string',
    description: 'text forced before the end-of-thinking marker when the budget is spent (default: none). A request may set reasoning_budget_message',
  },
];

/** --reasoning-format, --reasoning-budget and --reasoning-budget-message, checked (undefined values keep the defaults). */
export function reasoningOutputFrom(o: ParsedArgs['options']): ReasoningOutputOptions {
  const out: ReasoningOutputOptions = {};
  const f = o['reasoning-format'];
  if (f !== undefined) {
    try {
      out.format = parseReasoningFormat(f, '--reasoning-format');
    } catch {
      throw new CliError(`--reasoning-format must be one of ${REASONING_FORMATS.join(', ')}, got '${String(f)}'`);
    }
  }
  const b = o['reasoning-budget'];
  if (b !== undefined) {
    if (typeof b !== 'number' || !Number.isInteger(b) || b < -1) throw new CliError(`--reasoning-budget must be -1 (unlimited), 0 (no thinking) or a positive integer, got '${String(b)}'`);
    out.budget = b;
  }
  const m = o['reasoning-budget-message'];
  if (typeof m === 'string') out.budgetMessage = m;
  return out;
}
