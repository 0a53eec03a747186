// The grammar engine's limits as wf_server flags (src/generate/grammar-host.ts has their meaning).
import { CliError, type OptionSpec, type ParsedArgs } from './args.js';
import { DEFAULT_GRAMMAR_LIMITS, type GrammarLimits } from '../generate/grammar-host.js';

const D = DEFAULT_GRAMMAR_LIMITS;

export const GRAMMAR_OPTIONS: OptionSpec[] = [
  { name: 'grammar-timeout', type: 'number', description: 'milliseconds one grammar or JSON schema may take to compile; past it the request gets a 400', default: D.timeoutMs },
  { name: 'grammar-max-bytes', type: 'number', description: 'largest grammar or JSON schema text accepted, in bytes (larger: a 400)', default: D.maxTextBytes },
  { name: 'grammar-max-depth', type: 'number', description: 'deepest nesting accepted: parentheses in a grammar, objects and arrays in a JSON schema (deeper: a 400)', default: D.maxDepth },
  {
    name: 'grammar-memory',
    type: 'number',
    description: 'MiB of compiled grammars one grammar engine instance may hold before a fresh one takes over',
    default: D.memoryBytes / 2 ** 20,
  },
];

export function grammarLimitsFrom(o: ParsedArgs['options']): GrammarLimits {
  const int = (name: string, min: number, max: number): number => {
    const v = o[name] as number;
    if (!Number.isInteger(v) || v < min || v > max) throw new CliError(`--${name} must be an integer from ${min} to ${max}, got ${v}`);
    return v;
  };
  return {
    timeoutMs: int('grammar-timeout', 1, 3_600_000),
    maxTextBytes: int('grammar-max-bytes', 1, 1 << 30),
    memoryBytes: int('grammar-memory', 16, 2048) * 2 ** 20,
    // past 64 levels XGrammar's stack can overflow unnoticed (grammar-host.ts); the flag may only lower it
    maxDepth: int('grammar-max-depth', 1, D.maxDepth),
  };
}
