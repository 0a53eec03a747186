// llama-server's slot files (--slot-save-path DIR): POST /slots/{id}?action=save|restore|erase.
//   save     {filename}  the slot's cached tokens and their keys/values -> DIR/filename
//            -> {id_slot, filename, n_saved (tokens), n_written (bytes), timings: {save_ms}}
//   restore  {filename}  DIR/filename -> the slot's cache (what it held goes to the prompt cache
//            when the pool has room); the next request on that slot (id_slot) or continuing that
//            text reads only what follows -> {id_slot, filename, n_restored, n_read, timings: {restore_ms}}
//   erase               the slot's cache is dropped -> {id_slot, n_erased}
// A slot that is running a request is waited for (as llama-server defers the action). Without
// --slot-save-path every action answers 501. File names are plain names inside DIR (letters,
// digits, '.', '_', '-'; no path), so a request cannot read or write elsewhere.
//
// The file is WrinkleFree's own (llama.cpp's state files hold its own KV layout), little-endian:
//   "WFSLOT\0\0"  u32 version (1)  u32 n  (header JSON bytes)  header JSON
//   u32 tokens[n_tokens]
//   for each layer: keys then values, for each KV head: n_tokens * head_dim values (f32 or f16 bits)
// The header names the model's shape (layers, KV heads, head size, vocabulary, cache type) and the
// file size of its weights; a file of another shape, or one whose size is not what the header says,
// is refused with a 400 naming the difference. (A different model of the very same shape and size
// is not detected: keep one directory per model.)
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KVCache } from '../model/kv-cache.js';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.js';
import { type Ctx, type Handler, type Method, readJson, sendJson } from './http.js';
import { asObject } from './requests.js';
import type { GenerationService } from './service.js';

const MAGIC = Buffer.from('WFSLOT\0\0', 'latin1');
const VERSION = 1;

/** What a file must match to be restored here. */
interface SlotFileHeader {
  n_layer: number;
  n_kv_heads: number;
  head_dim: number;
  n_vocab: number;
  type: 'f32' | 'f16';
  /** bytes of the model's tensors (a cheap check that it is the same model) */
  model_size: number;
  n_tokens: number;
}

/** A file name inside the save directory, or a 400. */
export function checkFilename(v: unknown): string {
  if (v === undefined || v === null) throw missingParam('filename');
  if (typeof v !== 'string') throw invalidType('filename', 'a string', v);
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/.test(v)) {
    throw invalidParam('filename', `invalid filename ${JSON.stringify(v.slice(0, 80))}: a plain name of letters, digits, '.', '_' and '-' (at most 255, not starting with '.'), no path`);
  }
  return v;
}

/** The header this model's slot files carry. */
function headerFor(service: GenerationService, kv: KVCache, nTokens: number): SlotFileHeader {
  const p = kv.pool;
  const info = service.info();
  return { n_layer: p.nLayers, n_kv_heads: p.nKVHeads, head_dim: p.headDim, n_vocab: info.n_vocab, type: p.type, model_size: info.size, n_tokens: nTokens };
}

/** The views of a cache's rows for its first `n` positions: per layer, keys then values, per head. */
function rowViews(kv: KVCache, n: number): (Float32Array | Uint16Array)[] {
  const p = kv.pool;
  if (p.k.length === 0) throw new ApiError(501, 'slot files need the KV cache in CPU memory (not with --device webgpu)', 'not_supported_error', null, 'not_supported');
  const out: (Float32Array | Uint16Array)[] = [];
  const hd = p.headDim;
  const start = n > 0 ? kv.start : 0;
  for (let l = 0; l < p.nLayers; l++) {
    for (const arr of [p.k[l]!, p.v[l]!]) {
      for (let g = 0; g < p.nKVHeads; g++) {
        const base = (g * p.size + start) * hd;
        out.push(arr.subarray(base, base + n * hd));
      }
    }
  }
  return out;
}

function encode(header: SlotFileHeader, tokens: readonly number[], rows: (Float32Array | Uint16Array)[]): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(MAGIC.length + 8);
  MAGIC.copy(head);
  head.writeUInt32LE(VERSION, MAGIC.length);
  head.writeUInt32LE(json.length, MAGIC.length + 4);
  const toks = Buffer.alloc(tokens.length * 4);
  tokens.forEach((t, i) => toks.writeUInt32LE(t, i * 4));
  // typed arrays are little-endian on every platform Node runs on here (x86, arm)
  return Buffer.concat([head, json, toks, ...rows.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength))]);
}

