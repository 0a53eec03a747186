// `wf convert CHECKPOINT_DIR -o model.gguf`: Hugging Face BitNet checkpoint -> GGUF.
// Progress goes to stderr: a redrawn bar on a terminal, one plain line per tensor otherwise, nothing
// with --quiet. Ctrl-C removes the partly written temp file; the target is only ever replaced whole.

import { unlinkSync } from 'node:fs';
import { CliError, helpText, parseArgs, type OptionSpec } from '../args.js';
import { convertCheckpoint, pendingTempFiles, type ConvertProgress } from '../../convert/hf-to-gguf.js';
import { EMBED_TYPES, OUT_TYPES, type EmbedType, type OutType } from '../../convert/tensor-jobs.js';
import type { GGUFArch } from '../../convert/hf-config.js';

const SPECS: OptionSpec[] = [
  { name: 'outfile', short: 'o', type: 'string', description: 'GGUF file to write (required)' },
  { name: 'outtype', type: 'string', default: 'i2_s', description: `ternary weight format: ${OUT_TYPES.join(' | ')}` },
  { name: 'embed-type', type: 'string', default: 'f16', description: `token embedding / output format: ${EMBED_TYPES.join(' | ')}` },
  { name: 'arch', type: 'string', description: "GGUF architecture: 'bitnet' (mainline llama.cpp name) or 'bitnet-b1.58'; default from config.json" },
  { name: 'validate', type: 'boolean', description: 're-read the output and check every tensor against the checkpoint' },
  { name: 'quiet', short: 'q', type: 'boolean', description: 'no progress output' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

const USAGE = 'usage: wf convert CHECKPOINT_DIR --outfile model.gguf [--outtype i2_s|tq2_0|tq1_0|f16|f32] [--embed-type f16|q8_0|f32] [--arch bitnet] [--validate] [--quiet]';

const MB = 1024 * 1024;

function progressPrinter(tty: boolean): (p: ConvertProgress) => void {
  let lastDraw = 0;
  return (p) => {
    const secs = Math.max(p.elapsedMs / 1000, 1e-3);
    const rate = p.bytesRead / MB / secs;
    const what = p.phase === 'validate' ? 'validating' : 'converting';
    if (!tty) {
      process.stderr.write(
        `${what} [${p.index}/${p.total}] ${p.tensor}  ${(p.bytesRead / MB).toFixed(1)}/${(p.bytesTotal / MB).toFixed(1)} MB  ${rate.toFixed(1)} MB/s\n`,
      );
      return;
    }
    const now = Date.now();
    if (now - lastDraw < 100 && p.index !== p.total) return;
    lastDraw = now;
    const width = 30;
    const frac = p.bytesTotal > 0 ? p.bytesRead / p.bytesTotal : p.index / p.total;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const line = `${what} [${bar}] ${p.index}/${p.total} tensors  ${(p.bytesRead / MB).toFixed(0)}/${(p.bytesTotal / MB).toFixed(0)} MB  ${rate.toFixed(0)} MB/s  ${p.tensor}`;
    const cols = process.stderr.columns || 120;
    process.stderr.write(`\r${line.slice(0, cols - 1).padEnd(cols - 1)}`);
    if (p.index === p.total) process.stderr.write('\n');
  };
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], option: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new CliError(`--${option} must be one of ${allowed.join(', ')}; got '${String(value)}'`);
  }
  return value as T;
}

export async function run(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, SPECS);
  if (options.help) {
    console.log(helpText(USAGE, SPECS));
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`expected one CHECKPOINT_DIR, got ${positionals.length}\n${USAGE}`);
  const outfile = options.outfile as string | undefined;
  if (!outfile) throw new CliError(`--outfile (-o) is required\n${USAGE}`);
  const outtype = oneOf<OutType>(options.outtype, OUT_TYPES, 'outtype');
  const embedType = oneOf<EmbedType>(options['embed-type'], EMBED_TYPES, 'embed-type');
  const arch = options.arch === undefined ? undefined : oneOf<GGUFArch>(options.arch, ['bitnet', 'bitnet-b1.58'], 'arch');
  const quiet = options.quiet === true;

  const onSignal = () => {
    for (const p of pendingTempFiles) {
      try {
        unlinkSync(p);
      } catch {
        /* already gone */
      }
    }
    process.stderr.write('\nwf convert: interrupted; nothing was written\n');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await convertCheckpoint({
      checkpointDir: positionals[0]!,
      outfile,
      outtype,
      embedType,
      arch,
      validate: options.validate === true,
      onProgress: quiet ? undefined : progressPrinter(process.stderr.isTTY === true),
    });
    if (!quiet) {
      console.error(
        `wrote ${r.outfile}: arch ${r.arch}, ${r.outtype}, ${r.tensors} tensors, ${(r.bytesWritten / MB).toFixed(1)} MB ` +
          `from ${(r.bytesRead / MB).toFixed(1)} MB in ${r.seconds.toFixed(1)} s (${(r.bytesRead / MB / Math.max(r.seconds, 1e-3)).toFixed(1)} MB/s)` +
          (r.validated ? ', validated' : ''),
      );
      for (const n of r.notes) console.error(`note: ${n}`);
    }
    return 0;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
