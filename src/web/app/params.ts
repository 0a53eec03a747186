// The browser app's link parameters: ?model=URL&prompt=TEXT&n=N&temp=T (plus threads=N, ctx=N)
// load a model on open and, with a prompt, generate and publish window.wfResult.

export interface PageParams {
  model?: string;
  prompt?: string;
  n: number;
  temp: number;
  threads?: number;
  ctx?: number;
}

function num(q: URLSearchParams, key: string, ok: (v: number) => boolean, what: string): number | undefined {
  const s = q.get(key);
  if (s === null || s === '') return undefined;
  const v = Number(s);
  if (!ok(v)) throw new Error(`link parameter ${key}=${s} must be ${what}`);
  return v;
}

export function parseParams(search: string): PageParams {
  const q = new URLSearchParams(search);
  const int = (v: number) => Number.isInteger(v) && v >= 1;
  return {
    model: q.get('model') || undefined,
    prompt: q.get('prompt') ?? undefined,
    n: num(q, 'n', int, 'a whole number >= 1') ?? 64,
    temp: num(q, 'temp', (v) => Number.isFinite(v) && v >= 0, 'a number >= 0') ?? 0.8,
    threads: num(q, 'threads', int, 'a whole number >= 1'),
    ctx: num(q, 'ctx', int, 'a whole number >= 1'),
  };
}
