// Prometheus text exposition (format 0.0.4), written by hand: the few metric kinds the server needs.
//
//   # HELP wf_prompt_tokens_total Prompt tokens evaluated (cached ones not counted).
//   # TYPE wf_prompt_tokens_total counter
//   wf_prompt_tokens_total 1234
//   # TYPE wf_time_to_first_token_seconds histogram
//   wf_time_to_first_token_seconds_bucket{le="0.1"} 3      <- cumulative: observations <= 0.1
//   wf_time_to_first_token_seconds_bucket{le="+Inf"} 5     <- always equals _count
//   wf_time_to_first_token_seconds_sum 1.92
//   wf_time_to_first_token_seconds_count 5
//
// Rules kept here: one HELP and one TYPE line per metric family, before its samples; counters end in
// _total; bucket bounds increase and the last is +Inf; label values escape \ " and newline; HELP
// text escapes \ and newline; every line, the last included, ends with \n.

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A histogram with fixed upper bounds (seconds, bytes, ...), cumulative on output. */
export class Histogram {
  readonly bounds: readonly number[];
  private readonly counts: number[];
  private total = 0;
  private n = 0;

  constructor(bounds: readonly number[]) {
    if (bounds.length === 0) throw new Error('a histogram needs at least one bucket bound');
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]!) || (i > 0 && bounds[i]! <= bounds[i - 1]!)) {
        throw new Error(`histogram bounds must be finite and increasing, got [${bounds.join(', ')}]`);
      }
    }
    this.bounds = [...bounds];
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    const i = this.bounds.findIndex((b) => v <= b);
    if (i >= 0) this.counts[i]!++;
    this.total += v;
    this.n++;
  }

  get count(): number {
    return this.n;
  }
  get sum(): number {
    return this.total;
  }

  /** [upper bound, observations <= bound], +Inf last */
  cumulative(): [number, number][] {
    const out: [number, number][] = [];
    let acc = 0;
    this.bounds.forEach((b, i) => {
      acc += this.counts[i]!;
      out.push([b, acc]);
    });
    out.push([Infinity, this.n]);
    return out;
  }
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Builds one exposition text, metric family by metric family. */
export class Exposition {
  private readonly lines: string[] = [];
  private readonly seen = new Set<string>();

  private header(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    if (!NAME.test(name)) throw new Error(`invalid metric name '${name}'`);
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter '${name}' must end in _total`);
    if (this.seen.has(name)) throw new Error(`metric '${name}' written twice`);
    this.seen.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  counter(name: string, help: string, value: number): this {
    this.header(name, 'counter', help);
    this.lines.push(`${name} ${formatValue(value)}`);
    return this;
  }

  gauge(name: string, help: string, value: number): this {
    this.header(name, 'gauge', help);
    this.lines.push(`${name} ${formatValue(value)}`);
    return this;
  }

  /** A counter with one sample per label set (e.g. requests by finish reason). */
  labelledCounter(name: string, help: string, samples: { labels: Record<string, string>; value: number }[]): this {
    this.header(name, 'counter', help);
    for (const s of samples) this.lines.push(`${name}${labelText(s.labels)} ${formatValue(s.value)}`);
    return this;
  }

  /** A gauge with one sample per label set. */
  labelledGauge(name: string, help: string, samples: { labels: Record<string, string>; value: number }[]): this {
    this.header(name, 'gauge', help);
    for (const s of samples) this.lines.push(`${name}${labelText(s.labels)} ${formatValue(s.value)}`);
    return this;
  }

  histogram(name: string, help: string, h: Histogram): this {
    this.header(name, 'histogram', help);
    for (const [le, n] of h.cumulative()) this.lines.push(`${name}_bucket{le="${formatValue(le)}"} ${n}`);
    this.lines.push(`${name}_sum ${formatValue(h.sum)}`, `${name}_count ${h.count}`);
    return this;
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Reads an exposition text back (the subset written above): samples with their labels, and the
 * declared type of each family. Throws on a line it cannot read. For tests and bench/soak.ts.
 */
export function parseExposition(text: string): { types: Map<string, string>; samples: ParsedSample[] } {
  const types = new Map<string, string>();
  const samples: ParsedSample[] = [];
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition text must end with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) throw new Error(`unreadable comment line: ${line}`);
      if (m[1] === 'TYPE') types.set(m[2]!, m[3]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unreadable sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
      let lm: RegExpExecArray | null;
      let consumed = 0;
      while ((lm = re.exec(m[3])) !== null) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        consumed = re.lastIndex;
      }
      if (consumed !== m[3].length) throw new Error(`unreadable labels: ${line}`);
    }
    const raw = m[4]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`unreadable value: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { types, samples };
}
