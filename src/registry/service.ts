import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { OciError } from '../errors/oci.js';
import { StoreNotFoundError } from '../store/errors.js';
import type {
  BlobStore,
  ByteRange,
  ManifestRecord,
  MetadataStore,
  ReferrerDescriptor,
  UploadSession,
} from '../store/types.js';
import { createDigestHash, digestOf } from './digest.js';
import { parseManifest } from './manifest.js';
import { parseDigest, parseReference, type Digest } from './names.js';
import { HashingStream, UploadHashCache, hashStream } from './uploads.js';

/** Behaviour switches of the data plane, from configuration. */
export interface RegistryOptions {
  /** Largest manifest accepted, in bytes. */
  maxManifestBytes: number;
  /** Whether manifests, tags and blobs may be deleted. */
  deleteEnabled: boolean;
  /** Whether `POST ?mount=` without `from` may mount any blob already in the registry. */
  automaticContentDiscovery: boolean;
  /** Uploads untouched this long are purged. */
  uploadTtlMs: number;
  /** The most bytes a registry may store (its SKU's plan), or undefined for no limit. */
  storageQuota?: (registry: string) => Promise<number | undefined>;
}

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
 * The OCI registry's operations over a registry's repositories, independent of HTTP: handlers parse a
 * request, call one method, and turn its result or `OciError` into a response.
 */
