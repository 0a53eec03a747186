// Renders a Jinja chat template under a budget: wall time, output size, range() length.
//
// A chat template is code from a model file, a --chat-template argument or (through message content) shaped
// by a request. @huggingface/jinja runs it synchronously, so a template that loops 10^10 times would hold
// the thread (the server's event loop) for ever, and `range(10**12)` asks V8 for an array so large that
// the process dies with a fatal "invalid size" error that no try/catch sees. Here the interpreter is the
// library's own with one change: the clock is read at every evaluation step and every loop iteration
// (whose body goes through evaluateBlock even when it is empty), and a string or list that grows past the output budget stops the render. range() is replaced by one
// that refuses more than MAX_RANGE items before it allocates anything. The render then fails with a
// TemplateBudgetError naming the limit, and the caller decides what that means (a start-up error, a 400).
//
// The same code runs in Node and in browsers (no Node API): performance.now() is in both.

import { Environment, Interpreter, Template } from '@huggingface/jinja';

export interface TemplateBudget {
  /** wall-clock milliseconds one render may take */
  timeMs: number;
  /** the most characters any string (the output included) may reach while rendering */
  maxChars: number;
}

/** Default time for one render: a real chat template takes well under a millisecond per message. */
export const DEFAULT_TEMPLATE_TIME_MS = 1000;
/** Output budget: 1 Mi characters of markup plus four times the characters the caller handed in. */
export const TEMPLATE_BASE_CHARS = 1 << 20;
/** The most items range() may produce (chat templates count messages or indent with it). */
export const MAX_RANGE = 100_000;
/** The most items a list may reach while rendering. */
export const MAX_LIST = 1_000_000;

/** A render stopped by its budget; `limit` names which one. */
export class TemplateBudgetError extends Error {
  override name = 'TemplateBudgetError';
  constructor(readonly limit: 'time' | 'output' | 'range' | 'list' | 'depth', message: string) {
    super(message);
  }
}

/** The budget for rendering `inputChars` characters of caller data (messages, tools) within `timeMs`. */
export function budgetFor(inputChars: number, timeMs = DEFAULT_TEMPLATE_TIME_MS): TemplateBudget {
  return { timeMs, maxChars: TEMPLATE_BASE_CHARS + 4 * inputChars };
}

/** Characters in every string inside a JSON-like value (what a template could echo back). */
export function charsIn(v: unknown, depth = 0): number {
  if (typeof v === 'string') return v.length;
  if (v === null || typeof v !== 'object' || depth > 64) return 0;
  let n = 0;
  for (const x of Array.isArray(v) ? v : Object.values(v)) n += charsIn(x, depth + 1);
  return n;
}

// The package's type declarations import their modules without extensions, which NodeNext resolution does
// not follow: the interpreter is typed here by the little this module uses.
type RuntimeValue = { value: unknown };
interface InterpreterShape {
  evaluate(statement: unknown, environment: unknown): RuntimeValue;
  run(program: unknown): RuntimeValue;
  evaluateBlock(statements: unknown, environment: unknown): RuntimeValue;
}
const Base = Interpreter as unknown as new (env: unknown) => InterpreterShape;

class BudgetedInterpreter extends Base {
  private readonly deadline: number;

  constructor(env: unknown, private readonly budget: TemplateBudget) {
    super(env);
    this.deadline = performance.now() + budget.timeMs;
  }

  private checkClock(): void {
    if (performance.now() > this.deadline) {
      throw new TemplateBudgetError('time', `chat template ran past its time budget of ${this.budget.timeMs} ms`);
    }
  }

  // every loop iteration runs its body through evaluateBlock, even an empty body that evaluates nothing
  override evaluateBlock(statements: unknown, environment: unknown): RuntimeValue {
    this.checkClock();
    return super.evaluateBlock(statements, environment);
  }

  override evaluate(statement: unknown, environment: unknown): RuntimeValue {
    this.checkClock();
    const v = super.evaluate(statement, environment);
    const value: unknown = v.value;
    if (typeof value === 'string' && value.length > this.budget.maxChars) {
      throw new TemplateBudgetError('output', `chat template output grew past its budget of ${this.budget.maxChars} characters`);
    }
    if (Array.isArray(value) && value.length > MAX_LIST) {
      throw new TemplateBudgetError('list', `chat template built a list of more than ${MAX_LIST} items`);
    }
    return v;
  }
}

/** range() as Jinja's, refusing more than MAX_RANGE items before allocating. */
function boundedRange(a: unknown, b?: unknown, c?: unknown): number[] {
  const nums = (b === undefined ? [0, a] : [a, b]).concat(c === undefined ? [1] : [c]);
  for (const x of nums) if (typeof x !== 'number' || !Number.isInteger(x)) throw new Error('range() takes integers');
  const [start, stop, step] = nums as [number, number, number];
  if (step === 0) throw new Error('range() step must not be zero');
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > MAX_RANGE) throw new TemplateBudgetError('range', `chat template asked range() for ${count} items (at most ${MAX_RANGE})`);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(start + i * step);
  return out;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** strftime_now(format): the date directives chat templates use (%Y %m %d %b %B %H %M %%). */
function strftimeNow(format: unknown): string {
  if (typeof format !== 'string') throw new Error('strftime_now() takes a format string');
  const d = new Date();
  const month = (style: 'long' | 'short') => new Intl.DateTimeFormat('en-US', { month: style }).format(d);
  return format.replace(/%[YmdbBHM%]/g, (t) => {
    switch (t) {
      case '%Y': return String(d.getFullYear());
      case '%m': return pad2(d.getMonth() + 1);
      case '%d': return pad2(d.getDate());
      case '%b': return month('short');
      case '%B': return month('long');
      case '%H': return pad2(d.getHours());
      case '%M': return pad2(d.getMinutes());
      default: return '%';
    }
  });
}

/** Renders a parsed template with `variables` under `budget`; the library's globals, with range() bounded. */
export function renderWithBudget(template: Template, variables: Record<string, unknown>, budget: TemplateBudget): string {
  const env = new Environment();
  for (const [k, v] of [['false', false], ['true', true], ['none', null], ['False', false], ['True', true], ['None', null]] as const) env.set(k, v);
  env.set('raise_exception', (msg: unknown) => {
    throw new Error(String(msg));
  });
  env.set('range', boundedRange);
  env.set('strftime_now', strftimeNow);
  for (const [k, v] of Object.entries(variables)) env.set(k, v);
  try {
    return String(new BudgetedInterpreter(env, budget).run((template as unknown as { parsed: unknown }).parsed).value);
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      throw new TemplateBudgetError('depth', 'chat template recursed too deeply');
    }
    throw e;
  }
}
