// Variables that chat templates in the wild read besides HF's standard ones, given as llama-server
// gives them: firefunction-v2 adds `functions` (the tools as JSON, "" without) and `datetime`
// ("%b %d %Y %H:%M:%S GMT") to its system prompt and fails to render without them. A request's
// own variables (tools) win.
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `now` formatted as "%b %d %Y %H:%M:%S GMT". */
export function gmtDateTime(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[now.getUTCMonth()]} ${p(now.getUTCDate())} ${now.getUTCFullYear()} ${p(now.getUTCHours())}:${p(now.getUTCMinutes())}:${p(now.getUTCSeconds())} GMT`;
}

export function templateVariables(variables: Record<string, unknown> | undefined, now = new Date()): Record<string, unknown> {
  const tools = variables?.tools;
  return { datetime: gmtDateTime(now), functions: Array.isArray(tools) && tools.length > 0 ? JSON.stringify(tools, null, 2) : '', ...variables };
}
