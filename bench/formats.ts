// Unpack throughput of every weight format: to f32 (dequantize) and, for the formats that can hold
// ternary weights, to ternary codes (ternaryFromTensor). One tensor of 2560 x 1536 elements per
// format (a few MB packed), best of several timed runs after a warm-up.
// Run: npx tsx bench/formats.ts   (or node dist/bench/formats.js after a build)
// Prints a table and writes bench/results/formats.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  bf16Format, f16Format, f32Format, i2_sFormat, q6_kFormat, q8_0Format, ternaryFromTensor, tq1_0Format, tq2_0Format,
  type WeightFormat,
} from '../src/formats/index.js';

const ROW = 2560;
const ROWS = 1536;
const N = ROW * ROWS;
const SCALE = 0.125;

export interface FormatBenchRow {
  format: string;
  op: 'unpack-f32' | 'unpack-ternary';
  packedBytes: number;
  ms: number;
  /** packed bytes read per second */
  packedGBps: number;
  /** elements produced per second (millions) */
  mElemPerS: number;
}

function codes(): Int8Array {
  let s = 12345;
  const c = new Int8Array(N);
  for (let i = 0; i < N; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    c[i] = ((s >>> 16) % 3) - 1;
  }
  return c;
}

/** Best wall time (ms) of fn over runs lasting at least minMs in total (at least 3 runs). */
function time(fn: () => void, minMs = 400): number {
  fn(); // warm-up
  let best = Infinity;
  let total = 0;
  let runs = 0;
  while (runs < 3 || total < minMs) {
    const t0 = performance.now();
    fn();
    const dt = performance.now() - t0;
    best = Math.min(best, dt);
    total += dt;
    runs++;
  }
  return best;
}

export function runFormatsBench(): FormatBenchRow[] {
  const c = codes();
  const values = Float32Array.from(c, (x) => x * SCALE);
  const q6 = new Uint8Array((N / 256) * 210);
  for (let i = 0; i < q6.length; i++) q6[i] = (i * 37 + 11) & 0xff;
  for (let b = 0; b < N / 256; b++) q6[b * 210 + 209] = 0x2c; // finite f16 d

  const cases: [WeightFormat, Uint8Array, boolean][] = [
    [f32Format, f32Format.pack!(values, ROW), true],
    [f16Format, f16Format.pack!(values, ROW), true],
    [bf16Format, bf16Format.pack!(values, ROW), true],
    [q8_0Format, q8_0Format.pack!(values, ROW), false],
    [q6_kFormat, q6, false],
    [tq1_0Format, tq1_0Format.packTernary(c, SCALE, ROW), true],
    [tq2_0Format, tq2_0Format.packTernary(c, SCALE, ROW), true],
    [i2_sFormat, i2_sFormat.packTernary(c, SCALE, ROW), true],
  ];
  const rows: FormatBenchRow[] = [];
  const row = (format: string, op: FormatBenchRow['op'], bytes: Uint8Array, ms: number): FormatBenchRow => ({
    format, op, packedBytes: bytes.length, ms: +ms.toFixed(3),
    packedGBps: +(bytes.length / ms / 1e6).toFixed(3), mElemPerS: +(N / ms / 1e3).toFixed(1),
  });
  for (const [f, bytes, ternary] of cases) {
    rows.push(row(f.name, 'unpack-f32', bytes, time(() => f.unpack(bytes, N, ROW))));
    if (ternary) rows.push(row(f.name, 'unpack-ternary', bytes, time(() => ternaryFromTensor(f.type, bytes, N, ROW))));
  }
  return rows;
}

function main(): void {
  const rows = runFormatsBench();
  console.log(`formats: unpack of one ${ROWS}x${ROW} tensor (${(N / 1e6).toFixed(2)}M elements), best run`);
  console.log('format  op              packed MB      ms   packed GB/s   Melem/s');
  for (const r of rows) {
    console.log(
      `${r.format.padEnd(7)} ${r.op.padEnd(15)} ${(r.packedBytes / 1e6).toFixed(2).padStart(9)} ${r.ms.toFixed(1).padStart(7)} ` +
        `${r.packedGBps.toFixed(2).padStart(13)} ${r.mElemPerS.toFixed(0).padStart(9)}`,
    );
  }
  const here = dirname(fileURLToPath(import.meta.url));
  // works from bench/ (tsx) and dist/bench/ (compiled)
  const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');
  const out = join(root, 'bench', 'results', 'formats.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ bench: 'formats', node: process.version, elements: N, rowLength: ROW, date: new Date().toISOString(), rows }, null, 2));
  console.log(`wrote ${out}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
