// Grammar-constrained decoding with XGrammar (@mlc-ai/web-xgrammar, the WebAssembly build of the
// grammar engine vLLM and SGLang use), behind the thin TokenConstraint of constraint.ts.
//
// Four nouns, as in XGrammar: the vocabulary as bytes (built once per model), a compiler, compiled
// grammars (cached by their source text), and one matcher per sequence (the TokenConstraint).
//
// Vocabulary: XGrammar is handed the exact byte string of every token, whatever the tokenizer
// family: each token's bytes (Tokenizer.tokenToPiece: byte-level BPE pieces, or SentencePiece
// pieces with '▁' as a space and <0xXX> byte-fallback tokens as their byte) are written in the
// GPT-2 byte-level alphabet and declared "byte_level", which XGrammar maps back byte for byte. (Its
// strings cross into WebAssembly as UTF-8, so raw bytes that are not valid UTF-8 - half a
// character - could not be passed as they are.) Control tokens (and ids past the tokenizer's
// vocabulary) are handed over empty, which XGrammar never matches against text; the model's
// end-of-generation tokens are its stop tokens, allowed exactly where the grammar may end.
//
// Whitespace: JSON is generated compact on one line (", " and ": " separators, no other
// whitespace), so a model cannot pad forever. Schemas compile in strict mode (no properties or
// items the schema does not name), so whatever is generated validates against the schema.
//
// The XGrammar module is handed in (src/node/xgrammar.ts in Node; globalThis.xgrammar after the
// package's lib/index.js is loaded in a browser): this file has no Node-only import.
import { BYTE_TO_CHAR } from '../tokenizer/byte-level.js';
import type { TokenConstraint } from './constraint.js';

// ---- the part of XGrammar's API used here (structural types: the package itself is not imported)

interface XgTokenizerInfo {
  getVocabSize(): number;
  dispose(): void;
}
interface XgCompiledGrammar {
  dispose(): void;
}
interface XgCompiler {
  compileJSONSchema(
    schema: string,
    anyWhitespace?: boolean,
    indent?: number,
    separators?: [string, string],
    strictMode?: boolean,
    maxWhitespaceCnt?: number,
  ): Promise<XgCompiledGrammar>;
  compileGrammar(grammar: string, rootRule?: string): Promise<XgCompiledGrammar>;
  compileStructuralTag(structuralTag: string): Promise<XgCompiledGrammar>;
  dispose(): void;
}
interface XgGrammar {
  toString(): string;
  dispose(): void;
}
interface XgGrammarStatics {
  fromJSONSchema(
    schema: string,
    anyWhitespace?: boolean,
    indent?: number,
    separators?: [string, string],
    strictMode?: boolean,
  ): Promise<XgGrammar>;
  fromEBNF(ebnf: string, rootRule?: string): Promise<XgGrammar>;
  fromStructuralTag(structuralTag: string): Promise<XgGrammar>;
}
interface XgMatcher {
  acceptToken(token: number): boolean;
  getNextTokenBitmask(): Promise<Int32Array>;
  isTerminated(): boolean;
  dispose(): void;
}
export interface XGrammarModule {
  TokenizerInfo: {
    createTokenizerInfo(
      vocab: string[],
      vocabType?: string,
      prependSpace?: boolean,
      vocabSize?: number,
      stopTokenIds?: number[],
    ): Promise<XgTokenizerInfo>;
  };
  Grammar: XgGrammarStatics;
  GrammarCompiler: { createGrammarCompiler(info: XgTokenizerInfo, cacheEnabled?: boolean): Promise<XgCompiler> };
  GrammarMatcher: {
    createGrammarMatcher(compiled: XgCompiledGrammar, stopTokens?: number[]): Promise<XgMatcher>;
  };
}

// ---- what a grammar is asked for

