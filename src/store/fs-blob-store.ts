import { constants, createWriteStream, write, writev } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoreNotFoundError } from './errors.js';
import type { BlobStore, ByteRange } from './types.js';

const READ_CHUNK = 1024 * 1024;
/** Bytes of an upload buffered in memory while a write is in flight (the stream's high-water mark). */
const WRITE_BUFFER = 1024 * 1024;

/**
 * Large uploads are flushed to disk in the background every this many bytes, so the disk writes while
 * the network still delivers and the commit's fsync finds little left to do.
 */
const FLUSH_EVERY = 32 * 1024 * 1024;

/**
 * Blobs on the local filesystem: `<root>/<registry>/blobs/<algorithm>/<ab>/<encoded>` and uploads in
 * `<root>/<registry>/uploads/<id>`. Both sit on one filesystem so committing is a single rename.
 */
export class FsBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  async stat(registry: string, digest: string): Promise<{ size: number } | undefined> {
    try {
      const info = await stat(this.blobPath(registry, digest));
      return { size: info.size };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async open(registry: string, digest: string, range?: ByteRange): Promise<Readable> {
    const handle = await this.openFile(registry, digest);
    return handle.createReadStream({
      start: range?.start,
      end: range?.end,
      highWaterMark: READ_CHUNK,
      autoClose: true,
    });
  }

  async openFile(registry: string, digest: string): Promise<FileHandle> {
    try {
      return await open(this.blobPath(registry, digest), constants.O_RDONLY);
    } catch (error) {
      if (isNotFound(error)) throw new StoreNotFoundError(`blob ${digest}`);
      throw error;
    }
  }

  async delete(registry: string, digest: string): Promise<void> {
    await unlink(this.blobPath(registry, digest)).catch(ignoreNotFound);
  }

  async deleteRegistry(registry: string): Promise<void> {
    await rm(join(this.root, registry), { recursive: true, force: true });
  }

  async createUpload(registry: string, uploadId: string): Promise<void> {
    const path = this.uploadPath(registry, uploadId);
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, 'wx');
    await handle.close();
  }

  async writeUpload(registry: string, uploadId: string, offset: number, data: Readable): Promise<number> {
    const path = this.uploadPath(registry, uploadId);
    // r+ fails when the upload was cancelled or expired meanwhile, instead of resurrecting it.
    const handle = await open(path, 'r+').catch((error: unknown) => {
      if (isNotFound(error)) throw new StoreNotFoundError(`upload ${uploadId}`);
      throw error;
    });
    // fs.WriteStream keeps the socket flowing while a write is in flight and gathers what arrives
    // meanwhile into one writev. It is given our own `close`, a no-op: a stream destroyed by a failing
    // body would otherwise close the descriptor itself, and the close below could then close whatever
    // file reused that number meanwhile. The handle is closed once, here.
    const flush = new BackgroundFlush(handle, FLUSH_EVERY);
    let written = 0;
    const counted =
      (callback: (error: Error | null, bytes: number, buffers: unknown) => void) =>
      (error: Error | null, bytes: number, buffers: unknown) => {
        if (!error) {
          written += bytes;
          flush.progress(written);
        }
        callback(error, bytes, buffers);
      };
    const out = createWriteStream(path, {
      fd: handle.fd,
      start: offset,
      highWaterMark: WRITE_BUFFER,
      fs: {
        write: (
          fd: number,
          buffer: Buffer,
          bufferOffset: number,
          length: number,
          position: number,
          callback: (error: Error | null, bytes: number, buffer: unknown) => void,
        ) => write(fd, buffer, bufferOffset, length, position, counted(callback)),
        writev: (
          fd: number,
          buffers: Buffer[],
          position: number,
          callback: (error: Error | null, bytes: number, buffers: unknown) => void,
        ) => writev(fd, buffers, position, counted(callback)),
        close: (_fd: number, callback: (error: Error | null) => void) => callback(null),
      },
    });
    try {
      await pipeline(data, out);
      await flush.finish();
      return written;
    } finally {
      await flush.idle();
      await handle.close();
    }
  }

  async readUpload(registry: string, uploadId: string, length: number): Promise<Readable> {
    const handle = await open(this.uploadPath(registry, uploadId), constants.O_RDONLY).catch(
      (error: unknown) => {
        if (isNotFound(error)) throw new StoreNotFoundError(`upload ${uploadId}`);
        throw error;
      },
    );
    if (length === 0) {
      await handle.close();
      return Readable.from([]);
    }
    return handle.createReadStream({ start: 0, end: length - 1, highWaterMark: READ_CHUNK, autoClose: true });
  }

  async commitUpload(registry: string, uploadId: string, digest: string, length: number): Promise<void> {
    const source = this.uploadPath(registry, uploadId);
    const target = this.blobPath(registry, digest);
    if (await this.stat(registry, digest)) {
      // Content-addressed: the bytes are already there, so an identical second copy is discarded.
      await unlink(source).catch(ignoreNotFound);
      return;
    }
    await mkdir(dirname(target), { recursive: true });
    try {
      // Cut off anything an interrupted chunk wrote past the accepted length, then make it durable.
      await truncate(source, length);
      const handle = await open(source, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(source, target);
    } catch (error) {
      // The upload was cancelled or purged while it was being verified.
      if (isNotFound(error)) throw new StoreNotFoundError(`upload ${uploadId}`);
      throw error;
    }
    await syncDirectory(dirname(target));
  }

  async deleteUpload(registry: string, uploadId: string): Promise<void> {
    await unlink(this.uploadPath(registry, uploadId)).catch(ignoreNotFound);
  }

  async *listUploadFiles(registry: string): AsyncIterable<{ id: string; mtime: Date }> {
    const dir = join(this.root, registry, 'uploads');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    for (const id of names) {
      const info = await stat(join(dir, id)).catch(() => undefined);
      if (info?.isFile()) yield { id, mtime: info.mtime };
    }
  }

  private blobPath(registry: string, digest: string): string {
    const colon = digest.indexOf(':');
    const algorithm = digest.slice(0, colon);
    const encoded = digest.slice(colon + 1);
    return join(this.root, registry, 'blobs', algorithm, encoded.slice(0, 2), encoded);
  }

  private uploadPath(registry: string, uploadId: string): string {
    return join(this.root, registry, 'uploads', uploadId);
  }
}

/**
 * Starts an `fdatasync` of an upload each time another `every` bytes have been written, one at a time,
 * never blocking the writes. Durability still comes from the commit's fsync; this only moves the disk
 * work earlier, where it overlaps with receiving the rest of the body.
 */
class BackgroundFlush {
  private flushed = 0;
  private pending: Promise<void> | undefined;
  private error: unknown;

  constructor(
    private readonly handle: FileHandle,
    private readonly every: number,
  ) {}

  /** Called as the upload grows; `written` is how many bytes have reached the file so far. */
  progress(written: number): void {
    if (this.pending || written - this.flushed < this.every) return;
    this.pending = this.handle.datasync().then(
      () => {
        this.flushed = written;
        this.pending = undefined;
      },
      (error: unknown) => {
        this.error ??= error;
        this.pending = undefined;
      },
    );
  }

  /** Waits for a flush in progress and reports its failure. */
  async finish(): Promise<void> {
    await this.idle();
    if (this.error !== undefined) throw this.error;
  }

  /** Waits for a flush in progress, ignoring its outcome (before the file is closed). */
  async idle(): Promise<void> {
    await this.pending;
  }
}

/** Makes a rename durable: fsync the directory that now holds the new name. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function ignoreNotFound(error: unknown): void {
  if (!isNotFound(error)) throw error;
}
