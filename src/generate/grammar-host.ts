// Where grammars are compiled and matched, as the server sees it: a GrammarHost turns a grammar
// spec into one sequence's TokenConstraint. Two implementations share this interface:
//   - InProcessGrammarHost (here): XGrammar in this thread (the browser, `wf run`, tests). A compile
//     blocks its thread and cannot be stopped; only the size limit applies.
//   - WorkerGrammarHost (src/node/grammar-workers.ts): XGrammar in worker threads, with a time
//     budget per compile, cancellation, a memory bound, and a fresh instance after a fault.
// The entry point picks one and hands it to the server (src/cli/wf_server.ts).
import type { TokenConstraint } from './constraint.js';
import { GrammarEngine, GrammarError, type GrammarSpec, type GrammarVocabulary, type XGrammarModule } from './grammar.js';

/** A sequence's constraint from a host: a TokenConstraint that must be disposed. */
export interface HostedConstraint extends TokenConstraint {
  /** milliseconds its grammar took to compile (0 when it came from the cache) */
  readonly compileMs: number;
  dispose(): void;
}

/** Counters and gauges for /metrics. */
export interface GrammarHostStats {
  /** grammars compiled (cache misses), failed ones included */
  compiles: number;
  /** compiles refused: syntax errors, unsupported features, limits */
  compileErrors: number;
  /** compiles stopped by the time budget */
  timeouts: number;
  /** grammar engine instances (workers) replaced: after a fault, a timeout, a cancelled compile or the memory bound */
  restarts: number;
  /** of those, after an abort or trap inside XGrammar */
  faults: number;
  /** bytes of WebAssembly memory the grammar engine holds (compiled grammars, matchers, vocabulary) */
  memoryBytes: number;
  /** compiled grammars cached */
  cacheEntries: number;
  /** sequences' matchers alive */
  matchers: number;
}

export interface GrammarHost {
  /** Compiles `spec` (or finds it cached) and starts a matcher; throws GrammarError (a 400) when it cannot. */
  open(spec: GrammarSpec, signal?: AbortSignal): Promise<HostedConstraint>;
  stats(): GrammarHostStats;
  /** Ends the host (workers terminated); constraints still open fail. */
  close(): Promise<void>;
}

/** Makes a host for a model's vocabulary (the server calls it once, at start-up). */
export type GrammarHostFactory = (vocab: GrammarVocabulary) => GrammarHost;

export interface GrammarLimits {
  /** most bytes of grammar or schema text (UTF-8) */
  maxTextBytes: number;
  /** time budget of one compile, in milliseconds (enforced only where compiles can be stopped) */
  timeoutMs: number;
  /** WebAssembly memory one grammar engine instance may hold before it is replaced, in bytes */
  memoryBytes: number;
  /** deepest nesting: parentheses in a GBNF grammar, objects and arrays in a JSON schema */
  maxDepth: number;
}

export const DEFAULT_GRAMMAR_LIMITS: Readonly<GrammarLimits> = Object.freeze({
  maxTextBytes: 128 * 1024,
  timeoutMs: 10_000,
  memoryBytes: 256 * 1024 * 1024,
  // XGrammar recurses on nesting, on a 64 KB WebAssembly stack that is not checked: measured on
  // 0.1.27, 160 nested parentheses compile and leave the instance corrupt (the next compile
  // fails), 200 trap; JSON schemas trap from 96 nested arrays or 64 nested objects (~128 levels of
  // JSON). 64 levels is far past what real schemas use (OpenAI's structured outputs allow 10).
  maxDepth: 64,
});

/** A refusal for a limit (size, time): the message names the limit and the flag that sets it. */
export class GrammarLimitError extends GrammarError {
  override name = 'GrammarLimitError';
  constructor(message: string, readonly limit: 'size' | 'time' | 'depth') {
    super(message);
  }
}

/** The request's grammar engine went away under it (a restart after another request's fault or timeout). */
export class GrammarEngineLostError extends Error {
  override name = 'GrammarEngineLostError';
}

/** A compile given up because its request was aborted. */
export class GrammarAbortError extends Error {
  override name = 'AbortError';
}

/** A matcher's first mask allows nothing: the grammar matches no text (e.g. a schema that only refers to itself). */
export function checkNotEmpty(firstMask: Int32Array): void {
  if (!firstMask.some((w) => w !== 0)) throw new GrammarError('it matches no text at all (not even an empty reply)');
}

