// The grammar engine's lines of /metrics (appended to monitor.ts's exposition).
import type { GrammarHostStats } from '../generate/grammar-host.js';
import { Exposition } from './metrics.js';

export function grammarMetrics(s: GrammarHostStats | undefined): string {
  if (!s) return '';
  return new Exposition()
    .counter('wf_grammar_compiles_total', 'Grammars and JSON schemas compiled (cache misses), failed ones included.', s.compiles)
    .counter('wf_grammar_compile_errors_total', 'Compiles refused: syntax errors, unsupported features, size and time limits.', s.compileErrors)
    .counter('wf_grammar_timeouts_total', 'Compiles stopped by --grammar-timeout.', s.timeouts)
    .counter('wf_grammar_restarts_total', 'Grammar engine instances replaced (after a fault, a timeout, a cancelled compile or --grammar-memory).', s.restarts)
    .counter('wf_grammar_faults_total', 'Aborts or traps inside the grammar engine (XGrammar WebAssembly).', s.faults)
    .gauge('wf_grammar_cache_bytes', 'WebAssembly memory held by the grammar engine instances (compiled grammars, matchers, vocabulary), in bytes.', s.memoryBytes)
    .gauge('wf_grammar_cache_entries', 'Compiled grammars cached by the active grammar engine instance.', s.cacheEntries)
    .gauge('wf_grammar_matchers', 'Sequences generating under a grammar now.', s.matchers)
    .text();
}
