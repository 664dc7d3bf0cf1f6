import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { OciError, tooManyRequests } from '../errors/oci.js';
import { crashPoint } from './crash-points.js';
import { StoreConflictError, StoreNotFoundError } from '../store/errors.js';
import type { BlobStore, MetadataStore, UploadSession } from '../store/types.js';
import { createDigestHash } from './digest.js';
import { parseDigest, type Digest } from './names.js';
import type { BlobLocks } from './blob-locks.js';
import type { RegistryOptions } from './options.js';
import { UploadHashCache, hashStream, tapHash } from './uploads.js';

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
  private readonly clientSessions = new ClientSessions();

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly options: RegistryOptions,
    private readonly locks: BlobLocks,
  ) {}

  /** Opens an upload session for `client` (its address), within the per-registry and per-client caps. */
  async startUpload(registry: string, repository: string, client = ''): Promise<UploadState> {
    await this.assertSessionCaps(registry, client);
    const id = randomUUID();
    const now = new Date();
    // The row first: an upload file without a session is then always a leftover reconciliation removes.
    await this.meta.createUpload({ registry, repository, id, offset: 0, createdAt: now, updatedAt: now });
    try {
      await this.blobs.createUpload(registry, id);
    } catch (error) {
      await this.meta.deleteUpload(registry, id).catch(() => undefined);
      throw error;
    }
    this.clientSessions.open(client, `${registry}/${id}`);
    return { id, offset: 0 };
  }

  private async assertSessionCaps(registry: string, client: string): Promise<void> {
    const perClient = this.options.maxUploadSessionsPerClient;
    if (perClient !== undefined && this.clientSessions.count(client) >= perClient) {
      throw tooManyRequests(
        `client ${client} already has ${perClient} open upload sessions; finish or cancel some first`,
        { limit: 'maxUploadSessionsPerClient', max: perClient },
        60,
      );
    }
    const perRegistry = this.options.maxUploadSessionsPerRegistry;
    if (perRegistry !== undefined && (await this.meta.countUploads(registry)) >= perRegistry) {
      throw tooManyRequests(
        `the registry already has ${perRegistry} open upload sessions; try again later`,
        { limit: 'maxUploadSessionsPerRegistry', max: perRegistry },
        60,
      );
    }
  }

  /** `POST ?digest=`: a whole blob in one request. */
  async uploadMonolithic(
    registry: string,
    repository: string,
    digestText: string,
    body: Readable,
    client = '',
  ): Promise<string> {
    const digest = parseDigest(digestText);
    const upload = await this.startUpload(registry, repository, client);
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
    // Hashed as the store reads it, without a stream layer in between (a Transform per 64 KiB chunk
    // cost measurable CPU on a push). A failed write discards this hash (it is not put back), so it
    // only has to match the file when the whole body was written.
    tapHash(body, hash);
    let written: number;
    try {
      written = await this.blobs.writeUpload(session.registry, session.id, offset, body);
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

  /**
   * Verify, record the verified digest on the session, rename, link, forget the session. A crash after
   * the mark leaves a session that names its blob, so the final PUT (or reconciliation) finishes the
   * commit instead of leaving an orphan blob file and a session that can never complete.
   */
  private async commit(session: UploadSession, digest: Digest, length: number): Promise<void> {
    if (session.committing === digest.text && (await this.finishCommit(session, digest.text))) return;
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
    await this.meta.markUploadCommitting(session.registry, session.id, digest.text);
    crashPoint('after-mark');
    // Bytes and record are joined under the blob's lock, so garbage collection cannot delete the file
    // that the commit found already present (and so discarded its own copy of).
    await this.locks.withLock(session.registry, digest.text, async () => {
      await this.blobs.commitUpload(session.registry, session.id, digest.text, length);
      crashPoint('after-rename');
      await this.meta.linkBlob(session.registry, session.repository, digest.text, length);
    });
    crashPoint('after-link');
    await this.forget(session);
  }

  /** Completes a commit a crash interrupted, when its blob is in place; false when it is not. */
  private async finishCommit(session: UploadSession, digest: string): Promise<boolean> {
    // Under the blob's lock, like a commit: garbage collection must not delete the file in between.
    const linked = await this.locks.withLock(session.registry, digest, async () => {
      const blob = await this.blobs.stat(session.registry, digest);
      if (!blob) return false;
      await this.meta.linkBlob(session.registry, session.repository, digest, blob.size);
      return true;
    });
    if (!linked) return false;
    await this.blobs.deleteUpload(session.registry, session.id);
    await this.forget(session);
    return true;
  }

  private async forget(session: UploadSession): Promise<void> {
    this.hashes.delete(uploadKey(session));
    this.clientSessions.close(uploadKey(session));
    await this.meta.deleteUpload(session.registry, session.id);
  }

  /**
   * Heals what a crash left (on start, and then periodically with `minAgeMs` so work in flight is not
   * mistaken for a leftover): a session whose commit was interrupted completes when its blob is in
   * place, a session without bytes is removed, and an upload file without a session is deleted.
   */
  async reconcile(registries: string[], minAgeMs: number, now = new Date()): Promise<ReconcileReport> {
    const report: ReconcileReport = { completed: 0, sessionsRemoved: 0, filesRemoved: 0 };
    const settled = (at: Date) => now.getTime() - at.getTime() >= minAgeMs;
    for (const registry of registries) {
      const files = new Map<string, Date>();
      for await (const file of this.blobs.listUploadFiles(registry)) files.set(file.id, file.mtime);
      const sessions = await this.meta.listUploads(registry, RECONCILE_BATCH);
      const known = new Set(sessions.map((session) => session.id));
      for (const session of sessions) {
        if (files.has(session.id) || this.busyUploads.has(uploadKey(session)) || !settled(session.updatedAt))
          continue;
        if (session.committing && (await this.finishCommit(session, session.committing))) report.completed++;
        else {
          await this.forget(session);
          report.sessionsRemoved++;
        }
      }
      // Only a complete list of sessions can prove a file has none.
      if (sessions.length === RECONCILE_BATCH) continue;
      for (const [id, mtime] of files) {
        if (known.has(id) || !settled(mtime)) continue;
        await this.blobs.deleteUpload(registry, id);
        report.filesRemoved++;
      }
    }
    return report;
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
    await this.forget(session);
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
      // Another node wrote this upload at the same moment and won: the client resumes from the range.
      if (error instanceof StoreConflictError) throw rangeError(session, error.message);
      throw error;
    } finally {
      this.busyUploads.delete(key);
    }
  }
}

/** What one reconciliation pass healed. */
export interface ReconcileReport {
  /** Interrupted commits finished (blob linked, session gone). */
  completed: number;
  /** Sessions whose bytes were gone. */
  sessionsRemoved: number;
  /** Upload files no session owned. */
  filesRemoved: number;
}

/** More sessions than the per-registry cap allows in normal use; a registry past it is skipped for files. */
const RECONCILE_BATCH = 10_000;

/** Open sessions per client address on this node, for the per-client cap. */
class ClientSessions {
  private readonly byClient = new Map<string, Set<string>>();
  private readonly clientOf = new Map<string, string>();

  count(client: string): number {
    return this.byClient.get(client)?.size ?? 0;
  }

  open(client: string, key: string): void {
    const sessions = this.byClient.get(client) ?? new Set<string>();
    this.byClient.set(client, sessions);
    sessions.add(key);
    this.clientOf.set(key, client);
  }

  close(key: string): void {
    const client = this.clientOf.get(key);
    if (client === undefined) return;
    this.clientOf.delete(key);
    const sessions = this.byClient.get(client);
    sessions?.delete(key);
    if (sessions?.size === 0) this.byClient.delete(client);
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