export type GrammarSpec =
  /** any JSON object (OpenAI's response_format json_object) */
  | { type: 'json_object' }
  /** JSON matching a JSON Schema (an object, or its JSON text) */
  | { type: 'json_schema'; schema: unknown }
  /** a GBNF grammar (llama.cpp's format; XGrammar's EBNF reads it), root rule `root` */
  | { type: 'gbnf'; grammar: string }
  /** text with structure (tool calls in a model's own format): XGrammar's structural tag */
  | { type: 'structural_tag'; format: TagFormat };

/**
 * The part of XGrammar's structural tag formats used here. A `json_schema` element is compiled
 * like a json_schema spec (compact, strict, bounded whitespace), not with the structural tag's
 * own JSON settings (which allow any amount of whitespace).
 */
export type TagFormat =
  | { type: 'const_string'; value: string }
  | { type: 'json_schema'; json_schema: unknown }
  /** EBNF (GBNF), root rule `root` */
  | { type: 'grammar'; grammar: string }
  | { type: 'sequence'; elements: TagFormat[] }
  | { type: 'or'; elements: TagFormat[] }
  | TagElement
  /** free text in which a trigger starts one of the tags */
  | { type: 'triggered_tags'; triggers: string[]; tags: TagElement[]; at_least_one?: boolean; stop_after_first?: boolean }
  /** nothing but tags, with a separator between them */
  | { type: 'tags_with_separator'; tags: TagElement[]; separator: string; at_least_one?: boolean; stop_after_first?: boolean };

export interface TagElement {
  type: 'tag';
  begin: string;
  content: TagFormat;
  end: string;
}

/**
 * A grammar that cannot be compiled: a syntax error, an unsupported schema feature... `fault` is
 * set when XGrammar's WebAssembly aborted or trapped on the way (its parser reports most errors by
 * aborting): the instance that saw it must not be trusted again (see src/node/grammar-workers.ts).
 */
export class GrammarError extends Error {
  override name = 'GrammarError';
  constructor(message: string, readonly fault = false) {
    super(message);
  }
}

/**
 * True for an abort or trap inside WebAssembly, or a stack overflow on the way through it: the
 * instance's stack or heap may be left inconsistent (C++ frames are not unwound).
 */
export function isWasmFault(e: unknown): boolean {
  return (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) || e instanceof RangeError;
}

/** The vocabulary as the grammar engine needs it. */
export interface GrammarVocabulary {
  /** Length of the logits (may exceed the tokenizer's vocabulary). */
  vocabSize: number;
  /** Tokens of the tokenizer (ids from here up to vocabSize are padding). */
  tokenCount: number;
  /** The exact bytes a token stands for. */
  tokenBytes(id: number): Uint8Array;
  /** Tokens that never stand for text (BOS, control tokens...). */
  isControl(id: number): boolean;
  /** End-of-generation tokens: allowed only where the grammar may end. */
  stopTokens: readonly number[];
}

/**
 * The vocabulary as XGrammar is handed it: each token's text in the byte-level alphabet (plain
 * data, so it can be posted to a worker).
 */
export interface VocabularyTexts {
  vocabSize: number;
  texts: string[];
  stopTokens: number[];
}

export function vocabularyTexts(v: GrammarVocabulary): VocabularyTexts {
  const texts: string[] = new Array(v.vocabSize);
  for (let id = 0; id < v.vocabSize; id++) texts[id] = byteLevelText(v, id);
  return { vocabSize: v.vocabSize, texts, stopTokens: [...v.stopTokens] };
}

/** The token's bytes written in the byte-level alphabet ('' for control and padding tokens). */
function byteLevelText(v: GrammarVocabulary, id: number): string {
  if (id >= v.tokenCount || v.isControl(id)) return '';
  let s = '';
  for (const b of v.tokenBytes(id)) s += BYTE_TO_CHAR[b]!;
  return s;
}

