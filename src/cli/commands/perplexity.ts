// wf perplexity [-m FILE.gguf] -f TEXT [-c N] [--json]: perplexity of a text file, computed the way
// llama.cpp's `llama-perplexity` does it (src/model/perplexity.ts), so the figure compares with
// llama.cpp's on the same file, text and -c. Progress goes to stderr (a bar on a terminal, llama's
// "[chunk]ppl," line otherwise); the result to stdout. Without -m the built-in demo model is used.
import { readFile, stat } from 'node:fs/promises';
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { MODEL_OPTIONS, loadOptionsFrom, progressBar } from '../common.js';
import { DEFAULT_BATCH_SIZE } from '../../model/model.js';
import { loadModelFile } from '../../node/model-file.js';
import type { LoadedModel } from '../../engine.js';
import { loadDemoModel } from '../../node/demo-model.js';

/** llama-perplexity's default -c. */
const DEFAULT_CTX = 512;

const SPECS: OptionSpec[] = [
  ...MODEL_OPTIONS,
  { name: 'file', short: 'f', type: 'string', description: 'text file to score (UTF-8)' },
  { name: 'ctx-size', short: 'c', type: 'number', description: `tokens per chunk; the second half of each is scored (default ${DEFAULT_CTX}, as llama-perplexity, or the model's context when shorter)` },
  { name: 'batch-size', short: 'b', type: 'number', description: 'tokens per forward batch', default: DEFAULT_BATCH_SIZE },
  { name: 'json', type: 'boolean', description: 'print {"ppl","ppl_stddev","tokens_scored","chunks","bytes"} instead of text' },
  { name: 'no-progress', type: 'boolean', description: 'no progress on stderr' },
];

async function readText(path: string): Promise<{ text: string; bytes: number }> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new CliError(`text file not found: ${path}`);
  }
  if (!st.isFile()) throw new CliError(`not a file: ${path}`);
  const buf = await readFile(path);
  return { text: new TextDecoder('utf-8').decode(buf), bytes: buf.length };
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  const o = args.options;
  if (o.help) {
    console.log(helpText(
      'usage: wf perplexity [-m FILE.gguf] -f TEXT [-c N] [--json]\n' +
        '(llama-perplexity\'s method: non-overlapping chunks of -c tokens, BOS first when the model adds it,\n' +
        ' the second half of each chunk scored; PPL = exp(mean NLL) +/- its standard error)',
      SPECS,
    ));
    return 0;
  }
  if (args.positionals.length) throw new CliError(`unexpected argument '${args.positionals[0]}' (the text file goes after -f)`);
  const file = o.file as string | undefined;
  if (!file) throw new CliError('missing -f TEXT_FILE (the text to score)');
  const ctxArg = o['ctx-size'] as number | undefined;
  if (ctxArg !== undefined && (!Number.isInteger(ctxArg) || ctxArg < 4)) throw new CliError(`--ctx-size must be an integer >= 4, got ${ctxArg}`);
  const batchSize = o['batch-size'] as number;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new CliError(`--batch-size must be a positive integer, got ${batchSize}`);
  const { text, bytes } = await readText(file);
  const loadOpts = loadOptionsFrom(args);
  const path = o.model as string | undefined;
  const quiet = !!o['no-progress'];
  let lm: LoadedModel;
  if (path) {
    const bar = quiet ? undefined : progressBar('loading');
    lm = await loadModelFile(path, { ...loadOpts, onProgress: bar && ((p) => bar(p.bytesDone, p.bytesTotal)) });
    bar?.end();
  } else {
    process.stderr.write('wf perplexity: no --model given: using the built-in demo model\n');
    lm = await loadDemoModel(loadOpts);
  }
  try {
    const ctx = ctxArg ?? Math.min(DEFAULT_CTX, lm.config.contextLength);
    const tty = process.stderr.isTTY;
    const bar = quiet || !tty ? undefined : progressBar('perplexity');
    const t0 = performance.now();
    const r = await lm.perplexity(text, {
      ctx,
      batchSize,
      onChunk: (p) => {
        if (quiet) return;
        // a bar on a terminal; llama-perplexity's running "[chunk]ppl," otherwise (a log keeps every figure)
        if (bar) bar(p.chunk, p.chunks);
        else process.stderr.write(`[${p.chunk}]${p.ppl.toFixed(4)},${p.chunk === p.chunks ? '\n' : ''}`);
      },
    });
    bar?.end();
    const secs = (performance.now() - t0) / 1000;
    if (o.json) {
      process.stdout.write(JSON.stringify({ ppl: r.ppl, ppl_stddev: r.pplStddev, tokens_scored: r.tokensScored, chunks: r.chunks, bytes }) + '\n');
    } else {
      process.stdout.write(`PPL = ${r.ppl.toFixed(4)} +/- ${r.pplStddev.toFixed(5)}\n`);
      process.stderr.write(
        `[${r.chunks} chunks of ${ctx} tokens (${r.textTokens} in the text, ${bytes} bytes) | ${r.tokensScored} scored | ` +
          `${(secs).toFixed(1)} s | lm_head ${lm.model.lmHead} | ${lm.deviceName}]\n`,
      );
    }
    return 0;
  } finally {
    lm.dispose();
  }
}