export class RegistryService {
  private readonly hashes = new UploadHashCache();
  private readonly busyUploads = new Set<string>();

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    readonly options: RegistryOptions,
  ) {}

  /** Resolves a tag or digest to a stored manifest. */
  async getManifest(registry: string, repository: string, reference: string): Promise<ManifestRecord> {
    const ref = parseReference(reference);
    const digest =
      ref.kind === 'tag' ? await this.meta.resolveTag(registry, repository, ref.tag) : ref.digest.text;
    const manifest = digest && (await this.meta.getManifest(registry, repository, digest));
    if (!manifest)
      throw await this.unknown(registry, repository, 'MANIFEST_UNKNOWN', `manifest unknown: ${reference}`);
    return manifest;
  }

  /** Validates and stores a manifest; tags it when `reference` is a tag. */
  async putManifest(
    registry: string,
    repository: string,
    reference: string,
    content: Buffer,
    contentType: string | undefined,
  ): Promise<{ digest: string; subject?: string }> {
    const ref = parseReference(reference);
    const algorithm = ref.kind === 'digest' ? ref.digest.algorithm : 'sha256';
    const digest = digestOf(content, algorithm);
    if (ref.kind === 'digest' && ref.digest.text !== digest) {
      throw new OciError(
        'DIGEST_INVALID',
        `manifest digest ${digest} does not match the reference ${reference}`,
        {
          expected: reference,
          actual: digest,
        },
      );
    }
    const parsed = parseManifest(content, contentType);

    const linked = await this.meta.linkedBlobs(
      registry,
      repository,
      parsed.blobs.map((b) => b.digest),
    );
    for (const blob of parsed.blobs) {
      const size = linked.get(blob.digest);
      if (size === undefined) {
        throw new OciError('MANIFEST_BLOB_UNKNOWN', `blob unknown to repository: ${blob.digest}`, {
          digest: blob.digest,
        });
      }
      if (size !== blob.size) {
        throw new OciError(
          'MANIFEST_INVALID',
          `descriptor size ${blob.size} of ${blob.digest} does not match the blob's size ${size}`,
          {
            digest: blob.digest,
          },
        );
      }
    }
    const children = await this.meta.existingManifests(
      registry,
      repository,
      parsed.manifests.map((m) => m.digest),
    );
    for (const child of parsed.manifests) {
      if (!children.has(child.digest)) {
        throw new OciError('MANIFEST_BLOB_UNKNOWN', `manifest unknown to repository: ${child.digest}`, {
          digest: child.digest,
        });
      }
    }

    await this.meta.putManifest(
      registry,
      repository,
      {
        digest,
        mediaType: parsed.mediaType,
        size: content.length,
        content,
        subject: parsed.subject?.digest,
        artifactType: parsed.artifactType,
        annotations: parsed.annotations,
      },
      ref.kind === 'tag' ? ref.tag : undefined,
    );
    return parsed.subject ? { digest, subject: parsed.subject.digest } : { digest };
  }

  /** Deletes a manifest by digest (with its tags), or only a tag. */
  async deleteManifest(registry: string, repository: string, reference: string): Promise<void> {
    this.assertDeleteEnabled();
    const ref = parseReference(reference);
    const removed =
      ref.kind === 'tag'
        ? await this.meta.deleteTag(registry, repository, ref.tag)
        : await this.meta.deleteManifest(registry, repository, ref.digest.text);
    if (!removed)
      throw await this.unknown(registry, repository, 'MANIFEST_UNKNOWN', `manifest unknown: ${reference}`);
  }

  /** Size of a blob the repository can see. Manifests are blobs too, as in distribution. */
  async statBlob(
    registry: string,
    repository: string,
    digestText: string,
  ): Promise<{ digest: string; size: number }> {
    const digest = parseDigest(digestText).text;
    const linked = await this.meta.linkedBlob(registry, repository, digest);
    if (linked) return { digest, size: linked.size };
    const manifest = await this.meta.getManifest(registry, repository, digest);
    if (manifest) return { digest, size: manifest.size };
    throw await this.unknown(registry, repository, 'BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
  }

  /** Streams a blob (or a range of it) the repository can see. */
  async openBlob(registry: string, repository: string, digest: string, range?: ByteRange): Promise<Readable> {
    const manifest = (await this.meta.linkedBlob(registry, repository, digest))
      ? undefined
      : await this.meta.getManifest(registry, repository, digest);
    if (manifest) {
      return Readable.from([
        range ? manifest.content.subarray(range.start, range.end + 1) : manifest.content,
      ]);
    }
    try {
      return await this.blobs.open(registry, digest, range);
    } catch (error) {
      if (error instanceof StoreNotFoundError)
        throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
      throw error;
    }
  }

  /** Removes a blob from a repository (its bytes stay while other repositories link them). */
  async deleteBlob(registry: string, repository: string, digestText: string): Promise<void> {
    this.assertDeleteEnabled();
    const digest = parseDigest(digestText).text;
    if (!(await this.meta.unlinkBlob(registry, repository, digest))) {
      throw await this.unknown(registry, repository, 'BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
    }
  }

  /** Opens an upload session. */
  async startUpload(registry: string, repository: string): Promise<UploadState> {
    const id = randomUUID();
    const now = new Date();
    await this.blobs.createUpload(registry, id);
    await this.meta.createUpload({ registry, repository, id, offset: 0, createdAt: now, updatedAt: now });
    return { id, offset: 0 };
  }

  /**
   * `POST ?mount=&from=`: links an existing blob into the repository when the source repository has it
   * (or, with automatic content discovery, when any repository of the registry has it). Returns
   * undefined when it cannot mount, and the caller starts a normal upload.
   */
  async mountBlob(
    registry: string,
    repository: string,
    digestText: string,
    from?: string,
  ): Promise<string | undefined> {
    const digest = parseDigest(digestText).text;
    const source =
      from !== undefined
        ? await this.meta.linkedBlob(registry, from, digest)
        : this.options.automaticContentDiscovery
          ? await this.meta.findBlob(registry, digest)
          : undefined;
    if (!source || !(await this.blobs.stat(registry, digest))) return undefined;
    await this.meta.linkBlob(registry, repository, digest, source.size);
    return digest;
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
    return this.completeUpload(registry, repository, upload.id, digest.text, body, {});
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

  async listTags(
    registry: string,
    repository: string,
    last: string | undefined,
    limit: number,
  ): Promise<string[]> {
    if (!(await this.meta.repositoryExists(registry, repository))) {
      throw new OciError('NAME_UNKNOWN', `repository name not known to registry: ${repository}`, {
        name: repository,
      });
    }
    return this.meta.listTags(registry, repository, { last, limit });
  }

  async listRepositories(registry: string, last: string | undefined, limit: number): Promise<string[]> {
    return this.meta.listRepositories(registry, { last, limit });
  }

  async listReferrers(
    registry: string,
    repository: string,
    subjectText: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]> {
    const subject = parseDigest(subjectText).text;
    return this.meta.listReferrers(registry, repository, subject, artifactType);
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
    body.pipe(hashing);
    body.on('error', (error) => hashing.destroy(error));
    let written: number;
    try {
      written = await this.blobs.writeUpload(session.registry, session.id, offset, hashing);
    } catch (error) {
      body.unpipe(hashing);
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

  private assertDeleteEnabled(): void {
    if (!this.options.deleteEnabled)
      throw new OciError('UNSUPPORTED', 'deletes are disabled on this registry');
  }

  /** NAME_UNKNOWN when the whole repository is missing, else the specific code. */
  private async unknown(
    registry: string,
    repository: string,
    code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN',
    message: string,
  ): Promise<OciError> {
    if (!(await this.meta.repositoryExists(registry, repository))) {
      return new OciError('NAME_UNKNOWN', `repository name not known to registry: ${repository}`, {
        name: repository,
      });
    }
    return new OciError(code, message);
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