// XGrammar reports a bad grammar by printing "[FATAL] file.cc:line: message" to its error stream
// and aborting the call (the exception says only "Aborted()"). Its error stream is console.error as
// bound when the WebAssembly module starts, so the engine starts it with console.error routed
// through `routeErrors`: while a compilation runs, the lines are kept for the error message;
// otherwise they go to the real console.error.
let captured: string[] | null = null;
/** modules whose error stream is routed */
const routed = new WeakSet<object>();
function routeErrors(this: unknown, ...args: unknown[]): void {
  if (captured) captured.push(args.map(String).join(' '));
  else original?.apply(console, args);
}
let original: ((...args: unknown[]) => void) | undefined;

/** Runs `start` (which starts the WebAssembly module) with console.error routed (see above). */
async function withRoutedErrorStream<T>(xg: XGrammarModule, start: () => Promise<T>): Promise<T> {
  if (routed.has(xg)) return start();
  routed.add(xg);
  original ??= console.error;
  console.error = routeErrors;
  try {
    return await start();
  } finally {
    console.error = original;
  }
}

/** The message of a failed compilation: XGrammar's own line when it printed one. */
function messageOf(e: unknown, lines: readonly string[]): string {
  const fatal = lines.map((l) => l.trim()).find((l) => l.startsWith('[FATAL]'));
  if (fatal) {
    return fatal
      .replace(/^\[FATAL\]\s*\S+:\d+:\s*/, '')
      .replace(/^Check failed: \(.*?\) is false:\s*/, '');
  }
  if (isWasmFault(e)) return `the grammar engine failed on it (${(e as Error).message}); is it nested too deeply?`;
  if (e instanceof Error) return e.message;
  return `grammar engine error (${String(e)})`;
}

/** Runs an XGrammar call with its error lines kept; a failure becomes a GrammarError with XGrammar's reason. */
async function withCapturedErrors<T>(call: () => Promise<T>): Promise<T> {
  const lines: string[] = [];
  captured = lines;
  try {
    return await call();
  } catch (e) {
    if (e instanceof GrammarError) throw e;
    throw new GrammarError(messageOf(e, lines), isWasmFault(e));
  } finally {
    captured = null;
  }
}

/** Canonical text of a grammar spec (the cache key). */
export function keyOf(spec: GrammarSpec): string {
  switch (spec.type) {
    case 'json_object':
      return 'json_object';
    case 'json_schema':
      return `json_schema:${typeof spec.schema === 'string' ? spec.schema : JSON.stringify(spec.schema)}`;
    case 'gbnf':
      return `gbnf:${spec.grammar}`;
    case 'structural_tag':
      return `structural_tag:${JSON.stringify(spec.format)}`;
  }
}

/** One sequence's matcher: the TokenConstraint generate() uses. */
class GrammarConstraint implements TokenConstraint {
  private disposed = false;
  constructor(private readonly matcher: XgMatcher) {}

  mask(): Promise<Int32Array> {
    return this.matcher.getNextTokenBitmask();
  }

  accept(token: number): void {
    if (!this.matcher.acceptToken(token)) throw new Error(`token ${token} is not allowed by the grammar here`);
  }

  /** True once a stop token was accepted (the grammar's text is complete). */
  get terminated(): boolean {
    return this.matcher.isTerminated();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.matcher.dispose();
  }
}

/** A compiled grammar: start() gives each sequence its own constraint. */
export class CompiledConstraint {
  constructor(
    private readonly xg: XGrammarModule,
    private readonly compiled: XgCompiledGrammar,
    private readonly stopTokens: readonly number[],
    /** milliseconds the compilation took (0 when it came from the cache) */
    readonly compileMs: number,
  ) {}

  async start(): Promise<TokenConstraint & { readonly terminated: boolean }> {
    return new GrammarConstraint(await this.xg.GrammarMatcher.createGrammarMatcher(this.compiled, [...this.stopTokens]));
  }
}

/** Most compiled grammars kept (least recently used dropped first). */
const CACHE_SIZE = 32;

