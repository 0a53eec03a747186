// `wf`: the command-line tool. Each subcommand lives in its own module under commands/ and is
// loaded only when called, so `wf inspect` does not pay for the kernels.
import { CliError } from './args.js';
import { exitQuietlyOnClosedStdout } from './closed-pipe.js';
import { packageVersion } from './version.js';

interface Command {
  summary: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  inspect: { summary: 'show a GGUF file: architecture, hyperparameters, tokenizer, tensors', load: () => import('./commands/inspect.js') },
  convert: { summary: 'convert a Hugging Face BitNet checkpoint to GGUF', load: () => import('./commands/convert.js') },
  run: { summary: 'generate text from a prompt', load: () => import('./commands/run.js') },
  chat: { summary: 'interactive chat', load: () => import('./commands/chat.js') },
  logits: { summary: 'print logits for a token sequence (JSON)', load: () => import('./commands/logits.js') },
  perplexity: { summary: 'perplexity of a text file, as llama-perplexity computes it', load: () => import('./commands/perplexity.js') },
  tokenize: { summary: 'tokenize text with a model file\'s tokenizer (JSON)', load: () => import('./commands/tokenize.js') },
  web: { summary: 'serve the browser app (and a folder of models) on localhost', load: () => import('./commands/web.js') },
  download: { summary: 'download a model file (resumable, checked with --sha256 before it takes its name)', load: () => import('./commands/download.js') },
  serve: { summary: 'OpenAI-compatible HTTP server (same as wf_server)', load: () => import('./commands/serve.js') },
};

function usage(): string {
  const lines = ['usage: wf <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `wf <command> --help` for the options of a command; `wf --version` prints the version.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  exitQuietlyOnClosedStdout();
  const [name, ...rest] = argv;
  if (name === '--version' || name === 'version') {
    console.log(`wf ${packageVersion()} (wrinklefree)`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`wf: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`wf ${name}: ${e.message}`);
      return 2;
    }
    const err = e as Error;
    // Known failure classes (bad files, bad input) print their message, not a stack.
    console.error(`wf ${name}: error: ${err?.message ?? String(e)}`);
    if (process.env.WF_DEBUG) console.error(err?.stack);
    return 1;
  }
}
