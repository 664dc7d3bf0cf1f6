import type { Readable } from 'node:stream';

/** A byte range, both ends inclusive, as in HTTP `Range`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Content-addressed blob bytes and in-progress uploads, keyed by registry.
 * Implementations: `FsBlobStore` (local filesystem); later Azure Blob Storage.
 */
export interface BlobStore {
  /** Size of a committed blob, or undefined when it is not stored. */
  stat(registry: string, digest: string): Promise<{ size: number } | undefined>;
  /** Streams a committed blob, or a range of it; rejects with a NotFound error when it is missing. */
  open(registry: string, digest: string, range?: ByteRange): Promise<Readable>;
  /** Removes a committed blob's bytes (garbage collection; handlers unlink instead). */
  delete(registry: string, digest: string): Promise<void>;
  /** Removes every blob and upload of a registry. */
  deleteRegistry(registry: string): Promise<void>;

  /** Creates an empty upload. */
  createUpload(registry: string, uploadId: string): Promise<void>;
  /**
   * Writes `data` into the upload starting at byte `offset` (anything past `offset` from an earlier,
   * interrupted write is overwritten) and resolves to the number of bytes written.
   */
  writeUpload(registry: string, uploadId: string, offset: number, data: Readable): Promise<number>;
  /** Streams the first `length` bytes of an upload (to re-hash it after a restart). */
  readUpload(registry: string, uploadId: string, length: number): Promise<Readable>;
  /**
   * Makes the first `length` bytes of an upload the blob `digest`, atomically: afterwards the blob is
   * complete or absent, never partial. An existing blob is kept, not rewritten. Removes the upload.
   */
  commitUpload(registry: string, uploadId: string, digest: string, length: number): Promise<void>;
  /** Removes an upload's bytes; a missing upload is not an error. */
  deleteUpload(registry: string, uploadId: string): Promise<void>;
  /** The upload files a registry holds, with when each was last written (for crash reconciliation). */
  listUploadFiles(registry: string): AsyncIterable<{ id: string; mtime: Date }>;
}

/** A stored manifest: the exact bytes the client sent, plus what we index about it. */
export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  content: Buffer;
  /** Digest of the manifest's `subject`, for the referrers API. */
  subject?: string | undefined;
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
}

/** What a referrers index lists about one manifest. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
}

/** A resumable blob upload's durable state. */
export interface UploadSession {
  registry: string;
  repository: string;
  id: string;
  /** Bytes accepted so far, in order. */
  offset: number;
  createdAt: Date;
  updatedAt: Date;
  /** Set once the bytes were verified: the digest they are being committed as (for crash recovery). */
  committing?: string;
}

/** A page request: entries strictly after `last`, at most `limit`. */
export interface PageQuery {
  last?: string | undefined;
  limit: number;
}

/** A registry resource as stored; the management plane owns what `properties` holds. */
export interface RegistryRecord {
  name: string;
  createdAt: Date;
  properties: Record<string, unknown>;
}

/** What changed, for listeners that cache (registry settings, network rules). */
export interface ChangeEvent {
  kind: 'registry';
  registry: string;
}

/**
 * Registry metadata: registries, repositories, tags, manifests, blob links, referrers and upload sessions.
 * Every key carries the registry name. Implementations: SQLite (embedded); later PostgreSQL.
 */
export interface MetadataStore {
  // Registries
  getRegistry(name: string): Promise<RegistryRecord | undefined>;
  listRegistries(): Promise<RegistryRecord[]>;
  /** Creates a registry, or fails with `false` when the name is taken. */
  createRegistry(record: RegistryRecord): Promise<boolean>;
  updateRegistry(name: string, properties: Record<string, unknown>): Promise<boolean>;
  /** Deletes a registry and all of its metadata. */
  deleteRegistry(name: string): Promise<boolean>;
  /** Subscribes to changes; returns an unsubscribe function. */
  onChange(listener: (event: ChangeEvent) => void): () => void;

  // Repositories and tags
  repositoryExists(registry: string, repository: string): Promise<boolean>;
  listRepositories(registry: string, page: PageQuery): Promise<string[]>;
  listTags(registry: string, repository: string, page: PageQuery): Promise<string[]>;
  resolveTag(registry: string, repository: string, tag: string): Promise<string | undefined>;
  /** Counts of a repository's tags and manifests. */
  repositoryStats(registry: string, repository: string): Promise<{ tagCount: number; manifestCount: number }>;
  /** Deletes a repository: its tags, manifests and blob links (blob bytes are left to garbage collection). */
  deleteRepository(registry: string, repository: string): Promise<boolean>;
  /** Removes a tag; false when it did not exist. */
  deleteTag(registry: string, repository: string, tag: string): Promise<boolean>;

