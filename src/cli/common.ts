// Options and helpers shared by the commands that load a model.
import { usableCpus } from '../node/cpu-quota.js';
import { nodeKernelPlatform } from '../node/threads.js';
import { deviceChoice } from '../node/webgpu.js';
import { CliError, type OptionSpec, type ParsedArgs } from './args.js';
import type { LoadOptions } from '../engine.js';
import { DEFAULT_LM_HEAD, type LmHeadPrecision } from '../model/lm-head.js';
import { DEFAULT_I2S_LAYOUT, I2S_LAYOUTS, type I2SLayout } from '../formats/index.js';
import { DEMO_MODEL_FILE } from '../node/demo-model.js';

/** --i2s-layout: which of bitnet.cpp's I2_S byte orders the file uses (the bytes cannot tell). */
export const I2S_LAYOUT_OPTION: OptionSpec = {
  name: 'i2s-layout',
  type: 'string',
  description: 'I2_S byte layout: x86 (bitnet.cpp x86 build, the official 2B4T file) | arm | x86-interleaved (x86 without ACT_PARALLEL); try another if an I2_S file gives garbage',
  default: 'x86',
};

/** Output head precision, shared by run, chat, logits, perplexity and the server. */
export const LM_HEAD_OPTION: OptionSpec = {
  name: 'lm-head',
  type: 'string',
  description: 'output head: int8 (int8 rows and activations, faster) | f16 (the file\'s own rows, float activations, as bitnet.cpp)',
  default: DEFAULT_LM_HEAD,
};

/** Where the model runs, shared by run, chat, logits, perplexity and the server. */
export const DEVICE_OPTION: OptionSpec = {
  name: 'device',
  type: 'string',
  description: 'cpu | webgpu (a GPU through WebGPU: needs the optional npm package webgpu and a Vulkan, Metal or D3D12 driver) (default: WF_DEVICE, else cpu)',
};

export const MODEL_OPTIONS: OptionSpec[] = [
  { name: 'model', short: 'm', type: 'string', description: 'GGUF model file' },
  { name: 'threads', short: 't', type: 'number', description: 'worker threads (default: the CPUs this process may use: cores, affinity mask, cgroup CPU quota)' },
  { name: 'kernels', type: 'string', description: 'kernel path: relaxed | simd | reference (default: fastest available)' },
  { name: 'ffn-act', type: 'string', description: 'force the FFN activation of a bitnet file: relu2 | silu' },
  LM_HEAD_OPTION,
  I2S_LAYOUT_OPTION,
  DEVICE_OPTION,
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

/** -m FILE, or the built-in demo model (said on stderr) when none is given, as run and chat do. */
export function modelOrDemo(args: ParsedArgs, command: string): string {
  const m = args.options.model as string | undefined;
  if (m !== undefined) return m;
  process.stderr.write(`wf ${command}: no --model given: using the built-in demo model\n`);
  return DEMO_MODEL_FILE;
}

export function loadOptionsFrom(args: ParsedArgs): LoadOptions {
  const o = args.options;
  const threads = (o.threads as number | undefined) ?? usableCpus().count;
  if (!Number.isInteger(threads) || threads < 1) throw new CliError(`--threads must be a positive integer, got ${threads}`);
  const kernels = o.kernels as string | undefined;
  if (kernels !== undefined && !['relaxed', 'simd', 'reference'].includes(kernels)) {
    throw new CliError(`--kernels must be relaxed, simd or reference, got '${kernels}'`);
  }
  const ffnAct = o['ffn-act'] as string | undefined;
  if (ffnAct !== undefined && ffnAct !== 'relu2' && ffnAct !== 'silu') throw new CliError(`--ffn-act must be relu2 or silu, got '${ffnAct}'`);
  const lmHead = (o['lm-head'] as string | undefined) ?? DEFAULT_LM_HEAD;
  if (lmHead !== 'int8' && lmHead !== 'f16') throw new CliError(`--lm-head must be int8 or f16, got '${lmHead}'`);
  const layout = (o['i2s-layout'] as string | undefined) ?? DEFAULT_I2S_LAYOUT;
  if (!(I2S_LAYOUTS as readonly string[]).includes(layout)) {
    throw new CliError(`--i2s-layout must be one of ${I2S_LAYOUTS.join(', ')}, got '${layout}'`);
  }
  let device: 'cpu' | 'webgpu';
  try {
    device = deviceChoice(o.device as string | undefined);
  } catch (e) {
    throw new CliError(`--device: ${(e as Error).message}`);
  }
  return { device, threads, kernelPath: kernels as LoadOptions['kernelPath'], ffnAct, i2sLayout: layout as I2SLayout, lmHead: lmHead as LmHeadPrecision, platform: nodeKernelPlatform() };
}

/** --special, shared by run, chat and the server (llama.cpp's flag of the same name). */
export const SPECIAL_OPTION: OptionSpec = {
  name: 'special',
  type: 'boolean',
  description: 'show control tokens (<|eot_id|>, <|end_of_text|>, ...) in the output text; by default they count but print nothing',
};

/** The KV cache option shared by run, chat and the server (llama.cpp's -ctk/-ctv, for both). */
export const CACHE_TYPE_OPTION: OptionSpec = { name: 'cache-type', type: 'string', description: 'KV cache element type: f32 | f16 (f16 halves the cache)', default: 'f32' };

export function cacheTypeFrom(args: ParsedArgs): 'f32' | 'f16' {
  const t = args.options['cache-type'] as string | undefined;
  if (t === undefined || t === 'f32' || t === 'f16') return t ?? 'f32';
  throw new CliError(`--cache-type must be f32 or f16, got '${t}'`);
}

/** "1,2,3" -> [1,2,3], with a clear error for anything else. */
export function parseTokenList(s: string): number[] {
  const parts = s.split(',').map((x) => x.trim()).filter((x) => x.length);
  if (!parts.length) throw new CliError('--tokens needs a comma-separated list of token ids');
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0) throw new CliError(`--tokens: '${p}' is not a token id`);
    return n;
  });
}

/** A progress bar on a terminal, nothing otherwise. */
export function progressBar(label: string): ((done: number, total: number) => void) & { end(): void } {
  const tty = process.stderr.isTTY;
  let last = -1;
  const f = (done: number, total: number) => {
    if (!tty) return;
    const pct = Math.floor((100 * done) / Math.max(1, total));
    if (pct === last) return;
    last = pct;
    const width = 30;
    const filled = Math.round((width * pct) / 100);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}%`);
  };
  return Object.assign(f, { end: () => { if (tty && last >= 0) process.stderr.write('\n'); } });
}
