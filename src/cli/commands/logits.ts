// wf logits [-m FILE] --tokens 1,2,3 [--all]  ->  {"logits":[...]} (last position) or [[...], ...] (every position)
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { MODEL_OPTIONS, loadOptionsFrom, parseTokenList, modelOrDemo } from '../common.js';
import { DEFAULT_BATCH_SIZE } from '../../model/model.js';
import { loadModelFile } from '../../node/model-file.js';

const SPECS: OptionSpec[] = [
  ...MODEL_OPTIONS,
  { name: 'tokens', type: 'string', description: 'comma-separated token ids (no BOS is added)' },
  { name: 'prompt', short: 'p', type: 'string', description: 'text to tokenize instead of --tokens' },
  { name: 'all', type: 'boolean', description: 'logits of every position, not just the last' },
  { name: 'batch-size', short: 'b', type: 'number', description: 'tokens per forward batch', default: DEFAULT_BATCH_SIZE },
];

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  if (args.options.help) {
    console.log(helpText('usage: wf logits [-m FILE.gguf] --tokens 1,2,3 [--all]   (no -m: the built-in demo model)', SPECS));
    return 0;
  }
  const path = modelOrDemo(args, 'logits');
  const tokensArg = args.options.tokens as string | undefined;
  const prompt = args.options.prompt as string | undefined;
  if (!tokensArg && prompt === undefined) throw new CliError('give --tokens 1,2,3 or --prompt TEXT');
  const lm = await loadModelFile(path, loadOptionsFrom(args));
  try {
    const tokens = tokensArg ? parseTokenList(tokensArg) : lm.tokenizer.encode(prompt!);
    const V = lm.config.vocabSize;
    for (const t of tokens) if (t >= V) throw new CliError(`token id ${t} is outside the vocabulary (size ${V})`);
    const seq = lm.createSequence({ ctxSize: Math.max(tokens.length, 1), batchSize: args.options['batch-size'] as number });
    const all = !!args.options.all;
    const logits = await seq.forward(tokens, { allLogits: all });
    const rows = all ? Array.from({ length: tokens.length }, (_, i) => Array.from(logits.subarray(i * V, (i + 1) * V))) : Array.from(logits);
    process.stdout.write(JSON.stringify({ tokens, logits: rows }) + '\n');
    return 0;
  } finally {
    lm.dispose();
  }
}
