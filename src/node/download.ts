// Downloads one file over HTTP(S) so that a half-done or corrupt download never looks complete
// (`wf download`, e.g. in a Kubernetes init container that fetches the model before the server starts).
//
//   FILE.part        the bytes so far; a later run resumes from its end with `Range: bytes=N-`
//   FILE.part.json   the URL and the validators (ETag / Last-Modified) the bytes came with, sent back
//                    as If-Range so that a file changed on the server restarts from zero instead of
//                    being spliced onto old bytes
//   FILE             appears only by rename, after the length and (with --sha256) the checksum match
//
// A connection cut mid-way is retried from where it stopped (up to `retries` times, with a short
// pause); what remains after the last try is the .part file, for the next run. A wrong checksum
// removes the .part (its bytes are not the file asked for, resuming from them cannot help).
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

export class DownloadError extends Error {}

export interface DownloadOptions {
  url: string;
  /** where the finished file goes */
  out: string;
  /** expected SHA-256, 64 hex digits */
  sha256?: string;
  /** tries after a cut connection (default 5) */
  retries?: number;
  /** pause before a retry, in ms (default 1000) */
  retryDelayMs?: number;
  /** progress lines (default: none) */
  progress?: (p: Progress) => void;
  /** least ms between two progress calls (default 1000) */
  progressEveryMs?: number;
  /** stops the download (the .part stays) */
  signal?: AbortSignal;
}

export interface Progress {
  received: number;
  /** total bytes, when the server said */
  total: number | null;
  bytesPerSecond: number;
  /** true on the last call */
  done: boolean;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
  /** bytes that were already there from an earlier try or run */
  resumedFrom: number;
  /** connections cut and resumed during this run */
  retries: number;
  /** the file was already there with the expected checksum: nothing was downloaded */
  alreadyThere?: boolean;
}

interface PartMeta {
  url: string;
  etag?: string;
  lastModified?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Bytes the .part's write stream may hold before reading the body waits for the disk. */
const WRITE_QUEUE_BYTES = 64 << 20;

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readMeta(path: string): Promise<PartMeta | null> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as PartMeta;
    return typeof m.url === 'string' ? m : null;
  } catch {
    return null;
  }
}

/** Hashes the bytes already on disk, so the checksum covers the whole file after a resume. */
async function hashExisting(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** The total length a 206 reply announces (Content-Range: bytes A-B/TOTAL), checking it starts at `from`. */
function contentRange(header: string | null, from: number): { total: number | null } | null {
  const m = header && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m || Number(m[1]) !== from) return null;
  return { total: m[3] === '*' ? null : Number(m[3]) };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new DownloadError('download stopped'));
    }, { once: true });
  });

