// Where the browser app's model bytes come from: a local file (picker or drag and drop: the File
// itself is read by range, nothing is copied), or a URL (streamed into the OPFS cache with
// progress, or taken from the cache when it is there). Either way the engine gets a Blob and reads
// it tensor by tensor, so the whole file is never held in memory a second time.
import { CacheFullError, type ModelCache } from './cache.js';

export interface ModelBytes {
  blob: Blob;
  /** a short name for the page */
  name: string;
  /** where the bytes came from this time */
  from: 'file' | 'cache' | 'network';
  /** why a download was not cached, when it was not */
  notCached?: string;
}

export interface DownloadProgress {
  bytes: number;
  /** from Content-Length; undefined when the server does not say */
  total?: number;
}

const GGUF_MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"

/** Throws a readable error when `head` (the first bytes of a file) is not a GGUF header. */
export function checkMagic(head: Uint8Array, what: string): void {
  if (head.length < 4) return;
  if (GGUF_MAGIC.every((b, i) => head[i] === b)) return;
  const shown = Array.from(head.subarray(0, 4), (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  throw new Error(`${what} is not a GGUF file (it starts with "${shown}", a GGUF file starts with "GGUF")`);
}

export function fileName(url: string): string {
  const path = new URL(url).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}

/** A model chosen from disk: checked for the GGUF magic, then handed over as it is. */
export async function fromFile(file: File): Promise<ModelBytes> {
  checkMagic(new Uint8Array(await file.slice(0, 4).arrayBuffer()), file.name);
  return { blob: file, name: file.name, from: 'file' };
}

/**
 * A model from a URL (resolved against the page): from the cache when it holds it, else downloaded
 * (into the cache when there is one; without OPFS into a Blob, which the browser may keep on disk).
 */
export async function fromUrl(url: string, cache: ModelCache | undefined, onProgress: (p: DownloadProgress) => void): Promise<ModelBytes> {
  const abs = new URL(url, location.href).href;
  const name = fileName(abs);
  const cached = await cache?.get(abs);
  if (cached) return { blob: cached, name, from: 'cache' };
  try {
    return await download(abs, name, cache, onProgress);
  } catch (e) {
    // no room in the cache (a small quota, a private window): download again, into memory
    if (!(e instanceof CacheFullError)) throw e;
    return { ...(await download(abs, name, undefined, onProgress)), notCached: e.message };
  }
}

async function download(abs: string, name: string, cache: ModelCache | undefined, onProgress: (p: DownloadProgress) => void): Promise<ModelBytes> {
  let res: Response;
  try {
    res = await fetch(abs);
  } catch (e) {
    throw new Error(`could not download ${abs}: ${(e as Error).message} (is the URL right, and does its server allow this page to read it (CORS)?)`);
  }
  if (!res.ok || !res.body) throw new Error(`could not download ${abs}: HTTP ${res.status} ${res.statusText}`);
  const lengthHeader = res.headers.get('content-length');
  const total = lengthHeader !== null && !res.headers.get('content-encoding') ? Number(lengthHeader) : undefined;
  let bytes = 0;
  let head = new Uint8Array(0);
  const onChunk = (chunk: Uint8Array) => {
    if (head.length < 4) {
      const h = new Uint8Array(Math.min(4, head.length + chunk.length));
      h.set(head);
      h.set(chunk.subarray(0, h.length - head.length), head.length);
      head = h;
      checkMagic(head, name);
    }
    bytes += chunk.byteLength;
    onProgress({ bytes, total });
  };
  onProgress({ bytes: 0, total });
  let notCached: string | undefined;
  if (cache && total !== undefined && !(await cache.hasRoomFor(total))) {
    notCached = `the browser's storage quota has no room for ${(total / 1e6).toFixed(0)} MB`;
    cache = undefined;
  }
  if (cache) return { blob: await cache.store(abs, res.body, onChunk), name, from: 'network' };
  // no OPFS: the chunks go into a Blob every 64 MB (a Blob made of Blobs references them, and the
  // browser may keep large ones on disk), so at most 64 MB is held twice
  let blob = new Blob([]);
  let parts: Uint8Array[] = [];
  let held = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (!done) {
      onChunk(value);
      parts.push(value);
      held += value.byteLength;
    }
    if (done || held >= 64 << 20) {
      blob = new Blob([blob, ...(parts as BlobPart[])]);
      parts = [];
      held = 0;
    }
    if (done) break;
  }
  return { blob, name, from: 'network', notCached };
}

/** A message for the page from whatever a load threw: out of memory, unsupported types, ... */
export function explainLoadError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if ((e instanceof RangeError || (e as Error)?.name === 'RangeError') && /memory|allocat|grow|array buffer/i.test(msg)) {
    return `out of memory: the browser would not give this page enough memory for the model (${msg}). ` +
      'Close other tabs, use a smaller model, or a 64-bit browser with more memory.';
  }
  if (/out of memory/i.test(msg)) return `out of memory: ${msg}. Close other tabs or use a smaller model.`;
  return msg;
}
