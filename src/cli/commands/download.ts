// wf download URL -o FILE [--sha256 HEX]: a model file onto disk, resumable, checked before it
// takes its name (see src/node/download.ts). Progress goes to stderr, the result line to stdout.
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { download, DownloadError, type Progress } from '../../node/download.js';

const SPECS: OptionSpec[] = [
  { name: 'output', short: 'o', type: 'string', description: 'where the file goes (it appears only once complete and checked; FILE.part holds the bytes so far)' },
  { name: 'sha256', type: 'string', description: 'expected SHA-256 (64 hex digits): a mismatch removes the download and exits 1; a FILE already there with this checksum is kept' },
  { name: 'retries', type: 'number', description: 'times a cut connection is resumed before giving up', default: 5 },
  { name: 'quiet', short: 'q', type: 'boolean', description: 'no progress lines' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

const MiB = 1024 * 1024;
const mib = (n: number) => (n / MiB).toFixed(1);

function progressLine(p: Progress): string {
  const of = p.total !== null ? ` of ${mib(p.total)} MiB (${((100 * p.received) / Math.max(1, p.total)).toFixed(1)}%)` : '';
  return `wf download: ${mib(p.received)} MiB${of}, ${mib(p.bytesPerSecond)} MiB/s${p.done ? ', done' : ''}`;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  const o = args.options;
  if (o.help) {
    console.log(helpText('usage: wf download URL -o FILE [--sha256 HEX] [--retries N]', SPECS));
    return 0;
  }
  if (args.positionals.length !== 1) throw new CliError(args.positionals.length === 0 ? 'missing URL' : `one URL at a time, got ${args.positionals.length}`);
  const out = o.output as string | undefined;
  if (!out) throw new CliError('missing -o FILE');
  const retries = o.retries as number;
  if (!Number.isInteger(retries) || retries < 0) throw new CliError(`--retries must be a non-negative integer, got ${retries}`);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const r = await download({
      url: args.positionals[0]!,
      out,
      sha256: o.sha256 as string | undefined,
      retries,
      signal: ac.signal,
      progress: o.quiet ? undefined : (p) => process.stderr.write(progressLine(p) + '\n'),
    });
    if (r.alreadyThere) {
      console.log(`${out}: already there with sha256 ${r.sha256}; nothing downloaded`);
      return 0;
    }
    const resumed = r.resumedFrom > 0 ? `, resumed from byte ${r.resumedFrom}` : '';
    const cuts = r.retries > 0 ? `, ${r.retries} cut connection(s) resumed` : '';
    console.log(`${out}: ${r.bytes} bytes, sha256 ${r.sha256}${o.sha256 ? ' (matches)' : ''}${resumed}${cuts}`);
    return 0;
  } catch (e) {
    if (e instanceof DownloadError) {
      console.error(`wf download: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