export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const { url, out } = opts;
  const expected = opts.sha256?.toLowerCase();
  if (expected !== undefined && !HEX64.test(expected)) throw new DownloadError(`--sha256 must be 64 hexadecimal digits, got '${opts.sha256}'`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError(`not a URL: '${url}'`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DownloadError(`only http and https URLs can be downloaded, got '${parsed.protocol}'`);
  // a file already in place with the expected checksum (an init container restarted on a kept volume)
  if (expected !== undefined && (await sizeOf(out)) > 0) {
    const h = createHash('sha256');
    await hashExisting(out, h);
    if (h.digest('hex') === expected) return { bytes: await sizeOf(out), sha256: expected, resumedFrom: 0, retries: 0, alreadyThere: true };
  }
  const part = `${out}.part`;
  const metaPath = `${part}.json`;
  const retries = opts.retries ?? 5;
  const every = opts.progressEveryMs ?? 1000;

  // a .part from another URL is not ours to resume
  const meta = await readMeta(metaPath);
  if (meta && meta.url !== url) await rm(part, { force: true });
  const resumedFrom = meta?.url === url ? await sizeOf(part) : 0;
  if (resumedFrom === 0) await rm(part, { force: true });

  let cuts = 0;
  let total: number | null = null;
  const started = performance.now();
  let sessionBytes = 0;
  for (;;) {
    const have = await sizeOf(part);
    const validators = (await readMeta(metaPath)) ?? { url };
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (have > 0) {
      headers.Range = `bytes=${have}-`;
      const v = validators.etag ?? validators.lastModified;
      if (v) headers['If-Range'] = v;
    }
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: opts.signal, redirect: 'follow' });
    } catch (e) {
      if (opts.signal?.aborted) throw new DownloadError('download stopped');
      if (++cuts > retries) throw new DownloadError(`cannot reach ${url}: ${(e as Error).cause ?? (e as Error).message} (the bytes so far are in ${part}; run again to resume)`);
      await sleep(opts.retryDelayMs ?? 1000, opts.signal);
      continue;
    }
    let from = 0;
    if (res.status === 206) {
      const cr = contentRange(res.headers.get('content-range'), have);
      if (!cr) {
        await res.body?.cancel();
        throw new DownloadError(`the server answered a range request with Content-Range '${res.headers.get('content-range')}', not the bytes from ${have}`);
      }
      from = have;
      total = cr.total;
    } else if (res.status === 416 && have > 0) {
      // nothing after our bytes: the .part may already be whole, or the file shrank; start over
      await res.body?.cancel();
      await rm(part, { force: true });
      if (++cuts > retries) throw new DownloadError(`the server refused the range bytes=${have}- (416) again; giving up`);
      continue;
    } else if (res.ok) {
      const len = res.headers.get('content-length');
      total = len !== null && /^\d+$/.test(len) ? Number(len) : null;
    } else {
      await res.body?.cancel();
      throw new DownloadError(`${url} answered ${res.status} ${res.statusText}`.trim());
    }
    // 200 on a resume means the server sent the whole file (no Range support, or it changed): restart
    // (the write stream's 'w' flag empties the .part). The body is read from here on without waiting
    // for the file system first: Node 24's fetch drops the bytes it holds when the connection is then
    // cut before they are read (a resume restarted from 0 although 100 KB had arrived).
    const m: PartMeta = { url };
    const etag = res.headers.get('etag');
    const lastModified = res.headers.get('last-modified');
    // a weak ETag may not be used with If-Range
    if (etag && !etag.startsWith('W/')) m.etag = etag;
    if (lastModified) m.lastModified = lastModified;
    const metaWritten = from === 0 || !validators.etag ? writeFile(metaPath, JSON.stringify(m)) : Promise.resolve();

    const file = createWriteStream(part, { flags: from > 0 ? 'a' : 'w' });
    let received = from;
    let lastReport = 0;
    const report = (done: boolean) => {
      const secs = (performance.now() - started) / 1000;
      opts.progress?.({ received, total: total ?? null, bytesPerSecond: secs > 0 ? sessionBytes / secs : 0, done });
    };
    let cut: Error | null = null;
    try {
      const body = res.body ? Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) : Readable.from([]);
      for await (const chunk of body) {
        const buf = chunk as Uint8Array;
        // keep reading while the file catches up (up to 64 MB queued): bytes fetch holds unread when
        // the connection is cut are dropped, and a resume must fetch them again
        file.write(buf);
        if (file.writableLength > WRITE_QUEUE_BYTES) await new Promise<void>((r) => file.once('drain', () => r()));
        received += buf.length;
        sessionBytes += buf.length;
        const now = performance.now();
        if (now - lastReport >= every) {
          lastReport = now;
          report(false);
        }
      }
    } catch (e) {
      cut = e as Error;
    }
    await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await metaWritten;
    if (opts.signal?.aborted) throw new DownloadError(`download stopped (the bytes so far are in ${part})`);
    if (!cut && total !== null && received < total) cut = new Error(`connection closed after ${received} of ${total} bytes`);
    if (cut) {
      if (++cuts > retries) throw new DownloadError(`download of ${url} cut off (${cut.message}); the ${received} bytes so far are in ${part}: run the same command again to resume`);
      await sleep(opts.retryDelayMs ?? 1000, opts.signal);
      continue;
    }
    if (total !== null && received > total) {
      await rm(part, { force: true });
      throw new DownloadError(`${url} sent ${received} bytes, more than the ${total} it announced`);
    }
    report(true);
    break;
  }

  const hash = createHash('sha256');
  await hashExisting(part, hash);
  const digest = hash.digest('hex');
  const bytes = await sizeOf(part);
  if (expected !== undefined && digest !== expected) {
    await rm(part, { force: true });
    await rm(metaPath, { force: true });
    throw new DownloadError(`checksum mismatch for ${url}: expected sha256 ${expected}, got ${digest} (${bytes} bytes); nothing was written to ${out}`);
  }
  await rename(part, out);
  await rm(metaPath, { force: true });
  return { bytes, sha256: digest, resumedFrom, retries: cuts };
}
