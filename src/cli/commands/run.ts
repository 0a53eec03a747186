// wf run [-m FILE] (-p TEXT | --tokens 1,2,3) [-n N] [--temp 0] [--json] [--json-schema FILE|JSON | --grammar FILE]
// (no -m: the built-in demo model). Streams the generated text to stdout; a timing line goes to
// stderr. --json-schema and --grammar constrain the output (src/generate/grammar.ts).
import { readFileSync } from 'node:fs';
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { CACHE_TYPE_OPTION, MODEL_OPTIONS, SPECIAL_OPTION, cacheTypeFrom, loadOptionsFrom, parseTokenList, progressBar } from '../common.js';
import { SAMPLING_OPTIONS, samplerOptionsFrom } from '../sampling.js';
import { DEFAULT_BATCH_SIZE } from '../../model/model.js';
import { loadModelFile } from '../../node/model-file.js';
import { DEMO_MODEL_DESCRIPTION, DEMO_MODEL_FILE } from '../../node/demo-model.js';
import type { GenerationResult } from '../../generate/generate.js';
import { GrammarEngine, GrammarError, grammarVocabulary, type GrammarSpec } from '../../generate/grammar.js';
import type { TokenConstraint } from '../../generate/constraint.js';
import type { LoadedModel } from '../../engine.js';
import { loadXGrammar } from '../../node/xgrammar.js';

const SPECS: OptionSpec[] = [
  ...MODEL_OPTIONS,
  { name: 'prompt', short: 'p', type: 'string', description: 'prompt text (special tokens such as <|eot_id|> are parsed)' },
  { name: 'tokens', type: 'string', description: 'prompt as comma-separated token ids instead of text' },
  { name: 'n-predict', short: 'n', type: 'number', description: 'tokens to generate; -1 = until end of generation or context', default: 128 },
  { name: 'ctx-size', short: 'c', type: 'number', description: 'context size in tokens (default: the model\'s, at most 4096)' },
  { name: 'batch-size', short: 'b', type: 'number', description: 'prompt tokens per forward batch', default: DEFAULT_BATCH_SIZE },
  CACHE_TYPE_OPTION,
  { name: 'stop', type: 'list', description: 'stop string (repeatable)' },
  { name: 'ignore-eos', type: 'boolean', description: 'do not stop at end-of-generation tokens' },
  { name: 'no-bos', type: 'boolean', description: 'do not add BOS to a text prompt' },
  SPECIAL_OPTION,
  { name: 'truncate', type: 'boolean', description: 'drop the oldest prompt tokens when the prompt is longer than the context' },
  { name: 'json', type: 'boolean', description: 'print one JSON object {tokens, text, finish_reason, timings} instead of streaming' },
  { name: 'no-progress', type: 'boolean', description: 'no loading progress bar' },
  { name: 'json-schema', short: 'j', type: 'string', description: 'constrain the output to JSON matching this schema (a file, or the schema itself)' },
  { name: 'grammar', type: 'string', description: 'constrain the output to a GBNF grammar file (root rule: root)' },
  ...SAMPLING_OPTIONS,
];

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError(`${what} file not found: ${path}`);
  }
}

