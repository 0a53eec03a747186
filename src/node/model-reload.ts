// Node adapter for sleep mode (src/server/sleep.ts): loads the model again from the file it was
// started with, after checking that the file is still the one loaded (same size, modification time
// and inode), so a wake never serves other weights than the ones the server announced at start.
// A file that is gone or changed is an error naming it; the server stays up (sleep.ts answers 503).
import { stat } from 'node:fs/promises';
import type { LoadedModel, LoadOptions } from '../engine.js';
import { loadModelFile } from './model-file.js';

/** What identifies a file's contents without reading it. */
export interface FileIdentity {
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
}

export async function fileIdentity(path: string): Promise<FileIdentity> {
  const st = await stat(path);
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
}

/** Why `now` is not the file `was`, or null when it is the same. */
export function fileChange(was: FileIdentity, now: FileIdentity): string | null {
  if (now.size !== was.size) return `its size is ${now.size} bytes, was ${was.size}`;
  if (now.mtimeMs !== was.mtimeMs) return `it was modified at ${new Date(now.mtimeMs).toISOString()} (it was ${new Date(was.mtimeMs).toISOString()} at start)`;
  if (now.ino !== was.ino || now.dev !== was.dev) return 'it was replaced by another file';
  return null;
}

/**
 * A reload function for `path` as it is now (call it right after loading, before the file can
 * change): each call checks the file, then loads it with `opts`.
 */
export async function modelReloader(path: string, opts: LoadOptions): Promise<() => Promise<LoadedModel>> {
  const was = await fileIdentity(path);
  return async () => {
    let now: FileIdentity;
    try {
      now = await fileIdentity(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Error(`the model file ${path} ${code === 'ENOENT' ? 'is gone' : `cannot be read (${(e as Error).message})`}; restart the server with a model file`);
    }
    const changed = fileChange(was, now);
    if (changed) throw new Error(`the model file ${path} changed since the server started (${changed}); restart the server to serve it`);
    return loadModelFile(path, opts);
  };
}
