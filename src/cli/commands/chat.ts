// wf chat [-m FILE.gguf] [--system TEXT] [sampling flags] [-c CTX]: interactive chat on stdin/stdout.
//
// One Session holds the conversation, so each turn evaluates only what is new: the earlier turns
// stay in its KV cache (prefix reuse). Lines are read from stdin (a terminal or a pipe; each line
// is one user message); `/exit` or end of input ends the chat, `/reset` starts a new conversation
// (the system prompt kept). The reply streams to stdout; a timing line per turn goes to stderr.
// When the conversation would leave less than replyRoom() positions for the reply, the oldest turns
// are dropped (the system prompt kept).
// Ctrl-C (SIGINT) during a reply stops it, as llama-cli does (the text so far stays in the
// conversation); Ctrl-C at the prompt, or Ctrl-D (end of input), quits.
// Without -m the built-in demo model (src/node/demo-model.ts) is used.
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { CACHE_TYPE_OPTION, MODEL_OPTIONS, SPECIAL_OPTION, cacheTypeFrom, loadOptionsFrom, progressBar } from '../common.js';
import { SAMPLING_OPTIONS, samplerOptionsFrom } from '../sampling.js';
import { DEFAULT_BATCH_SIZE } from '../../model/model.js';
import { loadModelFile } from '../../node/model-file.js';
import type { LoadedModel, Session } from '../../engine.js';
import { DEMO_MODEL_DESCRIPTION, loadDemoModel } from '../../node/demo-model.js';
import { chatTemplateFor, describeChatTemplate, encodeChat, probeChatTemplate, type ChatMessage } from '../../tokenizer/chat-template.js';
import type { SamplerOptions } from '../../generate/sampler.js';
import type { GenerationResult } from '../../generate/generate.js';
import { resolveChatTemplate } from '../../server/chat-templates.js';

const SPECS: OptionSpec[] = [
  ...MODEL_OPTIONS,
  { name: 'system', type: 'string', description: 'system prompt' },
  { name: 'ctx-size', short: 'c', type: 'number', description: "context size in tokens (default: the model's, at most 4096)" },
  CACHE_TYPE_OPTION,
  { name: 'batch-size', short: 'b', type: 'number', description: 'prompt tokens per forward batch', default: DEFAULT_BATCH_SIZE },
  { name: 'n-predict', short: 'n', type: 'number', description: 'most tokens per reply; -1 = until end of turn or context', default: -1 },
  { name: 'chat-template', type: 'string', description: 'chat template: a Jinja file, a name (bitnet, chatml, llama3) or Jinja source' },
  SPECIAL_OPTION,
  { name: 'no-progress', type: 'boolean', description: 'no loading progress bar' },
  ...SAMPLING_OPTIONS,
];

export interface ChatLoopOptions {
  session: Session;
  input: Readable;
  output: Writable;
  /** timing lines and notices */
  err: Writable;
  system?: string;
  sampler: SamplerOptions;
  maxTokens?: number;
  template?: string;
  /** print a "> " prompt before each line (terminals) */
  prompt?: boolean;
  /** show control tokens in the replies (--special) */
  special?: boolean;
  /** emits 'interrupt' on Ctrl-C: stops the reply being written, or quits at the prompt */
  interrupts?: EventEmitter;
}

/**
 * Positions kept free for the reply when old turns must be dropped: -n when given, else a quarter
 * of the context (at most 512), so that a long conversation still gets a reply of some length.
 */
export function replyRoom(ctx: number, maxTokens?: number): number {
  return Math.max(1, Math.min(maxTokens ?? 512, Math.floor(ctx / 4)));
}

export interface ChatLoopResult {
  turns: number;
  messages: ChatMessage[];
}

const r1 = (x: number) => Math.round(x * 10) / 10;