  // Manifests
  getManifest(registry: string, repository: string, digest: string): Promise<ManifestRecord | undefined>;
  /** Which of `digests` are manifests of the repository. */
  existingManifests(registry: string, repository: string, digests: string[]): Promise<Set<string>>;
  /** Stores a manifest (idempotent) and, when given, points `tag` at it, in one transaction. */
  putManifest(registry: string, repository: string, manifest: ManifestRecord, tag?: string): Promise<void>;
  /** Deletes a manifest, its tags and its referrer entry; false when it did not exist. */
  deleteManifest(registry: string, repository: string, digest: string): Promise<boolean>;
  listReferrers(
    registry: string,
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]>;

  // Blobs
  /** The size of a blob linked into the repository, or undefined. */
  linkedBlob(registry: string, repository: string, digest: string): Promise<{ size: number } | undefined>;
  /** Which of `digests` are linked into the repository, with their sizes. */
  linkedBlobs(registry: string, repository: string, digests: string[]): Promise<Map<string, number>>;
  /** Records a committed blob and links it into the repository (creating the repository). */
  linkBlob(registry: string, repository: string, digest: string, size: number): Promise<void>;
  /** Removes a repository's link to a blob; false when there was none. */
  unlinkBlob(registry: string, repository: string, digest: string): Promise<boolean>;
  /** Bytes a registry stores: its blobs (each once, however many repositories link it) and manifests. */
  registryUsage(registry: string): Promise<{ storageBytes: number }>;
  /** A registry-wide record of a committed blob, for mounts without `from`. */
  findBlob(registry: string, digest: string): Promise<{ size: number } | undefined>;

  // Upload sessions
  createUpload(session: UploadSession): Promise<void>;
  getUpload(registry: string, id: string): Promise<UploadSession | undefined>;
  /** Moves an upload's offset from `expectedOffset` to `offset`; false when another writer got there first. */
  advanceUpload(
    registry: string,
    id: string,
    expectedOffset: number,
    offset: number,
    at: Date,
  ): Promise<boolean>;
  deleteUpload(registry: string, id: string): Promise<boolean>;
  /** Uploads not touched since `before`. */
  listStaleUploads(before: Date, limit: number): Promise<UploadSession[]>;
  /** Records, before the commit starts, the verified digest an upload's bytes become. */
  markUploadCommitting(registry: string, id: string, digest: string): Promise<boolean>;
  /** A registry's open upload sessions (at most `limit`). */
  listUploads(registry: string, limit: number): Promise<UploadSession[]>;
  /** How many upload sessions a registry has open. */
  countUploads(registry: string): Promise<number>;

  close(): Promise<void>;
}

/** A principal of the management API: a user account or an API key. */
export interface IdentityRecord {
  id: string;
  name: string;
  kind: 'user' | 'apiKey';
  /** scrypt hash of the password or key. */
  secretHash: string;
  /** Marked trusted: may bypass network rules of registries that allow trusted services. */
  trustedService: boolean;
  createdAt: Date;
}

export type RoleName = 'Owner' | 'Contributor' | 'Reader';

/** A role of a principal on one registry, or on every registry (`*`). */
export interface RoleAssignment {
  principalId: string;
  registry: string;
  role: RoleName;
}

/** One refused data-plane request, for the denial log. */
export interface DenialRecord {
  registry: string;
  time: Date;
  clientIp: string;
  method: string;
  path: string;
  reason: string;
  /** `public` or `private:<connection name>`. */
  entry: string;
}

/** Accounts, API keys and role assignments. */
export interface IdentityStore {
  createIdentity(identity: IdentityRecord): Promise<boolean>;
  getIdentity(id: string): Promise<IdentityRecord | undefined>;
  findIdentityByName(name: string): Promise<IdentityRecord | undefined>;
  listIdentities(kind?: IdentityRecord['kind']): Promise<IdentityRecord[]>;
  deleteIdentity(id: string): Promise<boolean>;
  countIdentities(): Promise<number>;
  setRole(assignment: RoleAssignment): Promise<void>;
  removeRole(principalId: string, registry: string): Promise<boolean>;
  rolesOf(principalId: string): Promise<RoleAssignment[]>;
  /** Drops the role assignments scoped to a deleted registry. */
  deleteRolesForRegistry(registry: string): Promise<void>;
}

/** The denial log: append in batches, query by registry. */
export interface DenialAuditStore {
  appendDenials(records: DenialRecord[]): Promise<void>;
  queryDenials(
    registry: string,
    filter: { since?: Date; clientIp?: string; limit: number },
  ): Promise<{ denials: DenialRecord[]; countsByIp: { clientIp: string; count: number; lastSeen: Date }[] }>;
  deleteDenialsForRegistry(registry: string): Promise<void>;
}