/** The grammar asked for by --json-schema or --grammar, if any. */
function grammarSpecFrom(o: Record<string, unknown>): GrammarSpec | undefined {
  const schema = o['json-schema'] as string | undefined;
  const grammar = o.grammar as string | undefined;
  if (schema !== undefined && grammar !== undefined) throw new CliError('give either --json-schema or --grammar, not both');
  if (o['ignore-eos'] && (schema !== undefined || grammar !== undefined)) {
    throw new CliError('--ignore-eos cannot be combined with --json-schema or --grammar (the grammar ends with the end-of-generation token)');
  }
  if (grammar !== undefined) return { type: 'gbnf', grammar: readText(grammar, '--grammar') };
  if (schema === undefined) return undefined;
  const text = /^\s*[{[]|^\s*(true|false)\s*$/.test(schema) ? schema : readText(schema, '--json-schema');
  return { type: 'json_schema', schema: text };
}

async function constraintFor(lm: LoadedModel, spec: GrammarSpec): Promise<TokenConstraint> {
  const engine = await GrammarEngine.create(loadXGrammar(), grammarVocabulary(lm.tokenizer, lm.config.vocabSize));
  try {
    return await (await engine.compile(spec)).start();
  } catch (e) {
    if (e instanceof GrammarError) throw new CliError(`${spec.type === 'gbnf' ? '--grammar' : '--json-schema'}: ${e.message}`);
    throw e;
  }
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  const o = args.options;
  const cacheType = cacheTypeFrom(args);
  if (o.help) {
    console.log(helpText('usage: wf run [-m FILE.gguf] (-p TEXT | --tokens 1,2,3) [-n N] [--temp 0] [--json]', SPECS));
    return 0;
  }
  const path = (o.model as string | undefined) ?? DEMO_MODEL_FILE;
  const prompt = (o.prompt as string | undefined) ?? (args.positionals.length ? args.positionals.join(' ') : undefined);
  const tokensArg = o.tokens as string | undefined;
  if (prompt === undefined && !tokensArg) throw new CliError('give a prompt with -p TEXT or --tokens 1,2,3');
  if (prompt !== undefined && tokensArg) throw new CliError('give either -p TEXT or --tokens, not both');
  const nPredict = o['n-predict'] as number;
  if (!Number.isInteger(nPredict) || nPredict < -1) throw new CliError(`--n-predict must be -1 or a non-negative integer, got ${nPredict}`);
  const sampler = samplerOptionsFrom(args);
  const tokenIds = tokensArg ? parseTokenList(tokensArg) : undefined;
  const grammarSpec = grammarSpecFrom(o);

  if (o.model === undefined) process.stderr.write(`wf run: no --model given: using the built-in demo model, ${DEMO_MODEL_DESCRIPTION}\n`);
  const bar = o['no-progress'] || o.json ? undefined : progressBar('loading');
  const t0 = performance.now();
  const lm = await loadModelFile(path, { ...loadOptionsFrom(args), onProgress: bar && ((p) => bar(p.bytesDone, p.bytesTotal)) });
  bar?.end();
  const loadMs = performance.now() - t0;
  let constraint: TokenConstraint | undefined;
  try {
    if (grammarSpec) constraint = await constraintFor(lm, grammarSpec);
    if (tokenIds) for (const t of tokenIds) if (t >= lm.config.vocabSize) throw new CliError(`token id ${t} is outside the vocabulary (size ${lm.config.vocabSize})`);
    const promptTokens = tokenIds ?? lm.tokenizer.encode(prompt!, { addBos: o['no-bos'] ? false : undefined });
    // Without --ctx-size a one-shot run needs no more context than prompt + output: the KV cache
    // (153.6 KB per position for 2B4T, f32) is sized to that instead of the model's full 4096.
    const modelCtx = Math.min(lm.config.contextLength, 4096);
    const ctxSize = (o['ctx-size'] as number | undefined) ?? (nPredict >= 0 && !o.truncate ? Math.min(modelCtx, Math.max(promptTokens.length + nPredict, 1)) : modelCtx);
    const session = lm.createSession({ ctxSize, batchSize: o['batch-size'] as number, cacheType });
    const it = session.generate(promptTokens, {
      maxTokens: nPredict < 0 ? undefined : nPredict,
      sampler,
      stop: o.stop as string[] | undefined,
      truncate: o.truncate ? 'start' : 'none',
      ignoreEos: !!o['ignore-eos'],
      constraint,
      special: !!o.special,
    });
    let result: GenerationResult;
    for (;;) {
      const r = await it.next().catch((e: Error) => {
        // the library's hint names its option; say the flag instead
        throw new Error(e.message.replace("(use truncate: 'start' to drop the oldest tokens)", '(use --truncate to drop the oldest tokens, or a larger --ctx-size)'));
      });
      if (r.done) {
        result = r.value;
        break;
      }
      if (!o.json && r.value.text) process.stdout.write(r.value.text);
    }
    const t = result.timings;
    if (o.json) {
      process.stdout.write(
        JSON.stringify({
          tokens: result.tokens,
          text: result.text,
          finish_reason: result.finishReason,
          finish_detail: result.detail,
          seed: result.seed,
          timings: { load_ms: round(loadMs), prompt_n: t.promptTokens, prompt_ms: round(t.promptMs), prompt_per_second: round(t.promptTokensPerSecond), predicted_n: t.generatedTokens, predicted_ms: round(t.generateMs), predicted_per_second: round(t.tokensPerSecond) },
        }) + '\n',
      );
    } else {
      process.stdout.write('\n');
      process.stderr.write(
        `[load ${round(loadMs)} ms | prompt ${t.promptTokens} tokens, ${round(t.promptTokensPerSecond)} tok/s | generation ${t.generatedTokens} tokens, ${round(t.tokensPerSecond)} tok/s | ${lm.deviceName} | lm_head ${lm.model.lmHead} | finish: ${result.finishReason}]\n`,
      );
    }
    return 0;
  } finally {
    constraint?.dispose?.();
    lm.dispose();
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