/** Bytes of the text a spec hands XGrammar (schemas as JSON text). */
export function specTextBytes(spec: GrammarSpec): number {
  const enc = new TextEncoder();
  switch (spec.type) {
    case 'json_object':
      return 0;
    case 'json_schema':
      return enc.encode(typeof spec.schema === 'string' ? spec.schema : JSON.stringify(spec.schema) ?? '').length;
    case 'gbnf':
      return enc.encode(spec.grammar).length;
    case 'structural_tag':
      return enc.encode(JSON.stringify(spec.format) ?? '').length;
  }
}

/** Deepest nesting of parentheses in GBNF text (outside strings, character classes and comments). */
export function gbnfDepth(text: string): number {
  let depth = 0;
  let most = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"' || ch === '[') {
      const close = ch === '"' ? '"' : ']';
      for (i++; i < text.length && text[i] !== close; i++) if (text[i] === '\\') i++;
    } else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '(') {
      most = Math.max(most, ++depth);
    } else if (ch === ')') {
      depth = Math.max(0, depth - 1);
    }
  }
  return most;
}

/** Deepest nesting of objects and arrays in a JSON value (iterative: hostile input cannot overflow the stack). */
export function jsonDepth(value: unknown): number {
  let most = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    most = Math.max(most, d);
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, d + 1]);
  }
  return most;
}

/** JSON text's nesting without parsing it (brackets outside strings). */
function jsonTextDepth(text: string): number {
  let depth = 0;
  let most = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (ch === '{' || ch === '[') {
      most = Math.max(most, ++depth);
    } else if (ch === '}' || ch === ']') {
      depth = Math.max(0, depth - 1);
    }
  }
  return most;
}

/** Throws GrammarLimitError when the spec's text is over the size limit or nested too deeply. */
export function checkGrammarLimits(spec: GrammarSpec, limits: Pick<GrammarLimits, 'maxTextBytes' | 'maxDepth'>): void {
  const what = spec.type === 'gbnf' ? 'grammar' : spec.type === 'structural_tag' ? 'tool grammar' : 'JSON schema';
  const n = specTextBytes(spec);
  if (n > limits.maxTextBytes) {
    throw new GrammarLimitError(`the ${what} is ${n} bytes, over the limit of ${limits.maxTextBytes} bytes (--grammar-max-bytes)`, 'size');
  }
  const depth =
    spec.type === 'gbnf'
      ? gbnfDepth(spec.grammar)
      : spec.type === 'json_schema'
        ? typeof spec.schema === 'string'
          ? jsonTextDepth(spec.schema)
          : jsonDepth(spec.schema)
        : spec.type === 'structural_tag'
          ? jsonDepth(spec.format)
          : 0;
  if (depth > limits.maxDepth) {
    const unit = spec.type === 'gbnf' ? 'parentheses' : 'objects and arrays';
    throw new GrammarLimitError(`the ${what} nests ${unit} ${depth} levels deep, over the limit of ${limits.maxDepth} (--grammar-max-depth)`, 'depth');
  }
}

/** XGrammar in this thread: one engine, made on first use. */
export class InProcessGrammarHost implements GrammarHost {
  private engine: Promise<GrammarEngine> | undefined;
  private readonly counts = { compiles: 0, compileErrors: 0, faults: 0, matchers: 0 };

  constructor(
    private readonly xg: XGrammarModule,
    private readonly vocab: GrammarVocabulary,
    private readonly limits: Pick<GrammarLimits, 'maxTextBytes' | 'maxDepth'> = DEFAULT_GRAMMAR_LIMITS,
  ) {}

  async open(spec: GrammarSpec, signal?: AbortSignal): Promise<HostedConstraint> {
    checkGrammarLimits(spec, this.limits);
    this.engine ??= GrammarEngine.create(this.xg, this.vocab);
    const engine = await this.engine;
    signal?.throwIfAborted();
    let compiled;
    try {
      compiled = await engine.compile(spec);
    } catch (e) {
      this.counts.compiles++;
      this.counts.compileErrors++;
      if (e instanceof GrammarError && e.fault) this.counts.faults++;
      throw e;
    }
    if (compiled.compileMs > 0) this.counts.compiles++;
    const c = await compiled.start();
    try {
      checkNotEmpty(await c.mask());
    } catch (e) {
      c.dispose?.();
      throw e;
    }
    this.counts.matchers++;
    let open = true;
    return {
      compileMs: compiled.compileMs,
      mask: () => c.mask(),
      accept: (t) => c.accept(t),
      dispose: () => {
        if (!open) return;
        open = false;
        this.counts.matchers--;
        c.dispose?.();
      },
    };
  }

  stats(): GrammarHostStats {
    return { ...this.counts, timeouts: 0, restarts: 0, memoryBytes: 0, cacheEntries: 0 };
  }

  async close(): Promise<void> {
    const e = this.engine;
    this.engine = undefined;
    if (e) (await e.catch(() => undefined))?.dispose();
  }
}
