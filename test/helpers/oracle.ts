// Loads the oracle pack (references written by llama.cpp / bitnet.cpp, copied from ../shared/oracle
// into test/fixtures/oracle, gzipped) for tests.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
// Works from test/helpers (tsx) and from dist/test/helpers (compiled).
const candidates = [join(here, '../fixtures/oracle'), join(here, '../../../test/fixtures/oracle')];

export function oraclePath(name: string): string {
  for (const dir of candidates) {
    try {
      readFileSync(join(dir, name + '.gz'), { flag: 'r' }).length;
      return join(dir, name + '.gz');
    } catch {}
  }
  throw new Error(`oracle fixture ${name} not found in test/fixtures/oracle`);
}

const cache = new Map<string, Uint8Array>();
/** Raw bytes of an oracle file (decompressed). */
export function oracleBytes(name: string): Uint8Array {
  let b = cache.get(name);
  if (!b) {
    b = new Uint8Array(gunzipSync(readFileSync(oraclePath(name))));
    cache.set(name, b);
  }
  return b;
}

/** An oracle file as an ArrayBuffer of its own (safe to hand to a reader). */
export function oracleArrayBuffer(name: string): ArrayBuffer {
  const b = oracleBytes(name);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

export function oracleJson<T = any>(name: string): T {
  return JSON.parse(new TextDecoder().decode(oracleBytes(name))) as T;
}

export const ORACLE_MODELS = [
  'bitnet-tiny-silu-f32', 'bitnet-tiny-silu-tq2_0', 'bitnet-tiny-silu-tq1_0', 'bitnet-tiny-silu-i2_s',
  'bitnet-tiny-relu2-f32', 'bitnet-tiny-relu2-tq2_0', 'bitnet-tiny-relu2-tq1_0',
] as const;
