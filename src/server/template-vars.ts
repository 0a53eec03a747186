// Variables that chat templates in the wild read besides HF's standard ones, given as llama-server
// gives them: firefunction-v2 adds `functions` (the tools as JSON, "" without) and `datetime`
// ("%b %d %Y %H:%M:%S GMT") to its system prompt and fails to render without them; Llama 3.x prints
// `date_string` (today, "%d %b %Y"; else a fixed 26 Jul 2024); reasoning templates read
// `enable_thinking` (true unless --reasoning off; DeepSeek R1 and QwQ as llama.cpp ships them close
// the thinking block when it is not set). A request's own variables (tools, chat_template_kwargs) win.
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `now` formatted as "%d %b %Y" (Llama 3.x templates print it as "Today Date", default 26 Jul 2024). */
export function dayMonthYear(now: Date): string {
  return `${String(now.getUTCDate()).padStart(2, '0')} ${MONTHS[now.getUTCMonth()]} ${now.getUTCFullYear()}`;
}

/** `now` formatted as "%b %d %Y %H:%M:%S GMT". */
export function gmtDateTime(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[now.getUTCMonth()]} ${p(now.getUTCDate())} ${now.getUTCFullYear()} ${p(now.getUTCHours())}:${p(now.getUTCMinutes())}:${p(now.getUTCSeconds())} GMT`;
}

/**
 * llama-server's --reasoning: `off` renders with enable_thinking false (Qwen 3's switch) and closes a
 * thinking block the template leaves open at the end (DeepSeek R1, QwQ end with "<think>\n"), so the
 * model answers without thinking; `on` and `auto` leave the template as it is.
 */
export type ReasoningMode = 'on' | 'off' | 'auto';

export function templateVariables(
  variables: Record<string, unknown> | undefined,
  reasoning: ReasoningMode = 'auto',
  now = new Date(),
): Record<string, unknown> {
  const tools = variables?.tools;
  return {
    datetime: gmtDateTime(now),
    functions: Array.isArray(tools) && tools.length > 0 ? JSON.stringify(tools, null, 2) : '',
    date_string: dayMonthYear(now),
    enable_thinking: reasoning !== 'off',
    ...variables,
  };
}

/** The rendered prompt with an open thinking block closed when reasoning is off. */
export function closeThinking(text: string, reasoning: ReasoningMode = 'auto'): string {
  return reasoning === 'off' && /<think>\n?$/.test(text) ? text + '</think>' : text;
}