/** Compiles grammars for one model's vocabulary; compiled grammars are cached by their text. */
export class GrammarEngine {
  private readonly cache = new Map<string, XgCompiledGrammar>();
  /** Compilations run one at a time (their error lines must not mix). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly xg: XGrammarModule,
    private readonly info: XgTokenizerInfo,
    private readonly compiler: XgCompiler,
    private readonly stopTokens: readonly number[],
    /** milliseconds spent preparing the vocabulary */
    readonly setupMs: number,
  ) {}

  static create(xg: XGrammarModule, vocab: GrammarVocabulary | VocabularyTexts): Promise<GrammarEngine> {
    return GrammarEngine.fromTexts(xg, 'texts' in vocab ? vocab : vocabularyTexts(vocab));
  }

  private static async fromTexts(xg: XGrammarModule, vocab: VocabularyTexts): Promise<GrammarEngine> {
    const t0 = Date.now();
    const stops = [...vocab.stopTokens];
    const info = await withRoutedErrorStream(xg, () =>
      xg.TokenizerInfo.createTokenizerInfo(vocab.texts, 'byte_level', false, vocab.vocabSize, stops),
    );
    // XGrammar's own cache is off: it keeps every grammar ever compiled (unbounded); ours is bounded
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, false);
    return new GrammarEngine(xg, info, compiler, stops, Date.now() - t0);
  }

  /** Compiled grammars held in the cache now. */
  get cacheEntries(): number {
    return this.cache.size;
  }

  /** Compiles (or finds in the cache) a grammar; throws GrammarError naming what is wrong. */
  compile(spec: GrammarSpec): Promise<CompiledConstraint> {
    const run = this.queue.then(() => this.compileNow(spec));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Parses a spec into a grammar without compiling it for the vocabulary (no TokenizerInfo needed):
   * what a syntax error, an unsupported schema feature or too deep a nesting fails in, in a few
   * milliseconds. Throws GrammarError like compile().
   */
  static async check(xg: XGrammarModule, spec: GrammarSpec): Promise<void> {
    const g = await withRoutedErrorStream(xg, () =>
      withCapturedErrors(async () => {
        switch (spec.type) {
          case 'json_object':
            return undefined;
          case 'json_schema': {
            const text = typeof spec.schema === 'string' ? spec.schema : JSON.stringify(spec.schema);
            checkSchemaText(text);
            return xg.Grammar.fromJSONSchema(text, false, -1, [', ', ': '], true);
          }
          case 'gbnf':
            if (typeof spec.grammar !== 'string' || spec.grammar.trim() === '') throw new GrammarError('the grammar is empty');
            return xg.Grammar.fromEBNF(spec.grammar, 'root');
          case 'structural_tag':
            return xg.Grammar.fromStructuralTag(await structuralTagText(xg, spec.format));
        }
      }),
    );
    g?.dispose();
  }

  private async compileNow(spec: GrammarSpec): Promise<CompiledConstraint> {
    const key = keyOf(spec);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return new CompiledConstraint(this.xg, hit, this.stopTokens, 0);
    }
    const t0 = Date.now();
    const compiled = await withCapturedErrors(() => this.compileNew(spec));
    const ms = Date.now() - t0;
    this.cache.set(key, compiled);
    if (this.cache.size > CACHE_SIZE) {
      const [oldest, g] = this.cache.entries().next().value as [string, XgCompiledGrammar];
      this.cache.delete(oldest);
      g.dispose();
    }
    return new CompiledConstraint(this.xg, compiled, this.stopTokens, ms);
  }

  private compileNew(spec: GrammarSpec): Promise<XgCompiledGrammar> {
    switch (spec.type) {
      case 'json_object':
        return this.compiler.compileJSONSchema('{"type":"object"}', false, -1, undefined, false);
      case 'json_schema': {
        const text = typeof spec.schema === 'string' ? spec.schema : JSON.stringify(spec.schema);
        checkSchemaText(text);
        return this.compiler.compileJSONSchema(text, false, -1, undefined, true);
      }
      case 'gbnf':
        if (typeof spec.grammar !== 'string' || spec.grammar.trim() === '') throw new GrammarError('the grammar is empty');
        return this.compiler.compileGrammar(spec.grammar, 'root');
      case 'structural_tag':
        return this.compileTags(spec.format);
    }
  }

  private async compileTags(format: TagFormat): Promise<XgCompiledGrammar> {
    return this.compiler.compileStructuralTag(await structuralTagText(this.xg, format));
  }

  dispose(): void {
    for (const g of this.cache.values()) g.dispose();
    this.cache.clear();
    this.compiler.dispose();
    this.info.dispose();
  }
}