/** The chat loop on any streams (the command uses stdin/stdout; tests use their own). */
export async function chatLoop(opts: ChatLoopOptions): Promise<ChatLoopResult> {
  const { session, output, err } = opts;
  const tokenizer = session.model.tokenizer;
  const ctx = session.contextLength;
  const initial = (): ChatMessage[] => (opts.system ? [{ role: 'system', content: opts.system }] : []);
  // which template renders the turns, and why (a wrong one makes a model ramble and never stop)
  const choice = chatTemplateFor(tokenizer, opts.template);
  if (choice.warning) err.write(`[warning: ${choice.warning}]\n`);
  err.write(`[chat template: ${describeChatTemplate(choice)}]\n`);
  probeChatTemplate(tokenizer, opts.template); // a template that cannot render (or not within its budget) stops here
  let messages = initial();
  let turns = 0;
  const rl = createInterface({ input: opts.input, terminal: false, crlfDelay: Infinity });
  const ask = () => {
    if (opts.prompt) output.write('> ');
  };
  // Ctrl-C: stops the reply being generated, or (at the prompt) ends the chat
  let stopReply: AbortController | null = null;
  let quit = false;
  const onInterrupt = () => {
    if (stopReply) stopReply.abort();
    else {
      quit = true;
      rl.close();
    }
  };
  opts.interrupts?.on('interrupt', onInterrupt);
  ask();
  for await (const raw of rl) {
    if (quit) break;
    const line = raw.trim();
    if (line === '') {
      ask();
      continue;
    }
    if (line === '/exit' || line === '/quit') break;
    if (line === '/reset') {
      messages = initial();
      err.write('[conversation reset]\n');
      ask();
      continue;
    }
    messages.push({ role: 'user', content: raw });
    // drop the oldest turns (after the system prompt) until the prompt leaves room for a reply
    let tokens: number[];
    try {
      tokens = encodeChat(tokenizer, messages, { template: opts.template });
    } catch (e) {
      // this message alone fails (e.g. the template runs past its budget on it); the chat goes on
      err.write(`[message not sent: ${(e as Error).message}]\n`);
      messages.pop();
      ask();
      continue;
    }
    const first = opts.system ? 1 : 0;
    const room = replyRoom(ctx, opts.maxTokens);
    let dropped = 0;
    while (tokens.length + room > ctx && messages.length - first > 1) {
      messages.splice(first, 1);
      dropped++;
      tokens = encodeChat(tokenizer, messages, { template: opts.template });
    }
    if (dropped) err.write(`[context full: dropped the ${dropped} oldest message(s)]\n`);
    if (tokens.length >= ctx) {
      err.write(`[this message alone is ${tokens.length} tokens, the context holds ${ctx}: not sent]\n`);
      messages.pop();
      ask();
      continue;
    }
    // earlier turns are already in the session's KV cache: only the new turn is evaluated
    stopReply = new AbortController();
    const it = session.generate(tokens, { sampler: opts.sampler, maxTokens: opts.maxTokens, special: opts.special, signal: stopReply.signal });
    let result: GenerationResult;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) {
          result = r.value;
          break;
        }
        if (r.value.text) output.write(r.value.text);
      }
    } finally {
      stopReply = null;
    }
    output.write('\n');
    if (result.finishReason === 'abort') err.write('[reply stopped]\n');
    messages.push({ role: 'assistant', content: result.text });
    turns++;
    const t = result.timings;
    const reused = session.cache.reusedTokens;
    err.write(
      `[turn ${turns} | prompt ${tokens.length} tokens (${reused} cached, ${t.promptTokens - reused} evaluated), ${r1(t.promptTokensPerSecond)} tok/s` +
        ` | reply ${result.tokens.length} tokens, ${r1(t.tokensPerSecond)} tok/s | finish: ${result.finishReason}]\n`,
    );
    ask();
  }
  rl.close();
  opts.interrupts?.off('interrupt', onInterrupt);
  return { turns, messages };
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  const o = args.options;
  if (o.help) {
    console.log(helpText('usage: wf chat [-m FILE.gguf] [--system TEXT] [--temp 0.8] [-c CTX]\n(one message per line; /reset starts over, /exit or end of input quits)', SPECS));
    return 0;
  }
  if (args.positionals.length) throw new CliError(`unexpected argument '${args.positionals[0]}'`);
  const nPredict = o['n-predict'] as number;
  if (!Number.isInteger(nPredict) || nPredict < -1) throw new CliError(`--n-predict must be -1 or a non-negative integer, got ${nPredict}`);
  const ctxSize = o['ctx-size'] as number | undefined;
  const cacheType = cacheTypeFrom(args);
  if (ctxSize !== undefined && !(Number.isInteger(ctxSize) && ctxSize > 1)) throw new CliError(`--ctx-size must be an integer > 1, got ${ctxSize}`);
  const sampler = samplerOptionsFrom(args);
  const template = o['chat-template'] !== undefined ? resolveChatTemplate(o['chat-template'] as string) : undefined;
  const path = o.model as string | undefined;
  const loadOpts = loadOptionsFrom(args);
  let lm: LoadedModel;
  if (path) {
    const bar = o['no-progress'] ? undefined : progressBar('loading');
    lm = await loadModelFile(path, { ...loadOpts, onProgress: bar && ((p) => bar(p.bytesDone, p.bytesTotal)) });
    bar?.end();
  } else {
    process.stderr.write(`wf chat: no --model given: using the built-in demo model, ${DEMO_MODEL_DESCRIPTION}\n`);
    lm = await loadDemoModel(loadOpts);
  }
  try {
    const session = lm.createSession({ ctxSize, batchSize: o['batch-size'] as number, cacheType });
    const interactive = !!process.stdin.isTTY;
    process.stderr.write(`[${lm.config.name} | ctx ${session.contextLength} | lm_head ${lm.model.lmHead}${interactive ? ' | /reset to start over; Ctrl-C stops a reply; /exit, Ctrl-C or Ctrl-D at the prompt quits' : ''}]\n`);
    const interrupts = new EventEmitter();
    const onSigint = () => interrupts.emit('interrupt');
    process.on('SIGINT', onSigint);
    await chatLoop({
      interrupts,
      session,
      input: process.stdin,
      output: process.stdout,
      err: process.stderr,
      system: o.system as string | undefined,
      sampler,
      maxTokens: nPredict < 0 ? undefined : nPredict,
      template,
      prompt: interactive,
      special: !!o.special,
    }).finally(() => process.off('SIGINT', onSigint));
    // quitting with Ctrl-C leaves stdin open: stop reading it so that the process can end
    process.stdin.pause();
    return 0;
  } finally {
    lm.dispose();
  }
}
