// The model cache of the browser app: downloaded GGUF files kept in the Origin Private File System
// (OPFS), so a reload loads from disk instead of the network. Each model is two files in the
// directory wf-models/: <sha256 of the URL>.gguf (the bytes, written as they stream in) and
// <sha256>.json ({url, size, savedAt}), written last, so a download cut short is never taken
// for a cached model. The bytes are read back as a File (a disk-backed Blob), never copied
// into memory whole.

export interface CachedModel {
  url: string;
  size: number;
  savedAt: number;
}

const DIR = 'wf-models';

/** The cache ran out of room while storing a model (the download can go on without it). */
export class CacheFullError extends Error {
  override readonly name = 'CacheFullError';
}

async function hashName(url: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(url));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export class ModelCache {
  private constructor(private readonly dir: FileSystemDirectoryHandle) {}

  /** The cache, or undefined where the page has no OPFS (not a secure context, old browser). */
  static async open(): Promise<ModelCache | undefined> {
    try {
      if (!globalThis.isSecureContext || !navigator.storage?.getDirectory) return undefined;
      const root = await navigator.storage.getDirectory();
      return new ModelCache(await root.getDirectoryHandle(DIR, { create: true }));
    } catch {
      return undefined;
    }
  }

  /** Whether the origin's storage quota leaves room for `bytes` more (true when the browser does not say). */
  async hasRoomFor(bytes: number): Promise<boolean> {
    try {
      const { quota, usage } = await navigator.storage.estimate();
      return quota === undefined || quota - (usage ?? 0) >= bytes;
    } catch {
      return true;
    }
  }

  /** The cached file for `url` (absolute), or undefined. */
  async get(url: string): Promise<File | undefined> {
    const name = await hashName(url);
    try {
      const meta = JSON.parse(await (await (await this.dir.getFileHandle(name + '.json')).getFile()).text()) as CachedModel;
      const file = await (await this.dir.getFileHandle(name + '.gguf')).getFile();
      return meta.url === url && file.size === meta.size ? file : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Streams `body` into the cache under `url`, calling onChunk with each piece as it is written
   * (for progress and checks; throwing there aborts). Returns the stored file.
   */
  async store(url: string, body: ReadableStream<Uint8Array>, onChunk: (chunk: Uint8Array) => void): Promise<File> {
    const name = await hashName(url);
    await this.remove(url);
    const handle = await this.dir.getFileHandle(name + '.gguf', { create: true });
    const out = await handle.createWritable();
    const reader = body.getReader();
    let size = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        onChunk(value);
        await out.write(value as Uint8Array<ArrayBuffer>);
        size += value.byteLength;
      }
      await out.close();
    } catch (e) {
      await reader.cancel().catch(() => undefined);
      await out.abort().catch(() => undefined);
      await this.dir.removeEntry(name + '.gguf').catch(() => undefined);
      if ((e as Error).name === 'QuotaExceededError') {
        throw new CacheFullError(`not enough browser storage to cache this model (${(size / 1e6).toFixed(0)} MB written)`);
      }
      throw e;
    }
    const meta: CachedModel = { url, size, savedAt: Date.now() };
    const mw = await (await this.dir.getFileHandle(name + '.json', { create: true })).createWritable();
    await mw.write(JSON.stringify(meta));
    await mw.close();
    return handle.getFile();
  }

  /** Every complete cached model. */
  async list(): Promise<CachedModel[]> {
    const out: CachedModel[] = [];
    for await (const [name, h] of (this.dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
      if (!name.endsWith('.json') || h.kind !== 'file') continue;
      try {
        out.push(JSON.parse(await (await (h as FileSystemFileHandle).getFile()).text()) as CachedModel);
      } catch {
        // a damaged entry: clear() removes it
      }
    }
    return out.sort((a, b) => b.savedAt - a.savedAt);
  }

  async remove(url: string): Promise<void> {
    const name = await hashName(url);
    await this.dir.removeEntry(name + '.json').catch(() => undefined);
    await this.dir.removeEntry(name + '.gguf').catch(() => undefined);
  }

  /** Removes every cached model (and any partial download). */
  async clear(): Promise<void> {
    const names: string[] = [];
    for await (const [name] of (this.dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) names.push(name);
    for (const n of names) await this.dir.removeEntry(n).catch(() => undefined);
  }
}