/** XGrammar's structural tag JSON for a format, each json_schema element replaced by its grammar (compact and strict). */
export async function structuralTagText(xg: Pick<XGrammarModule, 'Grammar'>, format: TagFormat): Promise<string> {
  const lower = async (f: TagFormat): Promise<TagFormat> => {
    switch (f.type) {
      case 'json_schema': {
        const text = typeof f.json_schema === 'string' ? f.json_schema : JSON.stringify(f.json_schema);
        checkSchemaText(text);
        const g = await xg.Grammar.fromJSONSchema(text, false, -1, [', ', ': '], true);
        try {
          return { type: 'grammar', grammar: g.toString() };
        } finally {
          g.dispose();
        }
      }
      case 'sequence':
      case 'or':
        return { ...f, elements: await Promise.all(f.elements.map(lower)) };
      case 'tag':
        return { ...f, content: await lower(f.content) };
      case 'triggered_tags':
      case 'tags_with_separator':
        return { ...f, tags: (await Promise.all(f.tags.map(lower))) as TagElement[] };
      default:
        return f;
    }
  };
  return JSON.stringify({ type: 'structural_tag', format: await lower(format) });
}

/** A schema must be a JSON object (or a boolean, which JSON Schema allows). */
function checkSchemaText(text: string): void {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new GrammarError(`the JSON schema is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'boolean' && (typeof v !== 'object' || v === null || Array.isArray(v))) {
    throw new GrammarError('a JSON schema must be an object');
  }
}

/**
 * In a browser: the XGrammar module that the package's lib/index.js leaves on globalThis once it
 * has run (as a classic <script>, or through a side-effect `import` of that file: either way its
 * UMD wrapper finds no CommonJS or AMD loader and sets globalThis.xgrammar).
 */
export function xgrammarFromGlobal(): XGrammarModule {
  const m = (globalThis as { xgrammar?: XGrammarModule }).xgrammar;
  if (!m || typeof m.GrammarCompiler !== 'function') {
    throw new Error('XGrammar is not loaded: load @mlc-ai/web-xgrammar/lib/index.js first (a <script> or a side-effect import)');
  }
  return m;
}

/** The grammar vocabulary of a tokenizer-like object (src/tokenizer/tokenizer.ts's Tokenizer fits). */
export function grammarVocabulary(
  tokenizer: {
    vocabSize: number;
    tokenToPiece(id: number): Uint8Array;
    tokenType(id: number): number;
    endOfGenerationIds: ReadonlySet<number>;
  },
  logitsSize = tokenizer.vocabSize,
): GrammarVocabulary {
  // control (3), unknown (2) and unused (5) tokens never stand for text
  const nonText = new Set([2, 3, 5]);
  return {
    vocabSize: Math.max(logitsSize, tokenizer.vocabSize),
    tokenCount: tokenizer.vocabSize,
    tokenBytes: (id) => tokenizer.tokenToPiece(id),
    isControl: (id) => nonText.has(tokenizer.tokenType(id)),
    stopTokens: [...tokenizer.endOfGenerationIds].filter((id) => id < logitsSize).sort((a, b) => a - b),
  };
}
