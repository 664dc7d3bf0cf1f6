import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { OciError } from '../errors/oci.js';
import { StoreNotFoundError } from '../store/errors.js';
import type {
  BlobStore,
  ByteRange,
  ManifestRecord,
  MetadataStore,
  ReferrerDescriptor,
} from '../store/types.js';
import { digestOf } from './digest.js';
import { parseManifest } from './manifest.js';
import { isDigestReference, isValidTag, parseDigest, parseReference } from './names.js';
import { InProcessBlobLocks, type BlobLocks } from './blob-locks.js';
import { BlobUploads } from './blob-uploads.js';
import type { ManifestReads } from './manifest-cache.js';
import type { RegistryOptions } from './options.js';

/** A blob's bytes as `openBlob` gives them: a stream, or the whole stored file (the caller reads the range). */
export type BlobBody = { stream: Readable; file?: undefined } | { file: FileHandle; stream?: undefined };
/** How long a redirected blob GET's URL stays valid: enough to start a large download, short enough to leak little. */
const BLOB_REDIRECT_TTL_SECONDS = 300;

/**
 * The OCI registry's operations over a registry's repositories, independent of HTTP: handlers parse a
 * request, call one method, and turn its result or `OciError` into a response.
 */
export class RegistryService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    readonly options: RegistryOptions,
    /** Held while a blob's bytes and record are joined (commit, mount) or removed (garbage collection). */
    readonly locks: BlobLocks = new InProcessBlobLocks(),
  ) {
    this.uploads = new BlobUploads(meta, blobs, options, this.locks);
    this.reads = options.manifestReads ?? meta;
  }

  /** Where manifests and tags are read: a `ManifestCache` in front of the store, or the store. */
  private readonly reads: ManifestReads;

  /** Blob upload sessions: start, chunks, commit, cancel, expiry. */
  readonly uploads: BlobUploads;

  /** Resolves a tag or digest to a stored manifest. */
  async getManifest(registry: string, repository: string, reference: string): Promise<ManifestRecord> {
    // A reference that cannot be a tag names no manifest: the conformance suite expects 404 here (a PUT
    // to such a reference stays TAG_INVALID).
    if (!isDigestReference(reference) && !isValidTag(reference))
      throw await this.unknown(
        registry,
        repository,
        'MANIFEST_UNKNOWN',
        `manifest unknown: ${reference.slice(0, 300)}`,
      );
    const ref = parseReference(reference);
    const digest =
      ref.kind === 'tag' ? await this.reads.resolveTag(registry, repository, ref.tag) : ref.digest.text;
    const manifest = digest && (await this.reads.getManifest(registry, repository, digest));
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

    const vanished = await this.meta.putManifest(
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
      parsed.blobs.map((b) => b.digest),
      parsed.manifests.map((m) => m.digest),
    );
    // Deleted (by a client, garbage collection or retention) between the checks above and the store's
    // transaction.
    if (vanished !== undefined) {
      throw new OciError('MANIFEST_BLOB_UNKNOWN', `blob or manifest unknown to repository: ${vanished}`, {
        digest: vanished,
      });
    }
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
    const manifest = await this.reads.getManifest(registry, repository, digest);
    if (manifest) return { digest, size: manifest.size };
    throw await this.unknown(registry, repository, 'BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
  }

  /**
   * With `blobRedirect` on and a store that signs URLs: a short-lived URL of a blob the repository
   * links, for a 307. Undefined otherwise (off, a manifest fetched as a blob, or bytes not in the store),
   * and the caller streams the bytes itself.
   */
  async blobRedirectUrl(registry: string, repository: string, digest: string): Promise<string | undefined> {
    if (!this.options.blobRedirect || !this.blobs.redirectUrl) return undefined;
    if (!(await this.meta.linkedBlob(registry, repository, digest))) return undefined;
    return this.blobs.redirectUrl(registry, digest, BLOB_REDIRECT_TTL_SECONDS);
  }

  /** A blob (or a range of it) the repository can see: an open file when the store keeps one, else a stream. */
  async openBlob(registry: string, repository: string, digest: string, range?: ByteRange): Promise<BlobBody> {
    const linked = await this.meta.linkedBlob(registry, repository, digest);
    const manifest = linked ? undefined : await this.reads.getManifest(registry, repository, digest);
    if (!linked && !manifest) {
      // Unlinked since the caller looked: deleted means unreadable, whatever bytes still sit on disk.
      throw new OciError('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
    }
    if (manifest) {
      return {
        stream: Readable.from([
          range ? manifest.content.subarray(range.start, range.end + 1) : manifest.content,
        ]),
      };
    }
    try {
      if (this.blobs.openFile) return { file: await this.blobs.openFile(registry, digest) };
      return { stream: await this.blobs.open(registry, digest, range) };
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
    if (from === undefined && !this.options.automaticContentDiscovery) return undefined;
    // Under the blob's lock, so garbage collection cannot remove it between the check and the link.
    return this.locks.withLock(registry, digest, async () => {
      const source =
        from !== undefined
          ? await this.meta.linkedBlob(registry, from, digest)
          : await this.meta.findBlob(registry, digest);
      if (!source || !(await this.blobs.stat(registry, digest))) return undefined;
      await this.meta.linkBlob(registry, repository, digest, source.size);
      return digest;
    });
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
