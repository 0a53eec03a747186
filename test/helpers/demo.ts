// Fixtures of the trained demo model (test/fixtures/demo, written by tools/train-demo/reference.py).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
// from test/helpers (tsx) and from dist/test/helpers (compiled)
const dir = [join(here, '../fixtures/demo'), join(here, '../../../test/fixtures/demo')].find((d) => {
  try {
    return readFileSync(join(d, 'reference.json')).length > 0;
  } catch {
    return false;
  }
});

function fixture(name: string): Buffer {
  if (!dir) throw new Error('test/fixtures/demo not found');
  const b = readFileSync(join(dir, name));
  return name.endsWith('.gz') ? gunzipSync(b) : b;
}

export interface DemoReference {
  vocab_size: number;
  prompts: number[][];
  texts: string[];
  /** logits[prompt][position] (vocab_size values) */
  logits: Float32Array[][];
}

/** PyTorch float32 reference logits of the demo model. */
export function demoReference(): DemoReference {
  const meta = JSON.parse(fixture('reference.json').toString('utf8')) as Omit<DemoReference, 'logits'>;
  const raw = fixture('reference-logits.f32.gz');
  const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const V = meta.vocab_size;
  let off = 0;
  const logits = meta.prompts.map((p) =>
    p.map(() => {
      const row = all.subarray(off, off + V);
      off += V;
      return row;
    }),
  );
  if (off !== all.length) throw new Error(`reference-logits.f32: ${all.length} values, the prompts need ${off}`);
  return { ...meta, logits };
}

/** The corpus word list (lowercase words seen at least twice in the demo's training text). */
export function demoWords(): Set<string> {
  return new Set(fixture('words.txt.gz').toString('utf8').split('\n').filter(Boolean));
}

/** Words of a text, lowercased: letters with inner apostrophes. */
export function wordsOf(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+(?:'[a-z]+)*/g) ?? [];
}
