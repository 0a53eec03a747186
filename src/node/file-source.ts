// Node adapter: a ByteSource over a file on disk, read by range (works for files > 2 GiB).
import { open, type FileHandle } from 'node:fs/promises';
import { checkRange, type ByteSource } from '../gguf/source.js';

export class FileSource implements ByteSource {
  private constructor(private readonly fh: FileHandle, readonly size: number, readonly path: string) {}

  static async open(path: string): Promise<FileSource> {
    const fh = await open(path, 'r');
    const st = await fh.stat();
    return new FileSource(fh, st.size, path);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length, this.size);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      // a single read() is capped at 2 GiB; loop until the range is filled
      const chunk = Math.min(length - done, 1 << 30);
      const { bytesRead } = await this.fh.read(out, done, chunk, offset + done);
      if (bytesRead === 0) throw new Error(`${this.path}: unexpected end of file at ${offset + done}`);
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export const openFileSource = (path: string) => FileSource.open(path);