/** The header, tokens and row bytes of a file, checked against this model; a 400 naming what is wrong. */
function decode(buf: Buffer, want: Omit<SlotFileHeader, 'n_tokens'>, vocab: number, name: string): { header: SlotFileHeader; tokens: number[]; rows: Buffer } {
  const bad = (why: string) => invalidParam('filename', `${name} is not a slot file of this server's model: ${why}`, 'invalid_slot_file');
  if (buf.length < MAGIC.length + 8 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw bad('it does not start as a WrinkleFree slot file');
  const version = buf.readUInt32LE(MAGIC.length);
  if (version !== VERSION) throw bad(`file version ${version} (this server reads ${VERSION})`);
  const jsonLen = buf.readUInt32LE(MAGIC.length + 4);
  const at = MAGIC.length + 8;
  if (jsonLen > 1 << 16 || at + jsonLen > buf.length) throw bad('its header is cut off');
  let header: SlotFileHeader;
  try {
    header = JSON.parse(buf.subarray(at, at + jsonLen).toString('utf8')) as SlotFileHeader;
  } catch {
    throw bad('its header is not JSON');
  }
  for (const k of ['n_layer', 'n_kv_heads', 'head_dim', 'n_vocab', 'type', 'model_size'] as const) {
    if (header[k] !== want[k]) throw bad(`${k} is ${JSON.stringify(header[k])}, this model's is ${JSON.stringify(want[k])}`);
  }
  const n = header.n_tokens;
  if (!Number.isInteger(n) || n < 0) throw bad(`n_tokens ${JSON.stringify(n)}`);
  const bytesPer = want.type === 'f16' ? 2 : 4;
  const rowBytes = 2 * want.n_layer * want.n_kv_heads * n * want.head_dim * bytesPer;
  const tokAt = at + jsonLen;
  if (buf.length !== tokAt + 4 * n + rowBytes) throw bad(`${buf.length} bytes where ${n} tokens take ${tokAt + 4 * n + rowBytes}`);
  const tokens: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = buf.readUInt32LE(tokAt + 4 * i);
    if (t >= vocab) throw bad(`token ${t} at ${i} is not in the vocabulary (${vocab})`);
    tokens.push(t);
  }
  return { header, tokens, rows: buf.subarray(tokAt + 4 * n) };
}

/** Writes `buf` to `path` through a temporary file, so a crash never leaves half a file under the name. */
async function writeAtomically(path: string, buf: Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const f = await open(tmp, 'w');
  try {
    await f.writeFile(buf);
  } finally {
    await f.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export class SlotFiles {
  /** `dir`: --slot-save-path, or undefined (every action answers 501) */
  constructor(private readonly service: GenerationService, private readonly dir: string | undefined) {}

  /** The handler of POST /slots/{id} (llama-server's route), or undefined for another path. */
  routeFor(path: string): Partial<Record<Method, Handler>> | undefined {
    const m = /^\/slots\/([^/]+)$/.exec(path);
    if (!m) return undefined;
    return { POST: (ctx) => this.handle(ctx, m[1]!) };
  }

  private async handle(ctx: Ctx, idText: string): Promise<void> {
    if (this.dir === undefined) {
      throw new ApiError(501, 'this server does not save or restore slots: start it with --slot-save-path DIR', 'not_supported_error', null, 'not_supported');
    }
    const id = Number(idText);
    const n = this.service.info().slots;
    if (!/^\d+$/.test(idText) || !(id < n)) throw invalidParam('id_slot', `no slot ${JSON.stringify(idText)} (slots 0..${n - 1})`);
    const action = new URL(ctx.req.url ?? '/', 'http://localhost').searchParams.get('action');
    if (action === 'erase') return sendJson(ctx.res, 200, await this.erase(id, ctx.signal));
    if (action !== 'save' && action !== 'restore') {
      throw invalidParam('action', `'action' must be save, restore or erase, got ${JSON.stringify(action)}`);
    }
    const b = asObject(await readJson(ctx, 1 << 16));
    const filename = checkFilename(b.filename);
    const path = join(this.dir, filename);
    sendJson(ctx.res, 200, action === 'save' ? await this.save(id, filename, path, ctx.signal) : await this.restore(id, filename, path, ctx.signal));
  }

  private async save(id: number, filename: string, path: string, signal: AbortSignal) {
    const t0 = performance.now();
    const { buf, n } = await this.service.withSlot(id, undefined, signal, (kv, cached) => ({
      cached: cached.slice(),
      result: { buf: encode(headerFor(this.service, kv, cached.length), cached, rowViews(kv, cached.length)), n: cached.length },
    }));
    try {
      await writeAtomically(path, buf);
    } catch (e) {
      throw new ApiError(500, `cannot write ${filename} in the slot save directory: ${(e as Error).message}`, 'server_error', null, 'slot_save_failed');
    }
    return { id_slot: id, filename, n_saved: n, n_written: buf.length, timings: { save_ms: performance.now() - t0 } };
  }

  private async restore(id: number, filename: string, path: string, signal: AbortSignal) {
    const t0 = performance.now();
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ApiError(404, `no slot file ${filename} in the slot save directory`, 'invalid_request_error', 'filename', 'not_found');
      throw new ApiError(500, `cannot read ${filename}: ${(e as Error).message}`, 'server_error', null, 'slot_restore_failed');
    }
    // the shape this server's pool has (any slot's cache tells it)
    const want = await this.service.withSlot(id, undefined, signal, (kv, cached) => ({ cached: cached.slice(), result: headerFor(this.service, kv, 0) }));
    const { header, tokens, rows } = decode(buf, want, want.n_vocab, filename);
    const n = header.n_tokens;
    if (n >= this.service.slotContext) {
      throw invalidParam('filename', `${filename} holds ${n} tokens, more than a slot's context here (${this.service.slotContext})`, 'invalid_slot_file');
    }
    await this.service.withSlot(id, n, signal, (kv) => {
      let at = 0;
      for (const view of rowViews(kv, n)) {
        const bytes = view.byteLength;
        const src = rows.subarray(at, at + bytes);
        new Uint8Array(view.buffer, view.byteOffset, bytes).set(src);
        at += bytes;
      }
      return { cached: tokens.slice(), result: undefined };
    });
    return { id_slot: id, filename, n_restored: n, n_read: buf.length, timings: { restore_ms: performance.now() - t0 } };
  }

  private async erase(id: number, signal: AbortSignal) {
    const n = await this.service.withSlot(id, undefined, signal, (_kv, cached) => ({ cached: [], result: cached.length }));
    return { id_slot: id, n_erased: n };
  }
}
