import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OciError } from '../errors/oci.js';
import { StoreNotFoundError } from '../store/errors.js';
import type { BlobStore, MetadataStore, UploadSession } from '../store/types.js';
import { createDigestHash } from './digest.js';
import { parseDigest, type Digest } from './names.js';
import type { RegistryOptions } from './service.js';
import { HashingStream, UploadHashCache, hashStream } from './uploads.js';

/** The result of starting or resuming an upload. */
export interface UploadState {
  id: string;
  offset: number;
}

/** Where a chunk claims to go, from `Content-Range` and `Content-Length`. */
export interface ChunkClaim {
  range?: { start: number; end: number };
  length?: number;
}

/**
 * Blob uploads: sessions that survive restarts, chunks accepted strictly in order and hashed while
 * written, and a commit that verifies the digest before the blob becomes visible.
 */
export class BlobUploads {
  private readonly hashes = new UploadHashCache();
  private readonly busyUploads = new Set<string>();

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly options: RegistryOptions,
  ) {}

  /** Opens an upload session. */
  async startUpload(registry: string, repository: string): Promise<UploadState> {
    const id = randomUUID();
    const now = new Date();
    await this.blobs.createUpload(registry, id);
    await this.meta.createUpload({ registry, repository, id, offset: 0, createdAt: now, updatedAt: now });
    return { id, offset: 0 };
  }

  /** `POST ?digest=`: a whole blob in one request. */
  async uploadMonolithic(
    registry: string,
    repository: string,
    digestText: string,
    body: Readable,
  ): Promise<string> {
    const digest = parseDigest(digestText);
    const upload = await this.startUpload(registry, repository);
    try {
      return await this.completeUpload(registry, repository, upload.id, digest.text, body, {});
    } catch (error) {
      // Nobody can resume a session they were never told about: a failed single-request upload is gone.
      const session = await this.meta.getUpload(registry, upload.id);
      if (session) await this.dropUpload(session).catch(() => undefined);
      throw error;
    }
  }

  /** The state of an upload, for `GET` on its URL and for responses. */
  async getUpload(registry: string, repository: string, id: string): Promise<UploadSession> {
    const session = UPLOAD_ID_RE.test(id) ? await this.meta.getUpload(registry, id) : undefined;
    if (!session || session.repository !== repository) {
      throw new OciError('BLOB_UPLOAD_UNKNOWN', `blob upload unknown: ${id}`);
    }
    return session;
  }

  /** `PATCH`: appends a chunk, strictly in order. */
  async appendChunk(
    registry: string,
    repository: string,
    id: string,
    body: Readable,
    claim: ChunkClaim,
  ): Promise<UploadState> {
    const session = await this.getUpload(registry, repository, id);
    return this.withUpload(session, () => this.writeChunk(session, body, claim));
  }

  /** `PUT ?digest=`: appends an optional last chunk, verifies the digest and commits the blob. */
  async completeUpload(
    registry: string,
    repository: string,
    id: string,
    digestText: string,
    body: Readable | undefined,
    claim: ChunkClaim,
  ): Promise<string> {
    const digest = parseDigest(digestText);
    const session = await this.getUpload(registry, repository, id);
    return this.withUpload(session, async () => {
      const state = body ? await this.writeChunk(session, body, claim) : { id, offset: session.offset };
      await this.commit(session, digest, state.offset);
      return digest.text;
    });
  }

  /** `DELETE` on an upload: cancels it. */
  async cancelUpload(registry: string, repository: string, id: string): Promise<void> {
    const session = await this.getUpload(registry, repository, id);
    await this.dropUpload(session);
  }

  /** Removes uploads untouched for longer than the configured time to live. */
  async purgeStaleUploads(now = new Date()): Promise<number> {
    const before = new Date(now.getTime() - this.options.uploadTtlMs);
    let purged = 0;
    // Bounded batches so a large backlog cannot hold the event loop.
    for (let round = 0; round < 100; round++) {
      const stale = await this.meta.listStaleUploads(before, 100);
      for (const session of stale) {
        if (this.busyUploads.has(uploadKey(session))) continue;
        await this.dropUpload(session);
        purged++;
      }
      if (stale.length < 100) break;
    }
    return purged;
  }

  private async writeChunk(session: UploadSession, body: Readable, claim: ChunkClaim): Promise<UploadState> {
    const offset = session.offset;
    if (claim.range && claim.range.start !== offset) {
      throw rangeError(session, `chunk starts at ${claim.range.start} but the upload has ${offset} bytes`);
    }
    const expected = claim.range ? claim.range.end - claim.range.start + 1 : claim.length;
    if (claim.range && claim.length !== undefined && claim.length !== expected) {
      throw rangeError(
        session,
        `Content-Length ${claim.length} does not match Content-Range ${claim.range.start}-${claim.range.end}`,
      );
    }
    const key = uploadKey(session);
    const hash = this.hashes.take(key, offset) ?? (await this.rehash(session, offset));
    const hashing = new HashingStream(hash);
    // pipeline, not pipe: a body that already failed (its client gone, its framing broken) must fail
    // this write too, not leave it waiting for bytes that never come. Its error reaches writeUpload
    // through `hashing`.
    pipeline(body, hashing).catch(() => undefined);
    let written: number;
    try {
      written = await this.blobs.writeUpload(session.registry, session.id, offset, hashing);
    } catch (error) {
      if (error instanceof StoreNotFoundError)
        throw new OciError('BLOB_UPLOAD_UNKNOWN', `blob upload unknown: ${session.id}`);
      throw error;
    }
    if (expected !== undefined && written !== expected) {
      throw rangeError(session, `received ${written} bytes but the request declared ${expected}`);
    }
    const next = offset + written;
    if (!(await this.meta.advanceUpload(session.registry, session.id, offset, next, new Date()))) {
      throw rangeError(session, 'the upload was changed by another request');
    }
    this.hashes.put(key, next, hash);
    session.offset = next;
    return { id: session.id, offset: next };
  }

  private async commit(session: UploadSession, digest: Digest, length: number): Promise<void> {
    const key = uploadKey(session);
    const hash = digest.algorithm === 'sha256' ? this.hashes.take(key, length) : undefined;
    const actual = hash
      ? `sha256:${hash.digest('hex')}`
      : await hashStream(await this.blobs.readUpload(session.registry, session.id, length), digest.algorithm);
    if (actual !== digest.text) {
      await this.dropUpload(session);
      throw new OciError('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest.text}`, {
        expected: digest.text,
        actual,
      });
    }
    await this.assertWithinQuota(session, digest.text, length);
    await this.blobs.commitUpload(session.registry, session.id, digest.text, length);
    await this.meta.linkBlob(session.registry, session.repository, digest.text, length);
    await this.meta.deleteUpload(session.registry, session.id);
  }

  /** Refuses a new blob that would take the registry past its storage quota (a known blob costs nothing). */
  private async assertWithinQuota(session: UploadSession, digest: string, length: number): Promise<void> {
    const quota = await this.options.storageQuota?.(session.registry);
    if (quota === undefined || (await this.meta.findBlob(session.registry, digest))) return;
    const { storageBytes } = await this.meta.registryUsage(session.registry);
    if (storageBytes + length <= quota) return;
    await this.dropUpload(session);
    throw new OciError(
      'DENIED',
      `storage quota exceeded: the registry stores ${storageBytes} of ${quota} bytes and this blob needs ${length} more; ask the registry owner to free space or move to a larger SKU`,
      { reason: 'storageQuotaExceeded', quotaBytes: quota, usedBytes: storageBytes, blobBytes: length },
    );
  }

  private async rehash(session: UploadSession, length: number) {
    const hash = createDigestHash('sha256');
    if (length === 0) return hash;
    const source = await this.blobs.readUpload(session.registry, session.id, length);
    for await (const chunk of source) hash.update(chunk as Buffer);
    return hash;
  }

  private async dropUpload(session: UploadSession): Promise<void> {
    this.hashes.delete(uploadKey(session));
    await this.meta.deleteUpload(session.registry, session.id);
    await this.blobs.deleteUpload(session.registry, session.id);
  }

  /** One request at a time per upload on this node; a concurrent one is told the current range. */
  private async withUpload<T>(session: UploadSession, work: () => Promise<T>): Promise<T> {
    const key = uploadKey(session);
    if (this.busyUploads.has(key)) throw rangeError(session, 'another request is writing to this upload');
    this.busyUploads.add(key);
    try {
      return await work();
    } catch (error) {
      this.hashes.delete(key);
      // The upload's bytes vanished under this request: cancelled (or expired) by another request or node.
      if (error instanceof StoreNotFoundError) {
        throw new OciError('BLOB_UPLOAD_UNKNOWN', `blob upload unknown: ${session.id}`);
      }
      throw error;
    } finally {
      this.busyUploads.delete(key);
    }
  }
}

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function uploadKey(session: UploadSession): string {
  return `${session.registry}/${session.id}`;
}

/** 416 carrying the upload's current Range and Location so the client can resume from there. */
export function rangeError(session: UploadSession, message: string): OciError {
  return new OciError('RANGE_INVALID', message, undefined, {
    headers: {
      Range: `0-${Math.max(0, session.offset - 1)}`,
      Location: `/v2/${session.repository}/blobs/uploads/${session.id}`,
      'Docker-Upload-UUID': session.id,
    },
  });
}
