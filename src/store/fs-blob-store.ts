import { constants } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { StoreNotFoundError } from './errors.js';
import type { BlobStore, ByteRange } from './types.js';

const READ_CHUNK = 1024 * 1024;
const WRITE_BATCH = 1024 * 1024;

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
    let handle;
    try {
      handle = await open(this.blobPath(registry, digest), constants.O_RDONLY);
    } catch (error) {
      if (isNotFound(error)) throw new StoreNotFoundError(`blob ${digest}`);
      throw error;
    }
    return handle.createReadStream({
      start: range?.start,
      end: range?.end,
      highWaterMark: READ_CHUNK,
      autoClose: true,
    });
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
    // Written with positioned writes on our own handle rather than through fs.WriteStream: a stream
    // destroyed by a failing body closes the descriptor itself, and closing it again here could close
    // whatever file reused that number meanwhile.
    const flush = new BackgroundFlush(handle, FLUSH_EVERY);
    let written = 0;
    try {
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const writeBatch = async () => {
        let position = offset + written;
        while (batch.length > 0) {
          const { bytesWritten } = await handle.writev(batch, position);
          if (bytesWritten === 0) throw new Error(`no progress writing upload ${uploadId}`);
          position += bytesWritten;
          written += bytesWritten;
          batch = dropWritten(batch, bytesWritten);
        }
        batchBytes = 0;
        flush.progress(written);
      };
      for await (const chunk of data) {
        if ((chunk as Buffer).length === 0) continue;
        batch.push(chunk as Buffer);
        batchBytes += (chunk as Buffer).length;
        // Write what has arrived as soon as the source has nothing more buffered; under load, gather
        // socket-sized chunks into writes of up to 1 MiB (fewer syscalls, same streaming memory bound).
        if (batchBytes >= WRITE_BATCH || data.readableLength === 0) await writeBatch();
      }
      await writeBatch();
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

/** The buffers left after a partial `writev` of `bytes` bytes. */
function dropWritten(buffers: Buffer[], bytes: number): Buffer[] {
  let left = bytes;
  let index = 0;
  while (index < buffers.length && left >= buffers[index]!.length) left -= buffers[index++]!.length;
  const rest = buffers.slice(index);
  if (left > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(left);
  return rest;
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
