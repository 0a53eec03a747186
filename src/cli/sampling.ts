// Sampling flags shared by `wf run` and `wf chat` (llama.cpp names and defaults).
import { CliError, type OptionSpec, type ParsedArgs } from './args.js';
import { resolveSamplerOptions, type SamplerOptions } from '../generate/sampler.js';

export const SAMPLING_OPTIONS: OptionSpec[] = [
  { name: 'temp', type: 'number', description: 'temperature; 0 = greedy', default: 0.8 },
  { name: 'top-k', type: 'number', description: 'top-k sampling; 0 = off', default: 40 },
  { name: 'top-p', type: 'number', description: 'top-p (nucleus) sampling; 1 = off', default: 0.95 },
  { name: 'min-p', type: 'number', description: 'min-p sampling; 0 = off', default: 0.05 },
  { name: 'repeat-penalty', type: 'number', description: 'penalize repeated tokens; 1 = off', default: 1 },
  { name: 'repeat-last-n', type: 'number', description: 'tokens the penalties look back over; -1 = all', default: 64 },
  { name: 'presence-penalty', type: 'number', description: 'OpenAI presence penalty', default: 0 },
  { name: 'frequency-penalty', type: 'number', description: 'OpenAI frequency penalty', default: 0 },
  { name: 'logit-bias', short: 'l', type: 'list', description: 'TOKEN(+|-)BIAS, e.g. 15043+1 or 15043-inf (repeatable)' },
  { name: 'seed', short: 's', type: 'number', description: 'random seed (default: random)' },
];

export function samplerOptionsFrom(args: ParsedArgs): SamplerOptions {
  const o = args.options;
  const bias: Record<string, number> = {};
  for (const spec of (o['logit-bias'] as string[] | undefined) ?? []) {
    const m = /^(\d+)([+-])(inf|\d+(?:\.\d+)?)$/i.exec(spec.trim());
    if (!m) throw new CliError(`--logit-bias '${spec}' is not TOKEN+BIAS or TOKEN-BIAS (e.g. 15043+1, 15043-inf)`);
    const v = m[3].toLowerCase() === 'inf' ? Infinity : Number(m[3]);
    bias[m[1]] = m[2] === '-' ? -v : v;
  }
  const seed = o.seed as number | undefined;
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) throw new CliError(`--seed must be a non-negative integer, got ${seed}`);
  const opts: SamplerOptions = {
    temperature: o.temp as number,
    topK: o['top-k'] as number,
    topP: o['top-p'] as number,
    minP: o['min-p'] as number,
    repeatPenalty: o['repeat-penalty'] as number,
    repeatLastN: o['repeat-last-n'] as number,
    presencePenalty: o['presence-penalty'] as number,
    frequencyPenalty: o['frequency-penalty'] as number,
    logitBias: bias,
    seed,
  };
  // checked here, so that a bad value is reported by its flag (--top-p), not the sampler's name (topP)
  try {
    resolveSamplerOptions(opts);
  } catch (e) {
    const m = /^sampler option (\w+) (must be .*)$/.exec((e as Error).message);
    const flag = m && FLAG_OF[m[1]!];
    if (flag) throw new CliError(`--${flag} ${m[2]}`);
    throw e;
  }
  return opts;
}

/** The flag of each sampler option. */
const FLAG_OF: Record<string, string> = {
  temperature: 'temp',
  topK: 'top-k',
  topP: 'top-p',
  minP: 'min-p',
  repeatPenalty: 'repeat-penalty',
  repeatLastN: 'repeat-last-n',
  presencePenalty: 'presence-penalty',
  frequencyPenalty: 'frequency-penalty',
};
